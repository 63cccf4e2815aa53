"""OpenAlex: a journal's recent works with abstracts, by ISSN.

    GET /works?filter=primary_location.source.issn:1234-5678,has_abstract:true,type:article
              &sort=publication_date:desc&per-page=100&cursor=*&mailto=...

Answers {"meta": {"count", "next_cursor", ...}, "results": [...]}; a work has "doi"
("https://doi.org/..."), "title" / "display_name", "publication_year", "language",
"primary_location": {"source": {"display_name", "issn", ...}} and the abstract only as
"abstract_inverted_index" ({"word": [positions]}), which we turn back into text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from bot.ingest.feeds import _normalise_doi
from bot.profiles.catalog import PaperRecord
from bot.ingest.crossref import WorksPage, cursor_pages
from bot.ingest.http import PoliteHTTP, SourceError
from bot.ingest.records import as_int, clean, present, strip_abstract_heading

PAGE_SIZE = 100


def abstract_from_inverted_index(index: Any) -> str:
    """{"Cells": [0], "divide": [1, 4]} -> "Cells divide ... divide"; positions may have gaps."""
    if not isinstance(index, Mapping):
        return ""
    placed: dict[int, str] = {}
    for word, positions in index.items():
        if not isinstance(positions, list):
            continue
        for position in positions:
            if isinstance(position, int) and position >= 0:
                placed[position] = str(word)
    return " ".join(placed[i] for i in sorted(placed))


def work_to_paper(work: Mapping[str, Any]) -> tuple[PaperRecord, str | None]:
    location = work.get("primary_location") if isinstance(work.get("primary_location"), Mapping) else {}
    source = location.get("source") if isinstance(location.get("source"), Mapping) else {}
    paper = PaperRecord(
        title=clean(work.get("title") or work.get("display_name")),
        abstract=strip_abstract_heading(clean(abstract_from_inverted_index(work.get("abstract_inverted_index")))),
        doi=_normalise_doi(present(work.get("doi"))),
        year=as_int(work.get("publication_year")),
        journal=clean(source.get("display_name")) or None,
    )
    return paper, present(work.get("language"))


def parse_works(data: Any) -> WorksPage:
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        message = data.get("message") or data.get("error") if isinstance(data, Mapping) else None
        raise SourceError(f"OpenAlex: unexpected answer{f': {message}' if message else ''}")
    meta = data.get("meta") if isinstance(data.get("meta"), Mapping) else {}
    works = [w for w in data["results"] if isinstance(w, Mapping)]
    papers = [work_to_paper(w) for w in works]
    journals = sorted({p.journal for p, _ in papers if p.journal})
    total = as_int(meta.get("count"))
    return WorksPage(papers, len(works), total if total is not None else len(works), meta.get("next_cursor"), journals)


class OpenAlexAPI:
    def __init__(self, http: PoliteHTTP, mailto: str = "") -> None:
        self.http = http
        self.mailto = mailto

    def pages(self, issn: str, per_page: int = PAGE_SIZE) -> Iterator[WorksPage]:
        params = {
            "filter": f"primary_location.source.issn:{issn},has_abstract:true",
            "sort": "publication_date:desc",
            "per-page": per_page,
        }
        return cursor_pages(self.http, params, self.mailto, parse_works)
