"""Each peer method, and the default scorer, on a small synthetic problem with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.evaluate import METHODS, cv_splits, evaluate, select_methods, stratified_folds
from scoring.peers import Papers, _knn_vote, _zotero_scores

DIM = 24
WORDS = [
    ["gene", "genome", "allele", "locus"],
    ["neuron", "cortex", "synapse", "spike"],
    ["protein", "fold", "binding", "structure"],
]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def world(n_per: int = 12, seed: int = 0) -> Papers:
    """Three well-separated journals with their own words and subjects, one a third the size."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.standard_normal((DIM, 3)))[0].T
    sizes = [n_per, n_per, n_per // 3]
    labels = np.repeat(np.arange(3), sizes)
    vectors = unit(centres[labels] + 0.25 * rng.standard_normal((len(labels), DIM)))
    texts = tuple(" ".join(rng.choice(WORDS[c], 6)) + " study of data" for c in labels)
    subjects = np.eye(3, dtype=np.float32)[labels]
    subjects[::4] = 0  # some unknown
    return Papers(vectors, labels, texts, subjects)


@pytest.mark.parametrize("name", [m for m in METHODS if m != "prior"])
def test_each_method_finds_the_right_journal(name):
    papers = world()
    train, test = papers.take(np.arange(0, len(papers), 2)), papers.take(np.arange(1, len(papers), 2))
    scores = METHODS[name](train, 3, test)
    assert scores.probs.shape == scores.digest.shape == (len(test), 3)
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, rtol=1e-6)
    assert (scores.probs.argmax(axis=1) == test.labels).mean() >= 0.9
    # Digest: for each journal, its own papers rank first.
    for j in range(3):
        top = np.argsort(-scores.digest[:, j])[: int((test.labels == j).sum())]
        assert (test.labels[top] == j).mean() >= 0.8


def test_prior_ranks_by_size_only():
    papers = world()
    scores = METHODS["prior"](papers, 3, papers.take(np.arange(3)))
    np.testing.assert_allclose(scores.probs[0], np.bincount(papers.labels) / len(papers))


def test_knn_vote_by_hand():
    train = Papers(unit(np.array([[1.0, 0], [0.8, 0.6], [0, 1]])), np.array([0, 1, 1]))
    test = Papers(unit(np.array([[1.0, 0]])), np.array([0]))
    votes = _knn_vote(train, 2, test, k=2)  # neighbours: row 0 (cos 1.0), row 1 (cos 0.8)
    np.testing.assert_allclose(votes[0], [1 / 1.8, 0.8 / 1.8])


def test_zotero_weights_by_hand():
    train = Papers(unit(np.array([[1.0, 0], [0.6, 0.8]])), np.array([0, 0]))
    test = Papers(unit(np.array([[1.0, 0]])), np.array([0]))
    w = 1 / (1 + np.log10([1, 2]))
    expected = (w @ [1.0, 0.6]) / w.sum()
    assert _zotero_scores(train, 1, test)[0, 0] == pytest.approx(expected)


def test_folds_are_stratified_and_singletons_only_train():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2 + [3])
    which = stratified_folds(labels, 5, seed=1)
    assert which[-1] == -1
    for f in range(5):
        assert (labels[which == f] == 0).sum() == 2
        assert (labels[which == f] == 1).sum() == 1
    assert sorted(which[labels == 2]) != [-1, -1] and len(set(which[labels == 2])) == 2
    splits = cv_splits(labels, 5)
    assert all(17 in s.train for s in splits)


def test_cross_validation_end_to_end_on_synthetic_papers():
    papers = world(n_per=15)
    results = evaluate(papers, cv_splits(papers.labels, 3), select_methods("scout,prior,centroid"))
    by = {r.method: r for r in results}
    assert by["scout"].ranking.acc_at_1 >= 0.9
    assert by["scout"].ranking.mrr > by["prior"].ranking.mrr
    assert by["scout"].retrieval.map > by["prior"].retrieval.map
    assert by["prior"].ranking.n == len(papers)


def test_unknown_method_names_say_what_exists():
    with pytest.raises(ValueError, match="choose from"):
        select_methods("scout,magic")


def test_default_scorer_stores_and_reloads_without_refitting():
    from scoring.scorer import Catalog, Scorer, fit

    papers = world()
    background = unit(np.random.default_rng(3).standard_normal((30, DIM)))
    catalog = Catalog(
        ("a", "b", "c"), papers.vectors, papers.labels, background, papers.subjects, np.zeros((30, 3), np.float32)
    )
    scorer = fit(catalog, method="blend")
    assert scorer.calibration is not None and scorer.calibration.l2 is not None
    assert dict(scorer.calibration.weights)["classifier"] != 0
    again = Scorer.from_bytes(catalog, scorer.to_bytes())
    probs = scorer.predict_proba(papers.vectors[:5], subjects=papers.subjects[:5])
    np.testing.assert_allclose(again.predict_proba(papers.vectors[:5], subjects=papers.subjects[:5]), probs)
    assert probs.shape == (5, 4)
    # Leaving a background preprint out of its own background changes only its own row.
    excl = np.array([0, -1])
    left_out = scorer.predict_proba(background[:2], exclude_background=excl)
    np.testing.assert_allclose(left_out[1], scorer.predict_proba(background[1:2])[0], rtol=1e-4, atol=1e-9)
    assert not np.allclose(left_out[0], scorer.predict_proba(background[:1])[0])
