"""Feeds out: a profile's ranking as Atom, read back by feedparser, and as `scout rank --json`."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

import feedparser
from sqlalchemy import select

from bot.db import Database, Preprint
from tests.fake_slack import seed_catalog
from tests.web.test_pages import PROFILES, client, preprints

ATOM = "{http://www.w3.org/2005/Atom}"
DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def rfc4287_problems(body: bytes) -> list[str]:
    """What RFC 4287 requires of a feed and its entries that a lenient reader forgives."""
    feed = ET.fromstring(body)
    problems = [] if feed.tag == f"{ATOM}feed" else ["the root is not atom:feed"]
    has_author = feed.find(f"{ATOM}author") is not None
    for where, element, needed in [("feed", feed, ("id", "title", "updated"))] + [
        (f"entry {i}", e, ("id", "title", "updated")) for i, e in enumerate(feed.findall(f"{ATOM}entry"))
    ]:
        problems += [
            f"{where} has {len(element.findall(ATOM + n))} {n}" for n in needed if len(element.findall(ATOM + n)) != 1
        ]
        for stamp in element.findall(f"{ATOM}updated") + element.findall(f"{ATOM}published"):
            if not DATE.match(stamp.text or ""):
                problems.append(f"{where}: {stamp.text!r} is no RFC 3339 date")
        if where != "feed" and not has_author and element.find(f"{ATOM}author") is None:
            problems.append(f"{where} has no author")
        if (
            where != "feed"
            and element.find(f"{ATOM}content") is None
            and element.find(f"{ATOM}link[@rel='alternate']") is None
        ):
            problems.append(f"{where} has neither content nor an alternate link")
    return problems


def linear(p: int, q: int) -> float:
    """Preprint q scores 0.30 - 0.01 q for every profile: its rank is q + 1."""
    return round(0.30 - 0.01 * q, 4)


def test_the_atom_feed_holds_what_passes_the_threshold_and_parses_cleanly(db: Database):
    seed_catalog(db, PROFILES, preprints(40), linear)
    web = client(db, SCOUT_BASE_URL="https://scout.example.org")
    response = web.get("/profiles/plos-genetics.atom?min=25%")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert rfc4287_problems(response.content) == []
    assert feed.version == "atom10"
    assert [e.title for e in feed.entries] == [f"Synaptic plasticity study {q}" for q in range(6)]  # 0.30 to 0.25
    first = feed.entries[0]
    assert first.link.startswith("https://www.biorxiv.org/content/10.1101/")
    related = [link.href for link in first.links if link.rel == "related"]
    assert related == ["https://scout.example.org/preprints/10.1101/2026.01.00.100000"]
    assert [a.name for a in first.authors] == ["Doe, J.", "Roe, R."]
    assert "match 30.0%" in first.summary
    posted = date.today() - timedelta(days=1)
    assert first.published_parsed[:3] == (posted.year, posted.month, posted.day)
    with db.session() as session:
        stored = session.scalar(select(Preprint.updated_at).where(Preprint.identifier.endswith("100000")))
    updated = datetime(*first.updated_parsed[:6], tzinfo=UTC)
    assert abs(updated - (stored if stored.tzinfo else stored.replace(tzinfo=UTC))) < timedelta(seconds=1)
    links = {link.rel: link.href for link in feed.feed.links}
    assert links["self"] == "https://scout.example.org/profiles/plos-genetics.atom?min=25%25"
    assert links["alternate"] == "https://scout.example.org/profiles/plos-genetics"


def test_entry_ids_are_stable_and_distinct_per_profile(db: Database):
    seed_catalog(db, PROFILES, preprints(30), linear)
    web = client(db)
    first = feedparser.parse(web.get("/profiles/plos-genetics.atom?top=10%").content)
    again = feedparser.parse(web.get("/profiles/plos-genetics.atom?top=10%").content)
    other = feedparser.parse(web.get("/profiles/neural-networks.atom?top=10%").content)
    ids = [e.id for e in first.entries]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert ids == [e.id for e in again.entries]
    assert not set(ids) & {e.id for e in other.entries}
    assert all(i.startswith("tag:") for i in ids)


def test_a_feed_without_a_threshold_is_the_top_1_percent(db: Database):
    seed_catalog(db, PROFILES, preprints(150), linear)
    body = client(db).get("/profiles/plos-genetics.atom").content
    feed = feedparser.parse(body)
    assert not feed.bozo and rfc4287_problems(body) == []
    assert [e.title for e in feed.entries] == ["Synaptic plasticity study 0"]


def test_a_bad_threshold_gets_a_400_saying_what_works(db: Database):
    seed_catalog(db, PROFILES, preprints(3), linear)
    web = client(db)
    for query, words in [
        ("top=200%", "between 0% and 100%"),
        ("min=abc", "is not a threshold"),
        ("top=1%&min=5%", "give one of top, min or lift"),
        ("lift=5%", "lift is a multiple"),
        ("top=", "needs a value"),
    ]:
        page = web.get(f"/profiles/plos-genetics.atom?{query}")
        assert page.status_code == 400, query
        assert words in page.text, query
    assert web.get("/profiles/no-such-journal.atom").status_code == 404


def test_the_json_feed_has_the_fields_of_scout_rank_json(db: Database, scout):
    seed_catalog(db, PROFILES, preprints(5), linear)
    from_cli = json.loads(scout("rank", "PLOS Genetics", "--json", "--top", "3").stdout)
    response = client(db).get("/profiles/plos-genetics.json?top=3")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == from_cli
    assert client(db).get("/profiles/plos-genetics.json?top=0").status_code == 400
