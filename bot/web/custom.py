"""A custom feed: several profiles at once, each preprint under the one it fits best,
narrowed by keywords and subject categories (`/feed?p=A&p=B&kw=...&cat=...&days=30`).

Each preprint keeps the figures of its best profile's own window ("Top x%" among that
profile's preprints), so an item reads as it would on that profile's page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import Preprint, Profile
from bot.fulltext import Narrowing, narrowed_ids
from bot.scores.rankings import RankedPreprint, ranked_item, window_bounds, window_score_ids
from scoring.window import top_share, window_stats

MAX_PROFILES = 10


@dataclass(frozen=True)
class CustomItem:
    item: RankedPreprint
    profile: str


@dataclass(frozen=True)
class CustomFeed:
    profiles: list[str]
    keywords: list[str]
    categories: list[str]
    days: int
    since: str
    until: str
    matched: int  # preprints of the window that pass the filters
    items: list[CustomItem]


def custom_feed(
    session: Session,
    profiles: list[Profile],
    keywords: list[str],
    categories: list[str],
    days: int,
    limit: int,
) -> CustomFeed:
    since, until = window_bounds(days)
    best: dict[int, tuple[float, float, float, str]] = {}  # preprint id -> score, share, lift, profile
    for profile in profiles:
        ranked = window_score_ids(session, profile.id, since, until)
        if not ranked:
            continue
        scores = np.array([s for _, s in ranked], dtype=np.float64)
        stats, shares = window_stats(scores), top_share(scores, scores)
        for (pid, score), share in zip(ranked, shares, strict=True):
            if pid not in best or score > best[pid][0]:
                best[pid] = (score, float(share), stats.lift(score), profile.name)
    keep = set(best)
    narrowed = narrowed_ids(session, Narrowing(tuple(keywords), tuple(categories)), since, until)
    if narrowed is not None:
        keep &= narrowed
    order = sorted(keep, key=lambda pid: (-best[pid][0], pid))
    shown = order[:limit]
    rows = {p.id: p for p in session.scalars(select(Preprint).where(Preprint.id.in_(shown)))} if shown else {}
    items = []
    for rank, pid in enumerate(shown, start=1):
        score, share, lift, name = best[pid]
        items.append(CustomItem(ranked_item(rank, rows[pid], score, share, lift, []), name))
    return CustomFeed(
        [p.name for p in profiles], keywords, categories, days, since.isoformat(), until.isoformat(), len(order), items
    )
