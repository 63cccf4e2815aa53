"""Embedding throughput, peak memory and quality of each backend (SCOUT_BACKEND), side by side.

    .venv/bin/python benchmarks/embedding_speed.py [--texts 240] [--quality]

Each backend runs in its own process on the same real bioRxiv abstracts (title + abstract,
../shared/data/labeled) at the project's 512 word pieces, so its peak resident memory
(VmHWM) is its own. The first row embeds as releases before backends did (chunks of 32 in
arrival order, PyTorch fp32); every other row is `Embedder.embed` (length-sorted batches
bounded by word pieces). "cosine" is the lowest cosine of any abstract to PyTorch fp32's.
OpenVINO's first row converts the model (into a fresh folder, as on first use: its load
time and peak include the conversion); its second reads that conversion, as every later
start does.

With --quality, each backend this machine runs is also cross-validated with
`scout evaluate --methods scout` on the whole labelled file; a backend is fit to be the
default when its MRR is within 0.01 and its ECE within 0.005 of PyTorch fp32's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LABELLED = ROOT.parent / "shared" / "data" / "labeled" / "biorxiv_journals_dev.jsonl"
BEFORE = "torch, chunks of 32"
CONVERTED = "openvino, converted before"
RUNS = (BEFORE, "torch", "torch-bf16", "openvino", CONVERTED)
WARM_UP = 16
MRR_MARGIN = 0.01
ECE_MARGIN = 0.005


def abstracts(count: int) -> list[str]:
    from scoring.text import document

    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [document(row.get("title") or "", row["abstract"]) for row in rows[:count]]


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(run: str, count: int, out: Path, cache: Path) -> None:
    """One backend in this process: load, warm up, embed `count` abstracts, report."""
    import numpy as np

    from bot.config import BUNDLED_MODEL
    from scoring.embedder import TORCH, load_embedder

    texts = abstracts(count)
    started = time.perf_counter()
    backend = {BEFORE: TORCH, CONVERTED: "openvino"}.get(run, run)
    embedder = load_embedder(BUNDLED_MODEL, backend, cache)
    embedder.embed(texts[:WARM_UP])
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    if run == BEFORE:
        chunks = [
            embedder.model.encode(texts[i : i + 32], batch_size=32, normalize_embeddings=True)
            for i in range(0, len(texts), 32)
        ]
        vectors = np.vstack(chunks).astype(np.float32)
    else:
        vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    np.save(out.with_suffix(".npy"), vectors)
    out.write_text(json.dumps({"rate": len(texts) / seconds, "seconds": seconds, "load": loaded, "peak": peak_mb()}))


def measure(run: str, count: int, folder: Path) -> dict | None:
    out = folder / f"{_slug(run)}.json"
    cmd = [sys.executable, __file__, "--child", run, "--texts", str(count), "--out", str(out)]
    cmd += ["--cache", str(folder / "models")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["failed"])[-1]
        print(f"{run}: not run here ({reason})", file=sys.stderr)
        return None
    return json.loads(out.read_text())


def quality(backend: str) -> dict:
    env = {**os.environ, "SCOUT_BACKEND": backend}
    cmd = [str(ROOT / ".venv" / "bin" / "scout"), "evaluate", "--data", str(LABELLED), "--folds", "5"]
    cmd += ["--methods", "scout", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    method = json.loads(done.stdout)["methods"][0]
    return {"mrr": method["mrr"], "ece": method["ece"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=240, help="abstracts embedded per backend")
    parser.add_argument("--quality", action="store_true", help="also run scout evaluate per backend (minutes each)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.texts, args.out, args.cache)
        return
    if not LABELLED.exists():
        raise SystemExit(f"{LABELLED} is missing: this benchmark reads the shared labelled abstracts")
    import numpy as np

    load = os.getloadavg()
    print(f"{args.texts} bioRxiv abstracts, 512 word pieces, {os.cpu_count()} CPUs, load {load[0]:.1f} at start")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for run in RUNS:
            measured = measure(run, args.texts, Path(folder))
            if measured is not None:
                measured["vectors"] = np.load(Path(folder) / f"{_slug(run)}.npy")
                results[run] = measured
    reference = results["torch"]["vectors"]
    base = results["torch"]["rate"]
    scores = {run: quality(run) for run in results if run not in (BEFORE, CONVERTED)} if args.quality else {}
    header = "| backend | abstracts/s | vs torch | lowest cosine to torch | peak MB | load s |"
    if scores:
        header += " MRR | ECE | default-eligible |"
    print()
    print(header)
    print("| --- |" + " ---: |" * (header.count("|") - 2))
    for run, r in results.items():
        cosine = float(np.min(np.sum(r["vectors"] * reference, axis=1)))
        row = (
            f"| {run} | {r['rate']:.1f} | {r['rate'] / base:.2f}x | {cosine:.5f} | {r['peak']:.0f} | {r['load']:.1f} |"
        )
        if scores:
            row += _quality_cells(scores.get(run), scores["torch"])
        print(row)
    print(f"\nload {os.getloadavg()[0]:.1f} at the end")


def _slug(run: str) -> str:
    return run.replace(",", "").replace(" ", "_")


def _quality_cells(score: dict | None, reference: dict) -> str:
    if score is None:
        return " - | - | - |"
    eligible = abs(score["mrr"] - reference["mrr"]) <= MRR_MARGIN and abs(score["ece"] - reference["ece"]) <= ECE_MARGIN
    return f" {score['mrr']:.4f} | {score['ece']:.4f} | {'yes' if eligible else 'no'} |"


if __name__ == "__main__":
    main()
