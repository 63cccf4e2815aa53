"""Votes and near-duplicates through the database: a Slack vote, then a rescoring, moves
similar preprints up; copies of one abstract no longer sink each other. Vectors are cached
synthetic embeddings (as in test_scores.py); words come from the texts."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from bot.config import BUNDLED_MODEL
from bot.db import Embedding, Preprint, Profile, ReferencePaper, Score, Vote
from bot.delivery.slack.answers import vote
from bot.profiles.catalog import normalise_name
from bot.scores.update import latest_run, update_scores
from scoring.embedder import vector_key
from scoring.text import content_hash

DIM = 384
TOPICS = {"Fish Journal": "zebrafish fin regeneration", "Plant Journal": "arabidopsis root growth"}


def _store_vector(session, key: str, vector: np.ndarray) -> None:
    vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    session.merge(Embedding(model=vector_key(BUNDLED_MODEL), content_hash=key, dim=DIM, vector=vector.tobytes()))


def _preprint(session, identifier: str, vector: np.ndarray, title: str, abstract: str) -> Preprint:
    row = Preprint(
        server="biorxiv",
        identifier=identifier,
        doi=identifier,
        title=title,
        abstract=abstract,
        content_hash=content_hash(title, abstract),
    )
    session.add(row)
    _store_vector(session, row.content_hash, vector)
    session.flush()
    return row


@pytest.fixture
def world(db):
    """Two profiles on two topics, 60 papers each, and 120 stored preprints on neither."""
    rng = np.random.default_rng(5)
    topics = {name: rng.standard_normal(DIM) / np.sqrt(DIM) for name in TOPICS}
    with db.session() as session:
        for name, words in TOPICS.items():
            profile = Profile(name=name, name_key=normalise_name(name), source="test")
            for i in range(60):
                title, abstract = f"{name} paper {i}", f"On {words}, part {i}."
                paper = ReferencePaper(title=title, abstract=abstract, content_hash=content_hash(title, abstract))
                profile.papers.append(paper)
                _store_vector(session, paper.content_hash, topics[name] + 0.1 * rng.standard_normal(DIM))
            session.add(profile)
        for i in range(120):
            words = f"soil bacteria survey {i % 7}"
            _preprint(
                session, f"10.1101/{i}", rng.standard_normal(DIM), f"Preprint {i} on {words}", f"We study {words}."
            )
    return rng, topics


def _fish_scores(session) -> dict[int, float]:
    fish = session.scalar(select(Profile).where(Profile.name == "Fish Journal"))
    return dict(session.execute(select(Score.preprint_id, Score.score).where(Score.profile_id == fish.id)).all())


def _rank(scores: dict[int, float], preprint_id: int) -> int:
    return 1 + sum(s > scores[preprint_id] for s in scores.values())


def test_seven_copies_of_one_abstract_no_longer_sink_all_eight(db, scoring_ctx, world):
    rng, topics = world
    abstract = "Zebrafish fin regeneration depends on a wave of osteoblast dedifferentiation after amputation."
    original = topics["Fish Journal"] + 0.1 * rng.standard_normal(DIM)
    with db.session() as session:
        lone = _preprint(
            session,
            "10.1101/lone",
            topics["Fish Journal"] + 0.1 * rng.standard_normal(DIM),
            "Fin rays regrow from blastema cells",
            "Zebrafish fin regeneration starts from a blastema that forms within a day of amputation.",
        )
        copies = [_preprint(session, "10.1101/original", original, "Osteoblasts in fin regeneration", abstract)]
        for i in range(7):  # the same abstract under other titles and DOIs, so other hashes
            vector = original + 0.01 * rng.standard_normal(DIM)
            copies.append(_preprint(session, f"10.1101/copy{i}", vector, f"Copy {i}: osteoblasts in fins", abstract))
        update_scores(session, scoring_ctx)
        fish = _fish_scores(session)
        ids = [c.id for c in copies]
        background = set(latest_run(session).background_ids)
        lone_id = lone.id
    assert len(background & set(ids)) == 1  # the background keeps one copy of the text
    assert _rank(fish, lone_id) <= len(ids) + 1  # above every preprint on soil
    for preprint_id in ids:  # every copy, the original included, scores like a lone preprint
        assert fish[preprint_id] > 0.5 * fish[lone_id]
        assert _rank(fish, preprint_id) <= 9


def test_a_slack_vote_then_a_rescoring_moves_similar_preprints_up(db, scoring_ctx, world):
    rng, topics = world
    # A new line of work the Fish Journal's editor wants, though its papers are not on it yet.
    drift = rng.standard_normal(DIM) / np.sqrt(DIM)
    words = "zebrafish heart regeneration imaging"
    with db.session() as session:
        drifted = [
            _preprint(
                session,
                f"10.1101/heart{i}",
                drift + 0.1 * rng.standard_normal(DIM),
                f"Heart study {i}",
                f"We image {words} in larvae, experiment {i}.",
            ).id
            for i in range(8)
        ]
        fish_id = session.scalar(select(Profile.id).where(Profile.name == "Fish Journal"))
        update_scores(session, scoring_ctx)
        before = _fish_scores(session)
    for preprint_id in drifted[:4]:
        vote(db, f"{fish_id}:{preprint_id}", "T1", "U1", True)
    vote(db, f"{fish_id}:{drifted[0]}", "T1", "U2", True)  # a second editor agrees
    with db.session() as session:
        assert session.scalar(select(Vote.id).limit(1)) is not None
        report = update_scores(session, scoring_ctx)
        after = _fish_scores(session)
    assert report.refitted  # the votes are part of the catalog: they refit it
    for preprint_id in drifted[4:]:  # not voted on, but like those that were
        assert after[preprint_id] > 2 * before[preprint_id]
        assert _rank(after, preprint_id) < _rank(before, preprint_id)
    with db.session() as session:
        assert not update_scores(session, scoring_ctx).refitted  # unchanged votes: no refit


def test_a_changed_vote_refits_and_not_relevant_lowers_the_profile(db, scoring_ctx, world):
    rng, topics = world
    near = topics["Fish Journal"] + 0.9 * rng.standard_normal(DIM) / np.sqrt(DIM)
    words = "zebrafish behaviour screens"
    with db.session() as session:
        ids = [
            _preprint(
                session,
                f"10.1101/near{i}",
                near + 0.05 * rng.standard_normal(DIM),
                f"Screen {i}",
                f"We run {words}, screen {i}.",
            ).id
            for i in range(8)
        ]
        fish_id = session.scalar(select(Profile.id).where(Profile.name == "Fish Journal"))
        update_scores(session, scoring_ctx)
        before = _fish_scores(session)
    for preprint_id in ids[:5]:
        vote(db, f"{fish_id}:{preprint_id}", "T1", "U1", True)
    for preprint_id in ids[:5]:  # the same editor changes their mind: the later vote counts
        vote(db, f"{fish_id}:{preprint_id}", "T1", "U1", False)
    with db.session() as session:
        assert update_scores(session, scoring_ctx).refitted
        after = _fish_scores(session)
    assert np.mean([after[i] for i in ids[5:]]) < np.mean([before[i] for i in ids[5:]])


def test_profiles_show_lists_what_the_votes_changed(db, scout):
    with db.session() as session:
        profile = Profile(name="Fish Journal", name_key=normalise_name("Fish Journal"), source="test")
        session.add(profile)
        voted = [
            _preprint(session, f"10.1101/v{i}", np.ones(DIM), f"Voted preprint {i}", "About fins.") for i in range(3)
        ]
        session.flush()
        for preprint, users in zip(voted, [("U1", "U2"), ("U1",), ("U1", "U2")], strict=True):
            for user in users:
                relevant = preprint is voted[0] or (preprint is voted[2] and user == "U1")
                session.add(Vote(profile_id=profile.id, preprint_id=preprint.id, user_id=user, relevant=relevant))
    result = scout("profiles", "show", "fish journal")
    assert "readers' votes: 3 relevant, 2 not relevant" in result.stdout
    assert "added to the papers: Voted preprint 0 (10.1101/v0; 2 relevant, 0 not)" in result.stdout
    assert "negative example: Voted preprint 1 (10.1101/v1; 0 relevant, 1 not)" in result.stdout
    assert "negative example (votes split): Voted preprint 2" in result.stdout
    shown = scout("profiles", "show", "fish journal", "--json").stdout
    assert '"effect": "added to the papers"' in shown
