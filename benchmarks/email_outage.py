"""Wall time of an email digest run against a mail server that accepts and never answers.

    .venv/bin/python benchmarks/email_outage.py [--addresses 20] [--timeout 1]

Seeds a fresh SQLite database with the email tests' rows (tests/mail_data.py) and one
subscription per address, starts the test suite's SilentServer (TCP accepted, no
greeting, ever) and times run_due_digests with the real EmailDeliverer, with
SCOUT_SMTP_TIMEOUT (and SCOUT_HTTP_TIMEOUT, for code that predates it) set to --timeout.
Reports the wall time, the connections the server saw, and what happened to the
subscriptions (failed and due again, or paused).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.db import Database  # noqa: E402
from bot.delivery.digests import run_due_digests  # noqa: E402
from bot.delivery.email.delivery import EmailDeliverer  # noqa: E402
from tests.mail_data import follow, mail_settings, seed  # noqa: E402
from tests.smtp_server import SilentServer  # noqa: E402

NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, SilentServer() as silent:
        url = f"sqlite:///{Path(folder) / 'scout.db'}"
        settings = mail_settings(url, silent.url, SCOUT_HTTP_TIMEOUT=args.timeout, SCOUT_SMTP_TIMEOUT=args.timeout)
        db = Database(settings.database_url)
        seed(db, NOW)
        for i in range(args.addresses):
            follow(db, f"reader{i}@example.org", "PLOS Genetics", NOW)
        started = time.monotonic()
        outcomes = run_due_digests(db, [EmailDeliverer(settings, db)], now=NOW + timedelta(days=1, hours=2))
        elapsed = time.monotonic() - started
        failed = sum(1 for o in outcomes if o.error and not o.paused)
        paused = sum(1 for o in outcomes if o.paused)
        print(
            f"{args.addresses} addresses, {args.timeout:g} s timeout: {elapsed:.1f} s, "
            f"{silent.connections} connection(s); {failed} failed and due again, {paused} paused, "
            f"{sum(o.sent for o in outcomes)} items sent"
        )


if __name__ == "__main__":
    main()
