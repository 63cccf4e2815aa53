"""Poll every feed, store what is new, and record each feed's health.

One feed failing (timeout, 500, malformed XML) is written to that feed's health and
never stops the others; a bad entry is skipped with a warning, never the whole feed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.config import Settings, display_url
from bot.db import ClockLease, Database, Feed, Preprint, Score, as_utc, utcnow
from bot.ingest.feeds import (
    MAX_NAME,
    FeedError,
    FeedItem,
    FetchResult,
    ParsedFeed,
    expand_shortcut,
    fetch_feed,
    parse_feed,
)
from scoring.errors import InputError
from scoring.progress import Steps, begin_step
from scoring.text import content_hash, one_line

# The lease row that lets one poll run at a time (two would race to insert the same
# preprints); renewed after each feed, so a crashed poller blocks others only this long.
POLL_LEASE = "poll"
POLL_LEASE_MIN_SECONDS = 120

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
    # Set when another poll held the lease: who, so the user is told in one line.
    skipped_for: str | None = None

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
    """Add a feed (or return the one with that URL, renamed and its interval updated)."""
    url, default_name = expand_shortcut(
        spec,
        biorxiv_base=settings.biorxiv_rss_url,
        medrxiv_base=settings.medrxiv_rss_url,
        arxiv_base=settings.arxiv_rss_url,
    )
    name = check_name(name, "feed") if name is not None else None
    existing = session.scalar(select(Feed).where(Feed.url == url))
    if existing is not None:
        if every_minutes is not None:
            existing.poll_minutes = every_minutes
        if name:
            existing.name = name
        return existing
    feed = Feed(
        url=url,
        name=name or one_line(default_name)[:MAX_NAME],
        items_seen=0,
        consecutive_failures=0,
        poll_minutes=every_minutes,
    )
    session.add(feed)
    session.flush()
    return feed


def check_name(name: str, what: str) -> str:
    """A feed or profile name as one clean line, within the same bound on every database."""
    cleaned = one_line(name)
    if not cleaned:
        raise InputError(f"a {what} needs a name")
    if len(cleaned) > MAX_NAME:
        raise InputError(f"{what} name too long ({len(cleaned):,} characters; the limit is {MAX_NAME})")
    return cleaned


def preview_feed(settings: Settings, url: str) -> ParsedFeed:
    """Fetch and parse a feed once (for `feeds add`); FeedError says what is wrong with it."""
    with http_client(settings) as client:
        fetched = fetch_feed(client, url, deadline=settings.feed_deadline)
    return parse_feed(fetched.content, url, fetched.content_type)


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
        if last is None or now - as_utc(last) >= timedelta(minutes=feed.poll_minutes or default_minutes):
            due.append(feed.id)
    return due


def poll_all(
    db: Database,
    settings: Settings,
    client: httpx.Client | None = None,
    feed_ids: list[int] | None = None,
    progress: Steps | None = None,
) -> PollReport:
    """Poll the given feeds (default: all): fetched a few at a time, each stored in its own
    transaction as soon as it arrives, counted off as a "fetching feeds" step (a bar on a
    terminal, log lines in the clock). One poll at a time: another one running means this
    one is skipped (PollReport.skipped_for says whose)."""
    with poll_lease(db, settings) as lease:
        if lease.other is not None:
            return PollReport([], skipped_for=lease.other)
        if feed_ids is None:
            with db.session() as session:
                feed_ids = list(session.scalars(select(Feed.id).order_by(Feed.id)))
        own = client is None
        client = client or http_client(settings)
        try:
            return PollReport(_poll_feeds(db, settings, client, feed_ids, lease.mine, progress))
        finally:
            if own:
                client.close()


def _poll_feeds(
    db: Database, settings: Settings, client: httpx.Client, feed_ids: list[int], holder: str, progress: Steps | None
) -> list[FeedResult]:
    feeds = {}
    with db.session() as session:
        for feed_id in feed_ids:
            feed = session.get(Feed, feed_id)
            if feed is not None:
                feeds[feed_id] = (feed.url, feed.etag, feed.last_modified, feed.name)
    results: dict[int, FeedResult] = {}
    fetched = begin_step(progress, "fetching feeds", len(feeds))
    with ThreadPoolExecutor(max_workers=settings.poll_workers, thread_name_prefix="poll") as pool:
        futures = {
            pool.submit(_fetch_and_parse, client, url, etag, modified, settings.feed_deadline): feed_id
            for feed_id, (url, etag, modified, _name) in feeds.items()
        }
        for future in as_completed(futures):
            feed_id = futures[future]
            results[feed_id] = _store_outcome(db, feed_id, feeds[feed_id][3], future.result())
            renew_poll_lease(db, settings, holder)
            if fetched:
                fetched(1)
    return [results[feed_id] for feed_id in feeds]


def _fetch_and_parse(
    client: httpx.Client, url: str, etag: str | None, modified: str | None, deadline: float
) -> tuple[FetchResult, ParsedFeed | None] | FeedError:
    """The network half of a poll, run in a worker thread; it never touches the database."""
    try:
        fetched = fetch_feed(client, url, etag=etag, last_modified=modified, deadline=deadline)
        if fetched.status == 304:
            return fetched, None
        return fetched, parse_feed(fetched.content, url, fetched.content_type)
    except FeedError as exc:
        return exc
    except Exception as exc:  # a bug in parsing one feed must not stop the others
        log.exception("polling %s failed", display_url(url))
        return FeedError(f"unexpected error: {type(exc).__name__}: {one_line(str(exc))[:200]}")


def _store_outcome(
    db: Database, feed_id: int, name: str, outcome: tuple[FetchResult, ParsedFeed | None] | FeedError
) -> FeedResult:
    if isinstance(outcome, FeedError):
        # Said once, by whoever reads the report (the CLI prints it, the clock logs it).
        _record_failure(db, feed_id, str(outcome))
        return FeedResult(name, ok=False, error=str(outcome))
    fetched, parsed = outcome
    result = FeedResult(name, ok=True, not_modified=parsed is None)
    try:
        with db.session() as session:
            feed = session.get(Feed, feed_id)
            if feed is None:  # removed while it was being fetched
                return FeedResult(name, ok=True, not_modified=True)
            if parsed is not None:
                result.warnings = list(parsed.warnings)
                refused: list[str] = []
                result.new, result.updated = store_items(session, feed, parsed.items, refused)
                result.warnings += refused
                if not refused:
                    # With an item refused, keep the old validators: the next poll must get the
                    # whole feed again (a 304 would never bring that item back).
                    feed.etag, feed.last_modified = fetched.etag, fetched.last_modified
                feed.items_seen += result.new
                feed.last_warning = "; ".join(result.warnings)[:2000] or None
            now = utcnow()
            feed.last_polled_at = feed.last_success_at = now
            feed.last_error = None
            feed.consecutive_failures = 0
    except Exception as exc:  # a failure here must not take the other feeds down
        log.exception("storing feed %s failed", name)
        message = f"could not store items: {one_line(str(exc)).split(' [SQL:')[0][:300]}"
        _record_failure(db, feed_id, message)
        return FeedResult(name, ok=False, error=message)
    return result


def _record_failure(db: Database, feed_id: int, message: str) -> None:
    with db.session() as session:
        feed = session.get(Feed, feed_id)
        if feed is None:  # removed while it was being fetched
            return
        now = utcnow()
        feed.last_polled_at = feed.last_error_at = now
        feed.last_error = message[:2000]
        feed.consecutive_failures += 1


def store_items(
    session: Session,
    feed: Feed | None,
    items: tuple[FeedItem, ...] | list[FeedItem],
    warnings: list[str] | None = None,
) -> tuple[int, int]:
    """Insert new preprints and update newer versions; returns (new, updated).

    Each item is stored under its own savepoint: one the database refuses is skipped with
    a warning naming it, and the rest of the feed is stored.
    """
    new = updated = 0
    for item in items:
        try:
            with session.begin_nested():
                outcome = _store_item(session, feed, item)
        except Exception as exc:
            if isinstance(exc, IntegrityError) and _stored(session, item):
                continue  # stored meanwhile by someone else (a backfill, another process): nothing new
            reason = one_line(str(exc)).split(" [SQL:")[0][:200]
            note = f'skipped "{item.title[:60]}" ({item.identifier[:80]}): the database refused it: {reason}'
            if warnings is not None:  # the caller says it (a poll's report)
                warnings.append(note)
            else:
                log.warning(note)
            continue
        new += outcome == "new"
        updated += outcome == "updated"
    return new, updated


def _stored(session: Session, item: FeedItem) -> bool:
    found = select(Preprint.id).where(Preprint.server == item.server, Preprint.identifier == item.identifier)
    return session.scalar(found) is not None


def _store_item(session: Session, feed: Feed | None, item: FeedItem) -> str | None:
    row = session.scalar(select(Preprint).where(Preprint.server == item.server, Preprint.identifier == item.identifier))
    if row is None:
        session.add(_new_row(item, feed))
        session.flush()
        return "new"
    if _is_newer(item, row):
        _update_row(session, row, item)
        session.flush()
        return "updated"
    return None


# -- one poll at a time -------------------------------------------------------------------


@dataclass(frozen=True)
class PollLease:
    mine: str  # this poll's holder id
    other: str | None  # who holds the lease when this poll could not take it


def _holder() -> str:
    # Per poll, not per process: two polls in one process exclude each other too.
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _lease_length(settings: Settings) -> timedelta:
    return timedelta(seconds=max(POLL_LEASE_MIN_SECONDS, 2 * settings.feed_deadline))


@contextmanager
def poll_lease(db: Database, settings: Settings) -> Iterator[PollLease]:
    """Hold the poll lease for the block; `other` says who holds it when this poll could not.

    A lease row (not a PostgreSQL advisory lock) so SQLite and PostgreSQL behave alike;
    taking it is one conditional UPDATE or one INSERT, which the database serialises.
    """
    holder, now = _holder(), utcnow()
    expires = now + _lease_length(settings)
    with db.session() as session:
        taken = session.execute(
            update(ClockLease)
            .where(ClockLease.name == POLL_LEASE, ClockLease.expires_at < now)
            .values(holder=holder, acquired_at=now, expires_at=expires)
        ).rowcount
    if not taken:
        try:
            with db.session() as session:
                session.add(ClockLease(name=POLL_LEASE, holder=holder, acquired_at=now, expires_at=expires))
        except IntegrityError:
            yield PollLease(holder, _current_holder(db))
            return
    try:
        yield PollLease(holder, None)
    finally:
        with db.session() as session:
            session.execute(delete(ClockLease).where(ClockLease.name == POLL_LEASE, ClockLease.holder == holder))


def renew_poll_lease(db: Database, settings: Settings, holder: str) -> None:
    with db.session() as session:
        session.execute(
            update(ClockLease)
            .where(ClockLease.name == POLL_LEASE, ClockLease.holder == holder)
            .values(expires_at=utcnow() + _lease_length(settings))
        )


def _current_holder(db: Database) -> str:
    with db.session() as session:
        lease = session.get(ClockLease, POLL_LEASE)
    if lease is None:
        return "another process (it has just finished)"
    started = lease.acquired_at.strftime("%H:%M:%S UTC") if lease.acquired_at else "?"
    return f"{lease.holder}, started {started}"


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
