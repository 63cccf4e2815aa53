"""Match scores: calibrated P(profile | preprint) over the catalog plus a background class.

Every class (each profile, plus "published somewhere else") gets a logit that is a
weighted sum of a few evidence channels, and the posterior is their softmax:

    logit_c(x) = w1 * log P_lr(c | x)          multinomial logistic regression on the
                                               embedding + hashed words (scoring.lexical)
                                               (+ subject one-hot)
               + w2 * log sum_r exp(cos(x, r) / tau)   kernel vote of the class's papers
               + w3 * mean_r cos(x, r)         similarity to the class centroid
               + w4 * log n_c                  class size (prior)
               + w5 * log P(subject | c) / P(subject)  subject agreement, when known
               + w6 * cos(x, sum_r r)          cosine to the class's mean direction
               + w7 * log sum_r exp(u(x).u(r) / tau_w)   kernel vote on the papers' words
               + w8 * max_r u(x).u(r)          the class's paper whose words are closest
               + w9 * log sum_r exp((cos(x, r) - h_r) / tau)  kernel vote, each paper's
                                               hubness h_r taken off

u(.) places a paper's words in a small space where rare shared words count most
(`scoring.lexical.fit_word_space`): a profile of one or two papers gives the classifier
nothing to learn from, but its papers' words are still evidence. h_r is the mean cosine
of reference r to its nearest other references: some papers sit close to everything (a
broad abstract, a generalist journal's) and would otherwise win kernel votes they say
little about.

The classifier captures what separates profiles; the kernel vote captures profiles
with only a handful of papers, where a classifier has nothing to learn from. The
weights `w` are fitted, together with the classifier's L2 penalty, on held-out
predictions of the reference papers themselves (the classifier cross-fitted in 3
folds, the other channels leave-one-out), by maximum likelihood: that fit *is* the
calibration, so a 20% match is right about 20% of the time. Because background is a
class of its own, scores mean the same with one profile or a thousand.

The background class is represented by a sample of ordinary preprints (most of them
published somewhere else); with none available it falls back to a fixed pseudo-class
that wins when a preprint is far from every profile, so a fresh install with one
profile still gives meaningful scores.

`Scorer(catalog, tau=..., temperature=...)` without a fitted model is the earlier
kernel-density classifier (kept for stored runs); `fit()` gives the blended model.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from scoring.lexical import fit_word_space, word_vectors
from scoring.metrics import expected_calibration_error, stratified_folds
from scoring.progress import Advance, Steps, begin_step

CHUNK = 1024
SCORING_THREADS = 2  # blocks of CHUNK preprints scored at once
FIT_WORKERS = 2  # regressions fitted at once, one thread each
TAUS = (0.02, 0.03, 0.05, 0.08)
DEFAULT_TAU = 0.05
# Cosine at which the fallback background is as likely as a profile paper: MiniLM
# puts unrelated abstracts around 0.0-0.2 and same-field ones at 0.4-0.7.
FALLBACK_BACKGROUND_COSINE = 0.35
FALLBACK_BACKGROUND_PRIOR = 0.5
# Width (in cosine) of the fallback background's switch: 0.1 above the cosine above,
# the background keeps ~12% (blended model).
FALLBACK_BACKGROUND_WIDTH = 0.05
MAX_CALIBRATION_POINTS = 3000

# Blended model.
# Channels were added at the end over time ("direction", then the word and hubness ones):
# a blob fitted before one holds fewer weights and loads with zeros for the rest.
CHANNELS = (
    "classifier",
    "kernel",
    "centroid",
    "log_count",
    "subject",
    "direction",
    "word_kernel",
    "word_nearest",
    "hub_kernel",
)
MIN_BLEND_PAPERS = 100  # reference papers needed before the blend's weights mean anything
L2_GRID = (1e-4, 3e-4, 1e-3)  # classifier penalty, chosen by cross-fitted likelihood
INNER_FOLDS = 3
LR_MAX_ITER = 100
STACK_L2 = 1e-3
BACKGROUND_FOLDS = 2  # classifiers that each leave out a share of the background (see Blend)
WORD_TAU = 0.05  # word-space cosines spread like embedding ones; 0.03 and 0.1 scored the same
HUB_NEIGHBOURS = 10  # how many nearest references a paper's hubness averages over
SUBJECT_SMOOTHING = 2.0  # pseudo-papers pulled from the overall subject mix
FLOOR = -50.0  # logit floor for a channel with no evidence (log 0)


@dataclass(frozen=True)
class Negatives:
    """Papers known *not* to belong to one profile each (an editor's "not relevant" vote,
    `scoring.feedback`): nothing says where they belong instead, so the classifier learns
    them with the likelihood of "any class but this one", log(1 - P(c | x)), which names
    no other class. `subjects` / `lexical` are read like the catalog's own."""

    vectors: np.ndarray  # (m, d) unit rows
    labels: np.ndarray  # (m,) the profile each row is not
    weights: np.ndarray  # (m,) how much each row counts next to a reference paper (1)
    subjects: np.ndarray | None = None
    lexical: np.ndarray | sparse.spmatrix | None = None

    def __post_init__(self) -> None:
        if not len(self.vectors) == len(self.labels) == len(self.weights):
            raise ValueError("one label and one weight per negative example")


@dataclass(frozen=True)
class Catalog:
    """The profiles as arrays: reference vectors with a profile index each, plus background.

    `subjects` / `background_subjects` are optional (n, S) one-hot rows (all zero when a
    paper's subject is unknown), e.g. the bioRxiv category. `lexical` /
    `background_lexical` are optional (n, L) word features (`scoring.lexical`), dense or
    sparse; the blended model's classifier reads them when given.

    `weights` (n,) say how much each reference counts in the classifier's fit (1 when
    None; a preprint voted relevant may count for more or less than a published paper),
    and `negatives` are rows that belong to anything but one profile (`Negatives`); both
    come from the editors' votes (`scoring.feedback`).

    `background_weight` is how many preprints each background row stands for
    (`background_weight()`): the model learns the odds of "elsewhere" against the profiles
    from how many background rows it sees, and a sample that is small only because few
    preprints are stored yet must not make every profile likelier until the next refit."""

    names: tuple[str, ...]
    vectors: np.ndarray  # (n, d) unit rows
    labels: np.ndarray  # (n,) int in [0, len(names))
    background: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    subjects: np.ndarray | None = None
    background_subjects: np.ndarray | None = None
    lexical: np.ndarray | sparse.spmatrix | None = None
    background_lexical: np.ndarray | sparse.spmatrix | None = None
    weights: np.ndarray | None = None
    negatives: Negatives | None = None
    background_weight: float = 1.0

    def __post_init__(self) -> None:
        if len(self.vectors) != len(self.labels):
            raise ValueError("one label per reference vector")
        if not self.background_weight > 0:
            raise ValueError("a background row stands for a positive number of preprints")
        if self.weights is not None and len(self.weights) != len(self.vectors):
            raise ValueError("one weight per reference vector")
        if len(self.names) == 0:
            raise ValueError("a catalog needs at least one profile")
        counts = np.bincount(self.labels, minlength=len(self.names))
        if (counts == 0).any():
            empty = [self.names[i] for i in np.flatnonzero(counts == 0)]
            raise ValueError(f"profiles without reference papers: {', '.join(empty)}")
        if self.subjects is not None and len(self.subjects) != len(self.vectors):
            raise ValueError("one subject row per reference vector")
        self._check_lexical()

    def _check_lexical(self) -> None:
        if self.lexical is None:
            if self.background_lexical is not None:
                raise ValueError("background word features without the references' own")
            return
        if self.lexical.shape[0] != len(self.vectors):
            raise ValueError("one word-feature row per reference vector")
        if self.has_background and (
            self.background_lexical is None or self.background_lexical.shape != (len(self.background), self.lexical_dim)
        ):
            raise ValueError("word features for the background too: one row per background vector, same columns")

    @property
    def n_classes(self) -> int:
        return len(self.names) + 1

    @property
    def background_index(self) -> int:
        return len(self.names)

    @property
    def has_background(self) -> bool:
        return self.background.ndim == 2 and len(self.background) > 0

    @property
    def n_stacked(self) -> int:
        """Rows `stacked()` returns: references, then background."""
        return len(self.vectors) + (len(self.background) if self.has_background else 0)

    @property
    def lexical_dim(self) -> int:
        return 0 if self.lexical is None else int(self.lexical.shape[1])

    @property
    def n_subjects(self) -> int:
        for s in (self.subjects, self.background_subjects):
            if s is not None and s.ndim == 2:
                return int(s.shape[1])
        return 0

    def stacked(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All rows the model learns from: [references; background], their class and
        subject rows (background is class K when present)."""
        k = len(self.names)
        s = self.n_subjects
        x, y = self.vectors, np.asarray(self.labels, dtype=np.int64)
        subj = _subject_rows(self.subjects, len(x), s)
        if self.has_background:
            x = np.vstack([x, self.background])
            y = np.concatenate([y, np.full(len(self.background), k)])
            subj = np.vstack([subj, _subject_rows(self.background_subjects, len(self.background), s)])
        return np.asarray(x, dtype=np.float32), y, subj

    def stacked_weights(self) -> np.ndarray:
        """The classifier's weight of each row `stacked()` returns (background rows 1)."""
        refs = np.ones(len(self.vectors)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        return np.concatenate([refs, np.ones(self.n_stacked - len(self.vectors))])

    def stacked_lexical(self) -> sparse.csr_matrix | None:
        """Word features of the rows `stacked()` returns (sparse), or None."""
        if self.lexical is None:
            return None
        rows = [self.lexical] + ([self.background_lexical] if self.has_background else [])
        return sparse.vstack([sparse.csr_matrix(r) for r in rows], format="csr", dtype=np.float32)


@dataclass(frozen=True)
class Calibration:
    tau: float
    temperature: float
    ece: float
    nll: float
    heldout: int
    # Blended model only: channel weights and the classifier's L2 penalty.
    weights: tuple[tuple[str, float], ...] = ()
    l2: float | None = None


@dataclass(frozen=True)
class Blend:
    """The fitted parameters of the blended model: the classifier (one linear layer) and a
    weight per channel.

    The classifier learns the background class from the background sample, and those
    preprints are ranked too. Scored by a classifier that saw them, they would be
    recognised as background and sink in every ranking (measured on bioRxiv papers: a
    quarter fewer in a profile's top 5% than their share). So BACKGROUND_FOLDS more
    classifiers are fitted, each without one share of the background (rows j with
    j % folds == i), and a background preprint is scored by one that never saw it (then
    within about 10-15% of its share)."""

    weights: np.ndarray  # (len(CHANNELS),)
    lr_weights: np.ndarray  # (d + S + L, C) float32: embedding, subject, word-feature rows
    lr_bias: np.ndarray  # (C,)
    tau: float = DEFAULT_TAU
    lexical_dim: int = 0  # L; blobs from before word features hold none
    fold_weights: np.ndarray | None = None  # (folds, d + S + L, C), each without a share of the background
    fold_bias: np.ndarray | None = None  # (folds, C)
    # The word space (scoring.lexical.fit_word_space), (L, k), and where the stacked
    # [references; background] rows sit in it, (R, k): the bot rebuilds a stored model's
    # catalog without word features, and hashing every reference paper's text again would
    # cost seconds each time new preprints are scored.
    word_basis: np.ndarray | None = None
    word_rows: np.ndarray | None = None
    hub: np.ndarray | None = None  # (R,) hubness of each stacked row
    l2: float | None = None  # the classifier penalty the fit chose (blobs from before: None)
    l2_papers: int | None = None  # reference papers of the catalog that penalty was searched on

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        optional = {}
        if self.fold_weights is not None:
            optional |= {"fold_weights": self.fold_weights, "fold_bias": self.fold_bias}
        for name in ("word_basis", "word_rows", "hub", "l2", "l2_papers"):
            if getattr(self, name) is not None:
                optional[name] = np.asarray(getattr(self, name))
        np.savez(
            buf,
            weights=self.weights,
            lr_weights=self.lr_weights,
            lr_bias=self.lr_bias,
            tau=np.array(self.tau),
            lexical_dim=np.array(self.lexical_dim),
            **optional,
        )
        return buf.getvalue()

    @staticmethod
    def from_bytes(blob: bytes) -> Blend:
        with np.load(io.BytesIO(blob)) as z:
            weights = np.zeros(len(CHANNELS))
            stored = np.asarray(z["weights"], dtype=np.float64)
            weights[: len(stored)] = stored
            lexical_dim = int(z["lexical_dim"]) if "lexical_dim" in z.files else 0
            folds = (z["fold_weights"], z["fold_bias"]) if "fold_weights" in z.files else (None, None)
            words = [z[name] if name in z.files else None for name in ("word_basis", "word_rows", "hub")]
            l2 = float(z["l2"]) if "l2" in z.files else None
            l2_papers = int(z["l2_papers"]) if "l2_papers" in z.files else None
            return Blend(
                weights, z["lr_weights"], z["lr_bias"], float(z["tau"]), lexical_dim, *folds, *words, l2, l2_papers
            )


@dataclass(frozen=True)
class Scorer:
    """A fitted model: score any number of preprints against the catalog."""

    catalog: Catalog
    tau: float = DEFAULT_TAU
    temperature: float = 1.0
    calibration: Calibration | None = None
    blend: Blend | None = None
    _index: _Index | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.blend is None:
            return
        rows = self.catalog.vectors.shape[1] + self.catalog.n_subjects + self.blend.lexical_dim
        classes = len(self.catalog.names) + (1 if self.catalog.has_background else 0)
        if self.blend.lr_weights.shape != (rows, classes):
            raise ValueError(
                f"stored model has {self.blend.lr_weights.shape} classifier weights; this catalog needs "
                f"({rows}, {classes}): refit it"
            )
        for per_paper in (self.blend.word_rows, self.blend.hub):
            if per_paper is not None and len(per_paper) != self.catalog.n_stacked:
                raise ValueError(
                    f"stored model describes {len(per_paper)} papers; this catalog has {self.catalog.n_stacked}: "
                    "refit it"
                )
        if self._index is None:
            object.__setattr__(self, "_index", _Index.build(self.catalog, self.blend.word_rows, self.blend.hub))

    def log_posterior(
        self,
        x: np.ndarray,
        exclude_background: np.ndarray | None = None,
        subjects: np.ndarray | None = None,
        lexical: np.ndarray | sparse.spmatrix | None = None,
        progress: Advance | None = None,
    ) -> np.ndarray:
        """(N, K+1) log-probabilities; `exclude_background[i]` is a background row to ignore
        for query i (the preprint itself, when it is part of the background sample), or -1.
        `subjects` (N, S) one-hot rows are used by the blended model when given; `lexical`
        (N, L) word features (`scoring.lexical`) are required by a model fitted with them."""
        x = np.asarray(x, dtype=np.float32)
        wanted = self.blend.lexical_dim if self.blend is not None else 0
        if wanted and (lexical is None or lexical.shape != (len(x), wanted)):
            raise ValueError(f"this model reads word features: pass lexical, ({len(x)}, {wanted})")
        if wanted and sparse.issparse(lexical):
            lexical = sparse.csr_matrix(lexical)  # row slices below; COO has none
        out = np.empty((len(x), self.catalog.n_classes), dtype=np.float64)

        def block(start: int) -> None:
            stop = start + CHUNK
            excl = None if exclude_background is None else np.asarray(exclude_background[start:stop])
            if self.blend is not None:
                subj = None if subjects is None else subjects[start:stop]
                lex = None if lexical is None or not self.blend.lexical_dim else lexical[start:stop]
                out[start:stop] = self._blend_log_posterior(x[start:stop], excl, subj, lex)
                if progress:
                    progress(len(x[start:stop]))
                return
            logit = _class_log_density(self.catalog, x[start:stop], self.tau, excl)
            logit = _weigh_background(self.catalog, (logit + _log_priors(self.catalog)) / self.temperature)
            out[start:stop] = logit - _logsumexp(logit)[:, None]
            if progress:
                progress(len(x[start:stop]))

        starts = range(0, len(x), CHUNK)
        if len(starts) == 1:
            block(0)
            return out
        # numpy's exp and reductions run on one core; its matrix products on all of them.
        # Two blocks at once, each with a one-thread BLAS, keep both cores busy throughout:
        # a third faster to rescore 20,000 preprints on 2 cores (benchmarks/scoring_speed.py).
        with threadpool_limits(1), ThreadPoolExecutor(max_workers=SCORING_THREADS) as pool:
            list(pool.map(block, starts))
        return out

    def predict_proba(
        self,
        x: np.ndarray,
        exclude_background: np.ndarray | None = None,
        subjects: np.ndarray | None = None,
        lexical: np.ndarray | sparse.spmatrix | None = None,
        progress: Advance | None = None,
    ) -> np.ndarray:
        """(N, K+1) probabilities, each row summing to 1; the last column is background.
        `progress` hears how many preprints each finished block held."""
        return np.exp(self.log_posterior(x, exclude_background, subjects, lexical, progress))

    def to_bytes(self) -> bytes:
        """The fitted parameters (not the catalog): store them with the run and rebuild
        the same scorer with `Scorer.from_bytes(catalog, blob)` without refitting."""
        if self.blend is None:
            raise ValueError("only a fitted blended scorer has parameters to store")
        return self.blend.to_bytes()

    @staticmethod
    def from_bytes(catalog: Catalog, blob: bytes, calibration: Calibration | None = None) -> Scorer:
        blend = Blend.from_bytes(blob)
        return Scorer(catalog, tau=blend.tau, temperature=1.0, calibration=calibration, blend=blend)

    def _blend_log_posterior(
        self, x: np.ndarray, excl: np.ndarray | None, subj: np.ndarray | None, lex: sparse.csr_matrix | None
    ) -> np.ndarray:
        assert self.blend is not None and self._index is not None
        rows = None
        if excl is not None:
            rows = np.where(excl >= 0, len(self.catalog.vectors) + excl, -1)
        dense = np.hstack([x, _subject_rows(subj, len(x), self._index.n_subjects)])
        classifier = _classifier(self.blend, dense, lex, excl)
        words = None if lex is None or self.blend.word_basis is None else word_vectors(lex, self.blend.word_basis)
        feats, valid = _channels(self._index, self.blend, x, dense[:, x.shape[1] :], rows, classifier, words=words)
        logit = _weigh_background(self.catalog, _combine(feats, valid, self.blend.weights))
        if not self.catalog.has_background:
            logit = np.hstack([logit, _fallback_background_logit(logit, self._index, x)[:, None]])
        return logit - _logsumexp(logit)[:, None]


def fit(
    catalog: Catalog,
    taus: tuple[float, ...] = TAUS,
    seed: int = 0,
    method: str = "auto",
    l2_grid: tuple[float, ...] = L2_GRID,
    progress: Steps | None = None,
) -> Scorer:
    """Fit the scoring model: "auto" (the default) is the blend once the catalog is large
    enough to fit it and the kernel-density model before; "blend" and "kde" force one
    (kde: tau and T by leave-one-out likelihood over `taus`)."""
    if method == "auto":
        # The blend learns its channel weights from held-out reference papers; with only a
        # handful of them (a new install, a test catalog) those weights are noise, and the
        # kernel-density model, which has two parameters, is the better-calibrated choice.
        enough = len(catalog.labels) >= MIN_BLEND_PAPERS and catalog.has_background
        method = "blend" if enough else "kde"
    if method == "kde":
        return _fit_kde(catalog, taus, seed)
    if method != "blend":
        raise ValueError(f"unknown scoring method {method!r}: use 'blend' or 'kde'")
    return _fit_blend(catalog, seed, l2_grid, progress)


def _fit_kde(catalog: Catalog, taus: tuple[float, ...], seed: int) -> Scorer:
    x, y, self_cols = _heldout_sample(catalog, seed)
    best: Calibration | None = None
    for tau in taus:
        log_dens = np.vstack(
            [
                _class_log_density(catalog, x[i : i + CHUNK], tau, None, self_cols[i : i + CHUNK], y[i : i + CHUNK])
                for i in range(0, len(x), CHUNK)
            ]
        ) + _log_priors(catalog)
        temperature = _fit_temperature(log_dens, y)
        probs = _softmax(log_dens / temperature)
        nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))
        if best is None or nll < best.nll:
            best = Calibration(tau, temperature, expected_calibration_error(probs, y), nll, len(y))
    assert best is not None
    return Scorer(catalog, tau=best.tau, temperature=best.temperature, calibration=best)


# -- blended model -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Index:
    """Arrays derived from the catalog once, for fast scoring."""

    refs: np.ndarray  # (R, d) sorted by class
    order: np.ndarray  # (R,) position in sorted order of each stacked row
    starts: np.ndarray  # (C,) first sorted row of each class
    labels: np.ndarray  # (R,) class of each stacked row (unsorted)
    counts: np.ndarray  # (C,)
    sums: np.ndarray  # (C, d) sum of each class's vectors
    sum_norms2: np.ndarray  # (C,) squared length of each class's sum
    subject_counts: np.ndarray  # (C, S)
    subject_share: np.ndarray  # (S,)
    stacked_subjects: np.ndarray  # (R, S)
    stacked_vectors: np.ndarray  # (R, d)
    n_subjects: int
    words: np.ndarray | None = None  # (R, k) sorted like refs (Blend.word_rows)
    hub: np.ndarray | None = None  # (R,) sorted like refs (Blend.hub)

    @staticmethod
    def build(catalog: Catalog, word_rows: np.ndarray | None = None, hub: np.ndarray | None = None) -> _Index:
        x, y, subj = catalog.stacked()
        c = len(catalog.names) + (1 if catalog.has_background else 0)
        sort = np.argsort(y, kind="stable")
        order = np.empty_like(sort)
        order[sort] = np.arange(len(sort))
        counts = np.bincount(y, minlength=c).astype(np.float64)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        sums = np.zeros((c, x.shape[1]), dtype=np.float64)
        np.add.at(sums, y, x)
        s = subj.shape[1]
        subject_counts = np.zeros((c, s))
        if s:
            np.add.at(subject_counts, y, subj)
        total = subject_counts.sum(axis=0)
        share = (total + 1.0) / (total.sum() + s) if s else np.zeros(0)

        def sorted_rows(rows: np.ndarray | None) -> np.ndarray | None:
            return None if rows is None else np.ascontiguousarray(np.asarray(rows, dtype=np.float32)[sort])

        return _Index(
            np.ascontiguousarray(x[sort]),
            order,
            starts,
            y,
            counts,
            sums,
            (sums * sums).sum(axis=1),
            subject_counts,
            share,
            subj,
            x,
            s,
            sorted_rows(word_rows),
            sorted_rows(hub),
        )


def _subject_rows(subj: np.ndarray | None, n: int, s: int) -> np.ndarray:
    if subj is None or s == 0:
        return np.zeros((n, s), dtype=np.float32)
    subj = np.asarray(subj, dtype=np.float32)
    if subj.shape != (n, s):
        raise ValueError(f"subjects must be ({n}, {s}) one-hot rows")
    return subj


def _channels(
    index: _Index,
    blend: Blend | None,
    x: np.ndarray,
    subj: np.ndarray,
    self_rows: np.ndarray | None,
    classifier: np.ndarray,
    tau: float = DEFAULT_TAU,
    words: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, C, len(CHANNELS)) evidence per class, and (N, C) whether the class has any
    papers left once each query's own row (`self_rows`, stacked index or -1) is out.
    `words` are the queries' word-space rows (`word_vectors`), when the model has a space."""
    n, c = len(x), len(index.counts)
    tau = blend.tau if blend is not None else tau
    counts = np.broadcast_to(index.counts, (n, c)).copy()
    sums = x.astype(np.float64) @ index.sums.T  # (N, C): sum of cosines per class
    norms2 = np.broadcast_to(index.sum_norms2, (n, c)).copy()
    sims = x @ index.refs.T
    has_self = None
    if self_rows is not None:
        has_self = np.flatnonzero(self_rows >= 0)
        own = index.labels[self_rows[has_self]]
        left = index.stacked_vectors[self_rows[has_self]].astype(np.float64)
        counts[has_self, own] -= 1
        sims[has_self, index.order[self_rows[has_self]]] = -np.inf
        sums[has_self, own] -= np.einsum("ij,ij->i", x[has_self], left)
        # |s - v|^2 = |s|^2 - 2 s.v + |v|^2: the class sum s without the left-out row v.
        norms2[has_self, own] += np.einsum("ij,ij->i", left, left - 2 * index.sums[own])
    valid = counts > 0
    feats = np.zeros((n, c, len(CHANNELS)))
    feats[..., 0] = classifier
    weights, top = _vote_weights(sims, tau)  # sims is spent: rescoring works on 70 MB blocks
    feats[..., 1] = _log_vote(weights, top, index.starts, tau)
    if index.hub is not None:
        # exp((cos - h) / tau) = exp(cos / tau) * exp(-h / tau): the same weights, rescaled.
        weights *= np.exp(-index.hub / np.float32(tau))
        feats[..., 8] = _log_vote(weights, top, index.starts, tau)
    if index.words is not None and words is not None:
        word_sims = words @ index.words.T
        if has_self is not None:
            word_sims[has_self, index.order[self_rows[has_self]]] = -np.inf
        feats[..., 7] = np.maximum.reduceat(word_sims, index.starts, axis=1)
        weights, top = _vote_weights(word_sims, WORD_TAU)
        feats[..., 6] = _log_vote(weights, top, index.starts, WORD_TAU)
    feats[..., 2] = sums / np.maximum(counts, 1)
    feats[..., 5] = np.where(norms2 > 1e-12, sums / np.sqrt(np.maximum(norms2, 1e-12)), 0.0)
    with np.errstate(divide="ignore"):
        feats[..., 3] = np.log(counts)
    if index.n_subjects:
        known = subj.sum(axis=1) > 0
        m = subj @ index.subject_counts.T  # papers of class c with the query's subject
        if has_self is not None:
            own_subject = np.einsum("ij,ij->i", subj[has_self], index.stacked_subjects[self_rows[has_self]])
            own_class = np.arange(c)[None, :] == index.labels[self_rows[has_self]][:, None]
            m[has_self] -= own_subject[:, None] * own_class
        share = subj @ index.subject_share
        share = np.where(known, share, 1.0)
        p = (m + SUBJECT_SMOOTHING * share[:, None]) / (np.maximum(counts, 0) + SUBJECT_SMOOTHING)
        feats[..., 4] = np.where(known[:, None], np.log(p / share[:, None]), 0.0)
    feats = np.where(np.isfinite(feats), feats, FLOOR)
    return feats, valid


def _vote_weights(sims: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """exp((sims - top) / tau), computed in place over `sims` (no copy of an (N, R) block),
    and each row's top (N, 1), for `_log_vote`."""
    top = sims.max(axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0.0
    sims -= top
    sims *= np.float32(1.0 / tau)
    return np.exp(sims, out=sims), top


def _log_vote(weights: np.ndarray, top: np.ndarray, starts: np.ndarray, tau: float) -> np.ndarray:
    """(N, C) log sum over each class's columns of exp(sims / tau) from `_vote_weights`;
    `starts` are the first column of each class (columns sorted by class)."""
    with np.errstate(divide="ignore"):
        return np.log(np.add.reduceat(weights, starts, axis=1).astype(np.float64)) + top / tau


def _hubness(x: np.ndarray, k: int = HUB_NEIGHBOURS) -> np.ndarray:
    """(R,) mean cosine of each unit row of `x` to its k nearest other rows."""
    k = min(k, len(x) - 1)
    out = np.zeros(len(x), dtype=np.float32)
    if k < 1:
        return out
    for start in range(0, len(x), CHUNK):
        sims = x[start : start + CHUNK] @ x.T
        sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        out[start : start + CHUNK] = np.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)
    return out


def _classifier(blend: Blend, dense: np.ndarray, words: sparse.spmatrix | None, excl: np.ndarray | None) -> np.ndarray:
    """Log-probabilities of the classifier; a background preprint (`excl` >= 0) gets those
    of a classifier fitted without its share of the background (see `Blend`)."""
    z = _linear(dense, words, blend.lr_weights, blend.lr_bias)
    if excl is not None and blend.fold_weights is not None:
        for fold in range(len(blend.fold_weights)):
            rows = np.flatnonzero((excl >= 0) & (excl % len(blend.fold_weights) == fold))
            if len(rows):
                sub = None if words is None else words[rows]
                z[rows] = _linear(dense[rows], sub, blend.fold_weights[fold], blend.fold_bias[fold])
    return z - _logsumexp(z)[:, None]


def _combine(feats: np.ndarray, valid: np.ndarray, weights: np.ndarray) -> np.ndarray:
    logit = feats @ weights
    return np.where(valid, logit, -np.inf)


def _fallback_background_logit(logit: np.ndarray, index: _Index, x: np.ndarray) -> np.ndarray:
    """No background sample: a pseudo-class that takes half the mass at the fallback cosine
    to the nearest reference paper, and less the closer the preprint is to a profile."""
    nearest = (x @ index.refs.T).max(axis=1)
    odds = np.log(FALLBACK_BACKGROUND_PRIOR / (1 - FALLBACK_BACKGROUND_PRIOR))
    return _logsumexp(logit) + odds + (FALLBACK_BACKGROUND_COSINE - nearest) / FALLBACK_BACKGROUND_WIDTH


@dataclass(frozen=True)
class _NegativeRows:
    """`Negatives` as the classifier reads them: features (embedding + subject), words."""

    features: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    words: sparse.csr_matrix | None

    @staticmethod
    def of(catalog: Catalog) -> _NegativeRows | None:
        neg = catalog.negatives
        if neg is None or len(neg.labels) == 0:
            return None
        subj = _subject_rows(neg.subjects, len(neg.vectors), catalog.n_subjects)
        words = None
        if catalog.lexical is not None:
            if neg.lexical is None or neg.lexical.shape != (len(neg.vectors), catalog.lexical_dim):
                raise ValueError("word features for the negatives too: one row each, the references' columns")
            words = sparse.csr_matrix(neg.lexical, dtype=np.float32)
        return _NegativeRows(
            np.hstack([np.asarray(neg.vectors, dtype=np.float32), subj]),
            np.asarray(neg.labels, dtype=np.int64),
            np.asarray(neg.weights, dtype=np.float64),
            words,
        )


def train_logistic(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    l2: float,
    max_iter: int = LR_MAX_ITER,
    sparse_x: sparse.spmatrix | None = None,
    sample_weight: np.ndarray | None = None,
    negatives: _NegativeRows | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (L2 on the weights, free biases), full-batch L-BFGS.

    `sparse_x` are more columns (word features), multiplied as a sparse matrix: a paper
    uses a few dozen of 2,048, and dense they would make the fit several times slower.
    Their weights follow `x`'s in the result. `sample_weight` weighs each row's loss;
    `negatives` are rows of "not this class" (`Negatives`), learnt as log(1 - p)."""
    import torch

    n_pos = len(x)
    weight = np.ones(n_pos) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if negatives is not None and len(negatives.labels):
        x = np.vstack([x, negatives.features])
        y = np.concatenate([np.asarray(y, dtype=np.int64), negatives.labels])
        weight = np.concatenate([weight, negatives.weights])
        if sparse_x is not None:
            sparse_x = sparse.vstack([sparse.csr_matrix(sparse_x), sparse.csr_matrix(negatives.words)])
    xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64))
    wt = torch.as_tensor(weight / max(weight.sum(), 1e-12), dtype=torch.float32)
    not_label = torch.nn.functional.one_hot(yt, n_classes).bool()
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    params = [w, b]
    st = ws = None
    if sparse_x is not None:
        coo = sparse.coo_matrix(sparse_x, dtype=np.float32)
        indices = torch.as_tensor(np.vstack([coo.row, coo.col]).astype(np.int64))
        st = torch.sparse_coo_tensor(indices, torch.as_tensor(coo.data), coo.shape, check_invariants=True).coalesce()
        ws = torch.zeros(coo.shape[1], n_classes, requires_grad=True)
        params.append(ws)
    opt = torch.optim.LBFGS(params, lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = xt @ w + b
        penalty = (w * w).sum()
        if ws is not None:
            logits = logits + torch.sparse.mm(st, ws)
            penalty = penalty + (ws * ws).sum()
        log_p = torch.log_softmax(logits, dim=1)
        nll = -log_p.gather(1, yt[:, None])[:, 0]
        if n_pos < len(yt):
            # A negative row's likelihood is that of every other class: log(1 - p_y).
            rest = torch.logsumexp(log_p[n_pos:].masked_fill(not_label[n_pos:], -torch.inf), dim=1)
            nll = torch.cat([nll[:n_pos], -rest])
        loss = (wt * nll).sum() + 0.5 * l2 * penalty
        loss.backward()
        return loss

    opt.step(closure)
    weights = w if ws is None else torch.vstack([w, ws])
    return weights.detach().numpy().astype(np.float32), b.detach().numpy().astype(np.float32)


def _fit_blend(catalog: Catalog, seed: int, l2_grid: tuple[float, ...], progress: Steps | None = None) -> Scorer:
    x, y, subj = catalog.stacked()
    lexical = catalog.stacked_lexical()
    basis = None if lexical is None else fit_word_space(lexical, seed=seed)
    word_rows = None if basis is None else word_vectors(lexical, basis)
    hub = _hubness(x)
    index = _Index.build(catalog, word_rows, hub)
    n_classes = len(index.counts)
    features = np.hstack([x, subj]).astype(np.float32)
    row_weights = catalog.stacked_weights()
    negatives = _NegativeRows.of(catalog)

    def words(rows: np.ndarray | None = None) -> sparse.csr_matrix | None:
        return None if lexical is None else (lexical if rows is None else lexical[rows])

    rng = np.random.default_rng(seed)
    # Held-out points: rows whose class keeps a paper when they are left out.
    eligible = np.flatnonzero(index.counts[y] >= 2)
    sample = eligible
    if len(sample) > MAX_CALIBRATION_POINTS:
        sample = np.sort(rng.choice(eligible, MAX_CALIBRATION_POINTS, replace=False))
    folds = stratified_folds(y, INNER_FOLDS, seed)

    # Every regression below is independent of the others: run them side by side, each
    # on one thread (see `_fit_jobs`).
    heldout = [np.flatnonzero(folds[sample] == f) for f in range(INNER_FOLDS)]
    grid = l2_grid if len(sample) else ()
    jobs = [(l2, f) for l2 in grid for f in range(INNER_FOLDS) if len(heldout[f])]
    n_folds = BACKGROUND_FOLDS if catalog.has_background else 0
    advance = begin_step(progress, "fitting (regressions)", len(jobs) + 1 + n_folds)

    def fold_fit(job: tuple[float, int]) -> tuple[np.ndarray, np.ndarray]:
        l2, f = job
        train = np.flatnonzero(folds != f)
        return train_logistic(
            features[train],
            y[train],
            n_classes,
            l2,
            sparse_x=words(train),
            sample_weight=row_weights[train],
            negatives=negatives,
        )

    fitted_folds = dict(zip(jobs, _fit_jobs(fold_fit, jobs, advance), strict=True))

    def crossfit(l2: float) -> np.ndarray:
        out = np.full((len(sample), n_classes), FLOOR)
        for f, held in enumerate(heldout):
            if len(held):
                w, b = fitted_folds[(l2, f)]
                z = _linear(features[sample[held]], words(sample[held]), w, b)
                out[held] = z - _logsumexp(z)[:, None]
        return out

    best_l2, best_lr, best_nll = l2_grid[0], None, np.inf
    # Searched here, or chosen on another catalog and handed in (a one-value grid).
    searched_on = len(catalog.labels) if len(l2_grid) > 1 else None
    if len(sample) and len(l2_grid) > 1:
        for l2 in l2_grid:
            logp = crossfit(l2)
            nll = float(-np.mean(logp[np.arange(len(sample)), y[sample]]))
            if nll < best_nll:
                best_l2, best_lr, best_nll = l2, logp, nll
    elif len(sample):
        best_lr = crossfit(best_l2)
    # The classifier on every row, and (with a background) one without each share of it.
    first = len(catalog.vectors)
    final = _fit_jobs(
        lambda fold: _fit_without_background_share(
            features, lexical, y, n_classes, best_l2, first, fold, row_weights, negatives
        ),
        [None, *range(n_folds)],
        advance,
    )
    lr_w, lr_b = final[0]
    folds = {}
    if n_folds:
        folds = {"fold_weights": np.stack([w for w, _ in final[1:]]), "fold_bias": np.stack([b for _, b in final[1:]])}

    words_and_hubs = {"word_basis": basis, "word_rows": word_rows, "hub": hub, "l2": best_l2, "l2_papers": searched_on}
    if len(sample) == 0:
        # Every profile has a single paper: nothing to hold out; trust the kernel vote.
        weights = np.zeros(len(CHANNELS))
        weights[CHANNELS.index("kernel")] = 1.0
        blend = Blend(weights, lr_w, lr_b, lexical_dim=catalog.lexical_dim, **folds, **words_and_hubs)
        cal = Calibration(
            DEFAULT_TAU,
            1.0,
            float("nan"),
            float("nan"),
            0,
            tuple(zip(CHANNELS, weights.tolist(), strict=True)),
            best_l2,
        )
        return Scorer(catalog, tau=DEFAULT_TAU, temperature=1.0, calibration=cal, blend=blend)

    feats, valid = [], []
    for start in range(0, len(sample), CHUNK):
        rows = sample[start : start + CHUNK]
        held_words = None if word_rows is None else word_rows[rows]
        f, v = _channels(index, None, x[rows], subj[rows], rows, best_lr[start : start + CHUNK], words=held_words)
        feats.append(f)
        valid.append(v)
    feats_all, valid_all = np.vstack(feats), np.vstack(valid)
    weights = _fit_weights(feats_all, valid_all, y[sample])
    logit = _combine(feats_all, valid_all, weights)
    probs = _softmax(logit)
    nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(sample)), y[sample]], 1e-12, None))))
    cal = Calibration(
        DEFAULT_TAU,
        1.0,
        expected_calibration_error(probs, y[sample]),
        nll,
        len(sample),
        tuple(zip(CHANNELS, [float(v) for v in weights], strict=True)),
        best_l2,
    )
    blend = Blend(weights, lr_w, lr_b, lexical_dim=catalog.lexical_dim, **folds, **words_and_hubs)
    return Scorer(catalog, tau=DEFAULT_TAU, temperature=1.0, calibration=cal, blend=blend, _index=index)


def _fit_without_background_share(
    features: np.ndarray,
    words: sparse.csr_matrix | None,
    y: np.ndarray,
    n_classes: int,
    l2: float,
    first: int,
    fold: int | None,
    row_weights: np.ndarray | None = None,
    negatives: _NegativeRows | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The classifier on every row (`fold` None), or refitted without one share of the
    background rows (stacked rows `first` onward, j % BACKGROUND_FOLDS == fold); see `Blend`."""
    if fold is None:
        return train_logistic(
            features, y, n_classes, l2, sparse_x=words, sample_weight=row_weights, negatives=negatives
        )
    row = np.arange(len(y))
    keep = np.flatnonzero((row < first) | ((row - first) % BACKGROUND_FOLDS != fold))
    sub = None if words is None else words[keep]
    weight = None if row_weights is None else row_weights[keep]
    w, b = train_logistic(
        features[keep], y[keep], n_classes, l2, sparse_x=sub, sample_weight=weight, negatives=negatives
    )
    # Less background is a smaller prior for it: restore the full sample's odds.
    b[-1] += np.log((len(y) - first) / max(len(keep) - first, 1))
    return w, b


def _fit_jobs(fn, jobs: list, progress: Advance | None = None) -> list:
    """`[fn(job) for job in jobs]`, FIT_WORKERS at a time, PyTorch on one thread each;
    `progress` hears of each one done.

    A regression's L-BFGS is thousands of small tensor operations; with PyTorch's thread
    pool spread over every core, each one waits for all of them, and on a shared machine
    that wait is for cores other processes hold: 14 s quiet became 136-191 s at load 3-5
    (one thread: 22 s). One thread per regression, and as many regressions at once as
    workers, keeps both cores busy without that wait."""
    import torch

    def one(job):
        result = fn(job)
        if progress:
            progress(1)
        return result

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if len(jobs) <= 1 or FIT_WORKERS <= 1:
            return [one(job) for job in jobs]
        with ThreadPoolExecutor(max_workers=FIT_WORKERS) as pool:
            return list(pool.map(one, jobs))
    finally:
        torch.set_num_threads(before)


def _fit_weights(feats: np.ndarray, valid: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Channel weights by maximum likelihood of the held-out labels (a conditional logit)."""
    from scipy.optimize import minimize

    rows = np.arange(len(y))
    mask = np.where(valid, 0.0, -np.inf)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = feats @ w + mask
        lse = _logsumexp(z)
        p = np.exp(z - lse[:, None])
        ll = z[rows, y] - lse
        grad = -(feats[rows, y] - np.einsum("nc,ncd->nd", p, feats)).mean(axis=0) + STACK_L2 * w
        return float(-ll.mean() + 0.5 * STACK_L2 * w @ w), grad

    start = np.zeros(len(CHANNELS))
    start[CHANNELS.index("classifier")] = 1.0
    # More similarity must never lower a class's probability. Unbounded, a small catalog
    # (a few papers a profile) can fit a negative kernel weight on leave-one-out data and
    # then send a profile's own papers to another profile.
    bounds = [(None, None) if name == "log_count" else (0.0, None) for name in CHANNELS]
    result = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return result.x


def nearest_references(scorer: Scorer, x: np.ndarray, profile: int, k: int = 3) -> list[tuple[int, float]]:
    """The profile's reference papers closest to one preprint: (row in catalog.vectors, cosine)."""
    rows = np.flatnonzero(scorer.catalog.labels == profile)
    sims = scorer.catalog.vectors[rows] @ np.asarray(x, dtype=np.float32)
    order = np.argsort(-sims)[:k]
    return [(int(rows[i]), float(sims[i])) for i in order]


def background_weight(rows: int, stands_for: int) -> float:
    """How many preprints each of `rows` background rows stands for, when the sample is
    meant to be `stands_for` preprints (the configured sample size) and the store holds
    fewer: never less than one."""
    return max(1.0, stands_for / rows) if rows else 1.0


# -- internals ---------------------------------------------------------------------------


def _weigh_background(catalog: Catalog, logit: np.ndarray) -> np.ndarray:
    """Fitted logits with the background's prior as if each of its rows were
    `catalog.background_weight` preprints.

    The fit calibrates the model on its own rows, so the odds of "elsewhere" against
    the profiles are those of the sample's size: 800 background rows next to 300
    reference papers give "elsewhere" a prior of 0.73, 1,250 rows 0.81. Bayes' rule moves
    a calibrated posterior to other class proportions by the ratio of the priors, here a
    constant on the background's logit; the sample still decides what "elsewhere" looks
    like. Without it every refit while the store grows toward the sample size lowered
    every profile's score (benchmarks/feedback_replay.py, docs/results.md "Votes")."""
    if catalog.background_weight == 1.0 or not catalog.has_background:
        return logit
    logit = logit.copy()
    logit[:, catalog.background_index] += np.log(catalog.background_weight)
    return logit


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


def _linear(x: np.ndarray, words: sparse.spmatrix | None, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Logits of a fitted regression whose last rows of `w` weigh the word features."""
    z = x @ w[: x.shape[1]] + b
    return z if words is None else z + np.asarray(words @ w[x.shape[1] :])
