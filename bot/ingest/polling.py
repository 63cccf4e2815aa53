"""Poll every feed, store what is new, and record each feed's health.

One feed failing (timeout, 500, malformed XML) is written to that feed's health and
never stops the others; a bad entry is skipped with a warning, never the whole feed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.db import Database, Feed, Preprint, Score, utcnow
from bot.ingest.feeds import FeedError, FeedItem, expand_shortcut, fetch_feed, parse_feed
from scoring.text import content_hash

log = logging.getLogger(__name__)


@dataclass
class FeedResult:
    feed: str
    ok: bool
    new: int = 0
    updated: int = 0
    not_modified: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class PollReport:
    feeds: list[FeedResult]

    @property
    def new(self) -> int:
        return sum(r.new for r in self.feeds)

    @property
    def updated(self) -> int:
        return sum(r.updated for r in self.feeds)

    @property
    def failed(self) -> list[FeedResult]:
        return [r for r in self.feeds if not r.ok]


def http_client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(settings.http_timeout),
        headers={"User-Agent": settings.user_agent},
        follow_redirects=True,
    )


def add_feed(
    session: Session, spec: str, settings: Settings, name: str | None = None, every_minutes: int | None = None
) -> Feed:
    """Add a feed (or return the one with that URL, with its interval updated)."""
    url, default_name = expand_shortcut(
        spec,
        biorxiv_base=settings.biorxiv_rss_url,
        medrxiv_base=settings.medrxiv_rss_url,
        arxiv_base=settings.arxiv_rss_url,
    )
    existing = session.scalar(select(Feed).where(Feed.url == url))
    if existing is not None:
        if every_minutes is not None:
            existing.poll_minutes = every_minutes
        return existing
    feed = Feed(url=url, name=name or default_name, items_seen=0, consecutive_failures=0, poll_minutes=every_minutes)
    session.add(feed)
    session.flush()
    return feed


def find_feed(session: Session, key: str) -> Feed | None:
    """A feed by id, URL, shortcut or name."""
    if key.isdigit():
        return session.get(Feed, int(key))
    feeds = list(session.scalars(select(Feed)))
    for feed in feeds:
        if key in (feed.url, feed.name) or key.casefold() == feed.name.casefold():
            return feed
    try:
        url, _ = expand_shortcut(key)
    except ValueError:
        return None
    return next((f for f in feeds if f.url.endswith(url.split("://", 1)[-1].split("/", 1)[-1])), None)


def due_feed_ids(session: Session, now: datetime, default_minutes: int) -> list[int]:
    """Feeds whose own interval (or the default) has passed since their last poll."""
    due = []
    for feed in session.scalars(select(Feed).order_by(Feed.id)):
        last = feed.last_polled_at
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=UTC)
        if last is None or now - last >= timedelta(minutes=feed.poll_minutes or default_minutes):
            due.append(feed.id)
    return due


def poll_all(
    db: Database, settings: Settings, client: httpx.Client | None = None, feed_ids: list[int] | None = None
) -> PollReport:
    """Poll the given feeds (default: all), each in its own transaction."""
    if feed_ids is None:
        with db.session() as session:
            feed_ids = list(session.scalars(select(Feed.id).order_by(Feed.id)))
    own = client is None
    client = client or http_client(settings)
    try:
        return PollReport([poll_one(db, client, feed_id) for feed_id in feed_ids])
    finally:
        if own:
            client.close()


def poll_one(db: Database, client: httpx.Client, feed_id: int) -> FeedResult:
    """Fetch, parse and store one feed in its own transaction; failures go to its health."""
    with db.session() as session:
        feed = session.get(Feed, feed_id)
        url, etag, modified, name = feed.url, feed.etag, feed.last_modified, feed.name
    try:
        fetched = fetch_feed(client, url, etag=etag, last_modified=modified)
        if fetched.status == 304:
            result = FeedResult(name, ok=True, not_modified=True)
            parsed = None
        else:
            parsed = parse_feed(fetched.content, url, fetched.content_type)
            result = FeedResult(name, ok=True, warnings=list(parsed.warnings))
    except FeedError as exc:
        log.warning("feed %s failed: %s", name, exc)
        _record_failure(db, feed_id, str(exc))
        return FeedResult(name, ok=False, error=str(exc))
    try:
        with db.session() as session:
            feed = session.get(Feed, feed_id)
            if parsed is not None:
                result.new, result.updated = store_items(session, feed, parsed.items)
                feed.etag, feed.last_modified = fetched.etag, fetched.last_modified
                feed.items_seen += result.new
            now = utcnow()
            feed.last_polled_at = feed.last_success_at = now
            feed.last_error = None
            feed.consecutive_failures = 0
    except Exception as exc:  # a bad row must not take the other feeds down
        log.exception("storing feed %s failed", name)
        _record_failure(db, feed_id, f"could not store items: {exc}")
        return FeedResult(name, ok=False, error=f"could not store items: {exc}")
    return result


def _record_failure(db: Database, feed_id: int, message: str) -> None:
    with db.session() as session:
        feed = session.get(Feed, feed_id)
        now = utcnow()
        feed.last_polled_at = feed.last_error_at = now
        feed.last_error = message[:2000]
        feed.consecutive_failures += 1


def store_items(session: Session, feed: Feed | None, items: tuple[FeedItem, ...] | list[FeedItem]) -> tuple[int, int]:
    """Insert new preprints and update newer versions; returns (new, updated)."""
    new = updated = 0
    for item in items:
        row = session.scalar(
            select(Preprint).where(Preprint.server == item.server, Preprint.identifier == item.identifier)
        )
        if row is None:
            session.add(_new_row(item, feed))
            new += 1
        elif _is_newer(item, row):
            _update_row(session, row, item)
            updated += 1
    session.flush()
    return new, updated


def _new_row(item: FeedItem, feed: Feed | None) -> Preprint:
    row = Preprint(server=item.server, identifier=item.identifier, feed_id=feed.id if feed else None)
    _copy(row, item)
    return row


def _is_newer(item: FeedItem, row: Preprint) -> bool:
    if item.version is not None and row.version is not None and item.version != row.version:
        return item.version > row.version
    # Same or unknown version: take it only if the text changed (a corrected abstract).
    return content_hash(item.title, item.abstract) != row.content_hash and bool(item.abstract)


def _update_row(session: Session, row: Preprint, item: FeedItem) -> None:
    old_hash = row.content_hash
    _copy(row, item, keep_posted=row.posted)
    row.updated_at = utcnow()
    if row.content_hash != old_hash:
        # New text, new embedding: drop the stale scores so the next run rescores it.
        session.query(Score).filter(Score.preprint_id == row.id).delete()


def _copy(row: Preprint, item: FeedItem, keep_posted: date | None = None) -> None:
    row.version = item.version
    row.title = item.title
    row.abstract = item.abstract
    row.authors_json = json.dumps(list(item.authors), ensure_ascii=False)
    row.category = item.category
    # A new version keeps the date the preprint first appeared: rankings are about new work.
    row.posted = keep_posted or item.posted or utcnow().date()
    row.url = item.url
    row.doi = item.doi
    row.content_hash = content_hash(item.title, item.abstract)
