"""`scout evaluate` end to end on a tiny labelled file, with the real bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.scores.evaluation import cached_embeddings, read_labelled
from tests.cli import Scout
from tests.paths import FIXTURES

TINY = FIXTURES / "eval_tiny.jsonl"
MODEL = "bundled:all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def _eval_cache(tmp_path_factory) -> Path:
    """One embedding cache for the session: the model embeds the 21 papers once."""
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture
def scout() -> Scout:
    """`scout evaluate` needs no database: one run, not one per backend."""
    return Scout()


def evaluate(scout, *args: str, code: int = 0, cache: Path):
    return scout("evaluate", "--model", MODEL, "--cache", str(cache), *args, code=code)


def test_cross_validation_json_on_a_tiny_file(_eval_cache, scout):
    result = evaluate(
        scout,
        "--data",
        str(TINY),
        "--folds",
        "3",
        "--json",
        "--methods",
        "scout,prior,centroid,knn_lr",
        cache=_eval_cache,
    )
    out = json.loads(result.stdout)
    assert out["setup"]["journals"] == 3 and out["setup"]["papers"] == 21
    methods = {m["method"]: m for m in out["methods"]}
    assert list(methods) == ["scout", "prior", "centroid", "knn_lr"]
    for m in methods.values():
        assert m["n"] == 21
        for key in ("acc@1", "acc@5", "acc@10", "mrr", "ece", "map", "p@10"):
            assert 0.0 <= m[key] <= 1.0
        assert m["acc@5"] == 1.0  # only 3 journals
        # Each tiny journal's training profile has 4-5 papers: every test row is in that bucket.
        sizes = {b["papers"]: b for b in m["by_profile_size"]}
        assert sizes["4-9"]["n"] == 21 and sizes["4-9"]["mrr"] == pytest.approx(m["mrr"])
        assert sum(b["n"] for b in m["by_profile_size"]) == 21
    # Real text carries signal: the default beats chance and the prior.
    assert methods["scout"]["mrr"] > methods["prior"]["mrr"]
    assert methods["scout"]["acc@1"] > 0.5


def test_train_test_table_markdown_and_cache_reuse(_eval_cache, tmp_path, scout):
    rows = TINY.read_text().splitlines()
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("\n".join(rows[:15]) + "\n")
    test.write_text("\n".join(rows[15:]) + "\n")
    args = ("--train", str(train), "--test", str(test), "--methods", "scout,tfidf_svm,zotero")
    out = evaluate(scout, *args, cache=_eval_cache).stdout
    assert "train/test" in out and "tfidf_svm" in out and "MRR" in out
    assert "by papers in the journal's profile" in out
    markdown = evaluate(scout, *args, "--markdown", cache=_eval_cache).stdout.splitlines()
    assert markdown[0].startswith(f"train/test, 21 papers, 3 journals, model {MODEL}")
    assert markdown[2] == "| method | acc@1 | acc@5 | acc@10 | MRR | ECE | MAP | P@10 |"
    assert [line.split(":")[0] for line in markdown[4:7]] == ["| scout", "| tfidf_svm", "| zotero"]
    assert any(line.startswith("| scout | ") and " / " in line for line in markdown[7:])


def test_cache_embeds_only_what_is_missing(tmp_path):
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.ones((len(texts), 4), np.float32)

    cached_embeddings(["a", "b"], ["A", "B"], "m", embed, tmp_path)
    vectors = cached_embeddings(["b", "c", "a"], ["B", "C", "A"], "m", embed, tmp_path)
    assert calls == [["A", "B"], ["C"]]
    assert vectors.shape == (3, 4)


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "give --data FILE"),
        (("--data", str(TINY), "--train", str(TINY)), "either --data"),
        (("--data", "/nope.jsonl"), "no such file"),
        (("--data", str(TINY), "--methods", "scout,magic"), "choose from"),
    ],
)
def test_bad_input_gets_a_clear_message(args, message, scout, tmp_path):
    result = evaluate(scout, *args, code=2, cache=tmp_path)
    assert message in result.stderr
    assert not any(tmp_path.iterdir())  # refused before anything was embedded


def test_reader_skips_lines_without_journal_or_text(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(
        '{"title": "T", "abstract": null, "journal": "J", "category": "None"}\n'
        '{"title": null, "abstract": null, "journal": "J"}\n\n'
        '{"title": "U", "abstract": "A", "journal": ""}\n'
    )
    papers = read_labelled(path)
    assert len(papers) == 1 and papers[0].category is None and papers[0].journal == "j"
