"""Scoring speed of the default scorer at catalog scale, on synthetic unit vectors.

    .venv/bin/python benchmarks/scoring_speed.py [--profiles 500] [--papers 30] [--background 2000]

Times (beyond embedding): fitting the catalog, scoring 300 new preprints, and
rescoring 20,000, word features included. Vectors are random clusters in 384
dimensions, so the work is the same as with real embeddings; word features come from
real arXiv abstracts (../shared/data/arxiv-daily), cycled, so their sparsity is real.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from listings import ARXIV_DAILY, abstract_text, load_listings  # noqa: E402

from scoring.lexical import lexical_features  # noqa: E402
from scoring.scorer import Catalog, fit  # noqa: E402

DIM = 384


def abstracts() -> list[str]:
    texts = [abstract_text(row) for row in load_listings()]
    if not texts:
        raise SystemExit(f"no abstracts under {ARXIV_DAILY}")
    return texts


def words(texts: list[str], n: int, offset: int):
    return lexical_features([texts[(offset + i) % len(texts)] for i in range(n)])


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=500)
    parser.add_argument("--papers", type=int, default=30)
    parser.add_argument("--background", type=int, default=2000)
    parser.add_argument("--queries", type=int, nargs="+", default=[300, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = unit(rng.standard_normal((args.profiles, DIM)))
    labels = np.repeat(np.arange(args.profiles), args.papers)
    refs = unit(centres[labels] + 0.06 * rng.standard_normal((len(labels), DIM)))
    background = unit(rng.standard_normal((args.background, DIM)))
    texts = abstracts()
    catalog = Catalog(
        tuple(f"p{i}" for i in range(args.profiles)),
        refs,
        labels,
        background,
        lexical=words(texts, len(refs), 0),
        background_lexical=words(texts, args.background, len(refs)),
    )
    print(f"catalog: {args.profiles} profiles x {args.papers} papers + {args.background} background, dim {DIM}")
    start = time.perf_counter()
    scorer = fit(catalog)
    print(f"fit: {time.perf_counter() - start:.1f} s  ({scorer.calibration.weights}, l2={scorer.calibration.l2})")
    for n in args.queries:
        which = rng.integers(0, args.profiles, n)
        x = unit(centres[which] + 0.06 * rng.standard_normal((n, DIM)))
        query_texts = [texts[i % len(texts)] for i in range(n)]
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            probs = scorer.predict_proba(x, lexical=lexical_features(query_texts))
            times.append(time.perf_counter() - start)
        assert np.allclose(probs.sum(axis=1), 1.0)
        print(
            f"score {n:>6} preprints: best {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s "
            f"({n / min(times):,.0f} preprints/s)"
        )
    print(f"stored model (one scoring run's blob): {len(scorer.to_bytes()) / 1e6:.1f} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
