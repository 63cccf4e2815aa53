"""Fuzz: feeds built from hostile pieces (long fields, NUL and control characters, bidi
overrides, markup in text, missing links, bad dates, odd encodings), polled into SQLite and
PostgreSQL. No exception escapes, every good item is stored, every bad one is reported."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.config import load_settings
from bot.db import Feed, Preprint
from bot.ingest.polling import add_feed, poll_all
from tests.hostile import RSS_HEADERS, Item, rss, text

# Pieces as XML fragments: character references reach the parser as the characters themselves.
HOSTILE_TEXT = [
    "plain words",
    "a NUL&#0; inside",
    "controls &#1;&#7;&#27;[31mred&#27;[0m &#127;&#155;",
    "bidi &#x202E;gnp.exe&#x202C; and &#x2066;isolate&#x2069;",
    "[/] [bold]markup[/bold] [link=http://x]y[/link]",
    "&lt;script&gt;alert(1)&lt;/script&gt; &lt;i&gt;in&lt;/i&gt;",
    "<![CDATA[cdata <b>bold</b> & raw]]>",
    "entities &amp;amp; &amp;lt; &#x1F600; &#xFEFF;",
    "x" * 6000,
    "emoji 🧬 and accents é ü ñ and CJK 神经",
    "   \t  ",
]
LINKS = [
    None,
    "https://example.org/{key}",
    "https://example.org/{key}?" + "utm_x=1&amp;" * 400,
    "https://example.org/{key}/a&#0;b",
    "https://example.org/{key} with spaces",
    "javascript:alert('{key}')",
]
GUIDS = [None, "urn:{key}", "urn:{key}:" + "g" * 3000, "urn:{key}&#0;&#27;", "10.1101/{key}"]
DATES = [None, "Mon, 04 May 2026 10:00:00 GMT", "1 Jan 2099", "not a date", "2026-13-45", "Tue, 31 Feb 2026"]
ENCODINGS = ["utf-8", "iso-8859-1", "utf-16", "utf-8-bom", "utf-8-declared-latin-1-bytes"]


@st.composite
def hostile_item(draw, index: int, token: str) -> tuple[Item, bool]:
    """One item and whether it is good (a title or an abstract that survives cleaning)."""
    key = f"{token}-{index}"
    has_title = draw(st.booleans())
    has_abstract = draw(st.booleans())
    title = f"Item {key} {draw(st.sampled_from(HOSTILE_TEXT))}" if has_title else draw(st.sampled_from([None, ""]))
    abstract = f"Abstract {key} {draw(st.sampled_from(HOSTILE_TEXT))}" if has_abstract else None
    link = draw(st.sampled_from(LINKS))
    guid = draw(st.sampled_from(GUIDS))
    return (
        Item(
            title=title,
            description=abstract,
            link=link.format(key=key) if link else None,
            guid=guid.format(key=key) if guid else None,
            pub_date=draw(st.sampled_from(DATES)),
        ),
        has_title or has_abstract,
    )


@st.composite
def hostile_feed(draw) -> tuple[bytes, list[bool]]:
    token = uuid.uuid4().hex[:10]
    size = draw(st.integers(min_value=1, max_value=8))
    pairs = [draw(hostile_item(i, token)) for i in range(size)]
    encoding = draw(st.sampled_from(ENCODINGS))
    title = text(draw(st.sampled_from(["Feed", "[/] feed", "Feed &#27;]0;x&#7;"])))
    items = [item for item, _ in pairs]
    if encoding == "utf-8-bom":
        body = b"\xef\xbb\xbf" + rss(items, title)
    elif encoding == "utf-8-declared-latin-1-bytes":
        body = rss(items, title).decode("utf-8").encode("latin-1", errors="replace")
    elif encoding == "utf-16":
        body = rss(items, title).decode("utf-8").replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    else:
        body = rss(items, title, encoding=encoding)
    return body, [good for _, good in pairs]


@pytest.fixture
def feed_settings(server):
    return load_settings(http_timeout=5, feed_deadline=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(feed=hostile_feed())
def test_hostile_feeds_keep_every_good_item_and_report_every_bad_one(db, server, feed_settings, feed):
    body, good = feed
    path = f"/{uuid.uuid4().hex}.rss"
    server.route(path, body=body, headers=RSS_HEADERS)
    with db.session() as session:
        feed_id = add_feed(session, server.url + path, feed_settings).id
    report = poll_all(db, feed_settings, feed_ids=[feed_id])
    result = report.feeds[0]
    assert result.ok, result.error
    with db.session() as session:
        stored = session.scalar(select(func.count(Preprint.id)).where(Preprint.feed_id == feed_id))
        health = session.get(Feed, feed_id)
    assert stored == sum(good) == result.new
    assert health.last_error is None
    for number, ok in enumerate(good, start=1):
        if not ok:
            assert any(w.startswith(f"skipped entry {number}") for w in result.warnings), result.warnings
