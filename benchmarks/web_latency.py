"""Time to serve a profile page (`GET /profiles/{slug}`) from `scout serve` with a large window.

    .venv/bin/python benchmarks/web_latency.py [--preprints 20000] [--profiles 5] [--requests 60]

Seeds a fresh SQLite database (or --database-url) with PROFILES profiles and PREPRINTS
preprints posted in the last 90 days, a stored score for every pair and a cached
embedding for every text (so "why it matched" needs no model), starts `scout serve` as a
deployment runs it, and times REQUESTS page loads over HTTP on 127.0.0.1 (pages drawn
at random from the whole ranking, first page included): median / p95 / max. A page reads
its rows from the (profile, score, preprint) index down to its last rank, and the
header's count and average in one aggregate: deep pages cost the most.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.config import load_settings  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.web.pages import PAGE_SIZE  # noqa: E402
from tests.fake_slack import seed_catalog  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preprints", type=int, default=20000)
    parser.add_argument("--profiles", type=int, default=5)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="scout-bench-")
    url = args.database_url or f"sqlite:///{workdir}/bench.db"
    db = Database(load_settings(DATABASE_URL=url).database_url)
    rng = random.Random(7)
    names = [f"Journal {i:02d}" for i in range(args.profiles)]
    specs = [
        {
            "title": f"Preprint {i} on topic {rng.randint(0, 50)}",
            "abstract": f"Abstract {i}. " * 40,
            "age": i % 90,
            "authors": [f"Author {j}, A." for j in range(rng.randint(1, 12))],
        }
        for i in range(args.preprints)
    ]
    raw = [[rng.random() ** 3 for _ in range(args.profiles + 1)] for _ in specs]  # + background
    probs = [[x / sum(row) for x in row] for row in raw]
    started = time.perf_counter()
    seed_catalog(db, names, specs, lambda p, q: probs[q][p])
    db.dispose()
    print(f"seeded {args.preprints} preprints x {args.profiles} profiles in {time.perf_counter() - started:.1f}s")

    port = free_port()
    # The seeded vectors are PyTorch fp32's (seed_catalog): the server reads them under that
    # backend's key, as a deployment reads what its own clock embedded.
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SCOUT_BACKEND": "torch",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    pages = -(-args.preprints // PAGE_SIZE)
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(600):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            client.get("/profiles/journal-00")  # warm up: template compilation, first connection
            times = []
            for i in range(args.requests):
                page = 1 if i % 4 == 0 else rng.randint(1, pages)
                sent = time.perf_counter()
                response = client.get(f"/profiles/{names[i % len(names)].lower().replace(' ', '-')}?page={page}")
                times.append(time.perf_counter() - sent)
                assert response.status_code == 200 and "ranked by how well they match" in response.text, response.text
    finally:
        server.terminate()
        server.wait(timeout=60)
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    print(
        f"GET /profiles/SLUG?page=N over {args.preprints} preprints (90-day window) x {args.profiles} profiles, "
        f"{args.requests} requests to scout serve, {kind}:"
    )
    print(
        f"  all          median {1000 * statistics.median(times):7.1f} ms"
        f"   p95 {1000 * percentile(times, 0.95):7.1f} ms"
        f"   max {1000 * max(times):7.1f} ms"
    )


if __name__ == "__main__":
    main()
