"""Speed and memory of the real pipeline on real arXiv abstracts.

    python benchmarks/pipeline_speed.py [--preprints 3000] [--profiles 20] [--papers 30]

Uses ../shared/data/arxiv-daily (real listings, CC0). Measures, on a fresh SQLite
database: embedding throughput of the bundled model, catalog fit + full rescoring
(incl. writing every score row), incremental scoring of 300 new preprints, `scout rank`
over the window (query, percentiles, "why it matched"), and peak memory of a `scout
rank` and a `scout scheduler --once` process. Embeddings are cached in .cache/ between
runs (the embedding cache is a database table; the cached database is copied, never
reused in place), so only the first run pays for embedding everything.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from listings import load_listings  # noqa: E402
from sqlalchemy import delete, func, select  # noqa: E402

from bot.config import BUNDLED_MODEL  # noqa: E402
from bot.db import Database, Preprint, Profile, ReferencePaper, Score, ScoringRun  # noqa: E402
from bot.ingest.feeds import FeedItem  # noqa: E402
from bot.ingest.polling import store_items  # noqa: E402
from bot.profiles.catalog import PaperRecord, add_profile  # noqa: E402
from bot.scores.embeddings import ensure_vectors  # noqa: E402
from bot.scores.rankings import rank_profile  # noqa: E402
from bot.scores.update import ScoringContext, update_scores  # noqa: E402
from scoring.embedder import load_embedder, vector_key  # noqa: E402
from scoring.text import content_hash, document  # noqa: E402

CACHE = ROOT / ".cache"


def split(rows: list[dict], profiles: int, papers: int) -> tuple[dict[str, list[dict]], list[dict]]:
    """Profiles of `papers` papers from category combinations (large ones give several
    profiles), the rest as the window's preprints."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups["+".join(row["categories"][:2])].append(row)
    refs: dict[str, list[dict]] = {}
    slice_no = 0
    while len(refs) < profiles:
        added = False
        for key, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            chunk = members[slice_no * papers : (slice_no + 1) * papers]
            # Keep at least as many of each group in the window as went into profiles.
            if len(chunk) == papers and len(members) >= 2 * (slice_no + 1) * papers and len(refs) < profiles:
                refs[f"{key} #{slice_no + 1}"] = chunk
                added = True
        if not added:
            break
        slice_no += 1
    used = {r["id"] for v in refs.values() for r in v}
    return refs, [r for r in rows if r["id"] not in used]


def item(row: dict) -> FeedItem:
    return FeedItem(
        server="arxiv",
        identifier=row["id"],
        version=1,
        title=row["title"],
        abstract=row["summary"],
        authors=tuple(row["authors"]),
        category=row["categories"][0],
        posted=date.fromisoformat(row["day"]),
        url=row["abs"],
        doi=None,
        announce_type="new",
    )


def timed(label: str, results: list, fn, *args, **kw):
    start = time.perf_counter()
    value = fn(*args, **kw)
    elapsed = time.perf_counter() - start
    results.append((label, elapsed))
    print(f"{label}: {elapsed:.2f} s", flush=True)
    return value


def peak_rss_mb(cmd: list[str], env: dict) -> tuple[float, float]:
    """Wall time and peak resident memory (VmHWM) of a child process.

    Read from /proc while it runs: ru_maxrss from wait4 would also count the memory
    of this (large) parent, which a forked child inherits in its accounting.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_kb = 0
    status_file = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return peak_kb / 1024, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preprints", type=int, default=3000)
    parser.add_argument("--profiles", type=int, default=20)
    parser.add_argument("--papers", type=int, default=30)
    args = parser.parse_args()

    refs, window = split(load_listings(), args.profiles, args.papers)
    window = window[: args.preprints]
    CACHE.mkdir(exist_ok=True)
    cache_db = CACHE / "bench-embeddings.db"
    work = Path(tempfile.mkdtemp(prefix="scout-bench-"))
    db_path = work / "bench.db"
    if cache_db.exists():
        shutil.copy(cache_db, db_path)
    url = f"sqlite:///{db_path}"
    db = Database(url)
    with db.session() as session:  # start from a clean catalog, keeping only cached vectors
        for model in (Score, ScoringRun, ReferencePaper, Profile, Preprint):
            session.execute(delete(model))
    results: list[tuple[str, float]] = []
    embedder = timed("load model", results, load_embedder, BUNDLED_MODEL)

    sample = [document(r["title"], r["summary"]) for r in window[:200]]
    start = time.perf_counter()
    embedder.embed(sample)
    rate = len(sample) / (time.perf_counter() - start)
    print(f"embedding: {rate:.1f} abstracts/s", flush=True)

    new, old = window[-300:], window[:-300]
    with db.session() as session:
        for name, rows in refs.items():
            add_profile(session, name, [PaperRecord(r["title"], r["summary"]) for r in rows], source="bench")
        store_items(session, None, [item(r) for r in old])
    ctx = ScoringContext(BUNDLED_MODEL, lambda: embedder, background_size=2000)
    with db.session() as session:  # fill the embedding cache first, so the timings below are scoring alone
        texts = {
            content_hash(r["title"], r["summary"]): document(r["title"], r["summary"])
            for rows in [*refs.values(), window]
            for r in rows
        }
        before = time.perf_counter()
        ensure_vectors(session, lambda: embedder, vector_key(BUNDLED_MODEL), texts)
        print(f"embedding cache filled in {time.perf_counter() - before:.1f} s", flush=True)
    db.dispose()
    shutil.copy(db_path, cache_db)
    db = Database(url)

    with db.session() as session:
        report = timed(f"fit + score {len(old)} preprints x {len(refs)} profiles", results, update_scores, session, ctx)
    with db.session() as session:
        store_items(session, None, [item(r) for r in new])
    with db.session() as session:
        timed(f"score {len(new)} new preprints (incremental)", results, update_scores, session, ctx)
    with db.session() as session:
        rows = session.scalar(select(func.count()).select_from(Score))
        timed("rescore everything (--refit)", results, update_scores, session, ctx, refit=True)
    profile = next(iter(refs))
    # One session per ranking, as the bot and `scout rank` do; the median of five, because a
    # single call in this process (which holds the whole fit) sometimes pays for a full GC.
    rank_times = []
    for _ in range(6):
        with db.session() as session:
            start = time.perf_counter()
            rank_profile(session, ctx, profile, days=90, top=20, until=date(2026, 5, 16))
            rank_times.append(time.perf_counter() - start)
    results.append(
        ("rank (90-day window, top 20, with reasons; median of 5 after a warm-up)", statistics.median(rank_times[1:]))
    )
    print(f"{results[-1][0]}: {results[-1][1]:.2f} s", flush=True)
    db.dispose()

    env = {**os.environ, "DATABASE_URL": url, "HF_HUB_OFFLINE": "1"}
    scout = str(Path(sys.executable).with_name("scout"))
    rank_mb, rank_s = peak_rss_mb([scout, "rank", profile, "--until", "2026-05-16", "--json"], env)
    clock_mb, clock_s = peak_rss_mb([scout, "scheduler", "--once"], env)
    text = document(window[0]["title"], window[0]["summary"])
    model_mb, model_s = peak_rss_mb([scout, "match", "--text", text, "--json"], env)

    print("\n| measure | value |\n| --- | --- |")
    print(f"| embedding (bundled all-MiniLM-L6-v2, 2 cores) | {rate:.1f} abstracts/s |")
    print(
        f"| catalog | {len(refs)} profiles x {args.papers} papers, {report.scored} + {len(new)} preprints, "
        f"{rows} score rows, ECE {report.ece:.3f} |"
    )
    for label, seconds in results[1:]:
        print(f"| {label} | {seconds:.2f} s |")
    print(
        f"| `scout rank` process (scores stored, vectors cached): wall time / peak memory | "
        f"{rank_s:.1f} s / {rank_mb:.0f} MB |"
    )
    print(
        f"| `scout scheduler --once` process (nothing new to embed): wall time / peak memory | "
        f"{clock_s:.1f} s / {clock_mb:.0f} MB |"
    )
    print(
        f"| `scout match --text` process (loads the model): wall time / peak memory | "
        f"{model_s:.1f} s / {model_mb:.0f} MB |"
    )
    own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| this benchmark process peak memory | {own_mb:.0f} MB |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
