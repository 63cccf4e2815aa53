"""The embedding cache: each text is embedded once per model and backend, then read back
from the database.

Rows are keyed by `vector_key(model, backend)`: the model's name, how much text it reads
and the backend that ran it, so raising that limit or changing SCOUT_BACKEND re-embeds
instead of mixing vectors. Every function here takes that key."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from bot.db import Embedding, Preprint, ReferencePaper
from scoring.embedder import Embedder
from scoring.progress import Steps, begin_step

# SQLite caps bound parameters per statement; stay well under it.
LOOKUP_BATCH = 500


def cached_vectors(session: Session, key: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), LOOKUP_BATCH):
        batch = unique[start : start + LOOKUP_BATCH]
        rows = session.execute(
            select(Embedding.content_hash, Embedding.vector).where(
                Embedding.model == key, Embedding.content_hash.in_(batch)
            )
        )
        for text_hash, blob in rows:
            found[text_hash] = np.frombuffer(blob, dtype=np.float32)
    return found


def ensure_vectors(
    session: Session,
    embedder: Callable[[], Embedder],
    key: str,
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
    vectors = cached_vectors(session, key, list(texts))
    missing = [text_hash for text_hash in texts if text_hash not in vectors]
    if not missing:
        return vectors
    tick = begin_step(progress, "embedding", len(missing))
    chunk = commit_every or len(missing)
    for start in range(0, len(missing), chunk):
        hashes = missing[start : start + chunk]
        fresh = embedder().embed([texts[text_hash] for text_hash in hashes], progress=tick)
        for text_hash, vector in zip(hashes, fresh, strict=True):
            session.merge(Embedding(model=key, content_hash=text_hash, dim=len(vector), vector=vector.tobytes()))
            vectors[text_hash] = vector
        if commit_every:
            session.commit()
        else:
            session.flush()
    return vectors


def stack(vectors: dict[str, np.ndarray], hashes: Sequence[str], dim: int) -> np.ndarray:
    if not hashes:
        return np.zeros((0, dim), dtype=np.float32)
    return np.vstack([vectors[h] for h in hashes]).astype(np.float32, copy=False)


def forget_unused_vectors(session: Session, key: str) -> int:
    """Delete vectors nothing can use any more: those of texts no preprint or reference paper
    has (pruned, edited or replaced), and those made by another model, text limit or backend
    than `key` names (an upgrade or a changed SCOUT_MODEL or SCOUT_BACKEND re-embeds; keeping
    both doubles the table)."""
    # Anti-joins on indexed columns: NOT IN over a year of hashes is slow on PostgreSQL.
    in_preprints = select(Preprint.id).where(Preprint.content_hash == Embedding.content_hash).exists()
    in_profiles = select(ReferencePaper.id).where(ReferencePaper.content_hash == Embedding.content_hash).exists()
    unused = or_(Embedding.model != key, ~in_preprints & ~in_profiles)
    return session.execute(delete(Embedding).where(unused)).rowcount or 0
