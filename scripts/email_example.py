"""Print the email example of docs/email.md: a real digest, sent over SMTP, from the demo's database.

    .venv/bin/python scripts/email_example.py

Runs the demo (bundled sample, real model and scores) into a temporary folder, has
editor@example.org follow PLOS Genetics and Genome Biology at "top 3%", sends the digest
due on the day after the newest sample preprint to a local aiosmtpd server (the test
suite's), and prints the headers and text part that server received. The window is the
sample's whole span, so every sample preprint counts as recent.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402

FOLLOWED = ("PLOS Genetics", "Genome Biology")
SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


def main() -> None:
    from bot.demo import run_demo, sample_span
    from tests.smtp_server import SmtpServer

    oldest, newest = sample_span()
    quiet = Console(file=io.StringIO())
    with tempfile.TemporaryDirectory() as tmp, SmtpServer() as smtp:
        with contextlib.redirect_stdout(io.StringIO()):  # the demo's own commands print too
            run_demo(quiet, quiet, Path(tmp))  # leaves DATABASE_URL pointing at the kept database
        os.environ.update(
            SMTP_URL=smtp.url,
            SCOUT_MAIL_FROM="Preprint Scout <scout@example.org>",
            SCOUT_BASE_URL="https://scout.example.org",
            SCOUT_SECRET_KEY="readme-example-not-a-secret",
            SCOUT_WINDOW_DAYS=str((newest - oldest).days + 2),
        )
        send_digest(datetime.combine(newest + timedelta(days=1), time(8), tzinfo=timezone.utc))
        message = smtp.messages[-1].message
    for name in SHOWN_HEADERS:
        print(f"{name}: {message[name]}")
    print()
    print(message.get_body(("plain",)).get_content().rstrip())


def send_digest(now: datetime) -> None:
    from bot.cli.common import scoring_context
    from bot.config import Settings
    from bot.db import Database
    from bot.delivery.digests import run_due_digests
    from bot.delivery.email.delivery import make_email_deliverer
    from bot.delivery.email.subscriptions import subscribe_email
    from bot.delivery.subscriptions import Options

    settings = Settings()
    db = Database(settings.database_url)
    for profile in FOLLOWED:
        subscribe_email(
            db, settings, "editor@example.org", profile, Options(threshold="top 3%"), verified=True, now=now
        )
    deliverer = make_email_deliverer(settings, db, scoring_context(settings))
    outcomes = run_due_digests(db, [deliverer], now=now, force=True)
    failed = [o.error for o in outcomes if o.error]
    if failed:
        raise SystemExit(f"the digest was not sent: {failed[0]}")


if __name__ == "__main__":
    main()
