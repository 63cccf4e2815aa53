"""Backfill, reconcile and on-demand fetches over a loopback server answering like api.biorxiv.org
and export.arxiv.org, into SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from bot.config import load_settings
from bot.db import PagingCursor, Preprint
from bot.ingest.apis import Sources
from bot.ingest.backfill import backfill_arxiv, backfill_server, fetch_preprint, plan_from_feeds, reconcile
from bot.ingest.http import SourceError
from bot.ingest.polling import add_feed, poll_all
from bot.scores.rankings import PreprintNotFound
from tests.loopback import LoopbackServer
from tests.paths import FIXTURES

API = FIXTURES / "api"
JSON = {"Content-Type": "application/json"}
ATOM = {"Content-Type": "application/atom+xml"}
START, END = date(2026, 5, 1), date(2026, 5, 10)
INTERVAL = f"{START}/{END}"


def api_env(url: str) -> dict[str, str]:
    env = {
        name: url
        for name in ("SCOUT_BIORXIV_API_URL", "SCOUT_CROSSREF_URL", "SCOUT_OPENALEX_URL", "SCOUT_ARXIV_API_URL")
    }
    env |= {"SCOUT_BIORXIV_RSS_URL": url, "SCOUT_MEDRXIV_RSS_URL": url, "SCOUT_ARXIV_RSS_URL": url}
    env |= {
        name: "0"
        for name in (
            "SCOUT_BIORXIV_API_INTERVAL",
            "SCOUT_CROSSREF_INTERVAL",
            "SCOUT_OPENALEX_INTERVAL",
            "SCOUT_ARXIV_API_INTERVAL",
            "SCOUT_API_BACKOFF",
        )
    }
    return env | {"SCOUT_API_RETRIES": "2", "SCOUT_HTTP_TIMEOUT": "2"}


@pytest.fixture
def settings(server):
    return load_settings(**api_env(server.url))


@pytest.fixture
def sources(settings):
    with httpx.Client(timeout=2) as client:
        yield Sources.from_settings(settings, client, sleep=lambda s: None)


def serve(server: LoopbackServer, path: str, fixture: str, **kw) -> None:
    server.route(path, body=(API / fixture).read_bytes(), headers=JSON, **kw)


def serve_details(server: LoopbackServer, server_name: str = "biorxiv", interval: str = INTERVAL) -> None:
    serve(server, f"/details/{server_name}/{interval}/0", "biorxiv_details_0.json")
    serve(server, f"/details/{server_name}/{interval}/3", "biorxiv_details_3.json")


def preprints(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(Preprint.id)))


def cursor(db, key: str) -> PagingCursor:
    with db.session() as session:
        return session.get(PagingCursor, key)


def test_backfill_pages_stores_and_is_idempotent(db, server, sources):
    serve_details(server)
    report = backfill_server(db, sources, "biorxiv", START, END)
    assert (report.pages, report.records, report.total) == (2, 6, 6)
    assert (report.new, report.updated) == (4, 0)  # 6 records: one revision, one "NA" record skipped
    assert any("no DOI, or neither title nor abstract" in s for s in report.skipped)
    with db.session() as session:
        revised = session.scalar(select(Preprint).where(Preprint.version == 2))
        assert revised.category == "Neuroscience" and revised.authors[1] == "van der Berg, A."
    state = cursor(db, f"details/biorxiv/{INTERVAL}")
    assert (state.cursor, state.total, state.done) == (6, 6, True)
    again = backfill_server(db, sources, "biorxiv", START, END)
    assert (again.new, again.updated, again.resumed_at) == (0, 0, 0)
    assert preprints(db) == 4


def test_a_500_mid_paging_keeps_the_cursor_and_the_next_run_resumes(db, server, sources):
    serve(server, f"/details/biorxiv/{INTERVAL}/0", "biorxiv_details_0.json")
    server.route(f"/details/biorxiv/{INTERVAL}/3", status=500, body=b"Internal Server Error")
    with pytest.raises(SourceError, match="HTTP 500"):
        backfill_server(db, sources, "biorxiv", START, END)
    state = cursor(db, f"details/biorxiv/{INTERVAL}")
    assert (state.cursor, state.done) == (3, False)
    assert preprints(db) == 2  # the first page is stored; nothing of the failed one
    # The service heals, after one more 429 that names its own wait.
    answers = iter(
        [(429, {"Retry-After": "0"}, b"slow down"), (200, JSON, (API / "biorxiv_details_3.json").read_bytes())]
    )
    server.route(f"/details/biorxiv/{INTERVAL}/3", handler=lambda req: next(answers))
    report = backfill_server(db, sources, "biorxiv", START, END)
    assert report.resumed_at == 3 and report.pages == 1 and report.new == 2
    assert len(server.requests_to(f"/details/biorxiv/{INTERVAL}/0")) == 1  # page 0 not fetched again
    assert preprints(db) == 4


def test_same_doi_on_both_servers_is_stored_once(db, server, sources):
    serve_details(server)
    serve(server, f"/details/medrxiv/{INTERVAL}/0", "medrxiv_details_0.json")
    backfill_server(db, sources, "biorxiv", START, END)
    report = backfill_server(db, sources, "medrxiv", START, END)
    assert report.new == 1
    assert report.skipped == [
        "10.1101/2026.05.01.600000: already stored as a biorxiv preprint; the medrxiv record was skipped"
    ]
    assert preprints(db) == 5


def rss_record(doi: str, title: str, category: str = "neuroscience", version: str = "1") -> dict:
    return {
        "doi": doi,
        "title": title,
        "authors": "Okafor, C. N.; Smith, J.",
        "author_corresponding": "NA",
        "author_corresponding_institution": "NA",
        "date": "2026-05-03",
        "version": version,
        "type": "new results",
        "license": "cc_by",
        "category": category,
        "jatsxml": "NA",
        "abstract": f"{title}. An abstract long enough to read as one.",
        "published": "NA",
        "server": "bioRxiv",
    }


def test_reconcile_catches_an_item_the_rss_feed_dropped(db, server, settings, sources):
    server.route(
        "/biorxiv_xml.php",
        body=(FIXTURES / "feeds" / "biorxiv_neuroscience.rdf").read_bytes(),
        headers={"Content-Type": "application/rss+xml"},
    )
    with db.session() as session:
        add_feed(session, "biorxiv:neuroscience", settings)
    with httpx.Client(timeout=2) as client:
        polled = poll_all(db, settings, client)
    seen = preprints(db)
    assert polled.new == seen > 0
    with db.session() as session:
        stored = {p.doi: p for p in session.scalars(select(Preprint))}
    today = date(2026, 5, 6)
    records = [rss_record(doi, p.title, version=str(p.version or 1)) for doi, p in stored.items()]
    records.append(rss_record("10.1101/2026.05.03.599999", "Fell off the 30-item feed"))
    records.append(rss_record("10.1101/2026.05.03.588888", "A genomics preprint", category="genomics"))
    body = {"messages": [{"status": "ok", "cursor": 0, "count": len(records), "total": len(records)}]}
    server.route(
        f"/details/biorxiv/{today - timedelta(days=3)}/{today}/0",
        body=json.dumps(body | {"collection": records}),
        headers=JSON,
    )
    reports = reconcile(db, settings, sources, days=3, today=today)
    assert [r.source for r in reports] == ["bioRxiv"]
    assert reports[0].new == 1  # the dropped neuroscience item; the genomics one is not followed
    with db.session() as session:
        caught = session.scalar(select(Preprint).where(Preprint.doi == "10.1101/2026.05.03.599999"))
        assert caught is not None and caught.category == "Neuroscience" and caught.feed_id is None
    assert preprints(db) == seen + 1
    assert reconcile(db, settings, sources, days=3, today=today)[0].new == 0


def test_plan_follows_the_feeds(settings):
    plan = plan_from_feeds(
        [
            f"{settings.biorxiv_rss_url}/biorxiv_xml.php?subject=neuroscience",
            f"{settings.biorxiv_rss_url}/biorxiv_xml.php?subject=Plant%20Biology",
            f"{settings.medrxiv_rss_url}/medrxiv_xml.php?subject=all",
            f"{settings.arxiv_rss_url}/rss/cs.LG+stat.ML",
            "https://rss.arxiv.org/atom/q-bio.NC",
            "https://journals.example.org/rss",
        ],
        settings,
    )
    assert plan.servers == {"biorxiv": frozenset({"neuroscience", "plant_biology"}), "medrxiv": None}
    assert plan.arxiv == ("cs.LG", "stat.ML", "q-bio.NC")


def test_arxiv_backfill_pages_the_api(db, server, sources):
    def query(req):
        fixture = "arxiv_query_2.xml" if req.query["start"] == ["2"] else "arxiv_query.xml"
        return 200, ATOM, (API / fixture).read_bytes()

    server.route("/api/query", handler=query)
    report = backfill_arxiv(db, sources, ["cs.LG"], START, END, page_size=2)
    assert (report.pages, report.records, report.new) == (2, 3, 3)
    first = server.requests_to("/api/query")[0]
    assert first.query["search_query"] == ["cat:cs.LG AND submittedDate:[202605010000 TO 202605102359]"]
    assert first.query["sortBy"] == ["submittedDate"]
    assert backfill_arxiv(db, sources, ["cs.LG"], START, END, page_size=2).new == 0


def test_fetch_one_preprint_by_doi_or_arxiv_id(db, server, sources):
    serve(server, "/details/biorxiv/10.1101/2026.05.20.700001", "biorxiv_details_doi.json")
    serve(server, "/details/biorxiv/10.1101/2026.05.20.000000", "biorxiv_no_posts.json")
    serve(server, "/details/medrxiv/10.1101/2026.05.20.000000", "biorxiv_no_posts.json")
    server.route("/api/query", body=(API / "arxiv_query.xml").read_bytes(), headers=ATOM)
    with db.session() as session:
        preprint = fetch_preprint(session, sources, "https://doi.org/10.1101/2026.05.20.700001v1")
        assert (preprint.server, preprint.version) == ("biorxiv", 2)
        paper = fetch_preprint(session, sources, "arXiv:2605.01234")
        assert paper.identifier == "2605.01234" and paper.server == "arxiv"
        with pytest.raises(PreprintNotFound, match="bioRxiv or medRxiv does not know it"):
            fetch_preprint(session, sources, "10.1101/2026.05.20.000000")
        with pytest.raises(PreprintNotFound, match="only bioRxiv/medRxiv DOIs"):
            fetch_preprint(session, sources, "10.1038/s41586-020-2649-2")
    assert server.requests_to("/api/query")[0].query["id_list"] == ["2605.01234"]


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def scout(scout, server):
    scout.env.update(api_env(server.url))
    return scout


def test_cli_backfill_and_profiles_from_apis(scout, server):
    end = date.today()
    serve_details(server, interval=f"{end - timedelta(days=9)}/{end}")
    out = scout("backfill", "--days", "9", "--server", "biorxiv", "--no-score")
    assert "4 new" in out.output and "2 pages" in out.output
    assert "0 new" in scout("backfill", "--days", "9", "--server", "biorxiv", "--no-score").output
    assert "say where the papers come from" in scout("profiles", "add", "X", code=2).output
    assert (
        "only one of --papers, --issn"
        in scout("profiles", "add", "X", "--papers", "x.jsonl", "--issn", "0270-6474", code=2).output
    )
    serve(server, "/works", "crossref_works_empty.json")
    assert (
        "no articles with abstracts for ISSN 0028-0836"
        in scout("profiles", "add", "Nature", "--issn", "0028-0836", "--no-score", code=2).output
    )
    serve(server, "/works", "openalex_works.json")
    out = scout("profiles", "add", "PLOS Biology", "--issn", "1544-9173", "--source", "openalex", "--no-score")
    assert "profile PLOS Biology: 5 papers" in out.output
    assert "PLOS Biology: 5 papers" in scout("profiles", "refresh", "plos biology", "--no-score").output
    assert "issn:1544-9173?source=openalex" in scout("profiles", "--json").output


def test_cli_match_fetches_scores_and_ranks_an_unstored_preprint(scout, server, embedder):
    scout("profiles", "add", "eLife", "--papers", str(FIXTURES / "profiles" / "elife.jsonl"), "--no-score")
    serve(server, "/details/biorxiv/10.1101/2026.05.20.700001", "biorxiv_details_doi.json")
    out = scout("match", "10.1101/2026.05.20.700001", "--json")
    data = json.loads(out.stdout)
    assert data["identifier"] == "10.1101/2026.05.20.700001" and data["matches"][0]["profile"] == "eLife"
    scout("match", "10.1101/2026.05.20.700001")  # stored now: no second fetch
    assert len(server.requests_to("/details/biorxiv/10.1101/2026.05.20.700001")) == 1
