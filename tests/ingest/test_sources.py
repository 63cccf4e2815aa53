"""API clients: pure parsers on fixtures in each API's documented shape, the polite HTTP helper over
loopback (pacing, 429 + Retry-After, 5xx backoff, giving up), and profiles built from each source."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import httpx
import pytest
from sqlalchemy import func, select

from bot.config import load_settings
from bot.db import Profile, ReferencePaper, Subscription
from bot.ingest.apis import Sources
from bot.ingest.arxiv import parse_arxiv_api, search_query
from bot.ingest.biorxiv import category_label, parse_details, parse_pubs
from bot.ingest.crossref import parse_works as parse_crossref
from bot.ingest.http import PoliteHTTP, SourceError, parse_retry_after
from bot.ingest.openalex import abstract_from_inverted_index
from bot.ingest.openalex import parse_works as parse_openalex
from bot.ingest.records import looks_english, normalise_issn, present
from bot.profiles.catalog import ProfileError, find_profile
from bot.profiles.journals import (
    ProfileSpec,
    papers_from_issn,
    papers_from_preprints,
    refresh_profiles,
    resolve_journal,
    save_new,
)
from tests.loopback import LoopbackServer
from tests.paths import FIXTURES

API = FIXTURES / "api"
JSON = {"Content-Type": "application/json"}
TODAY = date(2026, 5, 20)


def load(name: str):
    return json.loads((API / name).read_text())


@pytest.fixture
def settings(server):
    return load_settings(
        SCOUT_BIORXIV_API_URL=server.url,
        SCOUT_CROSSREF_URL=server.url,
        SCOUT_OPENALEX_URL=server.url,
        SCOUT_ARXIV_API_URL=server.url,
        SCOUT_BIORXIV_API_INTERVAL=0,
        SCOUT_CROSSREF_INTERVAL=0,
        SCOUT_OPENALEX_INTERVAL=0,
        SCOUT_ARXIV_API_INTERVAL=0,
        SCOUT_API_BACKOFF=0,
        SCOUT_CONTACT_EMAIL="editor@example.org",
        SCOUT_HTTP_TIMEOUT=2,
    )


@pytest.fixture
def sources(settings):
    with httpx.Client(timeout=2, headers={"User-Agent": settings.user_agent}) as client:
        yield Sources.from_settings(settings, client, sleep=lambda s: None)


def serve_json(server: LoopbackServer, path: str, fixture: str) -> None:
    server.route(path, body=(API / fixture).read_bytes(), headers=JSON)


# --------------------------------------------------------------------------- pure parsing


def test_details_page_normalises_like_the_feeds_and_handles_na():
    page = parse_details(load("biorxiv_details_0.json"), "biorxiv")
    assert (page.count, page.total) == (3, 6)  # "total" arrives as a string
    assert len(page.items) == 2  # two versions of one preprint collapse to the newest
    revised = next(i for i in page.items if i.version == 2)
    assert revised.url.endswith(f"{revised.doi}v2")
    first = page.items[0]
    assert first.authors == ("Okafor, C. N.", "van der Berg, A.", "Li, W.")
    assert first.category == "Neuroscience" and first.server == "biorxiv"
    assert first.posted == date(2026, 5, 1)
    na = parse_details(load("biorxiv_details_3.json"), "biorxiv")
    assert na.skipped == ["10.1101/2026.05.04.600003: no DOI, or neither title nor abstract"]
    empty_abstract = next(i for i in na.items if i.abstract == "")
    assert empty_abstract.title  # kept: a title alone still ranks, as with RSS items
    assert parse_details(load("biorxiv_no_posts.json"), "biorxiv").items == []
    with pytest.raises(SourceError, match="interval"):
        parse_details({"messages": [{"status": "Error: interval is not valid"}], "collection": []}, "biorxiv")


def test_pubs_records_and_medrxiv_server_field():
    page = parse_pubs(load("biorxiv_pubs_0.json"), "biorxiv")
    assert page.total == 12 and page.count == 6
    first = page.records[0]
    assert first.journal == "eLife" and first.preprint_doi.startswith("10.1101/")
    assert first.published_date and first.abstract
    assert page.records[4].abstract == ""  # "NA" in the API
    med = parse_details(load("medrxiv_details_0.json"), "medrxiv")
    assert {i.server for i in med.items} == {"medrxiv"}
    assert category_label("animal behavior and cognition") == "Animal Behavior and Cognition"


def test_crossref_jats_stripped_and_openalex_inverted_index():
    page = parse_crossref(load("crossref_works_0.json"))
    paper, language = page.papers[0]
    assert language == "en" and paper.journal == "Journal of Neuroscience"
    assert not paper.abstract.startswith("Abstract") and "<" not in paper.abstract
    assert "using a combination of imaging, sequencing" in paper.abstract
    assert page.next_cursor == "AoJ+page2" and page.total == 8
    assert abstract_from_inverted_index({"divide": [1, 3], "Cells": [0], "and": [2]}) == "Cells divide and divide"
    assert abstract_from_inverted_index(None) == ""
    works = parse_openalex(load("openalex_works.json"))
    assert works.papers[0][0].doi == "10.5555/plos.0" and works.papers[0][0].year == 2026
    assert works.papers[0][0].abstract.startswith("We studied")
    assert works.journals == ["PLOS Biology"]


def test_arxiv_api_entries_and_errors():
    page = parse_arxiv_api((API / "arxiv_query.xml").read_bytes())
    assert (page.count, page.total) == (2, 3)
    first = page.items[0]
    assert (first.server, first.identifier, first.version) == ("arxiv", "2605.01234", 2)
    assert first.title == "Sparse Mixture-of-Experts for Protein Language Models"
    assert first.authors == ("Ada Lovelace", "Alan Turing") and first.category == "cs.LG"
    with pytest.raises(SourceError, match="incorrect id format"):
        parse_arxiv_api((API / "arxiv_error.xml").read_bytes())
    with pytest.raises(SourceError, match="malformed"):
        parse_arxiv_api(b"<feed")
    query = search_query(["cs.LG", "stat.ML"], date(2026, 5, 1), date(2026, 5, 3))
    assert query == "(cat:cs.LG OR cat:stat.ML) AND submittedDate:[202605010000 TO 202605032359]"


def test_small_helpers():
    assert present("NA") is None and present(" n/a ") is None and present("x") == "x"
    assert normalise_issn("00280836") == "0028-0836"
    assert normalise_issn("2041-1723") == "2041-1723"
    assert normalise_issn("1000-002x") == "1000-002X"
    with pytest.raises(ValueError, match="check digit"):
        normalise_issn("0028-0837")
    with pytest.raises(ValueError, match="not an ISSN"):
        normalise_issn("nature")
    assert looks_english("We show that the cells divide.")
    assert not looks_english("x", "es")
    assert not looks_english("我们研究了小鼠的突触可塑性，发现一小组基因的活性是必要的。")
    spanish = "Estudiamos la plasticidad sináptica en ratones y encontramos que la actividad de un pequeño " * 3
    assert not looks_english(spanish)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("garbage") is None
    spec = ProfileSpec("preprints", "Journal of Cell Biology", limit=50, days=90, servers=("biorxiv",))
    assert ProfileSpec.decode(spec.encode()) == spec
    assert ProfileSpec.decode("issn:0028-0836?source=openalex&limit=20") == ProfileSpec(
        "issn", "0028-0836", "openalex", 20
    )
    assert ProfileSpec.decode("tests/fixtures/profiles/elife.jsonl") is None


def test_journal_names_resolve_or_ask():
    names = Counter({"eLife": 7, "ELIFE": 1, "Nature Neuroscience": 2, "Journal of Neuroscience": 1, "Nature": 3})
    assert resolve_journal("elife", names, "here") == "eLife"
    assert resolve_journal("nature", names, "here") == "Nature"  # exact beats substring
    assert resolve_journal("journal of neuro", names, "here") == "Journal of Neuroscience"
    with pytest.raises(ProfileError, match="several journals.*Nature Neuroscience.*Journal of Neuroscience"):
        resolve_journal("neuroscience", names, "here")
    with pytest.raises(ProfileError, match="Did you mean: eLife"):
        resolve_journal("elfie", Counter({"eLife": 1, "Cell": 1}), "here")


# --------------------------------------------------------------------------- polite HTTP


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_polite_http_paces_retries_429_honouring_retry_after_then_succeeds(server):
    answers = iter([(429, {"Retry-After": "7"}, b"slow down"), (503, {}, b"busy"), (200, JSON, b'{"ok": 1}')])
    server.route("/x", handler=lambda req: next(answers))
    server.route("/y", body=b'{"ok": 2}', headers=JSON)
    clock = FakeClock()
    with httpx.Client(headers={"User-Agent": "PreprintScout/0.1 (mailto:e@x.org)"}) as client:
        http = PoliteHTTP(
            client, server.url, "Test", min_interval=3, retries=3, backoff=2, sleep=clock.sleep, clock=clock
        )
        assert http.get_json("x") == {"ok": 1}
        assert http.get_json("y") == {"ok": 2}
    # 429 -> wait Retry-After (7 s, which also covers the 3 s interval); 503 -> backoff 2 * 2 = 4 s,
    # then 3 s spacing before the next request to the same service.
    assert clock.slept == [7, 4, 3 - 0]
    assert len(server.requests_to("/x")) == 3
    assert "mailto:e@x.org" in server.requests_to("/y")[0].headers["user-agent"]


def test_polite_http_gives_up_with_a_clear_error(server):
    server.route("/down", status=500, body=b"<html>oops</html>")
    server.route("/bad", status=400, body=b'{"status": "failed", "message": [{"message": "Filter issn is invalid"}]}')
    with httpx.Client() as client:
        http = PoliteHTTP(client, server.url, "Crossref", min_interval=0, retries=2, backoff=0, sleep=lambda s: None)
        with pytest.raises(SourceError, match=r"Crossref: HTTP 500 from .*/down \(gave up after 3 attempts\)"):
            http.get("down")
        with pytest.raises(SourceError, match="HTTP 400 .*Filter issn is invalid"):
            http.get("bad")  # a 4xx is not retried
    assert len(server.requests_to("/down")) == 3 and len(server.requests_to("/bad")) == 1


# --------------------------------------------------------------------------- profiles from each source


def serve_crossref(server: LoopbackServer) -> None:
    """Two pages joined by Crossref's deep-paging cursor."""

    def works(req):
        page = "crossref_works_1.json" if req.query.get("cursor") == ["AoJ+page2"] else "crossref_works_0.json"
        return 200, JSON, (API / page).read_bytes()

    server.route("/works", handler=works)


def test_profile_from_crossref_issn(db, server, sources):
    serve_crossref(server)
    built = papers_from_issn(sources, "02706474", "crossref", limit=50)
    assert len(built.papers) == 5 and built.journal == "Journal of Neuroscience"
    assert any("not in English" in s for s in built.skipped)
    assert any("duplicate" in s for s in built.skipped)
    assert any("no abstract" in s for s in built.skipped)
    first = server.requests_to("/works")[0]
    assert first.query["filter"] == ["issn:0270-6474,has-abstract:true,type:journal-article"]
    assert first.query["mailto"] == ["editor@example.org"] and first.query["cursor"] == ["*"]
    with db.session() as session:
        profile = save_new(session, "J Neurosci", built)
        assert profile.source == "issn:0270-6474?source=crossref&limit=50"
    with db.session() as session:
        assert len(find_profile(session, "j neurosci").papers) == 5


def test_profile_from_openalex_issn(db, server, sources):
    serve_json(server, "/works", "openalex_works.json")
    built = papers_from_issn(sources, "1544-9173", "openalex", limit=200)
    assert len(built.papers) == 5 and built.journal == "PLOS Biology"
    request = server.requests_to("/works")[0]
    assert request.query["filter"] == ["primary_location.source.issn:1544-9173,has_abstract:true"]
    assert request.query["sort"] == ["publication_date:desc"]


def test_issn_without_abstracts_is_a_clear_error_and_writes_nothing(db, server, sources):
    serve_json(server, "/works", "crossref_works_empty.json")
    with pytest.raises(ProfileError, match="no articles with abstracts for ISSN 0028-0836; .*--source openalex"):
        papers_from_issn(sources, "0028-0836", "crossref")
    with pytest.raises(ProfileError, match="check digit"):
        papers_from_issn(sources, "0028-0837", "crossref")
    with db.session() as session:
        assert session.scalar(select(func.count(Profile.id))) == 0


def pubs_routes(server: LoopbackServer, start: str, end: str) -> None:
    serve_json(server, f"/pubs/biorxiv/{start}/{end}/0", "biorxiv_pubs_0.json")
    serve_json(server, f"/pubs/biorxiv/{start}/{end}/6", "biorxiv_pubs_6.json")
    missing = load("biorxiv_pubs_0.json")["collection"][4]["biorxiv_doi"]
    serve_json(server, f"/details/biorxiv/{missing}", "biorxiv_details_pub4.json")


def test_profile_from_preprints_published_in_the_journal(db, server, sources):
    pubs_routes(server, "2025-05-20", "2026-05-20")
    built = papers_from_preprints(sources, "ELife", servers=("biorxiv",), today=TODAY)
    assert built.journal == "eLife" and len(built.papers) == 8  # "ELIFE" spelling included
    assert all(p.abstract and p.journal == "eLife" for p in built.papers)
    # Only the record whose /pubs abstract was "NA" cost a /details call.
    assert len([r for r in server.requests if r.path.startswith("/details/")]) == 1
    years = [p.year for p in built.papers]
    assert years == sorted(years, reverse=True)
    with db.session() as session:
        profile = save_new(session, "eLife", built)
        assert profile.source == "preprints:eLife?days=365&limit=200&servers=biorxiv"


def test_ambiguous_journal_lists_candidates_and_writes_nothing(db, server, sources):
    pubs_routes(server, "2025-05-20", "2026-05-20")
    with pytest.raises(ProfileError) as info:
        papers_from_preprints(sources, "neuroscience", servers=("biorxiv",), today=TODAY)
    assert "Nature Neuroscience" in str(info.value) and "Journal of Neuroscience" in str(info.value)
    with pytest.raises(ProfileError, match="Did you mean: eLife"):
        papers_from_preprints(sources, "elfie", servers=("biorxiv",), today=TODAY)


def test_refresh_swaps_papers_and_keeps_subscriptions_and_workspace(db, server, sources):
    serve_json(server, "/works", "openalex_works.json")
    with db.session() as session:
        profile = save_new(session, "PLOS Biology", papers_from_issn(sources, "1544-9173", "openalex"))
        session.add(Subscription(kind="email", email="e@x.org", profile_id=profile.id))
        # Pretend it was built from Crossref under another ISSN: a refresh follows the stored spec.
        profile.source = "issn:0270-6474?source=crossref&limit=200"
        profile.team_id = "T1"
    serve_crossref(server)
    results = refresh_profiles(db, sources)
    assert [(r.profile, r.papers, r.error) for r in results] == [("PLOS Biology", 5, None)]
    with db.session() as session:
        journals = set(session.scalars(select(ReferencePaper.journal)))
        assert journals == {"Journal of Neuroscience"}
        assert session.scalar(select(func.count(Subscription.id))) == 1
        assert session.scalar(select(Profile.team_id)) == "T1"
    server.route("/works", status=503, body=b"down")
    results = refresh_profiles(db, sources)
    assert results[0].papers is None and "HTTP 503" in results[0].error
    with db.session() as session:
        assert session.scalar(select(func.count(ReferencePaper.id))) == 5  # old papers kept
