"""Replay benchmark: do an editor's votes make the next digests better? (`make bench-feedback`)

    .venv/bin/python benchmarks/feedback_replay.py [--seeds 3] [--weeks 6] [--window 3] [--weight 1] [--refit-weekly]
        [--unweighted]

Labelled bioRxiv preprints (../shared/data/labeled, the journal each was published in)
stand in for a feed. Each journal with --large papers or more is a profile, built from
a random half of its papers (per seed); the other half, with every other journal's
papers ("published elsewhere"), are the stream: the dated ones in posting order, cut into
a warm-up and --weeks equal "weeks". The labelled set holds about eight dated preprints a
calendar week, too few for a "top 1%" digest, so a week here is a share of the stream.

Every week, as the bot does: the new preprints are stored, the model is refitted on the
profiles, the votes so far and a background of the stored preprints, the window (the last
--window weeks) is scored, and each profile's digest is its undelivered preprints at the
default threshold (top 1% of the window, at most 20). A simulated editor votes on every
item with the true journal: relevant when it is the profile's. Three runs per seed share
everything but the votes: none learnt, learnt, and learnt with --flip of them flipped.

Per week: digest precision (true items / items shown, over profiles and seeds), recall
(the profiles' true stream preprints posted so far that some digest has shown) and ECE
(top label, the week's new preprints, over seeds); next to ECE, the mean probability of
"elsewhere" and the share of those preprints that are. The store never holds the 2,000
preprints of a full background sample, so the sample weighs as a full one
(`scoring.scorer.background_weight`), as in the bot; --unweighted counts it as its rows
(as the bot did before), and then every refit, as the store grows, raises the odds of
"elsewhere". Embeddings are cached as `scout evaluate` caches them with
SCOUT_BACKEND=torch (.cache/embeddings, fp32 vectors).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import BUNDLED_MODEL  # noqa: E402
from bot.scores.evaluation import DEFAULT_CACHE, cached_embeddings  # noqa: E402
from bot.scores.update import MIN_BACKGROUND  # noqa: E402
from scoring.duplicates import copy_in, keep_one_copy  # noqa: E402
from scoring.embedder import vector_key  # noqa: E402
from scoring.feedback import VOTE_WEIGHT, tally, with_votes  # noqa: E402
from scoring.lexical import lexical_features  # noqa: E402
from scoring.metrics import calibration_error  # noqa: E402
from scoring.scorer import L2_GRID, Catalog, background_weight, fit  # noqa: E402
from scoring.text import clean_text, content_hash, document  # noqa: E402
from scoring.thresholds import DEFAULT, parse_threshold  # noqa: E402
from scoring.window import top_share  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "labeled" / "biorxiv_journals_dev.jsonl"
MAX_ITEMS = 20  # a subscription's default cap
BACKGROUND = 2000  # SCOUT_BACKGROUND_SIZE's default
CONDITIONS = ("without votes", "with votes", "with votes, 10% flipped")


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    journals: list[str]
    posted: list[str | None]
    vectors: np.ndarray
    words: object  # (n, L) sparse word features


@dataclass
class Week:
    shown: int = 0
    hits: int = 0
    confidence: list[float] = field(default_factory=list)
    elsewhere: list[float] = field(default_factory=list)  # P("elsewhere") of each new preprint
    is_elsewhere: list[bool] = field(default_factory=list)  # and whether it is (no profile's)
    correct: list[bool] = field(default_factory=list)
    found: int = 0  # true stream preprints posted so far that a digest has shown
    posted: int = 0  # true stream preprints posted so far
    by_profile: dict[str, list[int]] = field(default_factory=dict)  # name -> [shown, hits]


def load(path: Path, cache: Path) -> Corpus:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line) if line.strip() else None
        if row and row.get("journal") and document(row.get("title"), row.get("abstract")):
            rows.append(row)
    texts = [document(r.get("title"), r.get("abstract")) for r in rows]
    keys = [content_hash(r.get("title"), r.get("abstract")) for r in rows]

    def embed(missing: list[str]) -> np.ndarray:
        from scoring.embedder import load_embedder

        print(f"embedding {len(missing)} papers (cached for next time)...", file=sys.stderr)
        return load_embedder(BUNDLED_MODEL).embed(missing)

    vectors = cached_embeddings(keys, texts, vector_key(BUNDLED_MODEL), embed, cache)
    return Corpus(
        texts,
        [clean_text(r["journal"]).lower() for r in rows],
        [r.get("preprint_date") for r in rows],
        vectors,
        lexical_features(texts),
    )


def split(corpus: Corpus, names: list[str], seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random half of each profile's papers as its references; the stream is every other
    dated paper, in posting order; the undated rest were stored before the replay began
    (background for the model, as a bot that has polled for a while has, never in a
    window)."""
    rng = np.random.default_rng(seed)
    refs = []
    for name in names:
        own = np.flatnonzero(np.array(corpus.journals) == name)
        refs.extend(rng.permutation(own)[: len(own) // 2])
    taken = set(refs)
    dated = [i for i, d in enumerate(corpus.posted) if d and i not in taken]
    stream = sorted(dated, key=lambda i: (corpus.posted[i], i))
    earlier = [i for i, d in enumerate(corpus.posted) if not d and i not in taken]
    return np.array(sorted(refs)), np.array(stream), np.array(earlier, dtype=np.int64)


def replay(
    corpus, names, refs, stream, earlier, args, learn: bool, flip: float, seed: int, first=None
) -> tuple[list[Week], tuple]:
    """One run over the weeks. The model is refitted as the bot refits it: when the votes
    change, or when the stored preprints outgrow the background (bot.scores.update);
    `first` is the first week's (scorer, background), the same in every run (no votes
    yet), and is returned for the next run."""
    k = len(names)
    label_of = {name: i for i, name in enumerate(names)}
    truth = np.array([label_of.get(j, k) for j in corpus.journals])
    chunks = np.array_split(stream, args.weeks + 1)
    threshold = parse_threshold(DEFAULT)
    rng = np.random.default_rng(seed + 1000)
    started = time.perf_counter()
    votes: list[tuple[int, int, bool]] = []
    delivered: set[tuple[int, int]] = set()
    weeks = []
    model, fitted_on = first, []
    for w in range(1, args.weeks + 1):
        stored = np.concatenate([earlier, *chunks[: w + 1]])
        tallies = tally(votes) if learn else []
        outgrown = model is not None and _outgrown(len(model[1]), len(stored))
        if model is None or tallies != fitted_on or outgrown or (args.refit_weekly and w > 1):
            # The classifier's penalty is chosen at the first fit and kept: the grid search
            # is most of a fit's time, and the first fit is the same in every run.
            grid = L2_GRID if model is None else (model[0].calibration.l2,)
            model = _fit(corpus, names, truth, refs, stored, tallies, args.weight, grid, not args.unweighted)
            fitted_on = tallies
            print(f"  week {w}: fitted, {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if w == 1:
            first = model
        scorer, background = model
        window = np.concatenate(chunks[max(0, w + 1 - args.window) : w + 1])
        position = {int(b): j for j, b in enumerate(background)}
        own = np.array([position.get(int(i), -1) for i in window])
        own = np.where(own >= 0, own, copy_in(corpus.vectors[window], scorer.catalog.background))
        probs = scorer.predict_proba(corpus.vectors[window], exclude_background=own, lexical=corpus.words[window])
        week = Week()
        new = np.isin(window, chunks[w])
        week.confidence = probs[new].max(axis=1).tolist()
        week.elsewhere = probs[new, -1].tolist()
        week.is_elsewhere = (truth[window[new]] == k).tolist()
        week.correct = (probs[new].argmax(axis=1) == truth[window[new]]).tolist()
        for c, name in enumerate(names):
            scores = probs[:, c]
            shares = top_share(scores, scores)
            order = np.argsort(-scores, kind="stable")
            shown = []
            for j in order:
                if len(shown) >= MAX_ITEMS or not threshold.passes(scores[j], shares[j], 0.0):
                    break
                if (c, int(window[j])) not in delivered:
                    shown.append(int(window[j]))
            hits = sum(truth[i] == c for i in shown)
            week.shown += len(shown)
            week.hits += hits
            week.by_profile[name] = [len(shown), hits]
            for i in shown:
                delivered.add((c, i))
                relevant = bool(truth[i] == c)
                votes.append((c, i, relevant != (rng.random() < flip)))
        posted_true = [i for i in np.concatenate(chunks[1 : w + 1]) if truth[i] < k]
        week.posted = len(posted_true)
        week.found = sum((truth[i], i) in delivered for i in posted_true)
        weeks.append(week)
    return weeks, first


def _outgrown(background: int, stored: int) -> bool:
    """bot.scores.update's rule: refit while the background is small next to the store."""
    return background < BACKGROUND and stored >= 2 * background + MIN_BACKGROUND


def _fit(corpus, names, truth, refs, stored, tallies, weight, l2_grid, weighted: bool = True) -> tuple:
    """(scorer, background rows) as the bot fits them: the background is the stored
    preprints but those voted into a profile, one copy of each text, weighing as a full
    sample (`weighted`)."""
    voted_in = {t.preprint for t in tallies if t.is_reference}
    background = np.array([i for i in stored if i not in voted_in][-BACKGROUND:])
    background = background[keep_one_copy(corpus.vectors[background])]
    voted = np.array([t.preprint for t in tallies], dtype=np.int64)
    in_refs = voted[[t.is_reference for t in tallies]] if len(voted) else voted
    background = background[copy_in(corpus.vectors[background], corpus.vectors[in_refs]) < 0]
    catalog = Catalog(
        names=tuple(names),
        vectors=corpus.vectors[refs],
        labels=truth[refs],
        background=corpus.vectors[background],
        lexical=corpus.words[refs],
        background_lexical=corpus.words[background],
        background_weight=background_weight(len(background), BACKGROUND) if weighted else 1.0,
    )
    catalog = with_votes(catalog, tallies, corpus.vectors[voted], corpus.words[voted], weight=weight)
    return fit(catalog, l2_grid=l2_grid), background


def pooled(runs: list[list[Week]]) -> list[dict]:
    out = []
    for w in range(len(runs[0])):
        weeks = [run[w] for run in runs]
        shown = sum(x.shown for x in weeks)
        out.append(
            {
                "week": w + 1,
                "shown": shown,
                "precision": sum(x.hits for x in weeks) / max(shown, 1),
                "recall": sum(x.found for x in weeks) / max(sum(x.posted for x in weeks), 1),
                "ece": calibration_error(
                    np.concatenate([x.confidence for x in weeks]), np.concatenate([x.correct for x in weeks])
                ),
            }
        )
    return out


def per_profile(runs: list[list[Week]], names: list[str], after: int) -> dict[str, list[int]]:
    """[shown, hits] per profile in the weeks after `after`, over seeds."""
    out = {name: [0, 0] for name in names}
    for run in runs:
        for week in run[after:]:
            for name, (shown, hits) in week.by_profile.items():
                out[name][0] += shown
                out[name][1] += hits
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--large", type=int, default=30, help="papers a journal needs to be a profile")
    parser.add_argument("--weeks", type=int, default=6)
    parser.add_argument("--window", type=int, default=3, help="weeks in the window a digest's top 1%% is of")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--weight", type=float, default=VOTE_WEIGHT, help="a voted preprint's weight")
    parser.add_argument("--after", type=int, default=4, help="weeks of votes before the goal is checked")
    parser.add_argument("--refit-weekly", action="store_true", help="refit every week in every run (the baseline too)")
    parser.add_argument(
        "--unweighted", action="store_true", help="count the background sample as its rows, not as a full sample"
    )
    args = parser.parse_args()
    # One thread each for torch and BLAS: on 2 shared cores, their worker threads spin
    # while waiting for each other, and a fit took 5-25 times longer.
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    started = time.perf_counter()
    corpus = load(args.data, args.cache)
    counts: dict[str, int] = {}
    for j in corpus.journals:
        counts[j] = counts.get(j, 0) + 1
    names = sorted(j for j, n in counts.items() if n >= args.large)
    runs: dict[str, list[list[Week]]] = {c: [] for c in CONDITIONS}
    for seed in range(args.seeds):
        refs, stream, earlier = split(corpus, names, seed)
        first = None
        for condition, learn, flip in zip(CONDITIONS, (False, True, True), (0.0, 0.0, args.flip), strict=True):
            weeks, first = replay(corpus, names, refs, stream, earlier, args, learn, flip, seed, first)
            runs[condition].append(weeks)
            print(f"seed {seed}: {condition} done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    report(runs, names, args, time.perf_counter() - started, len(stream))


def report(runs: dict[str, list[list[Week]]], names: list[str], args, seconds: float, stream: int) -> None:
    tables = {c: pooled(r) for c, r in runs.items()}
    print(
        f"{len(names)} profiles (journals with {args.large}+ papers), {stream} stream preprints, "
        f"{args.weeks} weeks, window {args.window} weeks, threshold {DEFAULT}, {args.seeds} seeds, "
        f"vote weight {args.weight:g}{', refitted weekly' if args.refit_weekly else ''}"
        f"{', background unweighted' if args.unweighted else ''}, {seconds:.0f} s"
    )
    print()
    head = "| week | " + " | ".join(f"{c}: precision / recall / ECE (shown)" for c in CONDITIONS) + " |"
    print(head)
    print("| ---: |" + " ---: |" * len(CONDITIONS))
    for w in range(args.weeks):
        cells = []
        for c in CONDITIONS:
            row = tables[c][w]
            cells.append(f"{row['precision']:.3f} / {row['recall']:.3f} / {row['ece']:.3f} ({row['shown']})")
        print(f"| {w + 1} | " + " | ".join(cells) + " |")
    print()
    summary = {}
    for c in CONDITIONS:
        later = [week for run in runs[c] for week in run[args.after :]]
        shown = sum(x.shown for x in later)
        confidence = np.concatenate([x.confidence for x in later])
        correct = np.concatenate([x.correct for x in later])
        elsewhere = (
            np.mean([p for x in later for p in x.elsewhere]),
            np.mean([e for x in later for e in x.is_elsewhere]),
        )
        summary[c] = (sum(x.hits for x in later) / max(shown, 1), calibration_error(confidence, correct), elsewhere)
    base = summary[CONDITIONS[0]][0]
    print(
        f"| weeks {args.after + 1}-{args.weeks} (after {args.after} weeks of votes) "
        f"| precision | vs without | ECE | P(elsewhere) / elsewhere | final recall |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for c, (precision, ece, (p_elsewhere, share)) in summary.items():
        change = f"{100 * (precision / base - 1):+.0f}%" if base else "-"
        print(
            f"| {c} | {precision:.3f} | {change} | {ece:.3f} | {p_elsewhere:.3f} / {share:.3f} "
            f"| {tables[c][-1]['recall']:.3f} |"
        )
    print()
    profile_rows = {c: per_profile(r, names, args.after) for c, r in runs.items()}
    worse = {c: [n for n in names if profile_rows[c][n][1] < profile_rows[CONDITIONS[0]][n][1]] for c in CONDITIONS[1:]}
    for c, names_worse in worse.items():
        print(f"profiles with fewer true items than without votes, {c}: {', '.join(names_worse) or 'none'}")
    print()
    print(f"| profile: true / shown in weeks {args.after + 1}-{args.weeks} | " + " | ".join(CONDITIONS) + " |")
    print("| --- |" + " ---: |" * len(CONDITIONS))
    for name in names:
        cells = [f"{profile_rows[c][name][1]} / {profile_rows[c][name][0]}" for c in CONDITIONS]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
