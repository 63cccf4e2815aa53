"""Crossref REST API: a journal's recent articles with abstracts, by ISSN.

    GET /works?filter=issn:1234-5678,has-abstract:true,type:journal-article
              &sort=published&order=desc&rows=100&cursor=*&mailto=...

Answers {"status": "ok", "message": {"total-results", "items": [...], "next-cursor"}}; each item
has "DOI", "title": [...], "container-title": [...], "abstract" (JATS XML, e.g.
"<jats:p>...</jats:p>"), "published": {"date-parts": [[2024, 3, 1]]}, "language".
The mailto parameter (and the User-Agent) puts us in Crossref's polite pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.ingest.feeds import _normalise_doi
from bot.profiles.catalog import PaperRecord
from bot.ingest.http import PoliteHTTP, SourceError
from bot.ingest.records import clean, present, strip_abstract_heading

PAGE_SIZE = 100


@dataclass(frozen=True)
class WorksPage:
    papers: list[tuple[PaperRecord, str | None]]  # (paper, declared language)
    count: int
    total: int
    next_cursor: str | None
    journals: list[str]


def _first(value: Any) -> str:
    if isinstance(value, list):
        value = next((v for v in value if present(v)), None)
    return clean(value)


def _year(item: Mapping[str, Any]) -> int | None:
    for key in ("published", "published-print", "published-online", "issued", "created"):
        parts = (item.get(key) or {}).get("date-parts") if isinstance(item.get(key), Mapping) else None
        if isinstance(parts, list) and parts and isinstance(parts[0], list) and parts[0]:
            try:
                return int(parts[0][0])
            except (TypeError, ValueError):
                continue
    return None


def work_to_paper(item: Mapping[str, Any]) -> tuple[PaperRecord, str | None]:
    journal = _first(item.get("container-title")) or None
    paper = PaperRecord(
        title=_first(item.get("title")),
        abstract=strip_abstract_heading(clean(item.get("abstract"))),
        doi=_normalise_doi(present(item.get("DOI"))),
        year=_year(item),
        journal=journal,
    )
    return paper, present(item.get("language"))


def parse_works(data: Any) -> WorksPage:
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise SourceError("Crossref: unexpected answer (no 'message' object)")
    if str(data.get("status", "ok")).lower() != "ok":
        raise SourceError(f"Crossref: {data.get('message')}")
    message = data["message"]
    items = [i for i in message.get("items") or [] if isinstance(i, Mapping)]
    papers = [work_to_paper(item) for item in items]
    journals = sorted({p.journal for p, _ in papers if p.journal})
    total = message.get("total-results")
    return WorksPage(
        papers, len(items), int(total) if isinstance(total, int) else len(items), message.get("next-cursor"), journals
    )


def cursor_pages(
    http: PoliteHTTP, params: dict[str, Any], mailto: str, parse: Callable[[Any], WorksPage]
) -> Iterator[WorksPage]:
    """Deep paging with a `cursor`, as Crossref and OpenAlex both do it, until a page
    comes back empty or the cursor stops moving."""
    cursor = "*"
    while True:
        query = {**params, "cursor": cursor, **({"mailto": mailto} if mailto else {})}
        page = parse(http.get_json("works", query))
        yield page
        if not page.count or not page.next_cursor or page.next_cursor == cursor:
            return
        cursor = page.next_cursor


class CrossrefAPI:
    def __init__(self, http: PoliteHTTP, mailto: str = "") -> None:
        self.http = http
        self.mailto = mailto

    def pages(self, issn: str, rows: int = PAGE_SIZE) -> Iterator[WorksPage]:
        """Pages of the journal's articles with abstracts, newest first, until the caller stops."""
        params = {
            "filter": f"issn:{issn},has-abstract:true,type:journal-article",
            "sort": "published",
            "order": "desc",
            "rows": rows,
        }
        return cursor_pages(self.http, params, self.mailto, parse_works)
