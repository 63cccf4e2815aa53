"""Editors' votes as evidence: "relevant" adds a preprint to a profile, "not relevant"
makes it a negative example for that profile only.

The votes change the catalog the scorer is fitted on, nothing else, so a score stays a
calibrated probability over the profiles plus background: the blend's weights are fitted
on held-out reference papers as before, and a voted preprint is one more of them.

* A preprint most voters of a profile call relevant becomes one of the profile's
  references (every channel sees it: kernel votes, centroid, classifier).
* Each voted preprint also teaches the classifier with the share of its votes: relevant
  votes as a reference row, "not relevant" ones as a `Negatives` row of log(1 - P(c | x)),
  together `weight` (one voter or ten, a preprint is one piece of text).
* A person's later vote replaces their earlier one before it gets here (one row per
  person in the votes table); several people's votes are counted together.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse

from scoring.scorer import Catalog, Negatives

# How much a voted preprint counts in the classifier's fit next to a reference paper (1);
# chosen by the replay benchmark (benchmarks/feedback_replay.py, docs/results.md).
VOTE_WEIGHT = 1.0


@dataclass(frozen=True)
class Tally:
    """Every vote on one preprint for one profile."""

    profile: int  # index into Catalog.names
    preprint: Hashable  # the caller's key (a preprint id)
    relevant: int
    not_relevant: int

    @property
    def share(self) -> float:
        """The share of voters who called it relevant."""
        return self.relevant / max(self.relevant + self.not_relevant, 1)

    @property
    def is_reference(self) -> bool:
        """Most voters call it relevant: it joins the profile's references."""
        return self.relevant > self.not_relevant


def tally(votes: Iterable[tuple[int, Hashable, bool]]) -> list[Tally]:
    """(profile index, preprint key, relevant) per person's vote -> one Tally per
    (profile, preprint), in a stable order (the fitted model depends on row order)."""
    counts: dict[tuple[int, Hashable], list[int]] = {}
    for profile, preprint, relevant in votes:
        pair = counts.setdefault((profile, preprint), [0, 0])
        pair[0 if relevant else 1] += 1
    return [
        Tally(p, k, r, n) for (p, k), (r, n) in sorted(counts.items(), key=lambda item: (item[0][0], str(item[0][1])))
    ]


def with_votes(
    catalog: Catalog,
    tallies: list[Tally],
    vectors: np.ndarray,
    lexical: np.ndarray | sparse.spmatrix | None = None,
    subjects: np.ndarray | None = None,
    weight: float = VOTE_WEIGHT,
) -> Catalog:
    """The catalog with the votes in: `vectors` (and optional word features and subject
    rows, the catalog's columns) are the voted preprints', one row per tally."""
    if len(tallies) != len(vectors):
        raise ValueError("one vector per tally")
    if not tallies:
        return catalog
    if catalog.lexical is not None and (lexical is None or lexical.shape[0] != len(tallies)):
        raise ValueError("this catalog has word features: pass the voted preprints' too")
    n = len(catalog.vectors)
    share = np.array([t.share for t in tallies])
    labels = np.array([t.profile for t in tallies], dtype=np.int64)
    if (labels < 0).any() or (labels >= len(catalog.names)).any():
        raise ValueError("a vote names a profile the catalog does not have")
    ref = np.array([t.is_reference for t in tallies])
    neg = share < 1.0
    ref_weights = np.ones(n) if catalog.weights is None else np.asarray(catalog.weights, dtype=np.float64)
    old_neg = catalog.negatives
    return replace(
        catalog,
        vectors=np.vstack([catalog.vectors, vectors[ref]]).astype(np.float32),
        labels=np.concatenate([catalog.labels, labels[ref]]),
        subjects=_rows(catalog.subjects, subjects, ref, n, catalog.n_subjects),
        lexical=None if catalog.lexical is None else _words(catalog.lexical, lexical, ref),
        weights=np.concatenate([ref_weights, weight * share[ref]]),
        negatives=Negatives(
            vectors=_stack(None if old_neg is None else old_neg.vectors, vectors[neg]),
            labels=np.concatenate([[] if old_neg is None else old_neg.labels, labels[neg]]).astype(np.int64),
            weights=np.concatenate([[] if old_neg is None else old_neg.weights, weight * (1 - share[neg])]),
            subjects=None if subjects is None else _stack(None if old_neg is None else old_neg.subjects, subjects[neg]),
            lexical=None
            if catalog.lexical is None
            else _words(None if old_neg is None else old_neg.lexical, lexical, neg),
        ),
    )


def _stack(old: np.ndarray | None, new: np.ndarray) -> np.ndarray:
    return np.asarray(new, dtype=np.float32) if old is None or len(old) == 0 else np.vstack([old, new])


def _rows(old: np.ndarray | None, new: np.ndarray | None, keep: np.ndarray, n: int, s: int) -> np.ndarray | None:
    """Subject rows of the references after the votes: unknown (zeros) where not given."""
    if old is None and new is None:
        return None
    old = np.zeros((n, s), dtype=np.float32) if old is None else old
    new = np.zeros((len(keep), old.shape[1]), dtype=np.float32) if new is None else new
    return np.vstack([old, new[keep]]).astype(np.float32)


def _words(old, new, keep: np.ndarray) -> sparse.csr_matrix:
    rows = sparse.csr_matrix(new, dtype=np.float32)[np.flatnonzero(keep)]
    return rows if old is None else sparse.vstack([sparse.csr_matrix(old, dtype=np.float32), rows], format="csr")
