"""Rankings and matches as queries: the window's bounds, and free text against a catalog
that changed since it was scored."""

from __future__ import annotations

import random
from datetime import date

import pytest
from sqlalchemy import select

from bot.db import Preprint, Profile, Score
from bot.profiles.catalog import add_profile, read_papers
from bot.scores.rankings import PreprintNotFound, match_text, rank_profile, window_bounds
from bot.scores.update import update_scores
from tests.fake_slack import seed_catalog
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


def test_a_ranking_is_the_window_sorted_with_its_statistics_as_defined(db, scoring_ctx):
    """`rank_profile` reads two columns of the window and loads only the rows it shows; the
    answer must be what the whole window, read in full, says: same order (score, then
    newest, then first stored), same count, average, top share and lift."""
    rng = random.Random(5)
    # Ties on purpose (scores from a few values), and preprints outside the window.
    specs = [{"title": f"Preprint {i}", "abstract": f"On topic {i}.", "age": rng.randint(1, 120)} for i in range(80)]
    levels = [rng.choice((0.01, 0.02, 0.05, 0.2, 0.5)) for _ in specs]
    seed_catalog(db, ["Alpha", "Beta"], specs, lambda p, q: levels[q] if p == 0 else 1.0 - levels[q])
    with db.session() as session:
        ranking = rank_profile(session, scoring_ctx, "Alpha", days=90, top=15)
        since, until = window_bounds(90)
        alpha = session.scalar(select(Profile).where(Profile.name == "Alpha"))
        window = [
            (p, s)
            for p, s in session.execute(select(Preprint, Score.score).join(Score).where(Score.profile_id == alpha.id))
            if since <= p.posted <= until
        ]
    window.sort(key=lambda row: (-row[1], -row[0].posted.toordinal(), row[0].id))
    scores = [s for _, s in window]
    average = sum(scores) / len(scores)
    assert (ranking.window_count, ranking.average) == (len(window), pytest.approx(average))
    assert [i.identifier for i in ranking.items] == [p.identifier for p, _ in window[:15]]
    for item, (preprint, score) in zip(ranking.items, window, strict=False):
        assert (item.title, item.posted, item.score) == (preprint.title, preprint.posted.isoformat(), score)
        assert item.top_share == sum(s >= score for s in scores) / len(scores)
        assert item.lift == pytest.approx(score / average)
        assert len(item.why) == 3
