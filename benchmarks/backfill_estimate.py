"""How long a 90-day bioRxiv + medRxiv backfill takes: measured parse+store and embedding throughput
on this machine, combined with the request pacing the services ask for. No network.

    .venv/bin/python benchmarks/backfill_estimate.py [--records 2000] [--embed 512]

What is measured: (1) parsing /details pages in the API's JSON shape and storing them through
the poller's store_items into a fresh SQLite file; (2) embedding abstracts with the bundled
model (real arXiv abstracts from ../shared/data when present, else synthetic text).
What is assumed (override with flags): records per day on each server (the /details listing
counts every version, so revisions are included) and the API's own response time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from listings import ARXIV_DAILY, abstract_text, load_listings  # noqa: E402

from bot.ingest.backfill import store_api_items  # noqa: E402
from bot.config import BUNDLED_MODEL  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.ingest.biorxiv import PAGE_SIZE, parse_details  # noqa: E402
from scoring.embedder import load_embedder  # noqa: E402


def synthetic_page(cursor: int, size: int, total: int) -> dict:
    records = []
    for i in range(cursor, min(cursor + size, total)):
        records.append(
            {
                "doi": f"10.1101/2026.05.{1 + i % 28:02d}.{700000 + i}",
                "title": f"Synthetic preprint number {i} on cortical circuits and behaviour",
                "authors": "Okafor, C. N.; van der Berg, A.; Li, W.; Smith, J.",
                "author_corresponding": "NA",
                "author_corresponding_institution": "NA",
                "date": f"2026-05-{1 + i % 28:02d}",
                "version": str(1 + (i % 4 == 0)),
                "type": "new results",
                "license": "cc_by",
                "category": "neuroscience",
                "jatsxml": "NA",
                "abstract": ("We measured neural activity in behaving mice and found a circuit motif. " * 12).strip(),
                "published": "NA",
                "server": "bioRxiv",
            }
        )
    return {
        "messages": [{"status": "ok", "cursor": cursor, "count": len(records), "total": str(total)}],
        "collection": records,
    }


def measure_store(records: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        pages = [json.dumps(synthetic_page(c, PAGE_SIZE, records)) for c in range(0, records, PAGE_SIZE)]
        started = time.perf_counter()
        for body in pages:
            page = parse_details(json.loads(body), "biorxiv")
            with db.session() as session:
                store_api_items(session, page.items)
        elapsed = time.perf_counter() - started
        db.dispose()
    return records / elapsed


def abstracts(n: int) -> list[str]:
    texts = [abstract_text(row) for row in load_listings()[:n]]
    while len(texts) < n:
        texts.append(("Synthetic abstract about gene regulation in developing embryos. " * 14).strip())
    return texts


def measure_embed(n: int) -> tuple[float, str]:
    texts = abstracts(n)
    embedder = load_embedder(BUNDLED_MODEL)
    embedder.embed(texts[:16])  # warm-up
    started = time.perf_counter()
    embedder.embed(texts)
    where = "real arXiv abstracts" if ARXIV_DAILY.exists() else "synthetic abstracts"
    return n / (time.perf_counter() - started), where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=2000, help="synthetic records to parse and store")
    ap.add_argument("--embed", type=int, default=512, help="abstracts to embed")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--biorxiv-per-day", type=float, default=200.0, help="assumed /details records a day (bioRxiv)")
    ap.add_argument("--medrxiv-per-day", type=float, default=60.0, help="assumed /details records a day (medRxiv)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between bioRxiv API requests (ours)")
    ap.add_argument("--latency", type=float, default=1.5, help="assumed API response time per page, seconds")
    args = ap.parse_args()

    store_rate = measure_store(args.records)
    embed_rate, corpus = measure_embed(args.embed)
    records = {"biorxiv": args.biorxiv_per_day * args.days, "medrxiv": args.medrxiv_per_day * args.days}
    pages = {k: math.ceil(v / PAGE_SIZE) for k, v in records.items()}
    total_records = sum(records.values())
    total_pages = sum(pages.values())
    # Requests are paced from start to start, so a page costs max(interval, latency).
    fetch_s = total_pages * max(args.interval, args.latency)
    store_s = total_records / store_rate
    embed_s = total_records / embed_rate
    print(
        f"measured on {date.today()}: parse+store {store_rate:,.0f} records/s (SQLite, {args.records} records); "
        f"embedding {embed_rate:,.1f} abstracts/s ({BUNDLED_MODEL}, {args.embed} {corpus}, CPU)"
    )
    print(
        f"assumed: {args.biorxiv_per_day:g} bioRxiv + {args.medrxiv_per_day:g} medRxiv /details records a day, "
        f"{args.latency:g} s per API response, {args.interval:g} s between requests"
    )
    for server in records:
        print(f"  {server}: {records[server]:,.0f} records = {pages[server]} pages of {PAGE_SIZE}")
    print(f"fetch: {total_pages} pages x {max(args.interval, args.latency):g} s = {fetch_s / 60:.1f} min")
    print(f"store: {total_records:,.0f} / {store_rate:,.0f} per s = {store_s:.0f} s")
    print(f"embed: {total_records:,.0f} / {embed_rate:,.1f} per s = {embed_s / 60:.1f} min")
    print(
        f"total: about {(fetch_s + store_s + embed_s) / 60:.0f} min "
        "(fetching and embedding run one after the other: backfill, then scoring)"
    )


if __name__ == "__main__":
    main()
