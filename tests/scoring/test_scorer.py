"""Score semantics on synthetic embeddings where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.scorer import (
    CHANNELS,
    Catalog,
    Scorer,
    _hubness,
    background_weight,
    expected_calibration_error,
    fit,
    nearest_references,
)
from scoring.window import format_lift, format_score, format_top, top_share, top_shares_of_best, window_stats

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def cluster(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float = 0.15) -> np.ndarray:
    return unit(centre + spread * rng.standard_normal((n, DIM)))


@pytest.fixture
def world():
    rng = np.random.default_rng(7)
    # Orthogonal topics: a "stranger" topic shares nothing with the profiles.
    centres = np.linalg.qr(rng.standard_normal((DIM, 4)))[0].T.astype(np.float32)
    refs = [cluster(rng, centres[i], 20) for i in range(3)]
    background = unit(rng.standard_normal((200, DIM)))
    catalog = Catalog(
        names=("Alpha", "Beta", "Gamma"),
        vectors=np.vstack(refs),
        labels=np.repeat(np.arange(3), 20),
        background=background,
    )
    return rng, centres, catalog


def test_probabilities_over_catalog_plus_background_sum_to_one(world):
    rng, centres, catalog = world
    scorer = fit(catalog)
    queries = np.vstack([cluster(rng, centres[i], 5) for i in range(4)])
    probs = scorer.predict_proba(queries)
    assert probs.shape == (20, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-9)
    assert (probs >= 0).all()


def test_preprints_go_to_their_own_profile_and_strangers_to_background(world):
    rng, centres, catalog = world
    scorer = fit(catalog)
    for i in range(3):
        probs = scorer.predict_proba(cluster(rng, centres[i], 10))
        assert (probs.argmax(axis=1) == i).mean() >= 0.9
    stranger = scorer.predict_proba(cluster(rng, centres[3], 10))
    assert (stranger.argmax(axis=1) == catalog.background_index).all()


def test_one_profile_catalog_still_separates_near_from_far(world):
    rng, centres, _ = world
    refs = cluster(rng, centres[0], 15)
    for background in (np.zeros((0, 0), np.float32), unit(rng.standard_normal((100, DIM)))):
        scorer = fit(Catalog(("Only",), refs, np.zeros(15, dtype=np.int64), background))
        near = scorer.predict_proba(cluster(rng, centres[0], 10))[:, 0]
        far = scorer.predict_proba(cluster(rng, centres[1], 10))[:, 0]
        assert near.min() > far.max()
        assert near.mean() > 0.5 > far.mean()


def test_adding_a_profile_takes_probability_from_the_others(world):
    rng, centres, catalog = world
    query = cluster(rng, centres[3], 5)
    before = fit(catalog).predict_proba(query)
    grown = Catalog(
        names=catalog.names + ("Delta",),
        vectors=np.vstack([catalog.vectors, cluster(rng, centres[3], 20)]),
        labels=np.concatenate([catalog.labels, np.full(20, 3)]),
        background=catalog.background,
    )
    after = fit(grown).predict_proba(query)
    assert after[:, 3].mean() > 0.5
    assert after[:, -1].mean() < before[:, -1].mean()


def test_calibration_is_fitted_and_reported(world):
    _, _, catalog = world
    scorer = fit(catalog)
    cal = scorer.calibration
    assert cal is not None and cal.heldout == len(catalog.labels) + len(catalog.background)
    assert 0 < cal.temperature < 20
    assert 0 <= cal.ece < 0.2


def test_excluding_a_preprint_from_its_own_background(world):
    _, _, catalog = world
    scorer = Scorer(catalog, tau=0.05)
    member = catalog.background[:1]
    with_self = scorer.predict_proba(member)[0, -1]
    without = scorer.predict_proba(member, exclude_background=np.array([0]))[0, -1]
    assert with_self > without


def test_nearest_references_are_the_profile_papers_closest_to_the_preprint(world):
    _, _, catalog = world
    scorer = Scorer(catalog)
    target = catalog.vectors[25]  # a Beta paper
    rows = nearest_references(scorer, target, profile=1, k=3)
    assert rows[0] == (25, pytest.approx(1.0, abs=1e-5))
    assert all(catalog.labels[r] == 1 for r, _ in rows)
    assert [s for _, s in rows] == sorted([s for _, s in rows], reverse=True)


def test_catalog_refuses_a_profile_without_papers():
    with pytest.raises(ValueError, match="Empty"):
        Catalog(("Full", "Empty"), unit(np.ones((3, DIM))), np.zeros(3, dtype=np.int64))


def test_ece_of_hand_computed_cases():
    perfect = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(perfect, np.array([0, 1])) == 0.0
    overconfident = np.array([[0.9, 0.1], [0.9, 0.1]])
    # both predicted 0 at 90%, half right: |0.5 - 0.9| = 0.4
    assert expected_calibration_error(overconfident, np.array([0, 1])) == pytest.approx(0.4)


def test_top_share_is_monotone_and_counts_ties_as_the_worse_rank():
    window = np.array([0.1, 0.2, 0.2, 0.5, 0.9])
    shares = top_share(window, np.array([0.9, 0.5, 0.2, 0.1]))
    np.testing.assert_allclose(shares, [0.2, 0.4, 0.8, 1.0])
    rng = np.random.default_rng(1)
    values = rng.random(500)
    ordered = np.sort(values)
    assert np.all(np.diff(top_share(values, ordered)) <= 0)


def test_average_and_lift():
    stats = window_stats(np.array([0.01, 0.03, 0.02]))
    assert stats.average == pytest.approx(0.02)
    assert stats.lift(0.2) == pytest.approx(10)
    assert window_stats(np.array([])).lift(0.5) == 0.0


@pytest.mark.parametrize(
    ("share", "text"), [(0.001, "Top 0.1%"), (0.0123, "Top 1.2%"), (0.5, "Top 50%"), (1.0, "Top 100%")]
)
def test_format_top(share, text):
    assert format_top(share) == text


def test_format_score_and_lift():
    assert format_score(0.149) == "14.9%"
    assert format_score(0.0003) == "0.03%"
    assert format_score(0.02) == "2.0%"
    assert format_score(0.0) == "0%"
    assert format_lift(497.2) == "497x"
    assert format_lift(2.54) == "2.5x"


def test_a_small_catalog_still_puts_each_paper_in_its_own_profile():
    """Two profiles of six papers: too few to fit the blend's weights, so "auto" must give a
    model under which a profile's own papers fit it best (a regression: an unconstrained
    blend once sent every paper to the other profile)."""
    rng = np.random.default_rng(3)
    centres = np.linalg.qr(rng.standard_normal((DIM, 2)))[0].T.astype(np.float32)
    vectors = np.vstack([cluster(rng, centres[i], 6, spread=0.3) for i in range(2)])
    labels = np.repeat(np.arange(2), 6)
    scorer = fit(Catalog(("A", "B"), vectors, labels))
    probs = scorer.predict_proba(vectors)
    assert (probs[:, :2].argmax(axis=1) == labels).all()


def test_blend_weights_never_reward_dissimilarity():
    rng = np.random.default_rng(5)
    centres = np.linalg.qr(rng.standard_normal((DIM, 3)))[0].T.astype(np.float32)
    vectors = np.vstack([cluster(rng, centres[i], 40) for i in range(3)])
    scorer = fit(
        Catalog(("A", "B", "C"), vectors, np.repeat(np.arange(3), 40), background=unit(rng.standard_normal((60, DIM)))),
        method="blend",
    )
    weights = dict(scorer.calibration.weights)
    assert all(weights[name] >= 0 for name in CHANNELS if name != "log_count")
    held = np.vstack([cluster(rng, centres[i], 5) for i in range(3)])
    assert (scorer.predict_proba(held).argmax(axis=1) == np.repeat(np.arange(3), 5)).mean() >= 0.9


@pytest.mark.parametrize("method", ["blend", "kde"])
def test_a_small_background_sample_weighed_as_a_full_one_scores_as_the_full_one(method):
    """The store grows between refits; the sample of it that stands for "elsewhere" grows
    with it until it reaches its configured size. Weighed as that size, a fifth of the
    sample gives the stream's preprints about the chance of "elsewhere" the whole sample
    gives; counted as it is, it makes every profile likelier (the odds of "elsewhere"
    follow the number of rows, as in the votes replay, docs/results.md)."""
    rng = np.random.default_rng(2)
    centres = np.linalg.qr(rng.standard_normal((DIM, 5)))[0].T.astype(np.float32)

    def stream(n: int) -> np.ndarray:
        # A third of the stream is on some profile's topic, the rest on anything.
        rows = unit(rng.standard_normal((n, DIM)))
        topical = np.flatnonzero(rng.random(n) < 1 / 3)
        rows[topical] = unit(
            centres[rng.integers(0, 5, len(topical))] + 0.15 * rng.standard_normal((len(topical), DIM))
        )
        return rows

    refs = np.vstack([cluster(rng, centre, 20) for centre in centres])
    stored, queries = stream(500), stream(300)

    def elsewhere(rows: int, weight: float = 1.0) -> np.ndarray:
        catalog = Catalog(
            tuple("ABCDE"), refs, np.repeat(np.arange(5), 20), background=stored[:rows], background_weight=weight
        )
        return fit(catalog, method=method).predict_proba(queries)[:, -1]

    full = elsewhere(500)
    weighed = np.abs(elsewhere(100, weight=5.0) - full).mean()
    counted = np.abs(elsewhere(100) - full).mean()
    assert weighed < counted / 2


def test_a_background_row_stands_for_at_least_one_preprint():
    assert background_weight(rows=400, stands_for=2000) == 5.0
    assert background_weight(rows=2000, stands_for=2000) == background_weight(rows=2500, stands_for=2000) == 1.0
    assert background_weight(rows=0, stands_for=2000) == 1.0
    with pytest.raises(ValueError, match="positive"):
        Catalog(("A",), np.eye(2, dtype=np.float32), np.zeros(2, dtype=np.int64), background_weight=0.0)


def test_hubness_is_the_mean_cosine_to_the_nearest_other_papers():
    a, b, c = np.eye(3, dtype=np.float32)
    between = unit((a + b)[None, :])[0]
    x = np.vstack([a, b, c, between])
    half = float(np.sqrt(0.5))
    np.testing.assert_allclose(_hubness(x, k=1), [half, half, 0.0, half], atol=1e-6)
    np.testing.assert_allclose(_hubness(x, k=2), [half / 2, half / 2, 0.0, half], atol=1e-6)
    assert _hubness(x[:1]).tolist() == [0.0]  # nobody else to be near


def test_a_stored_model_is_refused_for_a_catalog_with_other_papers(world):
    rng, centres, catalog = world
    blob = fit(catalog, method="blend").to_bytes()
    grown = Catalog(
        catalog.names,
        np.vstack([catalog.vectors, cluster(rng, centres[0], 2)]),
        np.concatenate([catalog.labels, [0, 0]]),
        catalog.background,
    )
    with pytest.raises(ValueError, match="refit it"):
        Scorer.from_bytes(grown, blob)
    np.testing.assert_allclose(Scorer.from_bytes(catalog, blob).predict_proba(catalog.vectors).sum(axis=1), 1.0)


def test_the_shares_of_the_best_alone_are_those_of_the_whole_window():
    rng = np.random.default_rng(11)
    for _ in range(50):
        window = rng.choice([0.01, 0.02, 0.1, 0.3, 0.5], size=rng.integers(1, 60))  # ties on purpose
        best = sorted(window.tolist(), reverse=True)[: rng.integers(1, 25)]
        reaching_last = int((window >= best[-1]).sum())
        assert top_shares_of_best(best, len(window), reaching_last) == top_share(window, np.array(best)).tolist()
