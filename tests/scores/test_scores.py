"""Stored scores from the blended model, end to end through the database: a refit, then
incremental scoring and free text with the stored run. Vectors are cached synthetic
embeddings (the model loads only for the free text); words come from the texts."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import event, func, select

from bot.config import BUNDLED_MODEL
from bot.db import Embedding, Preprint, Profile, ReferencePaper, Score
from bot.profiles.catalog import normalise_name
from bot.scores.rankings import match_text
from bot.scores.update import PRELOAD_THREAD, ScoringContext, latest_run, update_scores
from scoring.embedder import vector_key
from scoring.lexical import LEXICAL_DIM
from scoring.scorer import Blend
from scoring.text import content_hash

DIM = 384
TOPICS = {"Fish Journal": "zebrafish fin regeneration", "Plant Journal": "arabidopsis root growth"}


def _store_vector(session, key: str, vector: np.ndarray) -> None:
    vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    session.merge(Embedding(model=vector_key(BUNDLED_MODEL), content_hash=key, dim=DIM, vector=vector.tobytes()))


def _preprint(session, number: int, vector: np.ndarray, words: str, text: tuple[str, str] | None = None) -> Preprint:
    title, abstract = text or (f"Preprint {number} on {words}", f"We study {words} in experiment {number}.")
    row = Preprint(
        server="biorxiv",
        identifier=f"10.1101/{number}",
        title=title,
        abstract=abstract,
        content_hash=content_hash(title, abstract),
    )
    session.add(row)
    _store_vector(session, row.content_hash, vector)
    return row


@pytest.fixture
def catalog(db):
    """Two profiles on one embedded topic that only their words tell apart, 60 papers each,
    and 120 stored preprints: enough for the blended model and its background sample."""
    rng = np.random.default_rng(4)
    topic = rng.standard_normal(DIM) / np.sqrt(DIM)
    with db.session() as session:
        for name, words in TOPICS.items():
            profile = Profile(name=name, name_key=normalise_name(name), source="test")
            for i in range(60):
                title, abstract = f"{name} paper {i}", f"On {words}, part {i}."
                paper = ReferencePaper(title=title, abstract=abstract, content_hash=content_hash(title, abstract))
                profile.papers.append(paper)
                _store_vector(session, paper.content_hash, topic + 0.1 * rng.standard_normal(DIM))
            session.add(profile)
        for i in range(120):
            _preprint(session, i, rng.standard_normal(DIM), f"soil bacteria survey {i % 7}")
    return rng, topic


def _scores(session, preprint_id: int) -> dict[str, float]:
    rows = session.execute(select(Profile.name, Score.score).join(Profile).where(Score.preprint_id == preprint_id))
    return dict(rows.all())


def test_the_stored_blended_model_reads_words_for_new_preprints_and_free_text(db, scoring_ctx, catalog):
    rng, topic = catalog
    with db.session() as session:
        report = update_scores(session, scoring_ctx)
        run = latest_run(session)
        blend = Blend.from_bytes(run.model_blob)
        assert report.refitted and blend.lexical_dim == LEXICAL_DIM and blend.fold_weights is not None
    with db.session() as session:  # a new preprint: scored with the stored run, not a refit
        fish = _preprint(session, 900, topic + 0.1 * rng.standard_normal(DIM), "zebrafish fin regeneration")
        session.flush()
        report = update_scores(session, scoring_ctx)
        assert not report.refitted and report.scored == 1
        scores = _scores(session, fish.id)
    assert scores["Fish Journal"] > 2 * scores["Plant Journal"]
    with db.session() as session:
        answer = match_text(session, scoring_ctx, "Arabidopsis root growth under drought, measured in seedlings.")
    by_name = {m.profile: m.score for m in answer.matches}
    assert sum(by_name.values()) + answer.background == pytest.approx(1.0)
    assert by_name["Plant Journal"] > by_name["Fish Journal"]


def test_settle_waits_for_a_background_load_and_the_model_loads_once():
    started, release = threading.Event(), threading.Event()
    loads: list[str] = []

    def slow_load():
        started.set()
        release.wait(10)
        loads.append(threading.current_thread().name)
        return object()

    ctx = ScoringContext(BUNDLED_MODEL, slow_load)
    ctx.preload()
    ctx.preload()  # a second call while loading starts nothing new
    assert started.wait(5)
    settler = threading.Thread(target=ctx.settle)
    settler.start()
    settler.join(0.3)
    assert settler.is_alive()  # the load is still running, so settle has not returned
    release.set()
    settler.join(5)
    assert not settler.is_alive()
    assert loads == [PRELOAD_THREAD]
    assert ctx.embedder() is ctx.embedder()  # loaded once, by the preload
    assert loads == [PRELOAD_THREAD]


def test_settle_without_a_preload_returns_at_once():
    ctx = ScoringContext(BUNDLED_MODEL, lambda: object())
    ctx.settle()
    assert ctx._preloading is None


def _add_profile(
    session, rng, name: str, topic: np.ndarray, papers: int = 5, words: str | None = None, spread: float = 0.1
) -> None:
    """A profile of papers near `topic`, on `words` when given (`_text`)."""
    profile = Profile(name=name, name_key=normalise_name(name), source="test")
    for i in range(papers):
        title, abstract = _text(rng, words) if words else (f"{name} paper {i}", f"On {name.lower()} matters, part {i}.")
        key = content_hash(title, abstract)
        profile.papers.append(ReferencePaper(title=title, abstract=abstract, content_hash=key))
        _store_vector(session, key, topic + spread * rng.standard_normal(DIM))
    session.add(profile)


def _statements_of_a_refit(db, ctx) -> list[str]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.session() as session:
            assert update_scores(session, ctx).refitted
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def test_a_refit_after_adding_one_profile_reads_each_thing_once_whatever_the_catalog_size(db, catalog):
    """Counted, not timed: adding a profile embeds nothing already cached, reads every
    vector once, costs the same statements with 3 profiles as with 6 (nothing is fetched
    profile by profile), and fits half the regressions of a first fit (the classifier's
    penalty is kept); only the scores, which all change, are all rewritten."""
    rng, topic = catalog
    regressions: list[int] = []

    def steps(name: str, total: int):
        if name.startswith("fitting"):
            regressions.append(total)

    def refuse_model():
        raise AssertionError("every vector is cached: the model must not load")

    ctx = ScoringContext(BUNDLED_MODEL, refuse_model, background_size=2000, progress=steps)
    with db.session() as session:
        update_scores(session, ctx)
        _add_profile(session, rng, "Third", rng.standard_normal(DIM))
    small = _statements_of_a_refit(db, ctx)
    with db.session() as session:
        for name in ("Fourth", "Fifth"):
            _add_profile(session, rng, name, rng.standard_normal(DIM))
        update_scores(session, ctx)
        _add_profile(session, rng, "Sixth", rng.standard_normal(DIM))
    large = _statements_of_a_refit(db, ctx)

    def reads(statements: list[str], table: str) -> int:
        return sum(s.lstrip().upper().startswith("SELECT") and f"FROM {table}" in s for s in statements)

    assert reads(large, "embeddings") == reads(small, "embeddings") == 1
    assert reads(large, "reference_papers") == reads(small, "reference_papers") == 1
    assert len(large) == len(small)
    # 3 penalties x 3 folds + the classifier + 2 without a share of the background; then,
    # the penalty kept, 3 folds + 3. Fourth and Fifth (+12.5% papers) searched again.
    assert regressions == [12, 6, 12, 6]
    with db.session() as session:
        preprints = session.scalar(select(func.count()).select_from(Preprint))
        assert session.scalar(select(func.count()).select_from(Score)) == preprints * 6


def test_every_step_of_a_refit_reports_until_done(db, catalog):
    seen: dict[str, list[int]] = {}

    def steps(name: str, total: int):
        seen[name] = [0, total]

        def advance(n: int) -> None:
            seen[name][0] += n

        return advance

    def refuse_model():
        raise AssertionError("every vector is cached: the model must not load")

    with db.session() as session:
        report = update_scores(session, ScoringContext(BUNDLED_MODEL, refuse_model, progress=steps))
    assert report.refitted
    assert set(seen) == {"fitting (regressions)", "scoring", "writing scores"}  # nothing to embed
    assert all(done == total for done, total in seen.values())
    assert seen["scoring"][1] == report.scored
    assert seen["writing scores"][1] == report.scored * report.profiles


def test_a_refit_as_the_store_grows_keeps_the_scores_it_gave(db):
    """A fresh install stores fewer preprints than its background sample's size, and
    refits as the store grows. Each refit samples more of the same stream as "elsewhere";
    the scores of preprints already stored must keep their meaning, not all drop as the
    sample fills up (the sample weighs as a full one from the first fit on)."""
    rng = np.random.default_rng(8)
    topics = {name: rng.standard_normal(DIM) / np.sqrt(DIM) for name in TOPICS}
    ctx = ScoringContext(BUNDLED_MODEL, _no_model, background_size=400)
    with db.session() as session:
        for name, words in TOPICS.items():
            _add_profile(session, rng, name, topics[name], papers=60, words=words, spread=SPREAD)
    probes = _store_stream(db, rng, topics, range(100))
    with db.session() as session:
        assert update_scores(session, ctx).refitted
        before = np.array([sum(_scores(session, i).values()) for i in probes])
    _store_stream(db, rng, topics, range(100, 400))
    with db.session() as session:
        assert update_scores(session, ctx).refitted  # the store outgrew the background
        after = np.array([sum(_scores(session, i).values()) for i in probes])
    assert before.max() > 0.3  # a profile's topic is likely a profile's, not only elsewhere's
    assert np.abs(after - before).mean() < 0.05


def _no_model():
    raise AssertionError("every vector is cached: the model must not load")


# Papers on one topic as close as a field's (cosine about 0.6), not as far as the
# fixtures' (about 0.2): close enough that a preprint on it could be a profile's or not.
SPREAD = 0.04


def _text(rng, words: str) -> tuple[str, str]:
    """A title and abstract with nothing but their topic's words and a made-up word of
    their own: a reference paper and a preprint on one topic read alike."""
    return f"On {words}", f"We study {words} ({''.join(rng.choice(list('bcdfghkmnpstvz'), 10))})."


def _store_stream(db, rng, topics: dict[str, np.ndarray], numbers: range) -> list[int]:
    """Stored preprints: every third on one profile's topic, in its words; the rest on soil."""
    ids = []
    with db.session() as session:
        for number in numbers:
            name = list(TOPICS)[number % 2] if number % 3 == 0 else None
            vector = rng.standard_normal(DIM) if name is None else topics[name] + SPREAD * rng.standard_normal(DIM)
            words = TOPICS[name] if name else f"soil bacteria survey {number % 7}"
            row = _preprint(session, number, vector, words, text=_text(rng, words))
            session.flush()
            ids.append(row.id)
    return ids
