"""A corpus of small feed files written to the patterns of real ones (RSS 0.9x/1.0/2.0, Atom
0.3/1.0, bioRxiv/medRxiv RDF, arXiv RSS/Atom; CDATA, entities, declared and undeclared
encodings, BOMs, missing fields, truncation, pages that are not feeds). Every file parses
without a crash; every non-feed gets one clear line; every feed's items store on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.db import Preprint
from bot.ingest.feeds import FeedError, parse_feed
from bot.ingest.polling import store_items
from tests.paths import FIXTURES

CORPUS = FIXTURES / "feeds"
FILES = sorted(p for p in CORPUS.rglob("*") if p.is_file())
HOSTS = {"biorxiv": "connect.biorxiv.org", "medrxiv": "connect.medrxiv.org", "arxiv": "rss.arxiv.org"}


def feed_url(path: Path) -> str:
    host = next((h for prefix, h in HOSTS.items() if path.name.startswith(prefix)), "feeds.example.org")
    return f"https://{host}/{path.name}"


def is_non_feed(path: Path) -> bool:
    return path.name.startswith("bad_") or path.name in ("not_a_feed.html", "malformed.xml")


def test_the_corpus_is_large_enough():
    # Feeds, not counting the pages that are not feeds (each must fail in one line).
    assert len([p for p in FILES if not is_non_feed(p)]) >= 50


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_parses_or_says_in_one_line_why_not(path: Path):
    content = path.read_bytes()
    if is_non_feed(path):
        with pytest.raises(FeedError) as caught:
            parse_feed(content, feed_url(path))
        assert "\n" not in str(caught.value) and str(caught.value)
        return
    parsed = parse_feed(content, feed_url(path))
    assert parsed.title and all("\n" not in w for w in parsed.warnings)
    if "empty" not in path.name:
        assert parsed.items, parsed.warnings
    for item in parsed.items:
        assert item.identifier and (item.title or item.abstract)
        text = item.title + item.abstract + item.url + item.identifier
        assert not any(c in text for c in "\x00\x1b\x07\u202e")


def test_every_feed_in_the_corpus_stores_on_both_databases(db):
    total = 0
    with db.session() as session:
        for path in FILES:
            if is_non_feed(path):
                continue
            parsed = parse_feed(path.read_bytes(), feed_url(path))
            warnings: list[str] = []
            new, _updated = store_items(session, None, parsed.items, warnings)
            assert not warnings, (path.name, warnings)
            total += new
        stored = session.scalar(select(func.count(Preprint.id)))
    assert stored == total and total > 100
