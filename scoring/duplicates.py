"""Near-duplicate preprints: the same text under another id (a new DOI, a cross-post to
another server, a re-titled copy).

Copies must not be evidence about each other. Seven copies of one abstract in the
background sample would each out-vote every profile for the eighth (a kernel vote at a
cosine near 1 against profile papers at 0.5-0.7), so every copy, the original included,
would score near zero for every profile. The background keeps one copy of each text, and
a preprint is scored without the background row of its own text (`Scorer.log_posterior`'s
`exclude_background`), whichever id that row came from.
"""

from __future__ import annotations

import numpy as np

# Cosine of two embeddings at or above which they are one text. With the bundled model,
# the same abstract under a reworded title lands at 0.99 or more, and without a title at
# 0.97 or more (20 labelled bioRxiv abstracts); no two distinct papers of the 1,576 in
# ../shared/data/labeled come closer than 0.915.
DUPLICATE_COSINE = 0.95
CHUNK = 1024


def first_copies(x: np.ndarray, threshold: float = DUPLICATE_COSINE) -> np.ndarray:
    """(N,) for each unit row, the first row (in the given order) it is a copy of: itself
    when no earlier row is. A row that copies a copy points at the first of them."""
    x = np.asarray(x, dtype=np.float32)
    first = np.arange(len(x))
    for start in range(0, len(x), CHUNK):
        sims = x[start : start + CHUNK] @ x[: start + CHUNK].T
        for i, row in enumerate(sims):
            earlier = np.flatnonzero(row[: start + i] >= threshold)
            if len(earlier):
                first[start + i] = first[earlier[0]]
    return first


def keep_one_copy(x: np.ndarray, threshold: float = DUPLICATE_COSINE) -> np.ndarray:
    """Indices of the rows to keep: the first of each set of copies, in order."""
    first = first_copies(x, threshold)
    return np.flatnonzero(first == np.arange(len(x)))


def copy_in(queries: np.ndarray, rows: np.ndarray, threshold: float = DUPLICATE_COSINE) -> np.ndarray:
    """(N,) for each query, the row of `rows` holding the same text (the closest at or above
    `threshold`), or -1."""
    out = np.full(len(queries), -1, dtype=np.int64)
    if len(rows) == 0 or len(queries) == 0:
        return out
    for start in range(0, len(queries), CHUNK):
        sims = np.asarray(queries[start : start + CHUNK], dtype=np.float32) @ np.asarray(rows, dtype=np.float32).T
        best = sims.argmax(axis=1)
        hit = sims[np.arange(len(sims)), best] >= threshold
        out[start : start + CHUNK] = np.where(hit, best, -1)
    return out


def fold_copies(candidates: np.ndarray, sent: np.ndarray, threshold: float = DUPLICATE_COSINE) -> np.ndarray:
    """For candidate rows in order (best first), given the rows already sent: (N,) the
    candidate each one is a copy of (itself when it is the first of its text), or -1 when
    its text has been sent already under another id."""
    rows = np.concatenate([np.asarray(sent, dtype=np.float32), np.asarray(candidates, dtype=np.float32)])
    first = first_copies(rows, threshold)[len(sent) :]
    return np.where(first < len(sent), -1, first - len(sent))
