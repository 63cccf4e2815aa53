"""Backfill and reconcile: page through the bioRxiv/medRxiv and arXiv APIs into the database.

RSS shows only the latest 30 items per bioRxiv subject, so a poller that falls behind loses
items; the APIs list everything posted in an interval. Records are stored by the poller's own
`store_items` (same dedup, same version handling), one page per transaction, with the
position kept in a `PagingCursor` row in that same transaction: a crash (or a 500 that will
not heal) at page 40 of 160 leaves the cursor at 40, and the next run resumes there. Running a
finished range again starts from the beginning and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.db import Database, Feed, PagingCursor, Preprint, utcnow
from bot.ingest.apis import Sources
from bot.ingest.biorxiv import SERVERS
from bot.ingest.feeds import BIORXIV_DOI_PREFIXES, FeedItem, subject_slug
from bot.ingest.identifiers import parse_preprint_id
from bot.ingest.polling import store_items
from bot.scores.rankings import PreprintNotFound
from scoring.text import one_line

log = logging.getLogger(__name__)

RECONCILE_DAYS = 3
# progress(records_done_this_call, total_records_or_None)
Progress = Callable[[int, int | None], None]


@dataclass
class BackfillReport:
    source: str
    start: dt.date
    end: dt.date
    pages: int = 0
    records: int = 0
    new: int = 0
    updated: int = 0
    total: int | None = None
    resumed_at: int = 0
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        resumed = f", resumed at record {self.resumed_at}" if self.resumed_at else ""
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        return (
            f"{self.source} {self.start}..{self.end}: {self.records} records in {self.pages} pages, "
            f"{self.new} new, {self.updated} updated{skipped}{resumed}"
        )


# --------------------------------------------------------------------------- plans (pure)


@dataclass(frozen=True)
class Plan:
    """What to backfill: bioRxiv/medRxiv subjects (None = every subject) and arXiv categories."""

    servers: dict[str, frozenset[str] | None]
    arxiv: tuple[str, ...] = ()


def plan_from_feeds(urls: Iterable[str], settings: Settings) -> Plan:
    """The servers, subjects and arXiv categories the feeds follow."""
    servers: dict[str, set[str] | None] = {}
    arxiv: list[str] = []
    arxiv_base = urlsplit(settings.arxiv_rss_url)
    for url in urls:
        parts = urlsplit(url)
        name = parts.path.rsplit("/", 1)[-1]
        server = name.removesuffix("_xml.php") if name.endswith("_xml.php") else None
        if server in SERVERS:
            subject = subject_slug((parse_qs(parts.query).get("subject") or ["all"])[0])
            if subject == "all" or servers.get(server, set()) is None:
                servers[server] = None
            else:
                servers.setdefault(server, set()).add(subject)
            continue
        segments = [s for s in parts.path.split("/") if s]
        on_arxiv = "arxiv" in (parts.hostname or "").split(".") or (
            parts.netloc == arxiv_base.netloc and parts.path.startswith(arxiv_base.path.rstrip("/") + "/")
        )
        if on_arxiv and len(segments) >= 2 and segments[-2] in ("rss", "atom"):
            arxiv.extend(c for c in segments[-1].split("+") if c and c not in arxiv)
    frozen = {s: (frozenset(v) if v is not None else None) for s, v in servers.items()}
    return Plan(frozen, tuple(arxiv))


def feed_plan(db: Database, settings: Settings) -> Plan:
    with db.session() as session:
        urls = list(session.scalars(select(Feed.url)))
    return plan_from_feeds(urls, settings)


def cursor_key(kind: str, start: dt.date, end: dt.date, subjects: Iterable[str] | None = None) -> str:
    key = f"{kind}/{start.isoformat()}/{end.isoformat()}"
    subjects = sorted(subjects or [])
    return f"{key}?subjects={','.join(subjects)}" if subjects else key


# --------------------------------------------------------------------------- storing


def store_api_items(session: Session, items: list[FeedItem]) -> tuple[int, int, list[str]]:
    """store_items, minus records whose DOI is already stored under another server."""
    dois = {item.doi for item in items if item.doi}
    elsewhere: dict[str, str] = {}
    if dois:
        rows = session.execute(select(Preprint.doi, Preprint.server).where(Preprint.doi.in_(dois))).all()
        elsewhere = {doi: server for doi, server in rows}
    kept, skipped = [], []
    for item in items:
        other = elsewhere.get(item.doi) if item.doi else None
        if other is not None and other != item.server:
            skipped.append(f"{item.doi}: already stored as a {other} preprint; the {item.server} record was skipped")
            continue
        kept.append(item)
    new, updated = store_items(session, None, kept)
    return new, updated, skipped


def _open_cursor(db: Database, key: str) -> tuple[int, int | None]:
    with db.session() as session:
        row = session.get(PagingCursor, key)
        if row is None:
            row = PagingCursor(key=key, cursor=0, total=None, done=False)
            session.add(row)
        elif row.done:
            # A finished range runs again from the top: new items may have appeared, and dedup
            # makes the records already stored a no-op.
            row.cursor, row.done = 0, False
        row.updated_at = utcnow()
        return row.cursor, row.total


def _store_page(
    db: Database, key: str, items: list[FeedItem], position: int, total: int, done: bool, report: BackfillReport
) -> None:
    """One page and the cursor after it, in one transaction."""
    with db.session() as session:
        new, updated, skipped = store_api_items(session, items)
        row = session.get(PagingCursor, key)
        row.cursor, row.total, row.done, row.updated_at = position, total, done, utcnow()
    report.new += new
    report.updated += updated
    report.skipped.extend(skipped)


@dataclass(frozen=True)
class Page:
    """What a backfill keeps of one page of a paged API."""

    items: list[FeedItem]  # to store (after any subject filter)
    count: int  # records the page held, kept or not: the cursor moves by this
    total: int  # records in the whole range, as the API reports it
    warnings: list[str]


def _page_through(
    db: Database,
    key: str,
    report: BackfillReport,
    position: int,
    fetch: Callable[[int], Page],
    progress: Progress | None,
) -> BackfillReport:
    """Fetch and store pages from `position` until the range is exhausted; the cursor is
    saved with each page, so a run that stops resumes at the page that failed."""
    if progress and position:
        progress(position, report.total)
    while True:
        page = fetch(position)
        report.pages += 1
        report.records += page.count
        report.total = page.total
        report.skipped.extend(page.warnings)
        position += page.count
        done = page.count == 0 or position >= page.total
        _store_page(db, key, page.items, position, page.total, done, report)
        if progress:
            progress(page.count, page.total)
        if done:
            return report


# --------------------------------------------------------------------------- backfill


def backfill_server(
    db: Database,
    sources: Sources,
    server: str,
    start: dt.date,
    end: dt.date,
    *,
    subjects: frozenset[str] | None = None,
    progress: Progress | None = None,
) -> BackfillReport:
    """Page /details/{server}/{start}/{end}/{cursor} into the database, resuming where it stopped.

    `subjects` keeps only those bioRxiv subjects (slugs as in the RSS feeds); None keeps all.
    A SourceError (a 500 that did not heal) propagates with the cursor at the failed page.
    """
    key = cursor_key(f"details/{server}", start, end, subjects)
    cursor, total = _open_cursor(db, key)
    label = {"biorxiv": "bioRxiv", "medrxiv": "medRxiv"}.get(server, server)
    report = BackfillReport(label, start, end, total=total, resumed_at=cursor)

    def fetch(position: int) -> Page:
        page = sources.biorxiv.details_page(server, start, end, position)
        items = [i for i in page.items if subjects is None or subject_slug(i.category) in subjects]
        return Page(items, page.count, page.total, page.skipped)

    return _page_through(db, key, report, cursor, fetch, progress)


def backfill_arxiv(
    db: Database,
    sources: Sources,
    categories: Iterable[str],
    start: dt.date,
    end: dt.date,
    *,
    page_size: int = 200,
    progress: Progress | None = None,
) -> BackfillReport:
    """Page the arXiv API's listing of the categories over the interval (newest first)."""
    cats = sorted(set(categories))
    key = cursor_key(f"arxiv/{'+'.join(cats)}", start, end)
    offset, total = _open_cursor(db, key)
    report = BackfillReport(f"arXiv {'+'.join(cats)}", start, end, total=total, resumed_at=offset)

    def fetch(position: int) -> Page:
        page = sources.arxiv.search_page(cats, start, end, position, page_size)
        return Page(page.items, page.count, page.total, page.warnings)

    return _page_through(db, key, report, offset, fetch, progress)


def run_plan(
    db: Database,
    sources: Sources,
    plan: Plan,
    start: dt.date,
    end: dt.date,
    progress_for: Callable[[str], Progress | None] | None = None,
) -> list[BackfillReport]:
    reports = []
    for server, subjects in plan.servers.items():
        bar = progress_for(server) if progress_for else None
        reports.append(backfill_server(db, sources, server, start, end, subjects=subjects, progress=bar))
    if plan.arxiv:
        bar = progress_for("arxiv") if progress_for else None
        reports.append(backfill_arxiv(db, sources, plan.arxiv, start, end, progress=bar))
    return reports


def reconcile(
    db: Database, settings: Settings, sources: Sources, days: int = RECONCILE_DAYS, today: dt.date | None = None
) -> list[BackfillReport]:
    """The scheduler's job: backfill the last few days of what the feeds follow, catching items
    that fell off a 30-item RSS feed. One source failing does not stop the others."""
    end = today or dt.date.today()
    start = end - dt.timedelta(days=days)
    plan = feed_plan(db, settings)
    reports: list[BackfillReport] = []
    jobs: list[tuple[str, Callable[[], BackfillReport]]] = [
        (server, lambda s=server, subj=subjects: backfill_server(db, sources, s, start, end, subjects=subj))
        for server, subjects in plan.servers.items()
    ]
    if plan.arxiv:
        jobs.append(("arxiv", lambda: backfill_arxiv(db, sources, plan.arxiv, start, end)))
    for name, job in jobs:
        try:
            reports.append(job())
        except Exception as exc:  # one API down must not stop the others; the cursor keeps the place
            log.warning("reconcile of %s failed: %s", name, exc)
            report = BackfillReport(name, start, end)
            report.skipped.append(f"failed: {exc}")
            reports.append(report)
    return reports


# --------------------------------------------------------------------------- one preprint


def fetch_preprint(session: Session, sources: Sources, query: str) -> Preprint:
    """Fetch a preprint that is not stored yet (bioRxiv/medRxiv DOI or arXiv id) and store it."""
    parsed = parse_preprint_id(query)
    if parsed is None:
        raise PreprintNotFound(f"{query!r} is neither a DOI (10.1101/2024.01.01.123456) nor an arXiv id (2405.01234)")
    kind, key = parsed
    if kind == "doi" and key.startswith("10.48550/arxiv."):
        kind, key = "arxiv", key.removeprefix("10.48550/arxiv.")
    if kind == "doi":
        if not key.startswith(BIORXIV_DOI_PREFIXES):
            raise PreprintNotFound(
                f"no stored preprint with id {key}, and only bioRxiv/medRxiv DOIs (10.1101/..., 10.64898/...) "
                "and arXiv ids can be fetched on demand"
            )
        item = sources.biorxiv.preprint(key)
        where = "bioRxiv or medRxiv"
    else:
        item = sources.arxiv.paper(key)
        where = "arXiv"
    if item is None:
        raise PreprintNotFound(f"no stored preprint with id {key}, and {where} does not know it: check the identifier")
    _new, _updated, skipped = store_api_items(session, [item])
    if skipped:
        log.warning("%s", skipped[0])
    if skipped:  # the same DOI is stored under the other server: that row is this preprint
        return session.scalar(select(Preprint).where(Preprint.doi == item.doi).limit(1))
    return session.scalar(
        select(Preprint).where(Preprint.server == item.server, Preprint.identifier == item.identifier)
    )


def stored_or_fetched(
    settings: Settings,
    db: Database,
    query: str,
    score: Callable[[], None],
    announce: Callable[[str], None] | None = None,
) -> Preprint:
    """A stored preprint, or one fetched from the bioRxiv/medRxiv or arXiv API, stored, then
    scored by `score()`: what `scout match DOI` and `/scout match DOI` both do.

    PreprintNotFound (said for a person) when it is not stored and cannot be fetched; an
    unreachable API costs at most SCOUT_MATCH_DEADLINE seconds.
    """
    from bot.ingest.http import SourceError
    from bot.ingest.polling import http_client
    from bot.scores.rankings import find_preprint

    with db.session() as session:
        try:
            return find_preprint(session, query)
        except PreprintNotFound:
            if parse_preprint_id(query) is None:
                raise
    if announce is not None:
        announce(f"{one_line(query)} is not stored yet: fetching it (at most {settings.match_deadline:g} s)…")
    try:
        with http_client(settings) as client, db.session() as session:
            deadline = settings.match_deadline
            sources = Sources.from_settings(settings, client, deadline=deadline, ends_at=time.monotonic() + deadline)
            preprint_id = fetch_preprint(session, sources, query).id
    except SourceError as exc:
        raise PreprintNotFound(f"no stored preprint with id {one_line(query)}, and fetching it failed: {exc}") from None
    score()
    with db.session() as session:
        return session.get(Preprint, preprint_id)


def reconcile_now(settings: Settings, db: Database, days: int = RECONCILE_DAYS) -> list[BackfillReport]:
    """`reconcile` with its own HTTP client: what the scheduler's reconcile job calls."""
    from bot.ingest.polling import http_client

    with http_client(settings) as client:
        return reconcile(db, settings, Sources.from_settings(settings, client), days)
