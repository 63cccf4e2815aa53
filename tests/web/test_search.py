"""Search over profiles and preprints (FTS5 / tsvector, migration 0012) and the custom feed."""

from __future__ import annotations

import json
import re
from html import unescape

import feedparser
from sqlalchemy import delete, select, update

from bot.db import Database, Preprint
from bot.fulltext import matching_ids
from tests.fake_slack import seed_catalog
from tests.web.test_feeds import rfc4287_problems
from tests.web.test_pages import PROFILES, client, score_of

SPECS = [
    {
        "title": "Dopamine neurons in the mouse striatum",
        "abstract": "Recordings of reward.",
        "category": "neuroscience",
    },
    {"title": "A genome of the axolotl", "abstract": "Limb regeneration genes.", "authors": ["Tanaka, E."]},
    {"title": "Cortical waves", "abstract": "Dopamine release in sleeping mice.", "category": "Neuroscience"},
    {"title": 'Quoting "NEAR" * and: syntax', "abstract": "Nothing special here.", "category": "bioinformatics"},
]


def titles(html: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<span class="paper-title"><a href="[^"]+">([^<]+)</a>', html)]


def test_search_finds_preprints_by_words_author_and_doi_and_profiles_by_name(db: Database):
    seed_catalog(db, PROFILES, SPECS, score_of)
    web = client(db)
    assert sorted(titles(web.get("/search?q=dopamine").text)) == sorted([SPECS[0]["title"], SPECS[2]["title"]])
    assert titles(web.get("/search?q=dopamine+striatum").text) == [SPECS[0]["title"]]  # every word
    assert titles(web.get("/search?q=tanaka").text) == [SPECS[1]["title"]]
    assert titles(web.get("/search?q=10.1101/2026.01.03.100003").text) == [SPECS[3]["title"]]
    assert titles(web.get('/search?q="NEAR" *').text) == [SPECS[3]["title"]]  # query syntax is only text
    page = web.get("/search?q=plos")
    assert '<a href="/profiles/plos-genetics">PLOS Genetics</a>' in page.text and titles(page.text) == []
    assert web.get("/search?q=" + "x" * 201).status_code == 400
    assert web.get("/search").status_code == 200 and '<input type="search"' in web.get("/").text


def test_the_index_follows_every_change_to_a_preprint(db: Database):
    ids = seed_catalog(db, PROFILES, SPECS, score_of)["preprints"]
    with db.session() as session:
        assert matching_ids(session, "axolotl") == [ids[1]]
        session.execute(update(Preprint).where(Preprint.id == ids[1]).values(title="A genome of the newt"))
    with db.session() as session:
        assert matching_ids(session, "axolotl") == [] and matching_ids(session, "newt") == [ids[1]]
        session.execute(delete(Preprint).where(Preprint.id == ids[1]))
    with db.session() as session:
        assert matching_ids(session, "newt") == []
        assert session.scalar(select(Preprint.id).where(Preprint.id == ids[0])) == ids[0]


def test_the_custom_feed_puts_each_preprint_under_its_best_profile_and_filters(db: Database):
    # profile 0 likes preprints 0 and 1, profile 1 likes 2 and 3; profile 2 likes none.
    seed_catalog(
        db, PROFILES, SPECS, lambda p, q: {(0, 0): 0.6, (0, 1): 0.5, (1, 2): 0.4, (1, 3): 0.3}.get((p, q), 0.01)
    )
    web = client(db)
    page = web.get("/feed?p=neural-networks&p=plos-genetics")
    assert page.status_code == 200
    cards = [
        " ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split())
        for c in re.findall(r'<li class="card".*?</article>', page.text, re.S)
    ]
    assert [c.split(" Fits best: ")[1].split(" Top")[0] for c in cards] == [
        "Neural Networks",
        "Neural Networks",
        "PLOS Genetics",
        "PLOS Genetics",
    ]
    assert [c.split(" ", 1)[1].startswith(s["title"]) for c, s in zip(cards, SPECS, strict=True)] == [True] * 4
    narrowed = web.get("/feed?p=neural-networks&p=plos-genetics&kw=dopamine&cat=neuroscience")
    assert len(re.findall(r'<li class="card"', narrowed.text)) == 2
    assert "2 in all" in unescape(narrowed.text)
    assert len(re.findall(r'<li class="card"', web.get("/feed?p=plos-genetics&kw=dopamine mice").text)) == 1
    feed = web.get("/feed.atom?p=neural-networks&p=plos-genetics&min=35%")
    parsed = feedparser.parse(feed.content)
    assert not parsed.bozo and rfc4287_problems(feed.content) == []
    assert [e.title for e in parsed.entries] == [s["title"] for s in SPECS[:3]]
    assert web.get("/feed").status_code == 400
    assert web.get("/feed?p=nope").status_code == 404
    assert web.get("/feed?p=plos-genetics&days=2").status_code == 400
    assert json.loads(json.dumps(parsed.feed.title)).startswith("Preprints with a match score of 35% or more")
