"""Match scores: calibrated P(profile | preprint) over the catalog plus a background class.

The model is a kernel-density classifier on unit embeddings. Each class (every
profile, plus "published somewhere else") gets a density at the preprint,

    D_c(x) = mean over the class's reference vectors r of exp(cos(x, r) / tau)

and the posterior is P(c | x) ∝ (prior_c * D_c(x)) ** (1 / T). A small kernel width
`tau` makes it a soft nearest-neighbour vote; the temperature `T` (and `tau`) are
fitted on held-out reference papers so that a 20% match is right about 20% of the
time. Because background is a class of its own, the scores mean the same with one
profile or a thousand: a preprint far from every profile goes to the background.

The background class is represented by a sample of ordinary preprints (most of them
published somewhere else); with none available it falls back to a fixed pseudo-
density, so a fresh install with one profile still gives meaningful scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CHUNK = 1024
TAUS = (0.02, 0.03, 0.05, 0.08)
DEFAULT_TAU = 0.05
# Cosine at which the fallback background is as likely as a profile paper: MiniLM
# puts unrelated abstracts around 0.0-0.2 and same-field ones at 0.4-0.7.
FALLBACK_BACKGROUND_COSINE = 0.35
FALLBACK_BACKGROUND_PRIOR = 0.5
MAX_CALIBRATION_POINTS = 3000
ECE_BINS = 15


@dataclass(frozen=True)
class Catalog:
    """The profiles as arrays: reference vectors with a profile index each, plus background."""

    names: tuple[str, ...]
    vectors: np.ndarray  # (n, d) unit rows
    labels: np.ndarray  # (n,) int in [0, len(names))
    background: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def __post_init__(self) -> None:
        if len(self.vectors) != len(self.labels):
            raise ValueError("one label per reference vector")
        if len(self.names) == 0:
            raise ValueError("a catalog needs at least one profile")
        counts = np.bincount(self.labels, minlength=len(self.names))
        if (counts == 0).any():
            empty = [self.names[i] for i in np.flatnonzero(counts == 0)]
            raise ValueError(f"profiles without reference papers: {', '.join(empty)}")

    @property
    def n_classes(self) -> int:
        return len(self.names) + 1

    @property
    def background_index(self) -> int:
        return len(self.names)

    @property
    def has_background(self) -> bool:
        return self.background.ndim == 2 and len(self.background) > 0


@dataclass(frozen=True)
class Calibration:
    tau: float
    temperature: float
    ece: float
    nll: float
    heldout: int


@dataclass(frozen=True)
class Scorer:
    """A fitted model: score any number of preprints against the catalog."""

    catalog: Catalog
    tau: float = DEFAULT_TAU
    temperature: float = 1.0
    calibration: Calibration | None = None

    def log_posterior(self, x: np.ndarray, exclude_background: np.ndarray | None = None) -> np.ndarray:
        """(N, K+1) log-probabilities; `exclude_background[i]` is a background row to ignore
        for query i (the preprint itself, when it is part of the background sample), or -1."""
        out = np.empty((len(x), self.catalog.n_classes), dtype=np.float64)
        for start in range(0, len(x), CHUNK):
            stop = start + CHUNK
            excl = None if exclude_background is None else exclude_background[start:stop]
            logit = _class_log_density(self.catalog, x[start:stop], self.tau, excl)
            logit = (logit + _log_priors(self.catalog)) / self.temperature
            out[start:stop] = logit - _logsumexp(logit)[:, None]
        return out

    def predict_proba(self, x: np.ndarray, exclude_background: np.ndarray | None = None) -> np.ndarray:
        """(N, K+1) probabilities, each row summing to 1; the last column is background."""
        return np.exp(self.log_posterior(np.asarray(x, dtype=np.float32), exclude_background))


def fit(catalog: Catalog, taus: tuple[float, ...] = TAUS, seed: int = 0) -> Scorer:
    """Choose tau and T by leave-one-out likelihood of the reference papers (and background)."""
    x, y, self_cols = _heldout_sample(catalog, seed)
    best: Calibration | None = None
    for tau in taus:
        log_dens = np.vstack(
            [_class_log_density(catalog, x[i : i + CHUNK], tau, None, self_cols[i : i + CHUNK], y[i : i + CHUNK])
             for i in range(0, len(x), CHUNK)]
        ) + _log_priors(catalog)
        temperature = _fit_temperature(log_dens, y)
        probs = _softmax(log_dens / temperature)
        nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))
        if best is None or nll < best.nll:
            best = Calibration(tau, temperature, expected_calibration_error(probs, y), nll, len(y))
    assert best is not None
    return Scorer(catalog, tau=best.tau, temperature=best.temperature, calibration=best)


def nearest_references(scorer: Scorer, x: np.ndarray, profile: int, k: int = 3) -> list[tuple[int, float]]:
    """The profile's reference papers closest to one preprint: (row in catalog.vectors, cosine)."""
    rows = np.flatnonzero(scorer.catalog.labels == profile)
    sims = scorer.catalog.vectors[rows] @ np.asarray(x, dtype=np.float32)
    order = np.argsort(-sims)[:k]
    return [(int(rows[i]), float(sims[i])) for i in order]


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE: how far the stated confidence is from the observed accuracy."""
    if len(labels) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


# -- internals ---------------------------------------------------------------------------


def _log_priors(catalog: Catalog) -> np.ndarray:
    counts = np.bincount(catalog.labels, minlength=len(catalog.names)).astype(np.float64)
    if catalog.has_background:
        counts = np.append(counts, len(catalog.background))
        return np.log(counts / counts.sum())
    profile_share = (1.0 - FALLBACK_BACKGROUND_PRIOR) * counts / counts.sum()
    return np.log(np.append(profile_share, FALLBACK_BACKGROUND_PRIOR))


def _class_log_density(
    catalog: Catalog,
    x: np.ndarray,
    tau: float,
    exclude_background: np.ndarray | None,
    self_rows: np.ndarray | None = None,
    self_labels: np.ndarray | None = None,
) -> np.ndarray:
    """log D_c(x) for every class, with optional leave-one-out of the query's own row.

    `self_rows` index the stacked [references; background] matrix (fitting only).
    """
    k = len(catalog.names)
    refs, labels = catalog.vectors, catalog.labels
    if catalog.has_background:
        refs = np.vstack([refs, catalog.background])
        labels = np.concatenate([labels, np.full(len(catalog.background), k)])
    sims = x @ refs.T
    if exclude_background is not None:
        rows = np.flatnonzero(exclude_background >= 0)
        sims[rows, len(catalog.vectors) + exclude_background[rows]] = -np.inf
    if self_rows is not None:
        sims[np.arange(len(x)), self_rows] = -np.inf
    top = sims.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    weights = np.exp((sims - top) / tau)
    n_classes = k + 1 if catalog.has_background else k
    sums = np.zeros((len(x), n_classes), dtype=np.float64)
    # Sorting would be faster for huge catalogs, but a scatter-add keeps any label order.
    for c in range(n_classes):
        sums[:, c] = weights[:, labels == c].sum(axis=1)
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    counts = np.broadcast_to(counts, sums.shape).copy()
    if exclude_background is not None and catalog.has_background:
        counts[exclude_background >= 0, k] -= 1
    if self_rows is not None:
        counts[np.arange(len(x)), self_labels] -= 1
    with np.errstate(divide="ignore"):
        log_dens = np.log(sums) - np.log(np.maximum(counts, 1)) + top / tau
    log_dens[counts == 0] = -np.inf
    log_dens = np.maximum(log_dens, np.log(np.finfo(np.float64).tiny) + top / tau)
    if not catalog.has_background:
        fallback = np.full((len(x), 1), FALLBACK_BACKGROUND_COSINE / tau)
        log_dens = np.hstack([log_dens, fallback])
    return log_dens


def _heldout_sample(catalog: Catalog, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reference (and background) points to score leave-one-out, at most a few thousand."""
    k = len(catalog.names)
    x = catalog.vectors
    y = catalog.labels
    if catalog.has_background:
        x = np.vstack([x, catalog.background])
        y = np.concatenate([y, np.full(len(catalog.background), k)])
    rows = np.arange(len(x))
    if len(rows) > MAX_CALIBRATION_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_CALIBRATION_POINTS, replace=False))
    return x[rows], y[rows], rows


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Golden-section search on log T for the lowest held-out negative log-likelihood."""
    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - _logsumexp(z)[:, None]
        return float(-np.mean(np.maximum(z[np.arange(len(y)), y], -50.0)))

    lo, hi = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(np.exp((lo + hi) / 2))


def _logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def _softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(z - _logsumexp(z)[:, None])
