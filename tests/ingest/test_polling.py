"""Polling real feed bytes over loopback HTTP into the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from bot.config import load_settings
from bot.db import Feed, Preprint
from bot.ingest.feeds import FeedItem
from bot.ingest.polling import add_feed, find_feed, poll_all, store_items
from tests.loopback import LoopbackServer
from tests.paths import FIXTURES

FEEDS = FIXTURES / "feeds"
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}


@pytest.fixture
def settings(server):
    return load_settings(
        SCOUT_BIORXIV_RSS_URL=server.url,
        SCOUT_MEDRXIV_RSS_URL=server.url,
        SCOUT_ARXIV_RSS_URL=server.url,
        SCOUT_HTTP_TIMEOUT=1.0,
    )


def client(settings) -> httpx.Client:
    return httpx.Client(timeout=0.5, headers={"User-Agent": settings.user_agent})


def serve(server: LoopbackServer, path: str, fixture: str, **kw) -> None:
    server.route(path, body=(FEEDS / fixture).read_bytes(), headers=RSS, **kw)


def count(db, model=Preprint) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(model.id)))


def test_poll_stores_dedupes_and_records_health(db, server, settings):
    serve(server, "/biorxiv_xml.php", "biorxiv_neuroscience.rdf", etag='"v1"')
    serve(server, "/rss/cs.LG", "arxiv_cs_lg.rss")
    with db.session() as session:
        add_feed(session, "biorxiv:neuroscience", settings)
        add_feed(session, "arxiv:cs.LG", settings)
    with client(settings) as http:
        first = poll_all(db, settings, http)
        assert [r.ok for r in first.feeds] == [True, True]
        stored = count(db)
        assert stored == first.new > 0
        # Same bytes again: the ETag answers 304 for bioRxiv, and arXiv's repeats dedupe.
        second = poll_all(db, settings, http)
    assert second.feeds[0].not_modified
    assert second.new == 0 and count(db) == stored
    assert server.requests_to("/biorxiv_xml.php")[-1].headers["if-none-match"] == '"v1"'
    assert "PreprintScout" in server.requests_to("/rss/cs.LG")[0].headers["user-agent"]
    with db.session() as session:
        feeds = list(session.scalars(select(Feed).order_by(Feed.id)))
        assert all(f.last_success_at and f.last_error is None for f in feeds)
        assert sum(f.items_seen for f in feeds) == stored
        doi = session.scalar(select(Preprint).where(Preprint.doi == "10.64898/2026.05.02.601877"))
        assert doi is not None and doi.version == 2 and doi.server == "biorxiv"
        assert (
            "Okafor, C. N."
            in session.scalar(select(Preprint).where(Preprint.doi == "10.1101/2026.05.01.591234")).authors
        )


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ({"status": 500, "body": b"oops"}, "HTTP 500"),
        ({"body": (FEEDS / "malformed.xml").read_bytes(), "headers": RSS}, "malformed"),
        ({"body": (FEEDS / "not_a_feed.html").read_bytes(), "headers": {"Content-Type": "text/html"}}, "not a feed"),
        ({"body": b"", "headers": RSS, "delay": 1.5}, "timed out"),
    ],
    ids=["500", "malformed", "html", "timeout"],
)
def test_one_bad_feed_never_stops_the_others(db, server, settings, route, error):
    server.route("/broken", **route)
    serve(server, "/biorxiv_xml.php", "biorxiv_neuroscience.rdf")
    with db.session() as session:
        add_feed(session, f"{server.url}/broken", settings, name="broken")
        add_feed(session, "biorxiv:neuroscience", settings)
    steps: dict[str, list[int]] = {}

    def step(name: str, total: int):
        steps[name] = [0, total]
        return lambda n: steps[name].__setitem__(0, steps[name][0] + n)

    with client(settings) as http:
        report = poll_all(db, settings, http, progress=step)
    assert steps == {"fetching feeds": [2, 2]}  # a failed feed is counted off too
    bad, good = report.feeds
    assert not bad.ok and error in bad.error
    assert good.ok and good.new > 0
    with db.session() as session:
        broken = find_feed(session, "broken")
        assert error in broken.last_error
        assert broken.consecutive_failures == 1 and broken.last_success_at is None


def test_empty_feed_is_healthy_with_a_warning(db, server, settings):
    serve(server, "/biorxiv_xml.php", "biorxiv_empty.rdf")
    with db.session() as session:
        add_feed(session, "biorxiv:paleontology", settings)  # a quiet subject: bioRxiv answers 200, no items
    with client(settings) as http:
        report = poll_all(db, settings, http)
    assert report.feeds[0].ok and report.new == 0 and report.feeds[0].warnings


def item(version: int | None, abstract: str = "Original abstract text.") -> FeedItem:
    return FeedItem(
        server="biorxiv",
        identifier="10.1101/2026.01.01.000001",
        version=version,
        title="A title",
        abstract=abstract,
        authors=("Doe, J.",),
        category="genomics",
        posted=None,
        url="https://www.biorxiv.org/content/10.1101/2026.01.01.000001v1",
        doi="10.1101/2026.01.01.000001",
        announce_type=None,
    )


def test_new_version_updates_the_row_and_old_versions_do_not(db):
    with db.session() as session:
        assert store_items(session, None, [item(1)]) == (1, 0)
        assert store_items(session, None, [item(2, "Revised abstract.")]) == (0, 1)
        assert store_items(session, None, [item(1)]) == (0, 0)
        row = session.scalar(select(Preprint))
        assert (row.version, row.abstract) == (2, "Revised abstract.")
    assert count(db) == 1


def test_each_feed_is_polled_on_its_own_interval(db, settings):
    from datetime import UTC, datetime, timedelta

    from bot.ingest.polling import due_feed_ids

    now = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    with db.session() as session:
        fast = add_feed(session, "biorxiv:genomics", settings, every_minutes=10)
        slow = add_feed(session, "biorxiv:zoology", settings)
        assert add_feed(session, "biorxiv:zoology", settings, every_minutes=120).poll_minutes == 120
        fresh = add_feed(session, "biorxiv:ecology", settings)
        fast.last_polled_at = slow.last_polled_at = now - timedelta(minutes=45)
        session.flush()
        assert due_feed_ids(session, now, default_minutes=30) == [fast.id, fresh.id]
        assert due_feed_ids(session, now + timedelta(hours=2), default_minutes=30) == [fast.id, slow.id, fresh.id]


def test_feed_shortcuts_and_removal(db, settings):
    with db.session() as session:
        feed = add_feed(session, "medrxiv:epidemiology", settings)
        assert feed.url.endswith("/medrxiv_xml.php?subject=epidemiology")
        assert add_feed(session, "medrxiv:epidemiology", settings).id == feed.id
        assert find_feed(session, str(feed.id)) is feed
        with pytest.raises(ValueError):
            add_feed(session, "notaserver:thing", settings)
