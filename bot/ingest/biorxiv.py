"""The bioRxiv/medRxiv API (api.biorxiv.org): `/details` for preprints, `/pubs` for the journals
they were later published in.

    /details/{server}/{from}/{to}/{cursor}   100 records a page; messages[0].total (sometimes a string)
    /details/{server}/{doi}                  every version of one preprint
    /pubs/{server}/{from}/{to}/{cursor}      preprint -> published article, with published_journal

Empty fields come as "NA". An interval with nothing in it answers `messages[0].status`
"no posts found" and an empty collection. The parsers are pure; `BiorxivAPI` does the HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.ingest.feeds import MAX_CATEGORY, FeedItem, _normalise_doi, parse_authors
from bot.ingest.http import PoliteHTTP, SourceError
from bot.ingest.identifiers import MAX_DOI
from bot.ingest.records import as_int, clean, parse_date, present

SERVERS = ("biorxiv", "medrxiv")
PAGE_SIZE = 100
_SMALL_WORDS = frozenset({"and", "of", "the", "in", "for", "to", "on", "a"})


@dataclass(frozen=True)
class DetailsPage:
    items: list[FeedItem]
    count: int  # records on this page (before dropping unusable ones): advances the cursor
    total: int
    skipped: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Publication:
    """One /pubs record: a preprint and the journal article it became."""

    preprint_doi: str
    server: str
    published_doi: str | None
    journal: str
    title: str
    abstract: str
    category: str | None
    preprint_date: dt.date | None
    published_date: dt.date | None


@dataclass(frozen=True)
class PubsPage:
    records: list[Publication]
    count: int
    total: int


# --------------------------------------------------------------------------- parsing (pure)


def _status(data: Any) -> tuple[str, Mapping[str, Any]]:
    if not isinstance(data, Mapping):
        raise SourceError("bioRxiv API: unexpected answer (not a JSON object)")
    messages = data.get("messages")
    message = messages[0] if isinstance(messages, list) and messages and isinstance(messages[0], Mapping) else {}
    return str(message.get("status") or "").strip(), message


def _collection(data: Mapping[str, Any], what: str) -> tuple[list[Mapping[str, Any]], int]:
    status, message = _status(data)
    collection = data.get("collection")
    if not isinstance(collection, list):
        collection = []
    if status.lower() != "ok":
        if not collection and (not status or "no posts found" in status.lower()):
            return [], 0
        raise SourceError(f"bioRxiv API ({what}): {status or 'no status'}")
    total = as_int(message.get("total"))
    if total is None:
        total = as_int(message.get("count")) or len(collection)
    return [r for r in collection if isinstance(r, Mapping)], total


def category_label(value: object) -> str | None:
    """API categories are lower case ("animal behavior and cognition"); the RSS feeds title-case them."""
    text = clean(value)
    if not text:
        return None
    words = text.split()
    return " ".join(
        w if (i and w.lower() in _SMALL_WORDS) or any(c.isupper() for c in w) else w[:1].upper() + w[1:]
        for i, w in enumerate(words)
    )


def preprint_url(server: str, doi: str, version: int | None) -> str:
    return f"https://www.{server}.org/content/{doi}" + (f"v{version}" if version else "")


def record_to_item(record: Mapping[str, Any], server: str) -> FeedItem | None:
    """One /details record as the poller's FeedItem (same cleaning as the RSS path); None if unusable."""
    doi = _normalise_doi(present(record.get("doi")))
    title = clean(record.get("title"))
    abstract = clean(record.get("abstract"))
    if not doi or len(doi) > MAX_DOI or not (title or abstract):
        return None  # a "DOI" longer than any real one is junk, on every database alike
    own = (present(record.get("server")) or server).lower()
    server = own if own in SERVERS else server
    version = as_int(record.get("version"))
    return FeedItem(
        server=server,
        identifier=doi,
        version=version,
        title=title or abstract[:120],
        abstract=abstract,
        authors=parse_authors(present(record.get("authors")), server),
        category=(category_label(record.get("category")) or "")[:MAX_CATEGORY] or None,
        posted=parse_date(record.get("date")),
        url=preprint_url(server, doi, version),
        doi=doi,
        announce_type=None,
    )


def parse_details(data: Any, server: str) -> DetailsPage:
    """A /details page (interval or DOI): items with one per preprint (its highest version)."""
    records, total = _collection(data, f"details/{server}")
    kept: dict[str, FeedItem] = {}
    skipped = []
    for number, record in enumerate(records, start=1):
        item = record_to_item(record, server)
        if item is None:
            doi = present(record.get("doi")) or f"record {number}"
            skipped.append(f"{doi}: no DOI, or neither title nor abstract")
            continue
        previous = kept.get(item.identifier)
        if previous is None or (item.version or 0) >= (previous.version or 0):
            kept[item.identifier] = item
    return DetailsPage(list(kept.values()), len(records), total, skipped)


def parse_pubs(data: Any, server: str) -> PubsPage:
    records, total = _collection(data, f"pubs/{server}")
    out = []
    for record in records:
        doi = _normalise_doi(present(record.get("preprint_doi")) or present(record.get("biorxiv_doi")))
        journal = clean(record.get("published_journal"))
        if not doi or not journal:
            continue
        platform = (present(record.get("preprint_platform")) or server).lower()
        out.append(
            Publication(
                preprint_doi=doi,
                server=platform if platform in SERVERS else server,
                published_doi=_normalise_doi(present(record.get("published_doi"))),
                journal=journal,
                title=clean(record.get("preprint_title")),
                abstract=clean(record.get("preprint_abstract")),
                category=category_label(record.get("preprint_category")),
                preprint_date=parse_date(record.get("preprint_date")),
                published_date=parse_date(record.get("published_date")),
            )
        )
    return PubsPage(out, len(records), total)


# --------------------------------------------------------------------------- HTTP (shell)


class BiorxivAPI:
    def __init__(self, http: PoliteHTTP) -> None:
        self.http = http

    def details_page(self, server: str, start: dt.date, end: dt.date, cursor: int = 0) -> DetailsPage:
        _check_server(server)
        data = self.http.get_json(f"details/{server}/{start.isoformat()}/{end.isoformat()}/{cursor}")
        return parse_details(data, server)

    def pubs_page(self, server: str, start: dt.date, end: dt.date, cursor: int = 0) -> PubsPage:
        _check_server(server)
        data = self.http.get_json(f"pubs/{server}/{start.isoformat()}/{end.isoformat()}/{cursor}")
        return parse_pubs(data, server)

    def preprint(self, doi: str, servers: tuple[str, ...] = SERVERS) -> FeedItem | None:
        """The newest version of one preprint by DOI, looked up on each server in turn."""
        for server in servers:
            _check_server(server)
            response = self.http.get(f"details/{server}/{doi}", ok=(200, 404))
            if response.status_code == 404:
                continue
            page = parse_details(_json(response), server)
            if page.items:
                return max(page.items, key=lambda item: item.version or 0)
        return None


def _json(response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise SourceError(f"bioRxiv API: {response.url} did not answer JSON") from None


def _check_server(server: str) -> None:
    if server not in SERVERS:
        raise SourceError(f"unknown server {server!r}: use biorxiv or medrxiv")
