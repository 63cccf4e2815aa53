"""Profiles from files, with the rules a user meets: minimum papers, bad rows, name look-ups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.profiles.catalog import (
    MIN_PAPERS,
    ProfileError,
    add_profile,
    closest_names,
    find_profile,
    paper_counts,
    read_papers,
)
from tests.paths import FIXTURES


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(json.dumps(r) if not isinstance(r, str) else r for r in rows) + "\n")
    return path


def test_reads_jsonl_and_reports_bad_rows(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"title": "A <i>fly</i> atlas", "abstract": "Cells &amp; circuits.", "doi": "10.7554/x", "year": 2015},
            "{not json",
            {"title": "", "abstract": ""},
            {"title": "A <i>fly</i> atlas", "abstract": "Cells &amp; circuits."},
            [1, 2],
        ],
    )
    parsed = read_papers(path)
    assert [(p.title, p.abstract, p.year) for p in parsed.papers] == [("A fly atlas", "Cells & circuits.", 2015)]
    reasons = " | ".join(parsed.skipped)
    assert "line 2: not JSON" in reasons
    assert "no title or abstract" in reasons
    assert "duplicate" in reasons
    assert "not a JSON object" in reasons


def test_reads_csv_with_optional_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("Title,Abstract,Journal,Year\nOne,First abstract,eLife,2014\nTwo,Second,,n/a\n")
    papers = read_papers(path).papers
    assert [(p.title, p.journal, p.year) for p in papers] == [("One", "eLife", 2014), ("Two", None, None)]


def test_csv_without_title_or_abstract_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("name,text\na,b\n")
    with pytest.raises(ProfileError, match="'title' and 'abstract'"):
        read_papers(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ProfileError, match="no such file"):
        read_papers(tmp_path / "nope.jsonl")


def test_profiles_need_enough_papers_and_unique_names(db):
    papers = read_papers(FIXTURES / "profiles" / "elife.jsonl").papers
    with db.session() as session:
        with pytest.raises(ProfileError, match=f"at least {MIN_PAPERS}"):
            add_profile(session, "Tiny", papers[: MIN_PAPERS - 1], source="test")
        add_profile(session, "eLife", papers, source="test")
    with db.session() as session:
        with pytest.raises(ProfileError, match="exists"):
            add_profile(session, "ELIFE", papers, source="test")
        rebuilt = add_profile(session, "elife", papers[:5], source="test", replace=True)
        assert len(rebuilt.papers) == 5
    with db.session() as session:
        assert [(p.name, n) for p, n in paper_counts(session)] == [("eLife", 5)]  # same profile, new papers


def test_lookup_is_case_insensitive_and_suggests_close_names(db):
    papers = read_papers(FIXTURES / "profiles" / "elife.jsonl").papers
    with db.session() as session:
        for name in ("PLOS Genetics", "PLOS ONE", "Genome Biology"):
            add_profile(session, name, papers, source="test")
    with db.session() as session:
        assert find_profile(session, "  plos   genetics ").name == "PLOS Genetics"
        with pytest.raises(ProfileError) as info:
            find_profile(session, "PLOS Genetcs")
        assert "Did you mean: PLOS Genetics" in str(info.value)


def test_closest_names_prefers_substrings():
    names = ["PLOS Genetics", "Genetics", "Genome Biology", "Nature"]
    assert closest_names("genetics", names)[:2] == ["PLOS Genetics", "Genetics"] or set(
        closest_names("genetics", names)[:2]
    ) == {"PLOS Genetics", "Genetics"}
    assert closest_names("zzz", names) == []
