"""Rankings and matches as queries: the window's bounds, and free text against a catalog
that changed since it was scored."""

from __future__ import annotations

from datetime import date

import pytest

from bot.profiles.catalog import add_profile, read_papers
from bot.scores.rankings import PreprintNotFound, match_text, window_bounds
from bot.scores.update import update_scores
from tests.paths import FIXTURES

PROFILES = FIXTURES / "profiles"


def test_the_last_n_days_are_n_dates_ending_today():
    assert window_bounds(90, date(2026, 5, 31)) == (date(2026, 3, 3), date(2026, 5, 31))
    assert window_bounds(1, date(2026, 5, 31)) == (date(2026, 5, 31), date(2026, 5, 31))


def test_free_text_is_never_scored_with_a_model_fitted_on_another_catalog(db, scoring_ctx):
    with db.session() as session:
        for name in ("elife", "plos-computational-biology"):
            add_profile(session, name, read_papers(PROFILES / f"{name}.jsonl").papers, source="test")
        update_scores(session, scoring_ctx)
    paper = read_papers(PROFILES / "genome-biology-and-evolution.jsonl").papers[0]
    text = f"{paper.title}. {paper.abstract}"
    with db.session() as session:
        before = match_text(session, scoring_ctx, text)
        assert {m.profile for m in before.matches} == {"elife", "plos-computational-biology"}
        add_profile(session, "gbe", read_papers(PROFILES / "genome-biology-and-evolution.jsonl").papers, "test")
    with db.session() as session, pytest.raises(PreprintNotFound, match="profiles changed"):
        match_text(session, scoring_ctx, text)
    with db.session() as session:
        update_scores(session, scoring_ctx)
        after = match_text(session, scoring_ctx, text)
    assert after.matches[0].profile == "gbe"  # one of its own papers
    assert sum(m.score for m in after.matches) + after.background == pytest.approx(1.0)
