"""Time from `/scout rank` to the ack and to the full answer, over the real app and HTTP.

    .venv/bin/python benchmarks/slack_latency.py [--preprints 1000] [--profiles 20] [--requests 30]

Seeds a fresh SQLite database (or --database-url) with PROFILES profiles and PREPRINTS
preprints posted in the last 90 days, a stored score for every pair and a cached
embedding for every text (so no model is loaded: the timing is the app, the queries
and Slack's side of the wire). Serves the real app (uvicorn, `POST /slack/events`)
against the fake Slack Web API from the test suite, sends signed slash commands as
Slack does, and reports the ack time (the HTTP answer) and the full-answer time (the
response_url POST arriving at the fake Slack), median / p95 / max.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import BUNDLED_MODEL, load_settings  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.scores.update import ScoringContext  # noqa: E402
from bot.processes.web import build_app  # noqa: E402
from tests.fake_slack import FakeSlack, SlackSender, seed_catalog, serve  # noqa: E402

SECRET = "benchmark-signing-secret"


def refuse_model():
    raise RuntimeError("the benchmark seeds every embedding; the model should never load")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preprints", type=int, default=1000)
    parser.add_argument("--profiles", type=int, default=20)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="scout-bench-")
    url = args.database_url or f"sqlite:///{workdir}/bench.db"
    db = Database(load_settings(DATABASE_URL=url).database_url)
    rng = random.Random(7)
    names = [f"Journal {i:02d}" for i in range(args.profiles)]
    specs = [
        {"title": f"Preprint {i} on topic {rng.randint(0, 50)}", "abstract": f"Abstract {i}. " * 20, "age": i % 90}
        for i in range(args.preprints)
    ]
    raw = [[rng.random() ** 3 for _ in range(args.profiles + 1)] for _ in specs]  # + background
    probs = [[x / sum(row) for x in row] for row in raw]
    started = time.perf_counter()
    seed_catalog(db, names, specs, lambda p, q: probs[q][p])
    print(f"seeded {args.preprints} preprints x {args.profiles} profiles in {time.perf_counter() - started:.1f}s")

    with FakeSlack() as fake:
        fake.add_team("T1", "xoxb-bench")
        settings = load_settings(
            DATABASE_URL=url,
            SLACK_API_URL=fake.api_url,
            SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_CLIENT_ID=None,
            SLACK_CLIENT_SECRET=None,
        )
        ctx = ScoringContext(BUNDLED_MODEL, refuse_model)
        with serve(build_app(settings, db, ctx=ctx)) as app_url:
            slack = SlackSender(app_url, SECRET, fake)
            slack.command("help")  # warm up: first auth.test, template compilation
            acks, fulls = [], []
            for i in range(args.requests):
                sent = time.monotonic()
                response, response_url = slack.command(f"rank {names[i % len(names)]} top {args.top}")
                acked = time.monotonic() - sent
                assert response.status_code == 200, response.text
                payload = fake.wait_response(response_url)[0]
                assert "ranked by how well they match" in payload["blocks"][0]["text"]["text"], payload
                fulls.append(fake.responses[response_url[len(fake.server.url) :]].times[0] - sent)
                acks.append(acked)
    print(
        f"/scout rank PROFILE top {args.top} over {args.preprints} preprints (90-day window) x {args.profiles} "
        f"profiles, {args.requests} requests, {Path(url.split('///')[-1]).suffix or url.split(':')[0]} database:"
    )
    for label, values in (("ack", acks), ("full answer", fulls)):
        print(
            f"  {label:<12} median {1000 * statistics.median(values):7.1f} ms   "
            f"p95 {1000 * percentile(values, 0.95):7.1f} ms   max {1000 * max(values):7.1f} ms"
        )
    db.dispose()


if __name__ == "__main__":
    main()
