"""Votes as evidence (scoring.feedback) and near-duplicates (scoring.duplicates), on
synthetic embeddings where the effect of a vote is known."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.duplicates import copy_in, first_copies, keep_one_copy
from scoring.feedback import Tally, tally, with_votes
from scoring.scorer import Catalog, Negatives, fit, train_logistic

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def cluster(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float = 0.15) -> np.ndarray:
    return unit(centre + spread * rng.standard_normal((n, DIM)))


# -- counting votes ------------------------------------------------------------------------


def test_votes_of_several_people_on_one_preprint_combine():
    tallies = tally([(0, 7, True), (0, 7, True), (0, 7, False), (1, 7, False), (0, 3, False)])
    assert tallies == [Tally(0, 3, 0, 1), Tally(0, 7, 2, 1), Tally(1, 7, 0, 1)]
    assert tallies[1].is_reference and tallies[1].share == pytest.approx(2 / 3)
    assert not tallies[0].is_reference and tallies[0].share == 0.0
    assert not Tally(0, 1, 1, 1).is_reference  # a tie adds nothing to the references


def test_the_order_of_votes_does_not_change_the_tally():
    votes = [(0, 7, True), (1, 2, False), (0, 3, False), (0, 7, False)]
    assert tally(votes) == tally(list(reversed(votes)))


# -- votes into the catalog -------------------------------------------------------------------


@pytest.fixture
def small():
    rng = np.random.default_rng(3)
    centres = np.linalg.qr(rng.standard_normal((DIM, 4)))[0].T.astype(np.float32)
    catalog = Catalog(
        names=("Alpha", "Beta"),
        vectors=np.vstack([cluster(rng, centres[0], 8), cluster(rng, centres[1], 8)]),
        labels=np.repeat([0, 1], 8),
        background=unit(rng.standard_normal((40, DIM))),
    )
    return rng, centres, catalog


def test_a_relevant_majority_joins_the_references_and_every_vote_teaches_the_classifier(small):
    rng, centres, catalog = small
    tallies = [Tally(0, "a", 2, 0), Tally(1, "b", 0, 1), Tally(0, "c", 3, 1)]
    voted = cluster(rng, centres[2], 3)
    out = with_votes(catalog, tallies, voted, weight=2.0)
    assert len(out.vectors) == 18 and list(out.labels[-2:]) == [0, 0]
    np.testing.assert_allclose(out.vectors[-2:], voted[[0, 2]])
    np.testing.assert_allclose(out.weights, [1.0] * 16 + [2.0, 1.5])
    # "b" all not relevant, "c" a quarter not relevant: both negatives of their profile.
    assert list(out.negatives.labels) == [1, 0]
    np.testing.assert_allclose(out.negatives.weights, [2.0, 0.5])
    assert catalog.weights is None and catalog.negatives is None  # the input is unchanged


def test_votes_need_the_word_features_of_a_catalog_that_has_them(small):
    rng, centres, catalog = small
    from scipy import sparse

    with_words = Catalog(
        catalog.names,
        catalog.vectors,
        catalog.labels,
        catalog.background,
        lexical=sparse.random(16, 10, density=0.3, format="csr", random_state=1),
        background_lexical=sparse.random(40, 10, density=0.3, format="csr", random_state=2),
    )
    voted = cluster(rng, centres[2], 2)
    with pytest.raises(ValueError, match="word features"):
        with_votes(with_words, [Tally(0, 1, 1, 0), Tally(1, 2, 0, 1)], voted)
    words = sparse.random(2, 10, density=0.3, format="csr", random_state=3)
    out = with_votes(with_words, [Tally(0, 1, 1, 0), Tally(1, 2, 0, 1)], voted, lexical=words)
    assert out.lexical.shape == (17, 10) and out.negatives.lexical.shape == (1, 10)
    fit(out, method="blend")  # the classifier reads the negatives' words too


def test_a_vote_for_a_profile_the_catalog_does_not_have_is_refused(small):
    rng, centres, catalog = small
    with pytest.raises(ValueError, match="profile"):
        with_votes(catalog, [Tally(5, 1, 1, 0)], cluster(rng, centres[0], 1))


def test_a_negative_row_lowers_its_class_only():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((90, 4)).astype(np.float32)
    y = np.repeat([0, 1, 2], 30)
    probe = np.array([[2.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    w0, b0 = train_logistic(x, y, 3, l2=1e-2)
    from scoring.scorer import _NegativeRows

    negatives = _NegativeRows(np.repeat(probe, 5, axis=0), np.zeros(5, np.int64), np.full(5, 2.0), None)
    w1, b1 = train_logistic(x, y, 3, l2=1e-2, negatives=negatives)

    def probs(w, b):
        z = probe @ w + b
        return np.exp(z - z.max()) / np.exp(z - z.max()).sum()

    before, after = probs(w0, b0)[0], probs(w1, b1)[0]
    assert after[0] < 0.8 * before[0]
    assert after[1] > before[1] and after[2] > before[2]


def test_sample_weights_of_one_change_nothing():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = np.repeat([0, 1], 30)
    w0, b0 = train_logistic(x, y, 2, l2=1e-2)
    w1, b1 = train_logistic(x, y, 2, l2=1e-2, sample_weight=np.ones(60))
    np.testing.assert_allclose(w0, w1, atol=1e-5)
    np.testing.assert_allclose(b0, b1, atol=1e-5)


def test_negatives_need_a_label_and_a_weight_per_row():
    with pytest.raises(ValueError, match="one label and one weight"):
        Negatives(np.zeros((2, DIM)), np.zeros(2, np.int64), np.ones(1))


# -- the effect of votes on a known problem ---------------------------------------------------


@pytest.fixture
def drift():
    """Alpha's papers sit on one topic; its new preprints drift to a neighbouring one
    ("drifted"), and a third topic nearby ("decoy") belongs elsewhere."""
    rng = np.random.default_rng(11)
    basis = np.linalg.qr(rng.standard_normal((DIM, 5)))[0].T.astype(np.float32)
    alpha, beta = basis[0], basis[1]
    drifted = unit((alpha + basis[2])[None, :])[0]
    decoy = unit((alpha + basis[3])[None, :])[0]
    catalog = Catalog(
        names=("Alpha", "Beta"),
        vectors=np.vstack([cluster(rng, alpha, 60), cluster(rng, beta, 60)]),
        labels=np.repeat([0, 1], 60),
        background=unit(rng.standard_normal((150, DIM))),
    )
    return rng, catalog, drifted, decoy


def test_relevant_votes_raise_the_profile_for_more_of_the_same(drift):
    rng, catalog, drifted, _ = drift
    before = fit(catalog, method="blend")
    voted = cluster(rng, drifted, 6)
    after = fit(with_votes(catalog, [Tally(0, i, 1, 0) for i in range(6)], voted), method="blend")
    fresh = cluster(rng, drifted, 20)
    p0, p1 = before.predict_proba(fresh), after.predict_proba(fresh)
    assert p1[:, 0].mean() > 1.5 * p0[:, 0].mean()
    np.testing.assert_allclose(p1.sum(axis=1), 1.0, rtol=1e-9)
    # Alpha's own topic keeps its score: the votes added to the profile, they did not move it.
    home = cluster(rng, catalog.vectors[:60].mean(axis=0), 20)
    assert after.predict_proba(home)[:, 0].mean() > 0.8 * before.predict_proba(home)[:, 0].mean()


def test_not_relevant_votes_lower_that_profile_only(drift):
    rng, catalog, _, decoy = drift
    before = fit(catalog, method="blend")
    voted = cluster(rng, decoy, 8)
    after = fit(with_votes(catalog, [Tally(0, i, 0, 1) for i in range(8)], voted), method="blend")
    fresh = cluster(rng, decoy, 20)
    p0, p1 = before.predict_proba(fresh), after.predict_proba(fresh)
    assert p1[:, 0].mean() < 0.8 * p0[:, 0].mean()
    # Beta was not voted on: its share of what Alpha gave up is not smaller than before.
    assert p1[:, 1].mean() >= 0.95 * p0[:, 1].mean()


# -- near-duplicates -----------------------------------------------------------------------


def test_copies_of_one_text_are_found_and_one_is_kept():
    rng = np.random.default_rng(2)
    distinct = unit(rng.standard_normal((5, DIM)))
    copies = unit(distinct[1] + 0.02 * rng.standard_normal((3, DIM)))
    x = np.vstack([distinct, copies])
    assert list(first_copies(x)) == [0, 1, 2, 3, 4, 1, 1, 1]
    assert list(keep_one_copy(x)) == [0, 1, 2, 3, 4]
    assert list(copy_in(copies, distinct)) == [1, 1, 1]
    assert list(copy_in(distinct[[0, 2]], copies)) == [-1, -1]
    assert list(copy_in(distinct, np.zeros((0, DIM)))) == [-1] * 5
