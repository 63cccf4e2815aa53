"""Quality metrics for the two questions a user asks of the scores.

* "Which journal fits this preprint?" -- a ranking of the catalog per preprint:
  accuracy@k, mean reciprocal rank (MRR) and the calibration error (ECE) of the
  top-ranked journal's probability.
* "Which preprints fit this journal?" -- a ranking of the preprints per journal (the
  digest task): average precision and precision@10, averaged over journals.

Ties are scored as their expectation under a random tie-break, so a method that
cannot tell candidates apart (the class prior, for one) gets exactly chance credit
for them, never the luck of a sort order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ECE_BINS = 15
# Profile sizes (reference papers) the "which journal" metrics are broken down by: how
# well a profile is found depends mostly on how many papers it was built from.
SIZE_BUCKETS = ((1, 1), (2, 3), (4, 9), (10, 29), (30, None))


@dataclass(frozen=True)
class RankingQuality:
    """Per-preprint ranking of journals, averaged over preprints."""

    n: int
    acc_at_1: float
    acc_at_5: float
    acc_at_10: float
    mrr: float
    ece: float


@dataclass(frozen=True)
class RetrievalQuality:
    """Per-journal ranking of preprints (the digest task), averaged over journals."""

    journals: int
    map: float
    precision_at_10: float


def true_label_ranks(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, (number of classes scored strictly higher than the true one, number
    of classes scored equal to it, the true one included)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    true = scores[np.arange(len(labels)), labels][:, None]
    higher = (scores > true).sum(axis=1)
    tied = (scores == true).sum(axis=1)
    return higher, tied


def hit_rate_at_k(higher: np.ndarray, tied: np.ndarray, k: int) -> np.ndarray:
    """P(true label within the top k) per row, under a random tie-break."""
    higher = np.asarray(higher, dtype=np.float64)
    tied = np.asarray(tied, dtype=np.float64)
    # The true label's rank is uniform over higher+1 .. higher+tied.
    return np.clip((k - higher) / tied, 0.0, 1.0)


def reciprocal_ranks(higher: np.ndarray, tied: np.ndarray) -> np.ndarray:
    """E[1 / rank] per row, under a random tie-break."""
    out = np.empty(len(higher), dtype=np.float64)
    for i, (h, t) in enumerate(zip(np.asarray(higher), np.asarray(tied), strict=True)):
        out[i] = np.mean(1.0 / np.arange(h + 1, h + t + 1))
    return out


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: the share-weighted gap between stated confidence and accuracy,
    over `bins` equal-width confidence bins."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        return 0.0
    return calibration_error(probs.max(axis=1), probs.argmax(axis=1) == labels, bins)


def calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE from per-row (confidence, correct) pairs, so rows of different catalogs pool."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


@dataclass(frozen=True)
class SizeQuality:
    """acc@10 and MRR of "which journal fits" over the preprints whose journal's profile
    has `low` to `high` papers (`high` None: or more)."""

    low: int
    high: int | None
    n: int
    acc_at_10: float
    mrr: float

    @property
    def label(self) -> str:
        if self.high is None:
            return f"{self.low}+"
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass
class RankingRows:
    """Per-row outcomes, to pool rows scored against different catalogs (folds)."""

    hits: dict[int, list[np.ndarray]]
    reciprocal: list[np.ndarray]
    confidence: list[np.ndarray]
    correct: list[np.ndarray]
    sizes: list[np.ndarray]

    @staticmethod
    def empty(ks: tuple[int, ...] = (1, 5, 10)) -> RankingRows:
        return RankingRows({k: [] for k in ks}, [], [], [], [])

    def add(self, probs: np.ndarray, labels: np.ndarray, sizes: np.ndarray | None = None) -> None:
        """`sizes[i]`: papers in the profile of row i's true journal (for `by_size`)."""
        probs = np.asarray(probs, dtype=np.float64)
        higher, tied = true_label_ranks(probs, labels)
        for k in self.hits:
            self.hits[k].append(hit_rate_at_k(higher, tied, k))
        self.reciprocal.append(reciprocal_ranks(higher, tied))
        self.confidence.append(probs.max(axis=1) if probs.size else np.zeros(0))
        self.correct.append(probs.argmax(axis=1) == labels if probs.size else np.zeros(0, bool))
        self.sizes.append(np.full(len(labels), -1) if sizes is None else np.asarray(sizes))

    def by_size(self, buckets: tuple[tuple[int, int | None], ...] = SIZE_BUCKETS) -> list[SizeQuality]:
        """acc@10 and MRR per profile-size bucket (rows added without sizes are left out)."""
        if not self.sizes or 10 not in self.hits:
            return []
        sizes, rr, hit = (np.concatenate(parts) for parts in (self.sizes, self.reciprocal, self.hits[10]))
        out = []
        for low, high in buckets:
            mask = (sizes >= low) & ((sizes <= high) if high is not None else True)
            n = int(mask.sum())
            nan = float("nan")
            out.append(
                SizeQuality(low, high, n, float(hit[mask].mean()) if n else nan, float(rr[mask].mean()) if n else nan)
            )
        return out

    def summary(self) -> RankingQuality:
        def mean(parts: list[np.ndarray]) -> float:
            joined = np.concatenate(parts) if parts else np.zeros(0)
            return float(joined.mean()) if len(joined) else float("nan")

        return RankingQuality(
            n=int(sum(len(r) for r in self.reciprocal)),
            acc_at_1=mean(self.hits.get(1, [])),
            acc_at_5=mean(self.hits.get(5, [])),
            acc_at_10=mean(self.hits.get(10, [])),
            mrr=mean(self.reciprocal),
            ece=calibration_error(
                np.concatenate(self.confidence) if self.confidence else np.zeros(0),
                np.concatenate(self.correct) if self.correct else np.zeros(0),
            ),
        )


def ranking_quality(probs: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> RankingQuality:
    """acc@1/5/10, MRR and ECE for rows of probabilities over the catalog."""
    rows = RankingRows.empty(ks)
    rows.add(probs, np.asarray(labels))
    return rows.summary()


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    """Average precision of one ranking; tied scores share one cut-off (so a block of
    ties counts at its average precision, as if randomly ordered)."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    total = int(relevant.sum())
    if total == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    s, r = scores[order], relevant[order]
    # Last position of every block of equal scores.
    ends = np.flatnonzero(np.append(s[1:] != s[:-1], True))
    hits = np.cumsum(r)[ends]
    seen = ends + 1
    gained = np.diff(np.concatenate([[0], hits]))
    return float(np.sum(gained / total * hits / seen))


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """Expected share of relevant items in the top k, ties at the cut broken at random.
    With fewer than k items, the denominator is still k (an editor's top-10 list)."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if len(scores) <= k:
        return float(relevant.sum() / k)
    cut = np.sort(scores)[::-1][k - 1]
    above = scores > cut
    at = scores == cut
    slots = k - int(above.sum())
    expected = relevant[above].sum() + slots * relevant[at].mean()
    return float(expected / k)


def retrieval_quality(
    scores: np.ndarray, labels: np.ndarray, min_relevant: int = 2, k: int = 10
) -> tuple[RetrievalQuality, list[float], list[float]]:
    """Per journal (column) with at least `min_relevant` rows labelled with it: rank all
    rows by that column. Returns the averages plus the per-journal AP and P@k lists (so
    folds can be pooled)."""
    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=scores.shape[1])
    aps: list[float] = []
    pks: list[float] = []
    for j in np.flatnonzero(counts >= min_relevant):
        rel = labels == j
        aps.append(average_precision(scores[:, j], rel))
        pks.append(precision_at_k(scores[:, j], rel, k))
    summary = RetrievalQuality(
        journals=len(aps),
        map=float(np.mean(aps)) if aps else float("nan"),
        precision_at_10=float(np.mean(pks)) if pks else float("nan"),
    )
    return summary, aps, pks


def stratified_folds(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Fold of each paper, stratified by journal; journals with fewer than 2 papers are
    only ever trained on (-1). A journal's papers go round-robin from a running offset,
    so each test fold holds about a k-th of every journal and folds stay balanced."""
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = np.full(len(labels), -1, dtype=np.int64)
    offset = 0
    for c in rng.permutation(np.unique(labels)):
        rows = rng.permutation(np.flatnonzero(labels == c))
        if len(rows) < 2:
            continue
        out[rows] = (np.arange(len(rows)) + offset) % folds
        offset += len(rows)
    return out
