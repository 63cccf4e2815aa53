"""The embedding cache: each text is embedded once per model, then read back from the database.

Rows are keyed by `vector_key(model)`, the model's name plus how much text it reads, so
raising that limit re-embeds instead of mixing old and new vectors."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from bot.db import Embedding, Preprint, ReferencePaper
from scoring.embedder import Embedder, vector_key
from scoring.progress import Steps, begin_step

# SQLite caps bound parameters per statement; stay well under it.
LOOKUP_BATCH = 500


def cached_vectors(session: Session, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), LOOKUP_BATCH):
        batch = unique[start : start + LOOKUP_BATCH]
        rows = session.execute(
            select(Embedding.content_hash, Embedding.vector).where(
                Embedding.model == vector_key(model), Embedding.content_hash.in_(batch)
            )
        )
        for key, blob in rows:
            found[key] = np.frombuffer(blob, dtype=np.float32)
    return found


def ensure_vectors(
    session: Session,
    embedder: Callable[[], Embedder],
    model: str,
    texts: dict[str, str],
    progress: Steps | None = None,
    *,
    commit_every: int | None = None,
) -> dict[str, np.ndarray]:
    """Vectors for every hash in `texts` (hash -> document), embedding only the missing ones.

    `embedder` is called only when something is missing, so a warm cache never loads
    the model; `progress` reports the embedding as a step (scoring.progress). With
    `commit_every`, the session is committed after each chunk: embedding thousands of
    texts takes minutes, and neither a crash nor a long-held write lock (SQLite) should
    cost that work.
    """
    vectors = cached_vectors(session, model, list(texts))
    missing = [key for key in texts if key not in vectors]
    if not missing:
        return vectors
    tick = begin_step(progress, "embedding", len(missing))
    chunk = commit_every or len(missing)
    key_of_model = vector_key(model)
    for start in range(0, len(missing), chunk):
        keys = missing[start : start + chunk]
        fresh = embedder().embed([texts[key] for key in keys], progress=tick)
        for key, vector in zip(keys, fresh, strict=True):
            session.merge(Embedding(model=key_of_model, content_hash=key, dim=len(vector), vector=vector.tobytes()))
            vectors[key] = vector
        if commit_every:
            session.commit()
        else:
            session.flush()
    return vectors


def stack(vectors: dict[str, np.ndarray], hashes: Sequence[str], dim: int) -> np.ndarray:
    if not hashes:
        return np.zeros((0, dim), dtype=np.float32)
    return np.vstack([vectors[h] for h in hashes]).astype(np.float32, copy=False)


def forget_unused_vectors(session: Session, model: str) -> int:
    """Delete vectors nothing can use any more: those of texts no preprint or reference paper
    has (pruned, edited or replaced), and those made by another model or text limit than
    `model`'s (an upgrade or a changed SCOUT_MODEL re-embeds; keeping both doubles the table)."""
    # Anti-joins on indexed columns: NOT IN over a year of hashes is slow on PostgreSQL.
    in_preprints = select(Preprint.id).where(Preprint.content_hash == Embedding.content_hash).exists()
    in_profiles = select(ReferencePaper.id).where(ReferencePaper.content_hash == Embedding.content_hash).exists()
    unused = or_(Embedding.model != vector_key(model), ~in_preprints & ~in_profiles)
    return session.execute(delete(Embedding).where(unused)).rowcount or 0
