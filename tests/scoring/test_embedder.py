"""The model reads whole abstracts, and its vectors are cached under a key that says so."""

from __future__ import annotations

import numpy as np

from scoring.embedder import MAX_TOKENS, token_batches, vector_key

OPENING = " ".join(f"Sentence {i} describes the cohort, the sequencing and the statistics." for i in range(30))


def test_text_past_the_models_own_256_token_limit_changes_the_vector(embedder):
    assert len(embedder.model.tokenizer(OPENING)["input_ids"]) > 300
    a, b = embedder.embed(
        [
            OPENING + " We conclude that the protein folds in the membrane.",
            OPENING + " We conclude that songbirds learn their calls from their fathers.",
        ]
    )
    assert float(a @ b) < 0.999
    assert embedder.model.max_seq_length == MAX_TOKENS


def test_vectors_of_another_text_limit_live_under_another_key():
    assert vector_key("bundled:all-MiniLM-L6-v2") == f"bundled:all-MiniLM-L6-v2@{MAX_TOKENS}"
    assert vector_key("a") != vector_key("b")


def test_vectors_are_unit_length_and_deterministic(embedder):
    # Unit length and deterministic: the cache may hand back either copy.
    first, second = embedder.embed(["A short title. A short abstract."] * 2)
    np.testing.assert_allclose(np.linalg.norm(first), 1.0, rtol=1e-5)
    np.testing.assert_allclose(first, second, atol=1e-6)


def test_vectors_cached_under_the_old_limit_are_not_reused(db, embedder):
    from bot.config import BUNDLED_MODEL
    from bot.db import Embedding
    from bot.scores.embeddings import ensure_vectors

    stale = np.ones(embedder.dim, dtype=np.float32) / np.sqrt(embedder.dim)
    with db.session() as session:
        # A row as an earlier version stored it: keyed by the bare model name.
        session.add(Embedding(model=BUNDLED_MODEL, content_hash="k", dim=embedder.dim, vector=stale.tobytes()))
        session.flush()
        fresh = ensure_vectors(session, lambda: embedder, vector_key(BUNDLED_MODEL), {"k": OPENING})["k"]
        keys = {row.model for row in session.query(Embedding).filter_by(content_hash="k")}
    assert float(fresh @ stale) < 0.99
    assert keys == {BUNDLED_MODEL, vector_key(BUNDLED_MODEL)}


def test_batches_hold_every_text_once_within_the_word_piece_budget():
    lengths = [512, 12, 300, 40, 512, 7, 128, 90] * 9
    batches = token_batches(lengths, budget=1024, most=8)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 8
        assert max(lengths[i] for i in batch) * len(batch) <= 1024
    # Sorted by length: short texts share batches instead of being padded to 512.
    assert len(batches) < len(lengths) / 3


def test_a_text_longer_than_the_budget_goes_alone():
    assert token_batches([900, 10, 10], budget=512) == [[0], [1, 2]]


def test_texts_come_back_in_their_order_whatever_their_length_and_progress_counts_them(embedder):
    texts = [OPENING, "Short title.", OPENING[:400], "Another short one about bats."]
    seen: list[int] = []
    together = embedder.embed(texts, progress=seen.append)
    alone = np.vstack([embedder.embed([text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert sum(seen) == len(texts)
