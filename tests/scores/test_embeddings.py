"""The embedding cache in the database: vectors read back by model key and text hash."""

from __future__ import annotations

import numpy as np

from bot.db import Embedding
from bot.scores.embeddings import LOOKUP_BATCH, cached_vectors, ensure_vectors

KEY, OTHER = "some-model@512", "some-model@512+openvino"


def _refuse_model():
    raise AssertionError("every vector is cached: the model must not load")


def test_more_cached_texts_than_one_lookup_holds_are_all_read_back(db):
    """Hashes are looked up a batch at a time; every batch asks for this model's rows (a
    batch once asked for the model named by the last hash read, so a refit of more than
    LOOKUP_BATCH texts embedded the rest again each time)."""
    rng = np.random.default_rng(0)
    hashes = [f"{i:064x}" for i in range(LOOKUP_BATCH + 20)]
    vectors = rng.standard_normal((len(hashes), 4)).astype(np.float32)
    with db.session() as session:
        for text_hash, vector in zip(hashes, vectors, strict=True):
            session.add(Embedding(model=KEY, content_hash=text_hash, dim=4, vector=vector.tobytes()))
        session.add(Embedding(model=OTHER, content_hash="f" * 64, dim=4, vector=vectors[0].tobytes()))
    with db.session() as session:
        found = cached_vectors(session, KEY, [*hashes, "f" * 64])
        assert list(found) == hashes  # not the other backend's row
        np.testing.assert_array_equal(np.stack([found[h] for h in hashes]), vectors)
        texts = {h: f"text {i}" for i, h in enumerate(hashes)}
        assert len(ensure_vectors(session, _refuse_model, KEY, texts)) == len(hashes)
