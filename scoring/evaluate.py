"""Cross-validated quality of the default scorer and of the peer methods, on the same folds.

Pure: labelled papers in (vectors, texts, subject one-hot, journal index), metrics out.
`bot.scores.evaluation` does the reading, embedding and laying out for `scout evaluate`.

For "which journal fits this preprint", each method ranks the catalog of *training*
journals; the default scorer's probabilities include a background class, which is
left out and the rest renormalised: every test paper here was published in a catalog
journal, so P(journal | preprint, one of the catalog's) is what can be checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scoring.lexical import lexical_features
from scoring.metrics import (
    RankingQuality,
    RankingRows,
    RetrievalQuality,
    SizeQuality,
    retrieval_quality,
    stratified_folds,
)
from scoring.peers import DESCRIPTIONS as PEER_DESCRIPTIONS
from scoring.peers import PEERS, Method, Papers, Scores
from scoring.scorer import Catalog, fit

DEFAULT_METHOD = "scout"


def scout(train: Papers, n_classes: int, test: Papers) -> Scores:
    """The product's scorer (`scoring.scorer.fit`), catalog = the training journals."""
    # No subject categories, as in the product: a journal's own listing has none while every
    # preprint has one, and in this benchmark's data whether a paper has one depends on its
    # journal (Genome Research 0%, PLOS Genetics 98%), so a model given them learns who has
    # a subject rather than what the subject says (docs/results.md, "Scoring quality").
    catalog = Catalog(
        names=tuple(str(i) for i in range(n_classes)),
        vectors=train.vectors,
        labels=train.labels,
        lexical=lexical_features(train.texts) if train.texts else None,
    )
    # The product fits the blend once a catalog has 100+ papers and a background sample
    # ("auto"); benchmark catalogs are that large but have no background, so name it.
    scorer = fit(catalog, method="blend")
    lexical = lexical_features(test.texts) if catalog.lexical is not None else None
    probs = scorer.predict_proba(test.vectors, lexical=lexical)[:, :n_classes]
    probs = probs / probs.sum(axis=1, keepdims=True)
    return Scores(probs, probs)


METHODS: dict[str, Method] = {DEFAULT_METHOD: scout, **PEERS}
DESCRIPTIONS = {DEFAULT_METHOD: "Preprint Scout default (blend, calibrated)", **PEER_DESCRIPTIONS}


@dataclass(frozen=True)
class MethodResult:
    method: str
    description: str
    ranking: RankingQuality
    retrieval: RetrievalQuality
    seconds: float
    by_size: tuple[SizeQuality, ...] = ()

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "description": self.description,
            "n": self.ranking.n,
            "acc@1": self.ranking.acc_at_1,
            "acc@5": self.ranking.acc_at_5,
            "acc@10": self.ranking.acc_at_10,
            "mrr": self.ranking.mrr,
            "ece": self.ranking.ece,
            "map": self.retrieval.map,
            "p@10": self.retrieval.precision_at_10,
            "journals": self.retrieval.journals,
            "seconds": self.seconds,
            "by_profile_size": [
                {"papers": b.label, "n": b.n, "acc@10": b.acc_at_10, "mrr": b.mrr} for b in self.by_size
            ],
        }


@dataclass(frozen=True)
class Split:
    """Row indices of one train/test split of the labelled papers."""

    train: np.ndarray
    test: np.ndarray


def cv_splits(labels: np.ndarray, folds: int, seed: int = 0) -> list[Split]:
    which = stratified_folds(labels, folds, seed)
    return [Split(np.flatnonzero(which != f), np.flatnonzero(which == f)) for f in range(folds)]


def evaluate(
    papers: Papers,
    splits: list[Split],
    methods: dict[str, Method] | None = None,
    on_step: Callable[[str, int], None] | None = None,
) -> list[MethodResult]:
    """Run every method on every split; pool per-preprint rows over splits and average
    the digest metrics over (split, journal) pairs with at least 2 test papers."""
    methods = methods if methods is not None else METHODS
    rows = {name: RankingRows.empty() for name in methods}
    aps: dict[str, list[float]] = {name: [] for name in methods}
    pks: dict[str, list[float]] = {name: [] for name in methods}
    seconds = dict.fromkeys(methods, 0.0)
    for number, split in enumerate(splits):
        train = papers.take(split.train)
        # The catalog is the training journals, renumbered 0..K-1.
        catalog = np.unique(train.labels)
        remap = np.full(int(papers.labels.max()) + 1, -1)
        remap[catalog] = np.arange(len(catalog))
        train = Papers(train.vectors, remap[train.labels], train.texts, train.subjects)
        test_rows = split.test[remap[papers.labels[split.test]] >= 0]  # journals the catalog knows
        test = papers.take(test_rows)
        test = Papers(test.vectors, remap[test.labels], test.texts, test.subjects)
        if len(test) == 0:
            continue
        sizes = np.bincount(train.labels, minlength=len(catalog))
        for name, method in methods.items():
            start = time.perf_counter()
            scores = method(train, len(catalog), test)
            seconds[name] += time.perf_counter() - start
            rows[name].add(scores.probs, test.labels, sizes[test.labels])
            _, ap, pk = retrieval_quality(scores.digest, test.labels)
            aps[name].extend(ap)
            pks[name].extend(pk)
            if on_step:
                on_step(name, number)
    results = []
    for name in methods:
        retrieval = RetrievalQuality(
            journals=len(aps[name]),
            map=float(np.mean(aps[name])) if aps[name] else float("nan"),
            precision_at_10=float(np.mean(pks[name])) if pks[name] else float("nan"),
        )
        results.append(
            MethodResult(
                name,
                DESCRIPTIONS.get(name, name),
                rows[name].summary(),
                retrieval,
                seconds[name],
                tuple(rows[name].by_size()),
            )
        )
    return results


def select_methods(spec: str | None) -> dict[str, Method]:
    """`"scout,knn_lr"` -> those methods, in that order; None or "all" -> every method."""
    if spec is None or spec.strip().lower() in ("", "all"):
        return dict(METHODS)
    chosen = {}
    for name in (part.strip() for part in spec.split(",")):
        if name not in METHODS:
            raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        chosen[name] = METHODS[name]
    return chosen
