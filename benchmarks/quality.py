"""The scoring-quality benchmark: every method, 5-fold cross-validation, as a Markdown table.

    .venv/bin/python benchmarks/quality.py [--data ../shared/data/labeled/biorxiv_journals_dev.jsonl]

Same numbers as `scout evaluate --data FILE --folds 5`; this prints the table of docs/results.md.
Embeddings are cached under `.cache/embeddings/`, so only the first run embeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.scores.evaluation import _configured_model, _embedding_source, read_labelled, run_evaluation  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "labeled" / "biorxiv_journals_dev.jsonl"


def main() -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=None)
    args = parser.parse_args()
    model = _configured_model()
    started = time.perf_counter()
    results, setup = run_evaluation(
        read_labelled(args.data),
        None,
        args.folds,
        _embedding_source(model, ROOT / ".cache" / "embeddings", Console(stderr=True)),
        args.methods,
        args.seed,
    )
    print(
        f"{setup['folds']}-fold cross-validation, {setup['papers']} papers, {setup['journals']} journals, "
        f"model {model}, {time.perf_counter() - started:.0f} s\n"
    )
    print("| method | acc@1 | acc@5 | acc@10 | MRR | ECE | MAP | P@10 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        q, d = r.ranking, r.retrieval
        print(
            f"| {r.method}: {r.description} | {q.acc_at_1:.3f} | {q.acc_at_5:.3f} | {q.acc_at_10:.3f} | "
            f"{q.mrr:.3f} | {q.ece:.3f} | {d.map:.3f} | {d.precision_at_10:.3f} |"
        )
    buckets = results[0].by_size if results else ()
    if buckets:
        print("\nMRR / acc@10 by papers in the true journal's profile (test preprints in each column):\n")
        print("| method | " + " | ".join(f"{b.label} ({b.n})" for b in buckets) + " |")
        print("| --- |" + " ---: |" * len(buckets))
        for r in results:
            print(f"| {r.method} | " + " | ".join(f"{b.mrr:.3f} / {b.acc_at_10:.2f}" for b in r.by_size) + " |")


if __name__ == "__main__":
    main()
