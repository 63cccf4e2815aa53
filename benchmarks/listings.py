"""The real arXiv listings the speed benchmarks read (../shared/data/arxiv-daily, CC0).

Daily files repeat the previous day's items on weekends, as a real poller sees them;
`load_listings` keeps the first copy of each id, in day order."""

from __future__ import annotations

import json
from pathlib import Path

ARXIV_DAILY = Path(__file__).resolve().parents[2] / "shared" / "data" / "arxiv-daily"


def load_listings() -> list[dict]:
    """One dict per arXiv id (`id`, `title`, `summary`, `categories`, ... and `day`); empty
    when the shared data is not on this machine."""
    rows: dict[str, dict] = {}
    for path in sorted(ARXIV_DAILY.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row.setdefault("day", path.stem)
            rows.setdefault(row["id"], row)
    return list(rows.values())


def abstract_text(row: dict) -> str:
    return f"{row.get('title', '')}. {row.get('summary', '')}"
