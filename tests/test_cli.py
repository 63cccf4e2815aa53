"""The `scout` command end to end, in-process, on SQLite and PostgreSQL: feeds served over
loopback, the real bundled model, real scoring."""

from __future__ import annotations

import json

import pytest

from bot.cli.common import PANELS
from tests.cli import Scout
from tests.loopback import LoopbackServer
from tests.paths import FIXTURES

PROFILES = {
    "eLife": FIXTURES / "profiles" / "elife.jsonl",
    "PLOS Computational Biology": FIXTURES / "profiles" / "plos-computational-biology.jsonl",
}
RANKING_FIELDS = {
    "rank",
    "title",
    "url",
    "authors",
    "posted",
    "category",
    "doi",
    "identifier",
    "server",
    "score",
    "top_share",
    "lift",
    "abstract",
    "why",
    "also",
}


@pytest.fixture
def scout(scout, embedder):
    """`scout` with the feeds and APIs on a loopback server (an unstored preprint that
    `scout match` fetches included)."""
    with LoopbackServer() as server:
        server.route(
            "/biorxiv_xml.php",
            body=(FIXTURES / "feeds" / "biorxiv_neuroscience.rdf").read_bytes(),
            headers={"Content-Type": "application/rss+xml"},
        )
        server.route(
            "/rss/cs.LG",
            body=(FIXTURES / "feeds" / "arxiv_cs_lg.rss").read_bytes(),
            headers={"Content-Type": "application/rss+xml"},
        )
        for name in ("SCOUT_BIORXIV_RSS_URL", "SCOUT_ARXIV_RSS_URL", "SCOUT_BIORXIV_API_URL", "SCOUT_ARXIV_API_URL"):
            scout.env[name] = server.url
        yield scout


def setup_catalog(scout) -> None:
    scout("feeds", "add", "biorxiv:neuroscience")
    scout("feeds", "add", "arxiv:cs.LG")
    for name, path in PROFILES.items():
        scout("profiles", "add", name, "--papers", str(path), "--no-score")
    scout("poll")


def test_poll_rank_and_match_end_to_end(scout):
    setup_catalog(scout)
    feeds = json.loads(scout("feeds", "--json").stdout)
    assert [f["healthy"] for f in feeds] == [True, True] and all(f["items_seen"] for f in feeds)

    ranking = json.loads(scout("rank", "elife", "--days", "3650", "--json").stdout)
    assert ranking["profile"] == "eLife" and ranking["papers"] == 6 and ranking["version"] == 1
    items = ranking["items"]
    assert items and set(items[0]) == RANKING_FIELDS
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert items[0]["top_share"] == pytest.approx(1 / ranking["window_count"])
    scores = [i["score"] for i in items]
    assert 0 < ranking["average"] < 1 and ranking["average"] <= max(scores)
    assert items[0]["lift"] == pytest.approx(items[0]["score"] / ranking["average"])
    assert len(items[0]["why"]) == 3 and {"title", "year", "similarity"} == set(items[0]["why"][0])

    text = scout("rank", "ELIFE", "--days", "3650", "--top", "2").stdout
    assert "ranked by how well they match eLife's content profile, based on 6 papers" in text
    assert "The average preprint has a" in text and "Top " in text and "match " in text

    match = json.loads(scout("match", "10.64898/2026.05.02.601877", "--json").stdout)
    total = sum(m["score"] for m in match["matches"]) + match["background"]
    assert total == pytest.approx(1.0, abs=1e-6)
    assert {m["profile"] for m in match["matches"]} == set(PROFILES)

    # A paper the journal published, typed in as text, fits that journal best.
    paper = json.loads(PROFILES["PLOS Computational Biology"].read_text().splitlines()[0])
    free = json.loads(scout("match", "--text", f"{paper['title']}. {paper['abstract']}", "--json").stdout)
    assert free["matches"][0]["profile"] == "PLOS Computational Biology"
    assert sum(m["score"] for m in free["matches"]) + free["background"] == pytest.approx(1.0, abs=1e-6)


def test_new_profile_rescores_and_removed_profile_disappears(scout):
    setup_catalog(scout)
    before = json.loads(scout("match", "10.1101/2026.04.29.590412", "--json").stdout)
    scout("profiles", "add", "GBE", "--papers", str(FIXTURES / "profiles" / "genome-biology-and-evolution.jsonl"))
    after = json.loads(scout("match", "10.1101/2026.04.29.590412", "--json").stdout)
    assert len(after["matches"]) == len(before["matches"]) + 1
    scout("profiles", "remove", "gbe")
    again = json.loads(scout("match", "10.1101/2026.04.29.590412", "--json").stdout)
    assert {m["profile"] for m in again["matches"]} == set(PROFILES)
    shown = json.loads(scout("profiles", "show", "elife", "--json").stdout)
    assert len(shown["papers"]) == 6


def test_bad_input_gets_a_clear_message(scout, tmp_path):
    setup_catalog(scout)
    result = scout("rank", "eLfe", code=2)
    assert "no profile named 'eLfe'" in result.output and "Did you mean: eLife" in result.output
    assert "--until must be a date" in scout("rank", "elife", "--until", "tomorrow", code=2).output
    assert "neither a DOI" in scout("match", "hello", code=2).output
    assert "no stored preprint" in scout("match", "10.1101/9999.99.99.999999", code=2).output
    assert "give a DOI" in scout("match", code=2).output
    few = tmp_path / "few.jsonl"
    few.write_text('{"title": "One", "abstract": "Only one paper"}\n')
    assert "at least 5 papers" in scout("profiles", "add", "Few", "--papers", str(few), code=2).output
    assert "biorxiv:<subject>" in scout("feeds", "add", "gopher://x", code=2).output
    assert "no feed" in scout("feeds", "remove", "nope", code=2).output


def test_invalid_setting_names_the_variable(scout):
    scout.env["DATABASE_URL"] = "mysql://nope"
    result = scout("init", code=2)
    assert "DATABASE_URL" in result.output and "sqlite" in result.output
    scout.env.update({"DATABASE_URL": "sqlite:///x.db", "SCOUT_WINDOW_DAYS": "-3"})
    assert "SCOUT_WINDOW_DAYS" in scout("init", code=2).output


def test_templates_dir_overrides_a_bundled_template(scout, tmp_path):
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "ranking_header.txt.j2").write_text("Custom header for {{ ranking.profile }}.")
    scout.env["SCOUT_TEMPLATES_DIR"] = str(tmp_path)
    setup_catalog(scout)
    assert "Custom header for eLife." in scout("rank", "elife", "--days", "3650").stdout
    scout.env["SCOUT_TEMPLATES_DIR"] = str(tmp_path / "missing")
    assert "SCOUT_TEMPLATES_DIR" in scout("rank", "elife", code=2).output


def test_help_lists_every_command_in_a_panel_in_pipeline_order():
    help_text = Scout({"COLUMNS": "120"})("--help").stdout
    positions = [help_text.index(f"─ {panel} ─") for panel in PANELS]
    assert positions == sorted(positions)
    assert "─ Commands ─" not in help_text  # no command left without a panel
    assert help_text.index(" init ") < help_text.index(" poll ") < help_text.index(" rank ")


def test_vote_from_the_terminal_counts_once_per_voter(scout):
    setup_catalog(scout)
    top = json.loads(scout("rank", "eLife", "--days", "3650", "--json").stdout)["items"][0]
    ident = top["doi"] or top["identifier"]
    said = scout("vote", "elife", ident, "relevant", "--as", "ada").stdout
    assert said.startswith("noted: ada says") and "is relevant for eLife" in said
    assert "(readers' votes: 1 relevant, 0 not relevant)" in said
    assert scout("vote", "eLife", ident, "relevant", "--as", "ada").stdout.startswith("already noted")
    changed = scout("vote", "eLife", ident, "not-relevant", "--as", "ada").stdout
    assert "(readers' votes: 0 relevant, 1 not relevant)" in changed
    scout("vote", "eLife", ident, "relevant", "--as", "bob")
    shown = json.loads(scout("profiles", "show", "eLife", "--json").stdout)
    assert shown["votes"] == {"relevant": 1, "not_relevant": 1}
    assert "Did you mean" in scout("vote", "elif", ident, "relevant", code=2).stderr
    assert "no stored preprint" in scout("vote", "eLife", "10.1101/0000.00.00.000000", "relevant", code=2).stderr
    assert "relevant" in scout("vote", "eLife", ident, "maybe", code=2).output
