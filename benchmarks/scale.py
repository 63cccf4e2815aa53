"""Scores and rankings at Preprint Match's size, on PostgreSQL (`make bench-scale`).

    .venv/bin/python benchmarks/scale.py [--profiles 1400] [--preprints 180000] [--daily 2000]
        [--database scout_scale] [--profile-dir DIR]

Builds a fresh PostgreSQL database (dropped and created again) holding PROFILES profiles of
10-60 reference papers each and PREPRINTS preprints posted over the last 90 days. Texts are
the real abstracts under ../shared/data (arXiv listings and bioRxiv preprints), repeated
with their sentences rotated and their titles numbered, so every text is distinct while its
words stay real (word features are computed from them). Vectors are synthetic (clusters
around each profile, in 384 dimensions) and written straight into the embedding cache, so
no model runs: every figure below is scoring, storage and queries, beyond embedding.

Measures, each as the real `scout` process where the command exists: the first full fit
and scoring (`scout score`), a day's increment of DAILY new preprints (`scout score`), a
refit after adding one profile (`scout score`), `scout rank` in-process and as a process
(p50/p95), `/scout rank` through the real Slack app (p95), database size and each
process's peak memory. With --profile-dir, the `scout score` processes run under cProfile
and the functions that took the most time are printed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from listings import load_listings  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from bot.config import BUNDLED_MODEL, load_settings  # noqa: E402
from bot.db import Database, Profile, Score  # noqa: E402
from bot.profiles.catalog import normalise_name  # noqa: E402
from bot.scores.rankings import rank_profile  # noqa: E402
from bot.scores.update import ScoringContext  # noqa: E402
from scoring.embedder import vector_key  # noqa: E402
from scoring.text import content_hash  # noqa: E402

LABELED = ROOT.parent / "shared" / "data" / "labeled" / "biorxiv_journals_dev.jsonl"
DIM = 384
WINDOW_DAYS = 90
PAPER_NOISE = 0.06  # per dimension: a paper sits at cosine ~0.65 from its profile's centre
PREPRINT_NOISE = 0.08
ON_TOPIC = 0.7  # share of preprints drawn near some profile; the rest anywhere
SERVER = "postgresql://postgres@127.0.0.1:5432"


class NoModel:
    """Stands for the model, which nothing here should need: every text has a cached
    vector. (The Slack app loads the model in the background on start; this lets it.)"""

    def embed(self, *_args, **_kwargs):
        raise RuntimeError("every text has a cached vector; the model should never embed")


def refuse_model() -> NoModel:
    return NoModel()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# -- texts ---------------------------------------------------------------------------------


def real_abstracts() -> list[dict]:
    """Title, abstract and category of every real abstract on disk."""
    rows = [
        {"title": r["title"], "abstract": r["summary"], "category": r["categories"][0], "authors": r["authors"][:6]}
        for r in load_listings()
    ]
    if LABELED.exists():
        for line in LABELED.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r.get("abstract"):
                rows.append(
                    {
                        "title": r.get("title") or r["abstract"][:80],
                        "abstract": r["abstract"],
                        "category": r.get("category"),
                        "authors": [],
                    }
                )
    if not rows:
        raise SystemExit("no abstracts under ../shared/data")
    return rows


class Texts:
    """An endless supply of distinct texts: the real ones, then each again with its
    sentences rotated and its title numbered."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows
        self.next = 0

    def take(self) -> dict:
        i = self.next
        self.next += 1
        row = self.rows[i % len(self.rows)]
        copy = i // len(self.rows)
        if copy == 0:
            return row
        sentences = re.split(r"(?<=\.)\s+", row["abstract"])
        shift = copy % len(sentences)
        return {**row, "title": f"{row['title']} ({copy})", "abstract": " ".join(sentences[shift:] + sentences[:shift])}


# -- seeding -------------------------------------------------------------------------------


def fresh_database(name: str) -> str:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{SERVER}/{name}"


class Seeder:
    """Writes rows with COPY: ORM inserts of 180,000 preprints would take longer than the
    measurements."""

    def __init__(self, url: str, profiles: int, seed: int = 0) -> None:
        self.url = url
        self.rng = np.random.default_rng(seed)
        self.centres = unit(self.rng.standard_normal((profiles, DIM)))
        self.texts = Texts(real_abstracts())
        self.model = vector_key(BUNDLED_MODEL)
        self.preprints = 0

    def _vectors(self, conn: psycopg.Connection, hashes: list[str], vectors: np.ndarray) -> None:
        with conn.cursor().copy("COPY embeddings (model, content_hash, dim, vector) FROM STDIN") as copy:
            for key, vector in zip(hashes, vectors, strict=True):
                copy.write_row((self.model, key, DIM, vector.tobytes()))

    def profiles(self, names: list[str], centres: list[int], papers: tuple[int, int]) -> None:
        with psycopg.connect(self.url) as conn:
            now = datetime.now(UTC)
            for name, centre in zip(names, centres, strict=True):
                profile_id = conn.execute(
                    "INSERT INTO profiles (name, name_key, source, created_at, updated_at) "
                    "VALUES (%s, %s, 'bench', %s, %s) RETURNING id",
                    (name, normalise_name(name), now, now),
                ).fetchone()[0]
                count = int(self.rng.integers(papers[0], papers[1] + 1))
                rows = [self.texts.take() for _ in range(count)]
                hashes = [content_hash(r["title"], r["abstract"]) for r in rows]
                with conn.cursor().copy(
                    "COPY reference_papers (profile_id, title, abstract, year, content_hash) FROM STDIN"
                ) as copy:
                    for r, key in zip(rows, hashes, strict=True):
                        copy.write_row((profile_id, r["title"], r["abstract"], 2024, key))
                noise = PAPER_NOISE * self.rng.standard_normal((count, DIM))
                self._vectors(conn, hashes, unit(self.centres[centre] + noise))

    def preprints_posted(self, days: list[date]) -> None:
        """One preprint per entry of `days` (its posting date), with its cached vector."""
        chunk = 20000
        with psycopg.connect(self.url) as conn:
            for start in range(0, len(days), chunk):
                part = days[start : start + chunk]
                rows = [self.texts.take() for _ in part]
                hashes = [content_hash(r["title"], r["abstract"]) for r in rows]
                now = datetime.now(UTC)
                with conn.cursor().copy(
                    "COPY preprints (server, identifier, version, title, abstract, authors_json, category, "
                    "posted, url, content_hash, first_seen_at, updated_at) FROM STDIN"
                ) as copy:
                    for r, key, day in zip(rows, hashes, part, strict=True):
                        self.preprints += 1
                        ident = f"2605.{self.preprints:06d}"
                        copy.write_row(
                            (
                                "arxiv",
                                ident,
                                1,
                                r["title"],
                                r["abstract"],
                                json.dumps(r["authors"]),
                                r["category"],
                                day,
                                f"https://arxiv.org/abs/{ident}",
                                key,
                                now,
                                now,
                            )
                        )
                n = len(part)
                near = self.centres[self.rng.integers(0, len(self.centres), n)]
                anywhere = self.rng.standard_normal((n, DIM)) / np.sqrt(DIM)
                base = np.where(self.rng.random((n, 1)) < ON_TOPIC, near, anywhere)
                self._vectors(conn, hashes, unit(base + PREPRINT_NOISE * self.rng.standard_normal((n, DIM))))
                conn.commit()
            conn.execute("ANALYZE")


# -- measuring -----------------------------------------------------------------------------


def run_process(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall time (s) and peak resident memory (MB, VmHWM read from /proc while it runs)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_kb = 0
    status_file = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.05)
    stderr = proc.stderr.read() if proc.stderr else ""
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-2000:]}")
    return time.perf_counter() - start, peak_kb / 1024


def scout_score(env: dict, profile_dir: Path | None, label: str) -> tuple[float, float]:
    scout = str(Path(sys.executable).with_name("scout"))
    if profile_dir is None:
        return run_process([scout, "score"], env)
    out = profile_dir / f"{label}.prof"
    seconds, peak = run_process([sys.executable, "-m", "cProfile", "-o", str(out), scout, "score"], env)
    buf = io.StringIO()
    pstats.Stats(str(out), stream=buf).sort_stats("cumulative").print_stats(r"bot|scoring|sqlalchemy|torch", 30)
    print(f"\n-- where `scout score` spends its time ({label}) --\n{buf.getvalue()[-6000:]}", flush=True)
    return seconds, peak


def slack_rank_times(url: str, names: list[str], requests: int) -> list[float]:
    """Full-answer times of `/scout rank NAME` through the real app and a fake Slack."""
    from bot.processes.web import build_app
    from tests.fake_slack import FakeSlack, SlackSender
    from tests.loopback import serve

    secret = "benchmark-signing-secret"
    times = []
    with FakeSlack() as fake:
        fake.add_team("T1", "xoxb-bench")
        settings = load_settings(
            DATABASE_URL=url,
            SLACK_API_URL=fake.api_url,
            SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_SIGNING_SECRET=secret,
            SLACK_CLIENT_ID=None,
            SLACK_CLIENT_SECRET=None,
        )
        db = Database(settings.database_url)
        with serve(build_app(settings, db, ctx=ScoringContext(BUNDLED_MODEL, refuse_model))) as app_url:
            slack = SlackSender(app_url, secret, fake)
            slack.command("help")
            for i in range(requests):
                sent = time.monotonic()
                response, response_url = slack.command(f"rank {names[i % len(names)]} top 10")
                assert response.status_code == 200, response.text
                fake.wait_response(response_url)
                times.append(fake.responses[response_url[len(fake.server.url) :]].times[0] - sent)
        db.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1400)
    parser.add_argument("--preprints", type=int, default=180000, help="in the window before the day's increment")
    parser.add_argument("--daily", type=int, default=2000)
    parser.add_argument("--min-papers", type=int, default=10)
    parser.add_argument("--max-papers", type=int, default=60)
    parser.add_argument("--database", default="scout_scale")
    parser.add_argument("--ranks", type=int, default=40, help="in-process rankings timed")
    parser.add_argument("--rank-processes", type=int, default=8)
    parser.add_argument("--slack-requests", type=int, default=20)
    parser.add_argument("--profile-dir", type=Path, default=None, help="run `scout score` under cProfile")
    args = parser.parse_args()
    if args.profile_dir:
        args.profile_dir.mkdir(parents=True, exist_ok=True)

    results: list[tuple[str, str]] = []

    def record(label: str, value: str) -> None:
        results.append((label, value))
        print(f"{label}: {value}", flush=True)

    url = fresh_database(args.database)
    Database(url).dispose()  # migrations
    sqla_url = load_settings(DATABASE_URL=url).database_url
    env = {**os.environ, "DATABASE_URL": url, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    started = time.perf_counter()
    seeder = Seeder(url, args.profiles + 1)
    names = [f"Journal {i:04d}" for i in range(args.profiles)]
    seeder.profiles(names, list(range(args.profiles)), (args.min_papers, args.max_papers))
    today = datetime.now(UTC).date()
    window = [today - timedelta(days=1 + i % (WINDOW_DAYS - 1)) for i in range(args.preprints)]
    seeder.preprints_posted(window)
    record("seeding (rows and cached vectors, COPY)", f"{time.perf_counter() - started:.0f} s")

    seconds, peak = scout_score(env, args.profile_dir, "first-fit")
    record(
        f"first fit + scoring {args.preprints:,} preprints x {args.profiles:,} profiles (`scout score`)",
        f"{seconds:.1f} s, peak {peak:.0f} MB",
    )

    seeder.preprints_posted([today] * args.daily)
    seconds, peak = scout_score(env, args.profile_dir, "daily")
    record(f"a day's increment: {args.daily:,} new preprints (`scout score`)", f"{seconds:.1f} s, peak {peak:.0f} MB")

    db = Database(sqla_url)
    ctx = ScoringContext(BUNDLED_MODEL, refuse_model)
    picks = random.Random(3).choices(names, k=args.ranks + 1)
    rank_times = []
    for name in picks:
        with db.session() as session:
            start = time.perf_counter()
            rank_profile(session, ctx, name, days=WINDOW_DAYS, top=20)
            rank_times.append(time.perf_counter() - start)
    rank_times = rank_times[1:]  # the first pays for imports and template compilation
    window_size = args.preprints + args.daily
    record(
        f"`scout rank` in-process, top 20 of {window_size:,} ({args.ranks} profiles)",
        f"median {1000 * statistics.median(rank_times):.0f} ms, p95 {1000 * percentile(rank_times, 0.95):.0f} ms",
    )

    scout = str(Path(sys.executable).with_name("scout"))
    walls, peaks = [], []
    for name in picks[: args.rank_processes]:
        seconds, peak = run_process([scout, "rank", name, "--json"], env)
        walls.append(seconds)
        peaks.append(peak)
    record(
        f"`scout rank NAME --json` process ({args.rank_processes} runs)",
        f"median {statistics.median(walls):.2f} s, p95 {percentile(walls, 0.95):.2f} s, peak {max(peaks):.0f} MB",
    )

    if args.slack_requests:
        fulls = slack_rank_times(url, names, args.slack_requests)
        record(
            f"`/scout rank NAME top 10` full answer ({args.slack_requests} requests)",
            f"median {1000 * statistics.median(fulls):.0f} ms, p95 {1000 * percentile(fulls, 0.95):.0f} ms",
        )

    seeder.profiles(["Journal added"], [args.profiles], (35, 35))
    seconds, peak = scout_score(env, args.profile_dir, "one-more-profile")
    record(
        f"refit after adding one profile to {args.profiles:,} (`scout score`)", f"{seconds:.1f} s, peak {peak:.0f} MB"
    )

    with db.session() as session:
        rows = session.scalar(select(func.count()).select_from(Score))
        profiles = session.scalar(select(func.count()).select_from(Profile))
        size = session.scalar(text("SELECT pg_database_size(current_database())"))
        scores = session.scalar(text("SELECT pg_total_relation_size('scores')"))
        vectors = session.scalar(text("SELECT pg_total_relation_size('embeddings')"))
        # What a sparse store (docs/scores.md) would keep: every score above a floor.
        floors = (1e-4, 1e-3, 1e-2)
        kept = session.execute(
            text(", ".join(f"count(*) FILTER (WHERE score >= {f})" for f in floors).join(("SELECT ", " FROM scores")))
        ).one()
    db.dispose()
    record(
        "score rows at or above a floor (share of all)",
        ", ".join(f"{f:g}: {k:,} ({k / max(rows, 1):.1%})" for f, k in zip(floors, kept, strict=True)),
    )
    record(
        f"database size ({rows:,} score rows, {profiles:,} profiles)",
        f"{size / 1e9:.2f} GB; scores {scores / 1e9:.2f} GB ({scores / max(rows, 1):.0f} B a row), "
        f"vectors {vectors / 1e9:.2f} GB",
    )
    record("this benchmark process peak memory", f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    print(f"\n| measure ({args.profiles:,} profiles, {window_size:,} preprints, PostgreSQL) | value |\n| --- | --- |")
    for label, value in results:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
