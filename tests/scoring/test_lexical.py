"""Word features: the classifier reading them, and the word space the scorer compares
papers in, where embeddings cannot tell profiles apart."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest

from scoring.lexical import LEXICAL_DIM, fit_word_space, lexical_features, word_vectors
from scoring.scorer import CHANNELS, Blend, Catalog, Scorer, fit

DIM = 32


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_rows_are_unit_length_stable_and_ignore_stop_words():
    rows = lexical_features(["Zebrafish fin regeneration.", "zebrafish FIN regeneration", "the of and"]).toarray()
    assert rows.shape == (3, LEXICAL_DIM)
    np.testing.assert_allclose(np.linalg.norm(rows[0]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(rows[0], rows[1])  # case and punctuation do not matter
    assert not rows[2].any()  # nothing but stop words: no evidence either way
    # Hashing has no vocabulary: a text's columns do not depend on what else was seen.
    np.testing.assert_array_equal(lexical_features(["zebrafish fin regeneration"]).toarray()[0], rows[0])
    assert lexical_features([]).shape == (0, LEXICAL_DIM)  # a catalog with no background yet


@pytest.fixture(scope="module")
def twins():
    """Two profiles whose embeddings come from one topic: only their words differ."""
    rng = np.random.default_rng(2)
    centre = unit(rng.standard_normal((1, DIM)))
    vectors = unit(np.repeat(centre, 120, axis=0) + 0.2 * rng.standard_normal((120, DIM)))
    organisms = ["zebrafish larvae", "arabidopsis seedlings"]
    texts = [f"Paper {i} on {organisms[i // 60]} and growth signalling" for i in range(120)]
    background_texts = [f"Survey {i} of soil bacteria and climate" for i in range(80)]
    catalog = Catalog(
        ("Fish journal", "Plant journal"),
        vectors,
        np.repeat(np.arange(2), 60),
        background=unit(rng.standard_normal((80, DIM))),
        lexical=lexical_features(texts),
        background_lexical=lexical_features(background_texts),
    )
    return rng, centre, catalog, fit(catalog)


def test_words_tell_apart_profiles_whose_embeddings_do_not(twins):
    rng, centre, _, scorer = twins
    assert scorer.blend is not None and scorer.blend.lexical_dim == LEXICAL_DIM
    x = unit(np.repeat(centre, 2, axis=0) + 0.2 * rng.standard_normal((2, DIM)))
    probs = scorer.predict_proba(x, lexical=lexical_features(["New zebrafish larvae growth", "Arabidopsis seedlings"]))
    assert probs[0, 0] > 2 * probs[0, 1]
    assert probs[1, 1] > 2 * probs[1, 0]


def test_a_stored_model_scores_the_same_and_asks_for_word_features(twins):
    rng, centre, catalog, scorer = twins
    x = unit(centre + 0.2 * rng.standard_normal((3, DIM)))
    words = lexical_features(["zebrafish larvae", "arabidopsis", "soil bacteria"])
    plain = Catalog(catalog.names, catalog.vectors, catalog.labels, catalog.background)  # as the bot rebuilds it
    stored = Scorer.from_bytes(plain, scorer.to_bytes())
    np.testing.assert_allclose(stored.predict_proba(x, lexical=words), scorer.predict_proba(x, lexical=words))
    with pytest.raises(ValueError, match="word features"):
        stored.predict_proba(x)


def test_a_blob_from_before_word_features_still_loads_and_scores():
    rng = np.random.default_rng(4)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        weights=np.ones(6),
        lr_weights=np.zeros((DIM, 3), np.float32),
        lr_bias=np.zeros(3, np.float32),
        tau=np.array(0.05),
    )
    blend = Blend.from_bytes(buffer.getvalue())
    assert blend.lexical_dim == 0 and blend.word_basis is None and blend.hub is None
    assert blend.weights.tolist() == [1.0] * 6 + [0.0] * (len(CHANNELS) - 6)
    catalog = Catalog(
        ("A", "B"),
        unit(rng.standard_normal((10, DIM))),
        np.repeat(np.arange(2), 5),
        background=unit(rng.standard_normal((4, DIM))),
    )
    probs = Scorer(catalog, blend=blend).predict_proba(unit(rng.standard_normal((3, DIM))))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_the_word_space_counts_rare_shared_words_more_than_common_ones():
    common = ["growth", "signalling", "cells", "expression", "tissue"]
    texts = [f"{' '.join(common)} sample{i}" for i in range(28)]
    texts += ["zebrafish fin regeneration growth", "zebrafish heart regeneration cells"]
    basis = fit_word_space(lexical_features(texts))
    assert basis is not None and basis.shape == (LEXICAL_DIM, len(texts) - 1)
    rows = word_vectors(
        lexical_features(["zebrafish regeneration", "growth cells", "zebrafish regeneration", "the of and"]), basis
    )
    np.testing.assert_allclose(np.linalg.norm(rows[:3], axis=1), 1.0, rtol=1e-5)
    assert not rows[3].any()  # nothing but stop words: no evidence, not a crash
    zebrafish = word_vectors(lexical_features(texts[-2:]), basis)
    assert zebrafish[0] @ rows[0] > zebrafish[0] @ rows[1] + 0.2  # shares the rare words, not the common ones
    np.testing.assert_allclose(rows[0], rows[2])
    assert fit_word_space(lexical_features(["a single paper about zebrafish"])) is None


def test_small_profiles_are_found_by_their_words():
    """Forty profiles of three papers on one topic (embeddings alike), each with its own
    organism: the word channels carry what the classifier cannot learn from three papers."""
    rng = np.random.default_rng(11)
    common = [f"common{i}" for i in range(60)]
    centre = unit(rng.standard_normal((1, DIM)))

    def text(organism: str) -> str:
        return f"{organism} " + " ".join(rng.choice(common, 25))

    def near(n: int) -> np.ndarray:
        return unit(np.repeat(centre, n, axis=0) + 0.3 * rng.standard_normal((n, DIM)))

    names = [f"taxon{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(40)]
    catalog = Catalog(
        tuple(names),
        near(120),
        np.repeat(np.arange(40), 3),
        background=near(100),
        lexical=lexical_features([text(names[i // 3]) for i in range(120)]),
        background_lexical=lexical_features([text("") for _ in range(100)]),
    )
    scorer = fit(catalog)
    weights = dict(scorer.calibration.weights)
    assert weights["word_kernel"] + weights["word_nearest"] > 0
    x, words = near(40), lexical_features([text(name) for name in names])
    without = np.array(
        [
            w if name not in ("word_kernel", "word_nearest") else 0.0
            for name, w in zip(CHANNELS, scorer.blend.weights, strict=True)
        ]
    )
    blind = Scorer(catalog, blend=replace(scorer.blend, weights=without))

    def mean_rank(model: Scorer) -> float:
        probs = model.predict_proba(x, lexical=words)[:, :40]
        return float((probs > probs[np.arange(40), np.arange(40)][:, None]).sum(axis=1).mean())

    assert mean_rank(scorer) < 0.5 * mean_rank(blind)


def test_background_preprints_are_not_sunk_by_a_classifier_that_learnt_them():
    """The classifier learns "background" from the background sample; those preprints are
    ranked too, and with words to memorise they would score below fresh preprints like them."""
    rng = np.random.default_rng(9)
    centres = np.linalg.qr(rng.standard_normal((DIM, 2)))[0].T.astype(np.float32)
    refs = unit(np.repeat(centres, 60, axis=0) + 0.6 * rng.standard_normal((120, DIM)))
    vocabulary = [f"term{i}" for i in range(3000)]

    def texts(n: int) -> list[str]:
        return [" ".join(rng.choice(vocabulary, 60)) for _ in range(n)]

    def mixed(n: int) -> np.ndarray:  # preprints between the two topics and elsewhere
        return unit(rng.standard_normal((n, 2)) @ centres + 1.5 * rng.standard_normal((n, DIM)))

    background, background_words = mixed(100), lexical_features(texts(100))
    catalog = Catalog(
        ("A", "B"),
        refs,
        np.repeat(np.arange(2), 60),
        background=background,
        lexical=lexical_features(texts(120)),
        background_lexical=background_words,
    )
    scorer = fit(catalog)
    learnt = Scorer(catalog, blend=replace(scorer.blend, fold_weights=None, fold_bias=None))

    def profiles(model: Scorer, x: np.ndarray, words, own: np.ndarray | None = None) -> float:
        return float(model.predict_proba(x, exclude_background=own, lexical=words)[:, :2].sum(axis=1).mean())

    fresh = profiles(scorer, mixed(100), lexical_features(texts(100)))
    own = np.arange(100)
    assert profiles(learnt, background, background_words, own) < 0.8 * fresh  # the bias, left alone
    assert abs(profiles(scorer, background, background_words, own) - fresh) < 0.1 * fresh
