"""Feeds out: a profile's ranking as Atom (`/profiles/{slug}.atom?top=1%`) and as the JSON of
`scout rank --json` (`/profiles/{slug}.json`).

An Atom entry's id names the profile and the preprint, never the host, so it stays the same
when the ranking changes or the site moves; its `published` is the posting date and its
`updated` the last time the stored preprint changed (a new version).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from urllib.parse import quote

from sqlalchemy import func, select
from starlette.requests import Request

from bot.db import Preprint, ScoringRun
from bot.scores.rankings import RankedPreprint
from bot.web.queries import preprint_path
from scoring.thresholds import Threshold, ThresholdError, parse_threshold

FEED_LIMIT = 100
TAG_AUTHORITY = "tag:preprint-scout.org,2026:"


@dataclass(frozen=True)
class Entry:
    id: str
    item: RankedPreprint
    published: str | None
    updated: str
    page: str | None
    profile: str | None = None


def feed_threshold(request: Request) -> Threshold:
    """?top=1% (share of the window), ?min=20% (match score) or ?lift=10; top 1% by default."""
    given = [(kind, request.query_params[kind]) for kind in ("top", "min", "lift") if kind in request.query_params]
    if len(given) > 1:
        raise ThresholdError("give one of top, min or lift, e.g. ?top=1% or ?min=20%")
    if not given:
        return parse_threshold(None)
    kind, value = given[0]
    if not value.strip():
        raise ThresholdError(f"{kind} needs a value, e.g. ?top=1% or ?min=20% or ?lift=10")
    return parse_threshold(f"{kind} {value[:40]}")


def atom_time(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_id(prefix: str, item: RankedPreprint) -> str:
    return f"{TAG_AUTHORITY}{prefix}/{quote(item.server, safe='')}/{quote(item.identifier, safe='/.-_~')}"


def feed_entries(
    session,
    prefix: str,
    items: list[RankedPreprint],
    threshold: Threshold,
    base: str,
    pages: bool = True,
    profiles: list[str] | None = None,
) -> list[Entry]:
    """The items that pass the threshold, each with its Atom id (`prefix` names the feed's
    profile) and dates, and the link to its preprint page when those are served; `profiles`
    names each item's profile in a custom feed."""
    names = profiles or [None] * len(items)
    chosen = [(i, n) for i, n in zip(items, names, strict=True) if threshold.passes(i.score, i.top_share, i.lift)]
    changed = {
        (server, ident): updated
        for server, ident, updated in session.execute(
            select(Preprint.server, Preprint.identifier, Preprint.updated_at).where(
                Preprint.identifier.in_([i.identifier for i, _ in chosen])
            )
        )
    }
    entries = []
    for item, name in chosen:
        published = datetime.combine(datetime.fromisoformat(item.posted).date(), time(), UTC) if item.posted else None
        updated = changed.get((item.server, item.identifier)) or published or datetime.now(UTC)
        updated = updated if updated.tzinfo else updated.replace(tzinfo=UTC)
        page = preprint_path(item.doi, item.identifier) if pages else None
        entries.append(
            Entry(
                entry_id(prefix, item),
                item,
                atom_time(published) if published else None,
                atom_time(max(updated, published or updated)),
                base + page if page else None,
                name,
            )
        )
    return entries


def feed_updated(session, entries: list[Entry]) -> str:
    """The newest change the feed shows: an entry's, or the last scoring run's when it is empty."""
    if entries:
        return max(e.updated for e in entries)
    last_run = session.scalar(select(func.max(ScoringRun.created_at)))
    return atom_time(last_run) if last_run else "1970-01-01T00:00:00Z"
