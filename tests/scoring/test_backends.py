"""Every backend makes the vectors PyTorch fp32 makes, within a stated cosine, on real
abstracts; a backend this machine cannot run is refused with a message naming the setting;
and vectors of different backends never share a cache key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bot.config import BUNDLED_MODEL, SettingsError, load_settings
from scoring.embedder import (
    AUTO,
    OPENVINO,
    TORCH,
    TORCH_BF16,
    Embedder,
    ModelError,
    load_embedder,
    native_bf16,
    openvino_installed,
    resolve_backend,
    vector_key,
)
from scoring.text import document
from tests.paths import FIXTURES

# bf16 keeps 8 bits of mantissa; on MiniLM that moves a vector by about 2e-5 in cosine
# (docs/results.md). int8 would be about 0.996 and fail this on purpose: it changes rankings.
AGREES = 0.9995


@pytest.fixture(scope="module")
def abstracts() -> list[str]:
    """Two real abstracts from each profile fixture: a handful, of varied lengths."""
    texts = []
    for path in sorted((FIXTURES / "profiles").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        texts += [document(row["title"], row["abstract"]) for row in rows[:2]]
    return texts


@pytest.fixture(scope="module")
def reference(embedder: Embedder, abstracts: list[str]) -> np.ndarray:
    return embedder.embed(abstracts)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("model-cache")


def _agreement(vectors: np.ndarray, reference: np.ndarray) -> float:
    return float(np.min(np.sum(vectors * reference, axis=1)))


def test_openvino_agrees_with_fp32_and_is_converted_into_the_cache_folder(abstracts, reference, model_cache):
    if not openvino_installed():
        with pytest.raises(ModelError, match="SCOUT_BACKEND=openvino needs the openvino package"):
            resolve_backend(OPENVINO)
        return
    embedder = load_embedder(BUNDLED_MODEL, OPENVINO, model_cache)
    vectors = embedder.embed(abstracts)
    assert _agreement(vectors, reference) >= AGREES
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    converted = list((model_cache / "openvino").iterdir())
    assert len(converted) == 1 and (converted[0] / "model.xml").exists()
    assert embedder.key == vector_key(BUNDLED_MODEL, OPENVINO)


def test_torch_bf16_agrees_with_fp32_where_the_cpu_has_native_bf16(abstracts, reference):
    if not native_bf16():
        with pytest.raises(ModelError, match="SCOUT_BACKEND=torch-bf16 needs a CPU with native bf16"):
            resolve_backend(TORCH_BF16)
        return
    bf16 = load_embedder(BUNDLED_MODEL, TORCH_BF16)
    vectors = bf16.embed(abstracts)
    assert _agreement(vectors, reference) >= AGREES
    # It shares the fp32 model's weights but must not be its cache entry.
    assert bf16.key != vector_key(BUNDLED_MODEL)


def test_auto_picks_a_backend_this_machine_runs():
    chosen = resolve_backend(AUTO)
    expected = OPENVINO if openvino_installed() else TORCH
    assert chosen == expected


def test_the_fp32_key_is_unchanged_and_every_backend_has_its_own():
    assert vector_key(BUNDLED_MODEL) == vector_key(BUNDLED_MODEL, TORCH)
    keys = {vector_key(BUNDLED_MODEL, backend) for backend in (TORCH, TORCH_BF16, OPENVINO)}
    assert len(keys) == 3


def test_vectors_of_another_backend_are_embedded_anew(db, embedder):
    from bot.db import Embedding
    from bot.scores.embeddings import ensure_vectors

    stale = np.ones(embedder.dim, dtype=np.float32) / np.sqrt(embedder.dim)
    with db.session() as session:
        session.add(
            Embedding(
                model=vector_key(BUNDLED_MODEL, OPENVINO), content_hash="k", dim=embedder.dim, vector=stale.tobytes()
            )
        )
        session.flush()
        fresh = ensure_vectors(session, lambda: embedder, vector_key(BUNDLED_MODEL), {"k": "A title. An abstract."})
        keys = {row.model for row in session.query(Embedding).filter_by(content_hash="k")}
    assert float(fresh["k"] @ stale) < 0.99
    assert keys == {vector_key(BUNDLED_MODEL, OPENVINO), vector_key(BUNDLED_MODEL)}


def test_an_unknown_backend_is_refused_naming_the_setting_and_the_choices():
    with pytest.raises(SettingsError, match="SCOUT_BACKEND") as raised:
        load_settings(SCOUT_BACKEND="fast")
    assert "openvino" in str(raised.value) and "torch-bf16" in str(raised.value)
    with pytest.raises(ModelError, match="SCOUT_BACKEND='fast' is not one of auto, torch"):
        resolve_backend("fast")


def test_the_cli_refuses_an_unknown_backend_in_one_line(scout):
    scout.env["SCOUT_BACKEND"] = "gpu"
    result = scout("rank", "elife", code=2)
    assert "SCOUT_BACKEND" in result.output
    assert len(result.output.strip().splitlines()) == 1
