"""`scout evaluate` end to end on a tiny labelled file, with the real bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.scores.evaluation import cached_embeddings, evaluate_command, read_labelled

TINY = Path(__file__).parent / "fixtures" / "eval_tiny.jsonl"
MODEL = "bundled:all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def _eval_cache(tmp_path_factory) -> Path:
    """One embedding cache for the session: the model embeds the 21 papers once."""
    return tmp_path_factory.mktemp("eval-cache")


def test_cross_validation_json_on_a_tiny_file(_eval_cache, capsys):
    code = evaluate_command(
        data=TINY, folds=3, as_json=True, methods="scout,prior,centroid,knn_lr", model=MODEL, cache_dir=_eval_cache
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
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


def test_train_test_table_and_cache_reuse(_eval_cache, tmp_path, capsys):
    rows = TINY.read_text().splitlines()
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("\n".join(rows[:15]) + "\n")
    test.write_text("\n".join(rows[15:]) + "\n")
    code = evaluate_command(
        train=train, test=test, methods="scout,tfidf_svm,zotero", model=MODEL, cache_dir=_eval_cache
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "train/test" in out and "tfidf_svm" in out and "MRR" in out
    assert "by papers in the journal's profile" in out


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
    "kwargs, message",
    [
        ({}, "give --data FILE"),
        ({"data": TINY, "train": TINY}, "either --data"),
        ({"data": Path("/nope.jsonl")}, "no such file"),
        ({"data": TINY, "methods": "scout,magic"}, "choose from"),
    ],
)
def test_bad_input_gets_a_clear_message(kwargs, message, capsys, tmp_path):
    assert evaluate_command(cache_dir=tmp_path, model=MODEL, **kwargs) == 2
    assert message in capsys.readouterr().err


def test_reader_skips_lines_without_journal_or_text(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(
        '{"title": "T", "abstract": null, "journal": "J", "category": "None"}\n'
        '{"title": null, "abstract": null, "journal": "J"}\n\n'
        '{"title": "U", "abstract": "A", "journal": ""}\n'
    )
    papers = read_labelled(path)
    assert len(papers) == 1 and papers[0].category is None and papers[0].journal == "j"
