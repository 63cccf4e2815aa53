"""`scout evaluate`: how good are the scores, on labelled preprints, against peer methods.

Reads JSONL (title, abstract, journal, optional category), embeds each paper once per
model and backend (cached under `.cache/embeddings/`, keyed by `vector_key` + text hash), runs
`scoring.evaluate`, and lays the result out as a terminal table, JSON or Markdown.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoring.embedder import TORCH, resolve_backend, vector_key
from scoring.errors import ScoutError
from scoring.evaluate import MethodResult, Split, cv_splits, evaluate, select_methods
from scoring.peers import Papers
from scoring.text import clean_text, content_hash, document

DEFAULT_CACHE = Path(".cache") / "embeddings"


class EvaluationError(ScoutError):
    """Bad input for an evaluation; the message says what would work."""


@dataclass(frozen=True)
class Labelled:
    title: str | None
    abstract: str | None
    journal: str
    category: str | None

    @property
    def text(self) -> str:
        return document(self.title, self.abstract)

    @property
    def key(self) -> str:
        return content_hash(self.title, self.abstract)


def read_labelled(path: Path) -> list[Labelled]:
    """Papers with a journal and some text; other lines are skipped, malformed JSON is an error."""
    if not path.exists():
        raise EvaluationError(f"no such file: {path}")
    papers = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvaluationError(f"{path}:{number}: not JSON ({exc.msg})") from exc
            journal = clean_text(row.get("journal") or "").lower()
            paper = Labelled(row.get("title"), row.get("abstract"), journal, _category(row.get("category")))
            if journal and paper.text:
                papers.append(paper)
    if not papers:
        raise EvaluationError(f"{path}: no lines with a journal and a title or abstract")
    return papers


def _category(value: str | None) -> str | None:
    value = clean_text(value or "").lower()
    return value if value and value != "none" else None


# -- embedding cache -------------------------------------------------------------------------


def _cache_file(cache_dir: Path, model_name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name).strip("_")
    digest = hashlib.sha256(model_name.encode()).hexdigest()[:8]
    return cache_dir / f"{slug}-{digest}.npz"


def cached_embeddings(
    keys: Sequence[str],
    texts: Sequence[str],
    vectors_key: str,
    embed: Callable[[list[str]], np.ndarray],
    cache_dir: Path = DEFAULT_CACHE,
) -> np.ndarray:
    """Vectors for `texts`, embedding only those whose key is not cached under `vectors_key`
    (`vector_key(model, backend)`)."""
    path = _cache_file(cache_dir, vectors_key)
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as stored:
            known = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
    missing = list(dict.fromkeys(k for k in keys if k not in known))
    if missing:
        first = {k: t for k, t in zip(keys, texts, strict=True)}
        fresh = embed([first[k] for k in missing])
        known.update(zip(missing, np.asarray(fresh, dtype=np.float32), strict=True))
        cache_dir.mkdir(parents=True, exist_ok=True)
        ignore = cache_dir.parent / ".gitignore" if cache_dir.parent.name == ".cache" else cache_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
        os.replace(tmp, path)
    return np.stack([known[k] for k in keys]).astype(np.float32)


# -- running -----------------------------------------------------------------------------------


def to_papers(
    records: list[Labelled], journals: dict[str, int], subjects: dict[str, int], vectors: np.ndarray
) -> Papers:
    onehot = np.zeros((len(records), len(subjects)), dtype=np.float32)
    for i, r in enumerate(records):
        if r.category in subjects:
            onehot[i, subjects[r.category]] = 1.0
    labels = np.array([journals.get(r.journal, -1) for r in records], dtype=np.int64)
    return Papers(vectors, labels, tuple(r.text for r in records), onehot)


def run_evaluation(
    train: list[Labelled],
    test: list[Labelled] | None,
    folds: int,
    vectors: Callable[[list[Labelled]], np.ndarray],
    methods: str | None = None,
    seed: int = 0,
    on_step: Callable[[str, int], None] | None = None,
) -> tuple[list[MethodResult], dict]:
    """Cross-validate on `train` (test None), or fit on `train` and test on `test`."""
    everything = train + (test or [])
    journals = {j: i for i, j in enumerate(sorted({r.journal for r in everything}))}
    subjects = {s: i for i, s in enumerate(sorted({r.category for r in everything if r.category}))}
    papers = to_papers(everything, journals, subjects, vectors(everything))
    chosen = select_methods(methods)
    if test is None:
        splits = cv_splits(papers.labels, folds, seed)
        setup = {"mode": "cross-validation", "folds": folds, "seed": seed}
    else:
        splits = [Split(np.arange(len(train)), np.arange(len(train), len(everything)))]
        known = {r.journal for r in train}
        setup = {"mode": "train/test", "unknown_journal_test_papers": sum(r.journal not in known for r in test)}
    setup.update(papers=len(everything), journals=len(journals), subjects=len(subjects))
    return evaluate(papers, splits, chosen, on_step), setup


def evaluate_files(
    *,
    data: Path | None,
    train: Path | None,
    test: Path | None,
    folds: int,
    methods: str | None,
    seed: int,
    model: str,
    cache_dir: Path = DEFAULT_CACHE,
    err=None,
    backend: str = TORCH,
    model_cache: Path | None = None,
) -> tuple[list[MethodResult], dict]:
    """Cross-validate on `data`, or fit on `train` and test on `test`; bad input is an
    EvaluationError raised before anything is embedded."""
    if data is not None and (train or test):
        raise EvaluationError("use either --data FILE --folds K, or --train FILE --test FILE")
    if data is None and not (train and test):
        raise EvaluationError("give --data FILE (cross-validation) or both --train FILE and --test FILE")
    train_rows = read_labelled(data or train)
    test_rows = read_labelled(test) if test else None
    try:
        select_methods(methods)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
    backend = resolve_backend(backend)
    started = time.perf_counter()
    source = _embedding_source(model, backend, model_cache, cache_dir, err)
    results, setup = run_evaluation(train_rows, test_rows, folds, source, methods, seed)
    setup.update(model=model, backend=backend, seconds=round(time.perf_counter() - started, 1))
    return results, setup


def as_json(results: list[MethodResult], setup: dict) -> str:
    return json.dumps({"setup": setup, "methods": [r.as_dict() for r in results]}, indent=2)


def as_markdown(results: list[MethodResult], setup: dict) -> str:
    """The tables of docs/results.md: every method, then MRR / acc@10 by profile size."""
    mode = f"{setup['folds']}-fold cross-validation" if setup["mode"] == "cross-validation" else "train/test"
    lines = [
        f"{mode}, {setup['papers']} papers, {setup['journals']} journals, model {setup['model']} "
        f"({setup.get('backend', TORCH)}), "
        f"{setup['seconds']:.0f} s",
        "",
        "| method | acc@1 | acc@5 | acc@10 | MRR | ECE | MAP | P@10 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        q, d = r.ranking, r.retrieval
        lines.append(
            f"| {r.method}: {r.description} | {q.acc_at_1:.3f} | {q.acc_at_5:.3f} | {q.acc_at_10:.3f} | "
            f"{q.mrr:.3f} | {q.ece:.3f} | {d.map:.3f} | {d.precision_at_10:.3f} |"
        )
    buckets = results[0].by_size if results else ()
    if buckets:
        lines += ["", "MRR / acc@10 by papers in the true journal's profile (test preprints in each column):", ""]
        lines.append("| method | " + " | ".join(f"{b.label} ({b.n})" for b in buckets) + " |")
        lines.append("| --- |" + " ---: |" * len(buckets))
        for r in results:
            cells = (f"{b.mrr:.3f} / {b.acc_at_10:.2f}" if b.n else "-" for b in r.by_size)
            lines.append(f"| {r.method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _embedding_source(
    model_name: str, backend: str, model_cache: Path | None, cache_dir: Path, err
) -> Callable[[list[Labelled]], np.ndarray]:
    key = vector_key(model_name, backend)

    def vectors(records: list[Labelled]) -> np.ndarray:
        def embed(texts: list[str]) -> np.ndarray:
            from scoring.embedder import load_embedder

            if err is not None:
                err.print(f"embedding {len(texts)} papers with {model_name} ({backend}, cached for next time)...")
            return load_embedder(model_name, backend, model_cache).embed(texts)

        return cached_embeddings([r.key for r in records], [r.text for r in records], key, embed, cache_dir)

    return vectors


def print_table(results: list[MethodResult], setup: dict, console) -> None:
    from rich.table import Table

    title = (
        f"{setup.get('folds')}-fold cross-validation" if setup.get("mode") == "cross-validation" else "train/test"
    ) + f": {setup.get('papers')} papers, {setup.get('journals')} journals, {setup.get('backend', TORCH)}"
    table = Table(title=title)
    for col in ("method", "acc@1", "acc@5", "acc@10", "MRR", "ECE", "MAP", "P@10", "s"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in results:
        table.add_row(
            f"{r.method} [dim]({r.description})[/dim]",
            *(
                f"{v:.3f}"
                for v in (
                    r.ranking.acc_at_1,
                    r.ranking.acc_at_5,
                    r.ranking.acc_at_10,
                    r.ranking.mrr,
                    r.ranking.ece,
                    r.retrieval.map,
                    r.retrieval.precision_at_10,
                )
            ),
            f"{r.seconds:.0f}",
        )
    console.print(table)
    print_size_table(results, console)
    console.print(
        "[dim]acc@k/MRR/ECE: which journal fits a preprint (catalog = training journals); "
        "MAP/P@10: which preprints fit a journal, per journal with >= 2 test papers.[/dim]"
    )


def print_size_table(results: list[MethodResult], console) -> None:
    """MRR / acc@10 by how many papers the true journal's profile has (its training papers)."""
    from rich.table import Table

    buckets = results[0].by_size if results else ()
    if not buckets:
        return
    table = Table(title="MRR / acc@10 by papers in the journal's profile")
    table.add_column("method")
    for b in buckets:
        table.add_column(f"{b.label} ({b.n})", justify="right")
    for r in results:
        table.add_row(r.method, *(f"{b.mrr:.3f} / {b.acc_at_10:.2f}" if b.n else "-" for b in r.by_size))
    console.print(table)
