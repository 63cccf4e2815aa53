"""The pages of `scout serve` over its ASGI app: the profile page says what `scout rank`
says, the preprint page what `scout match` says, and bad requests get 404 or 400 pages."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from sqlalchemy import delete
from starlette.testclient import TestClient

from bot.config import BUNDLED_MODEL, load_settings
from bot.db import Database, Preprint
from bot.processes.web import build_app
from bot.scores.update import ScoringContext
from bot.web.pages import PAGE_SIZE
from bot.web.queries import prediction_set, slugify
from scoring.embedder import load_embedder
from scoring.window import format_score, format_top
from tests.fake_slack import seed_catalog

PROFILES = ["Neural Networks", "PLOS Genetics", "Genome Biology & Evolution"]


def score_of(p: int, q: int) -> float:
    """A distinct score per (profile, preprint), so each profile ranks the preprints differently."""
    return round(0.01 + ((q * 7 + p * 3) % 23) / 100.0, 4)


def preprints(n: int) -> list[dict]:
    return [
        {"title": f"Synaptic plasticity study {i}", "abstract": f"We measured circuit {i} in mice."} for i in range(n)
    ]


def lazy_ctx() -> ScoringContext:
    """The real model, loaded only if a text is missing from the embedding cache."""
    return ScoringContext(BUNDLED_MODEL, lambda: load_embedder(BUNDLED_MODEL))


def client(db: Database, **settings) -> TestClient:
    values = {"DATABASE_URL": db.url, **settings}
    return TestClient(build_app(load_settings(**values), db, ctx=lazy_ctx()), raise_server_exceptions=True)


def text(html: str) -> str:
    """What a reader sees: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def cards(html: str) -> list[str]:
    return [text(c) for c in re.findall(r'<li class="card".*?</article>', html, re.S)]


def test_a_profile_page_says_what_scout_rank_says(db: Database, scout):
    seed_catalog(db, PROFILES, preprints(8), score_of)
    ranked = json.loads(scout("rank", "plos genetics", "--json").stdout)  # rescored by the real model first
    printed = scout("rank", "plos genetics").stdout
    page = client(db).get(f"/profiles/{slugify('PLOS Genetics')}")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    header = text(re.search(r'<p class="lede" id="header">(.*?)</p>', page.text, re.S).group(1))
    assert header == " ".join(printed.split("\n\n")[0].split())
    shown = cards(page.text)
    assert len(shown) == len(ranked["items"]) == 8
    for card, item in zip(shown, ranked["items"], strict=True):
        assert card.startswith(f"{item['rank']}. {item['title']} ")
        assert f"{format_top(item['top_share'])} · match {format_score(item['score'])}" in card
        assert f"{item['lift']:.1f}x the average" in card
        assert item["why"][0]["title"] in card and item["doi"] in card
        assert item["abstract"] in card  # inside <details>: in the page, shown on a click
    assert "<details>" in page.text and "<summary>Abstract</summary>" in page.text


def test_pages_of_a_long_ranking_continue_the_ranks(db: Database):
    seed_catalog(db, PROFILES, preprints(PAGE_SIZE + 5), score_of)
    web = client(db)
    first = cards(web.get("/profiles/neural-networks").text)
    second_page = web.get("/profiles/neural-networks?page=2")
    second = cards(second_page.text)
    assert len(first) == PAGE_SIZE and len(second) == 5
    assert [c.split(".")[0] for c in first + second] == [str(r) for r in range(1, PAGE_SIZE + 6)]
    scores = [float(re.search(r"match (\d+\.?\d*)%", c).group(1)) for c in first + second]
    assert scores == sorted(scores, reverse=True)
    assert 'rel="prev"' in second_page.text and 'rel="next"' not in second_page.text
    assert "page 2 of 2" in text(second_page.text)


def test_the_window_is_one_of_the_days_offered(db: Database):
    seed_catalog(db, PROFILES, [{"age": 3}, {"age": 20}, {"age": 60}], score_of)
    web = client(db)
    assert len(cards(web.get("/profiles/neural-networks?days=7").text)) == 1
    assert len(cards(web.get("/profiles/neural-networks?days=30").text)) == 2
    assert len(cards(web.get("/profiles/neural-networks").text)) == 3
    assert "in the last 90 days" in text(web.get("/profiles/neural-networks").text)


@pytest.mark.parametrize(
    "query, allowed",
    [
        ("days=12", "days is one of 7, 30, 90, 365"),
        ("days=-1", "days is one of"),
        ("days=1e3", "days is one of"),
        ("page=0", "page is a whole number from 1"),
        ("page=abc", "page is a whole number from 1"),
        ("page=99999999999999999999", "page is a whole number from 1"),
        ("page=3", "this ranking has pages 1 to 1"),
    ],
)
def test_a_bad_query_value_gets_a_400_page_saying_what_is_allowed(db: Database, query, allowed):
    seed_catalog(db, PROFILES, preprints(3), score_of)
    page = client(db).get(f"/profiles/neural-networks?{query}")
    assert page.status_code == 400
    assert allowed in text(page.text)


def test_an_unknown_profile_gets_a_404_page_with_close_names(db: Database):
    seed_catalog(db, PROFILES, preprints(3), score_of)
    web = client(db)
    page = web.get("/profiles/plos-genetic")
    assert page.status_code == 404
    assert '<a href="/profiles/plos-genetics">PLOS Genetics</a>' in page.text
    assert web.get("/profiles/nothing-like-it/papers").status_code == 404
    assert web.get("/profiles/%00%FF<script>").status_code == 404


def test_the_index_lists_every_profile_with_its_figures(db: Database):
    seed_catalog(db, PROFILES, [{"age": 3}, {"age": 20}, {"age": 200}], score_of)
    page = client(db).get("/")
    assert page.status_code == 200
    rows = re.findall(
        r"<tr>\s*<th scope=\"row\"><a href=\"(/profiles/[^\"]+)\">([^<]+)</a></th>(.*?)</tr>", page.text, re.S
    )
    assert [(path, unescape(name)) for path, name, _ in rows] == [
        ("/profiles/genome-biology-evolution", "Genome Biology & Evolution"),
        ("/profiles/neural-networks", "Neural Networks"),
        ("/profiles/plos-genetics", "PLOS Genetics"),
    ]
    assert all(text(rest).split() == ["5", "2"] for _, _, rest in rows)  # 5 papers; 2 of 3 preprints in 90 days


def test_a_profiles_reference_list(db: Database):
    seed_catalog(db, PROFILES, preprints(1), score_of)
    page = client(db).get("/profiles/plos-genetics/papers")
    assert page.status_code == 200
    titles = re.findall(r'<span class="paper-title">([^<]+)</span>', page.text)
    assert sorted(titles) == sorted(f"PLOS Genetics reference paper {i}" for i in range(5))


def test_a_preprint_page_shows_its_profiles_and_prediction_sets(db: Database):
    seed_catalog(db, PROFILES, preprints(4), lambda p, q: [0.5, 0.3, 0.05][p])
    web = client(db)
    page = web.get("/preprints/10.1101/2026.01.02.100002")
    assert page.status_code == 200
    rows = re.findall(r'<th scope="row"><a href="(/profiles/[^"]+)">', page.text)
    assert rows == ["/profiles/neural-networks", "/profiles/plos-genetics", "/profiles/genome-biology-evolution"]
    sets = {m[0]: text(m[1]) for m in re.findall(r'<li id="set-(\d+)">(.*?)</li>', page.text, re.S)}
    assert sets["50"] == "50% : 1 outcome (Neural Networks) add up to 50.0%."
    assert sets["90"] == "90% : 3 outcomes (Neural Networks, PLOS Genetics, published elsewhere) add up to 95.0%."
    assert web.get("/preprints/https://doi.org/10.1101/2026.01.02.100002").status_code == 200


def test_an_unknown_preprint_gets_a_404_page_with_close_ids(db: Database):
    seed_catalog(db, PROFILES, preprints(3), score_of)
    web = client(db)
    page = web.get("/preprints/10.1101/2026.01.01.100009")
    assert page.status_code == 404
    assert 'href="/preprints/10.1101/2026.01.01.100001"' in page.text
    assert web.get("/preprints/not-an-id").status_code == 404
    assert web.get("/preprints/").status_code == 404


def test_the_prediction_set_is_the_fewest_outcomes_reaching_the_level():
    scores = [("A", 0.2), ("B", 0.45), ("C", 0.05)]
    assert prediction_set(scores, 0.3, 0.5).members == ["B", "published elsewhere"]
    assert prediction_set(scores, 0.3, 0.9).members == ["B", "published elsewhere", "A"]
    assert prediction_set(scores, 0.3, 0.45).members == ["B"]


def test_pages_make_no_request_to_another_origin(db: Database):
    seed_catalog(db, PROFILES, preprints(3), score_of)
    web = client(db)
    for path in (
        "/",
        "/profiles/neural-networks",
        "/profiles/neural-networks/papers",
        "/preprints/10.1101/2026.01.01.100001",
    ):
        page = web.get(path)
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert not re.findall(r'<(?:link|script|img|iframe)[^>]+(?:src|href)="(?:https?:)?//', page.text)
    css = web.get("/static/scout.css")
    assert css.status_code == 200 and "prefers-color-scheme: dark" in css.text
    assert "url(" not in css.text and "@import" not in css.text


HOSTILE = [
    "/preprints/10.1101/%00abc",
    "/preprints/10.1101/" + "9" * 5000,
    "/preprints/arxiv:%E2%80%AE2405.01234",
    "/profiles/%00",
    "/profiles/neural-networks?days=%C2%B2",
    "/profiles/neural-networks?page=%D9%A3",
    "/profiles/neural-networks?days=7&days=abc",
    "/profiles/neural-networks.json?top=%C2%B2",
    "/profiles/neural-networks.atom?top=%00",
    "/profiles/neural-networks.atom?min=1e999%",
    "/search?q=10.1101/%00abc",
    "/search?q=%22%2A%3A%5E-NEAR(",
    "/feed?p=neural-networks&cat=%00",
    "/feed?p=neural-networks&kw=%00%01",
    "/feed?p=" + "&p=".join(["neural-networks"] * 11),
    "/feed.atom?p=neural-networks&top=0%",
    "/?days=%00",
]


def test_hostile_requests_get_an_answer_never_a_500(db: Database):
    seed_catalog(db, PROFILES, preprints(3), score_of)
    web = client(db)
    for path in HOSTILE:
        response = web.get(path)
        assert 200 <= response.status_code < 500, (path, response.status_code)


def test_a_page_read_from_a_cached_window_survives_a_pruned_preprint(db: Database):
    ids = seed_catalog(db, PROFILES, preprints(5), score_of)
    web = client(db)
    assert len(cards(web.get("/profiles/neural-networks").text)) == 5
    with db.session() as session:
        session.execute(delete(Preprint).where(Preprint.id == ids["preprints"][0]))
    page = web.get("/profiles/neural-networks")  # the window is cached: it still names the pruned preprint
    assert page.status_code == 200 and len(cards(page.text)) == 4
    assert "Synaptic plasticity study 0<" not in page.text and "Synaptic plasticity study 1<" in page.text
