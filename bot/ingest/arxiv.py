"""The arXiv API (export.arxiv.org/api/query): Atom 1.0 with OpenSearch totals.

    /api/query?search_query=(cat:cs.LG OR cat:stat.ML) AND submittedDate:[202601010000 TO 202603312359]
              &sortBy=submittedDate&sortOrder=descending&start=0&max_results=200
    /api/query?id_list=2405.01234

Entries carry <id>http://arxiv.org/abs/2405.01234v2</id>, title, summary, author/name,
published, <category term=...>, arxiv:primary_category, arxiv:doi. A malformed query answers
200 with one entry whose id is http://arxiv.org/api/errors#... and whose summary says why.
arXiv asks for one request every three seconds.

Entries are parsed by `bot.ingest.feeds.parse_feed`, the same code as the arXiv RSS feeds, so an
item looks the same whichever path stored it.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from bot.ingest.feeds import FeedError, FeedItem, parse_feed
from bot.ingest.http import PoliteHTTP, SourceError

PAGE_SIZE = 200
_ATOM = "{http://www.w3.org/2005/Atom}"
_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
# parse_feed decides the server from the URL; the API's host says arXiv wherever tests serve it from.
_CANONICAL = "https://export.arxiv.org/api/query"


@dataclass(frozen=True)
class ArxivPage:
    items: list[FeedItem]
    count: int
    total: int
    warnings: list[str] = field(default_factory=list)


def parse_arxiv_api(content: bytes) -> ArxivPage:
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise SourceError(f"arXiv API: malformed XML ({exc})") from None
    entries = root.findall(f"{_ATOM}entry")
    for entry in entries:
        entry_id = (entry.findtext(f"{_ATOM}id") or "").strip()
        if "/api/errors" in entry_id:
            reason = " ".join((entry.findtext(f"{_ATOM}summary") or "unknown error").split())
            raise SourceError(f"arXiv API: {reason}")
    total_text = (root.findtext(f"{_OPENSEARCH}totalResults") or "").strip()
    total = int(total_text) if total_text.isdigit() else len(entries)
    if not entries:
        return ArxivPage([], 0, total)
    try:
        parsed = parse_feed(content, _CANONICAL, "application/atom+xml")
    except FeedError as exc:
        raise SourceError(f"arXiv API: {exc}") from None
    items = [item for item in parsed.items if item.server == "arxiv"]
    return ArxivPage(items, len(entries), total, list(parsed.warnings))


def search_query(categories: list[str], start: dt.date, end: dt.date) -> str:
    cats = " OR ".join(f"cat:{c}" for c in categories)
    cats = f"({cats})" if len(categories) > 1 else cats
    return f"{cats} AND submittedDate:[{start:%Y%m%d}0000 TO {end:%Y%m%d}2359]"


class ArxivAPI:
    def __init__(self, http: PoliteHTTP) -> None:
        self.http = http

    def _query(self, params: dict) -> ArxivPage:
        response = self.http.get("api/query", params, accept="application/atom+xml")
        return parse_arxiv_api(response.content)

    def search_page(
        self, categories: list[str], start: dt.date, end: dt.date, offset: int = 0, size: int = PAGE_SIZE
    ) -> ArxivPage:
        return self._query(
            {
                "search_query": search_query(categories, start, end),
                "sortBy": "submittedDate",
                "sortOrder": "descending",
                "start": offset,
                "max_results": size,
            }
        )

    def paper(self, arxiv_id: str) -> FeedItem | None:
        page = self._query({"id_list": arxiv_id, "max_results": 1})
        return page.items[0] if page.items else None
