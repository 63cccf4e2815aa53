"""Peer methods, re-implemented from their published descriptions, for the quality benchmark.

Every method sees the same training papers (vectors, texts, subject one-hot, labels
0..K-1) and returns, for the test papers, `probs` (N, K): a probability over the
catalog, for "which journal fits this preprint"; and `digest` (N, K): the score the
method would rank preprints by for one journal (its own raw score where it has one,
else the probability).

Methods whose native output is a score rather than a probability (centroid cosine,
SVM margins, weighted similarity) are turned into probabilities with a softmax whose
temperature is fitted on cross-fitted predictions of the training papers: each peer
gets its best-calibrated version, so ECE compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scoring.metrics import stratified_folds
from scoring.scorer import _fit_temperature, _logsumexp, train_logistic

KNN_K = 20
KNN_SHARE = 0.9  # the reference system: 90% kNN vote, 10% logistic regression
CALIBRATION_FOLDS = 3
SVM_C = 0.1


@dataclass(frozen=True)
class Papers:
    """Labelled papers as arrays (labels index the catalog; -1 where unknown)."""

    vectors: np.ndarray  # (n, d) unit rows
    labels: np.ndarray  # (n,)
    texts: tuple[str, ...] = ()
    subjects: np.ndarray | None = None  # (n, S) one-hot, zero rows where unknown

    def __len__(self) -> int:
        return len(self.vectors)

    def take(self, rows: np.ndarray) -> Papers:
        return Papers(
            self.vectors[rows],
            self.labels[rows],
            tuple(self.texts[i] for i in rows) if self.texts else (),
            None if self.subjects is None else self.subjects[rows],
        )


@dataclass(frozen=True)
class Scores:
    probs: np.ndarray  # (N, K) rows summing to 1
    digest: np.ndarray  # (N, K) ranking score per journal


Method = Callable[[Papers, int, Papers], Scores]


# -- class prior --------------------------------------------------------------------------


def prior(train: Papers, n_classes: int, test: Papers) -> Scores:
    """No content: every preprint gets the catalog's share of papers per journal."""
    counts = np.bincount(train.labels, minlength=n_classes).astype(np.float64)
    probs = np.tile(counts / counts.sum(), (len(test), 1))
    return Scores(probs, probs)


# -- journal centroid (annorxiver / preprint-similarity-search) --------------------------


def _centroid_scores(train: Papers, n_classes: int, test: Papers) -> np.ndarray:
    sums = np.zeros((n_classes, train.vectors.shape[1]))
    np.add.at(sums, train.labels, train.vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    centroids = sums / np.where(norms > 0, norms, 1.0)
    return test.vectors @ centroids.T


def centroid(train: Papers, n_classes: int, test: Papers) -> Scores:
    """Cosine similarity to each journal's mean embedding."""
    return _calibrated(_centroid_scores, train, n_classes, test)


# -- weighted mean similarity to the reference set (zotero-arxiv-daily) ------------------


def _zotero_scores(train: Papers, n_classes: int, test: Papers) -> np.ndarray:
    """Mean cosine to the journal's papers weighted 1/(1+log10(rank)), normalised; the
    published tool ranks the corpus by date added, which this data lacks, so here the
    rank is the paper's similarity rank within its journal (time-free)."""
    sims = test.vectors @ train.vectors.T
    out = np.zeros((len(test), n_classes))
    for c in np.unique(train.labels):
        block = -np.sort(-sims[:, train.labels == c], axis=1)
        w = 1.0 / (1.0 + np.log10(np.arange(1, block.shape[1] + 1)))
        out[:, c] = block @ (w / w.sum())
    return out


def zotero(train: Papers, n_classes: int, test: Papers) -> Scores:
    return _calibrated(_zotero_scores, train, n_classes, test)


# -- TF-IDF + linear SVM per profile (arxiv-sanity) ---------------------------------------


def _svm_scores(train: Papers, n_classes: int, test: Papers) -> np.ndarray:
    """One linear SVM per journal (its papers against all others, classes balanced) on
    TF-IDF of unigrams + bigrams with sublinear tf; the margin is the score."""
    import warnings

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    if not train.texts:
        raise ValueError("the TF-IDF method needs the papers' texts")
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
    xtr = vec.fit_transform(train.texts)
    xte = vec.transform(test.texts)
    out = np.full((len(test), n_classes), -10.0)
    for c in np.unique(train.labels):
        target = (train.labels == c).astype(int)
        svm = LinearSVC(C=SVM_C, class_weight="balanced", max_iter=10000, tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            svm.fit(xtr, target)
        out[:, c] = svm.decision_function(xte)
    return out


def tfidf_svm(train: Papers, n_classes: int, test: Papers) -> Scores:
    return _calibrated(_svm_scores, train, n_classes, test)


# -- kNN + logistic regression (the reference preprint-to-journal system) ----------------


def _knn_vote(train: Papers, n_classes: int, test: Papers, k: int = KNN_K) -> np.ndarray:
    sims = test.vectors @ train.vectors.T
    k = min(k, sims.shape[1])
    nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    votes = np.zeros((len(test), n_classes))
    rows = np.repeat(np.arange(len(test)), k)
    np.add.at(votes, (rows, train.labels[nearest].ravel()), np.clip(sims[rows, nearest.ravel()], 0, None))
    total = votes.sum(axis=1, keepdims=True)
    return np.where(total > 0, votes / np.where(total > 0, total, 1), 1.0 / n_classes)


def _features(papers: Papers) -> np.ndarray:
    if papers.subjects is None or papers.subjects.shape[1] == 0:
        return papers.vectors
    return np.hstack([papers.vectors, papers.subjects]).astype(np.float32)


def _logistic_probs(train: Papers, n_classes: int, test: Papers) -> np.ndarray:
    # scikit-learn's default C=1 on summed loss is an L2 of 1/n on the mean loss.
    w, b = train_logistic(_features(train), train.labels, n_classes, l2=1.0 / max(len(train), 1))
    z = _features(test) @ w + b
    return np.exp(z - _logsumexp(z)[:, None])


def _knn_lr_scores(train: Papers, n_classes: int, test: Papers) -> np.ndarray:
    blend = KNN_SHARE * _knn_vote(train, n_classes, test) + (1 - KNN_SHARE) * _logistic_probs(train, n_classes, test)
    return np.log(np.clip(blend, 1e-12, None))


def knn_lr(train: Papers, n_classes: int, test: Papers) -> Scores:
    """Similarity-weighted kNN vote (k=20) blended 90/10 with multinomial logistic
    regression on embedding + subject one-hot, then temperature-calibrated."""
    scores = _calibrated(_knn_lr_scores, train, n_classes, test)
    return Scores(scores.probs, scores.probs)


# -- shared calibration ---------------------------------------------------------------------


def _calibrated(
    score: Callable[[Papers, int, Papers], np.ndarray], train: Papers, n_classes: int, test: Papers
) -> Scores:
    """Softmax(score / T), T fitted on the training papers' cross-fitted scores."""
    raw = score(train, n_classes, test)
    temperature = _crossfit_temperature(score, train, n_classes)
    z = raw / temperature
    return Scores(np.exp(z - _logsumexp(z)[:, None]), raw)


def _crossfit_temperature(score, train: Papers, n_classes: int) -> float:
    folds = stratified_folds(train.labels, CALIBRATION_FOLDS, seed=0)
    logits, labels = [], []
    for f in range(CALIBRATION_FOLDS):
        held = np.flatnonzero(folds == f)
        if len(held) == 0:
            continue
        rest = np.flatnonzero(folds != f)
        s = score(train.take(rest), n_classes, train.take(held))
        present = np.bincount(train.labels[rest], minlength=n_classes) > 0
        logits.append(np.where(present, s, -np.inf))
        labels.append(train.labels[held])
    if not logits:
        return 1.0
    z = np.vstack(logits)
    z = np.where(np.isfinite(z), z, np.nanmin(np.where(np.isfinite(z), z, np.nan)) - 50)
    return _fit_temperature(z, np.concatenate(labels))


PEERS: dict[str, Method] = {
    "prior": prior,
    "centroid": centroid,
    "knn_lr": knn_lr,
    "tfidf_svm": tfidf_svm,
    "zotero": zotero,
}

DESCRIPTIONS = {
    "prior": "class prior (no content)",
    "centroid": "journal centroid cosine (annorxiver)",
    "knn_lr": "kNN k=20 + logistic regression 90/10, calibrated (reference system)",
    "tfidf_svm": "TF-IDF 1-2 grams + linear SVM per profile (arxiv-sanity)",
    "zotero": "weighted mean cosine, 1/(1+log10 rank) (zotero-arxiv-daily)",
}
