"""Keep stored match scores current: fit when the catalog or model changes, else score what is new."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, selectinload

from bot.config import Settings
from bot.db import Preprint, Profile, ReferencePaper, Score, ScoringRun, Vote
from bot.scores.embeddings import ensure_vectors, stack
from bot.scores.progress import logged_steps
from scoring.duplicates import copy_in, keep_one_copy
from scoring.embedder import TORCH, Embedder, load_embedder, resolve_backend, vector_key
from scoring.feedback import Tally, tally, with_votes
from scoring.lexical import LEXICAL_VERSION, lexical_features
from scoring.progress import Steps, begin_step
from scoring.scorer import CHANNELS, Blend, Catalog, Scorer, background_weight, fit
from scoring.text import document

INSERT_BATCH = 5000
PRELOAD_THREAD = "model-preload"
WARM_CHUNK = 256
# Below this many stored preprints the background sample is too thin to stand for
# "published somewhere else"; the scorer then uses its fixed pseudo-background.
MIN_BACKGROUND = 30
# A refit after a catalog change keeps the last fit's classifier penalty while the number
# of reference papers stays within this share of what it was (see _penalty_to_keep).
KEEP_PENALTY_CHANGE = 0.1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreReport:
    run_id: int | None
    refitted: bool
    scored: int
    profiles: int
    ece: float | None = None


@dataclass(frozen=True)
class FittedCatalog:
    """A scorer plus the preprint id behind each background row (to leave a preprint out of
    its own background)."""

    scorer: Scorer
    background_ids: list[int]

    def exclusions(self, preprint_ids: list[int], vectors: np.ndarray | None = None) -> np.ndarray | None:
        """Each preprint's own background row, found by id or, for a copy of its text under
        another id (`vectors` given), by the text (scoring.duplicates)."""
        if not self.background_ids:
            return None
        position = {pid: i for i, pid in enumerate(self.background_ids)}
        own = np.array([position.get(pid, -1) for pid in preprint_ids], dtype=np.int64)
        if vectors is not None:
            own = np.where(own >= 0, own, copy_in(vectors, self.scorer.catalog.background))
        return own


@dataclass
class ScoringContext:
    """What scoring needs from the outside world: the model (loaded lazily), the backend that
    runs it (resolved, never `auto`) and how long steps report progress (scoring.progress;
    None: silently)."""

    model_name: str
    load_embedder: Callable[[], Embedder]
    background_size: int = 2000
    progress: Steps | None = None
    backend: str = TORCH
    _embedder: Embedder | None = None
    # Slack's worker threads and the preload thread may ask at once: load once.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _preloading: threading.Thread | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        announce: Callable[[str], None] | None = None,
        progress: Steps | None = None,
    ) -> ScoringContext:
        """The configured model (SCOUT_MODEL) and backend (SCOUT_BACKEND), loaded on first
        need; `announce` hears when. A backend this machine cannot run fails here, at start.
        Without `progress` (a bar), long steps log a line now and then."""
        backend = resolve_backend(settings.backend)

        def load() -> Embedder:
            started = time.monotonic()
            if announce is not None:
                announce(f"loading model {settings.model} ({backend})…")
            embedder = load_embedder(settings.model, backend, settings.model_cache_dir)
            log.info(
                "model %s (%s) loaded in %.1f s on thread %s",
                settings.model,
                backend,
                time.monotonic() - started,
                threading.current_thread().name,
            )
            return embedder

        return cls(settings.model, load, settings.background_size, progress or logged_steps(), backend)

    @property
    def vectors(self) -> str:
        """The key of this model's vectors in the cache (bot/scores/embeddings.py)."""
        return vector_key(self.model_name, self.backend)

    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self.load_embedder()
            return self._embedder

    def preload(self) -> None:
        """Start loading the model on a background thread, so the first request that needs
        it does not wait for it. Pair with `settle()` before the process exits."""
        if self._embedder is not None or self._preloading is not None:
            return

        def warm() -> None:
            try:
                self.embedder()
            except Exception:  # the request that needs the model reports the error to its user
                log.exception("loading the model %s in the background failed", self.model_name)

        self._preloading = threading.Thread(target=warm, name=PRELOAD_THREAD, daemon=True)
        self._preloading.start()

    def settle(self) -> None:
        """Wait for a background load still running. A process that exits while PyTorch is
        loading on another thread aborts in C++ ("terminate called without an active
        exception", status -6) instead of exiting with its own status; joining is the
        only reliable cure, and the interpreter's own shutdown comes too late for it."""
        if self._preloading is not None:
            self._preloading.join()


def vectors_key(settings: Settings) -> str:
    """The cache key of the configured model's vectors, without loading it."""
    return vector_key(settings.model, resolve_backend(settings.backend))


def catalog_fingerprint(
    key: str, profiles: list[tuple[int, str, list[str]]], votes: list[tuple[int, int, int, int]] = ()
) -> str:
    # Keyed like the vectors (the same model reading more of each text is another catalog),
    # by how words become features, which a stored model depends on too, and by the
    # scorer's channels, so an upgrade that adds evidence refits once instead of scoring
    # on without it.
    digest = hashlib.sha256(f"{key}|{LEXICAL_VERSION}|{','.join(CHANNELS)}".encode())
    for profile_id, name, hashes in sorted(profiles):
        digest.update(f"|{profile_id}:{name}:".encode())
        digest.update(",".join(sorted(hashes)).encode())
    # The editors' votes are evidence too (scoring.feedback): (profile, preprint, relevant, not).
    for vote in sorted(votes):
        digest.update(f"|v{vote}".encode())
    return digest.hexdigest()


def update_scores(session: Session, ctx: ScoringContext, *, refit: bool = False) -> ScoreReport:
    """Bring every stored preprint's scores up to date with the current catalog and model."""
    profiles = _profiles(session)
    if not profiles:
        return ScoreReport(None, False, 0, 0)
    votes = vote_tallies(session, profiles)
    fingerprint = current_fingerprint(ctx.vectors, profiles, votes)
    run = latest_run(session)
    preprint_count = session.scalar(select(func.count(Preprint.id))) or 0
    asked = refit
    refit = refit or run is None or run.fingerprint != fingerprint or _background_outgrown(run, preprint_count, ctx)
    voted_in = {t.preprint for t in votes if t.is_reference}
    background_ids = _choose_background(session, ctx.background_size, voted_in) if refit else list(run.background_ids)
    unscored = ~select(Score.preprint_id).where(Score.preprint_id == Preprint.id).exists()
    pending = list(session.scalars(select(Preprint) if refit else select(Preprint).where(unscored)))
    # Embed everything this run needs before writing anything else: embedding is the slow
    # part, and a write transaction held open meanwhile would stall every other process
    # (the web app, a standby clock) on SQLite.
    vectors = _warm_cache(session, ctx, profiles, background_ids, pending)
    if refit:
        penalty = None if asked or run is None else _penalty_to_keep(run, sum(len(p.papers) for p in profiles))
        fitted, run = _fit_run(session, ctx, profiles, fingerprint, background_ids, votes, vectors, penalty)
        session.execute(delete(Score))
    else:
        fitted = load_scorer(session, ctx, run, profiles, vectors, votes)
    _score_preprints(session, ctx, fitted, run, profiles, pending, vectors)
    return ScoreReport(run.id, refit, len(pending), len(profiles), run.ece)


def _warm_cache(
    session: Session, ctx: ScoringContext, profiles: list[Profile], background_ids: list[int], pending: list[Preprint]
) -> dict[str, np.ndarray]:
    """Every vector this run needs (content hash -> vector), read or embedded once."""
    background = (
        list(session.scalars(select(Preprint).where(Preprint.id.in_(background_ids)))) if background_ids else []
    )
    texts = {paper.content_hash: document(paper.title, paper.abstract) for p in profiles for paper in p.papers}
    texts.update({p.content_hash: document(p.title, p.abstract) for p in [*background, *pending]})
    return ensure_vectors(session, ctx.embedder, ctx.vectors, texts, ctx.progress, commit_every=WARM_CHUNK)


def forget_old_runs(session: Session) -> int:
    """Delete fitted runs no stored score uses: a refit rewrites every score under its new
    run, and each run keeps its model's weights (megabytes with hundreds of profiles)."""
    latest = latest_run(session)
    if latest is None:
        return 0
    used = select(Score.run_id).where(Score.run_id == ScoringRun.id).exists()
    return session.execute(delete(ScoringRun).where(ScoringRun.id != latest.id, ~used)).rowcount or 0


def latest_run(session: Session) -> ScoringRun | None:
    return session.scalar(select(ScoringRun).order_by(ScoringRun.id.desc()).limit(1))


def current_fingerprint(key: str, profiles: list[Profile], votes: list[Tally]) -> str:
    ids = [p.id for p in profiles]
    return catalog_fingerprint(
        key,
        [(p.id, p.name, [r.content_hash for r in p.papers]) for p in profiles],
        [(ids[t.profile], t.preprint, t.relevant, t.not_relevant) for t in votes],
    )


def vote_tallies(session: Session, profiles: list[Profile]) -> list[Tally]:
    """Every profile's votes, counted per preprint (scoring.feedback.tally)."""
    index = {p.id: i for i, p in enumerate(profiles)}
    rows = session.execute(select(Vote.profile_id, Vote.preprint_id, Vote.relevant).order_by(Vote.id)).all()
    return tally((index[profile], preprint, relevant) for profile, preprint, relevant in rows if profile in index)


def stored_fingerprint(session: Session, key: str) -> str | None:
    """The fingerprint of the catalog as stored (None without profiles), from its keys
    alone: asking whether scores are current must not load every reference paper."""
    rows = session.execute(
        select(Profile.id, Profile.name, ReferencePaper.content_hash).outerjoin(
            ReferencePaper, ReferencePaper.profile_id == Profile.id
        )
    ).all()
    if not rows:
        return None
    profiles: dict[int, tuple[str, list[str]]] = {}
    for profile_id, name, paper_hash in rows:
        hashes = profiles.setdefault(profile_id, (name, []))[1]
        if paper_hash is not None:
            hashes.append(paper_hash)
    # Tallied by profile id, as current_fingerprint names them.
    voted = session.execute(select(Vote.profile_id, Vote.preprint_id, Vote.relevant).order_by(Vote.id)).all()
    votes = [(t.profile, t.preprint, t.relevant, t.not_relevant) for t in tally(voted) if t.profile in profiles]
    return catalog_fingerprint(key, [(i, name, hashes) for i, (name, hashes) in profiles.items()], votes)


def fingerprint_matches(session: Session, key: str, run: ScoringRun) -> bool:
    """Was `run` fitted on the catalog (profiles, papers, model and backend: `key`) as it is now?"""
    return run.fingerprint == stored_fingerprint(session, key)


def is_current(session: Session, key: str) -> bool:
    fingerprint = stored_fingerprint(session, key)
    if fingerprint is None:
        return True
    run = latest_run(session)
    if run is None or run.fingerprint != fingerprint:
        return False
    unscored = session.scalar(
        select(func.count(Preprint.id)).where(
            ~select(Score.preprint_id).where(Score.preprint_id == Preprint.id).exists()
        )
    )
    return not unscored


def load_scorer(
    session: Session,
    ctx: ScoringContext,
    run: ScoringRun,
    profiles: list[Profile] | None = None,
    vectors: dict[str, np.ndarray] | None = None,
    votes: list[Tally] | None = None,
) -> FittedCatalog:
    """Rebuild a fitted scorer from its stored run without refitting."""
    profiles = profiles if profiles is not None else _profiles(session)
    votes = votes if votes is not None else vote_tallies(session, profiles)
    catalog, background_ids = _catalog(session, ctx, profiles, list(run.background_ids), votes, vectors=vectors)
    if run.model_blob:
        scorer = Scorer.from_bytes(catalog, run.model_blob)
    else:  # runs stored before the fitted parameters were (the kernel-density model)
        scorer = Scorer(catalog, tau=run.tau, temperature=run.temperature)
    return FittedCatalog(scorer, background_ids)


def _profiles(session: Session) -> list[Profile]:
    # With their papers in one more query, not one per profile (1,400 at Preprint Match's size).
    return list(session.scalars(select(Profile).options(selectinload(Profile.papers)).order_by(Profile.id)))


def _penalty_to_keep(run: ScoringRun, papers: int) -> tuple[float, int] | None:
    """The classifier penalty of the last fit and the catalog size it was searched on, while
    the catalog stays within KEEP_PENALTY_CHANGE of that size (None: search again).

    Searching costs 9 of a fit's 12 regressions (3 penalties x 3 folds), and one more
    profile among hundreds does not move the choice; `scout score --refit` searches again."""
    if not run.model_blob:
        return None
    blend = Blend.from_bytes(run.model_blob)
    if blend.l2 is None or not blend.l2_papers:
        return None
    if abs(papers - blend.l2_papers) > KEEP_PENALTY_CHANGE * blend.l2_papers:
        return None
    return blend.l2, blend.l2_papers


def _background_outgrown(run: ScoringRun, preprint_count: int, ctx: ScoringContext) -> bool:
    """Refit while the background sample is still small next to the stored preprints."""
    have = len(run.background_ids)
    if have >= ctx.background_size:
        return False
    available = min(preprint_count, ctx.background_size)
    return available >= MIN_BACKGROUND and available >= 2 * have + MIN_BACKGROUND


def _choose_background(session: Session, size: int, voted_in: set[int] = frozenset()) -> list[int]:
    """A deterministic spread of stored preprints, newest first, to stand for "elsewhere"
    (but those the editors voted into a profile)."""
    ids = list(session.scalars(select(Preprint.id).order_by(Preprint.posted.desc(), Preprint.id.desc())))
    ids = [i for i in ids if i not in voted_in]
    if len(ids) < MIN_BACKGROUND or size == 0:
        return []
    if len(ids) <= size:
        return sorted(ids)
    step = len(ids) / size
    return sorted(ids[int(i * step)] for i in range(size))


def _catalog(
    session: Session,
    ctx: ScoringContext,
    profiles: list[Profile],
    background_ids: list[int],
    votes: list[Tally],
    *,
    with_words: bool = False,
    vectors: dict[str, np.ndarray] | None = None,
) -> tuple[Catalog, list[int]]:
    """The catalog as arrays, the votes in; word features only when fitting (a stored
    model needs them for the preprints it scores, not for its reference papers). When
    fitting, the background keeps one copy of each text and none of a text voted into a
    profile (scoring.duplicates); the stored run keeps the ids that are left."""
    papers = [(i, paper) for i, profile in enumerate(profiles) for paper in profile.papers]
    wanted = set(background_ids) | {t.preprint for t in votes}
    stored = {p.id: p for p in session.scalars(select(Preprint).where(Preprint.id.in_(wanted)))} if wanted else {}
    background = [stored[i] for i in sorted(background_ids) if i in stored]
    votes = [t for t in votes if t.preprint in stored]  # a pruned preprint takes its votes along
    voted = [stored[t.preprint] for t in votes]
    texts = {paper.content_hash: document(paper.title, paper.abstract) for _, paper in papers}
    texts.update({p.content_hash: document(p.title, p.abstract) for p in [*background, *voted]})
    if vectors is None or any(key not in vectors for key in texts):
        vectors = ensure_vectors(session, ctx.embedder, ctx.vectors, texts, ctx.progress)
    dim = len(next(iter(vectors.values())))
    vote_vectors = stack(vectors, [p.content_hash for p in voted], dim)
    if with_words and background:
        rows = stack(vectors, [p.content_hash for p in background], dim)
        keep = keep_one_copy(rows)
        voted_in = vote_vectors[[t.is_reference for t in votes]] if votes else vote_vectors
        keep = keep[copy_in(rows[keep], voted_in) < 0]
        background = [background[i] for i in keep]

    def words(docs: list[str]):
        return lexical_features(docs) if with_words else None

    catalog = Catalog(
        names=tuple(p.name for p in profiles),
        vectors=stack(vectors, [paper.content_hash for _, paper in papers], dim),
        labels=np.array([i for i, _ in papers], dtype=np.int64),
        background=stack(vectors, [p.content_hash for p in background], dim),
        lexical=words([texts[paper.content_hash] for _, paper in papers]),
        background_lexical=words([texts[p.content_hash] for p in background]),
        # While fewer preprints are stored than the sample's size, the sample weighs as
        # much as a full one: otherwise each refit as the store grows moves every score.
        background_weight=background_weight(len(background), ctx.background_size),
    )
    vote_words = words([texts[p.content_hash] for p in voted]) if votes else None
    return with_votes(catalog, votes, vote_vectors, lexical=vote_words), [p.id for p in background]


def _fit_run(
    session: Session,
    ctx: ScoringContext,
    profiles: list[Profile],
    fingerprint: str,
    background_ids: list[int],
    votes: list[Tally],
    vectors: dict[str, np.ndarray],
    penalty: tuple[float, int] | None = None,
) -> tuple[FittedCatalog, ScoringRun]:
    catalog, background_ids = _catalog(session, ctx, profiles, background_ids, votes, with_words=True, vectors=vectors)
    if penalty is None:
        scorer = fit(catalog, progress=ctx.progress)
    else:
        scorer = fit(catalog, progress=ctx.progress, l2_grid=(penalty[0],))
        scorer = replace(scorer, blend=replace(scorer.blend, l2_papers=penalty[1])) if scorer.blend else scorer
    cal = scorer.calibration
    run = ScoringRun(
        fingerprint=fingerprint,
        model=ctx.model_name,
        profiles=len(profiles),
        reference_papers=len(catalog.labels),
        background_ids=background_ids,
        tau=scorer.tau,
        temperature=scorer.temperature,
        ece=cal.ece if cal else None,
        heldout=cal.heldout if cal else 0,
        model_blob=scorer.to_bytes() if scorer.blend is not None else None,
    )
    session.add(run)
    session.flush()
    return FittedCatalog(scorer, background_ids), run


def _score_preprints(
    session: Session,
    ctx: ScoringContext,
    fitted: FittedCatalog,
    run: ScoringRun,
    profiles: list[Profile],
    preprints: list[Preprint],
    vectors: dict[str, np.ndarray],
) -> None:
    if not preprints:
        return
    scorer = fitted.scorer
    texts = {p.content_hash: document(p.title, p.abstract) for p in preprints}
    dim = scorer.catalog.vectors.shape[1]
    x = stack(vectors, [p.content_hash for p in preprints], dim)
    lexical = lexical_features([texts[p.content_hash] for p in preprints])
    probs = scorer.predict_proba(
        x,
        exclude_background=fitted.exclusions([p.id for p in preprints], x),
        lexical=lexical,
        progress=begin_step(ctx.progress, "scoring", len(preprints)),
    )
    write_scores(session, run.id, [p.id for p in preprints], [p.id for p in profiles], probs, ctx.progress)


def write_scores(
    session: Session,
    run_id: int,
    preprint_ids: list[int],
    profile_ids: list[int],
    probs: np.ndarray,
    progress: Steps | None = None,
) -> None:
    """Store `probs[i, j]` as the score of preprint i for profile j (the column past the
    profiles, the background, is not stored).

    PostgreSQL takes the rows by COPY, as text built a block of preprints at a time: as
    ORM bulk inserts, 4 million rows (20,000 preprints x 200 profiles) spent 760 of a
    1,100 s refit building and sending rows one by one (benchmarks/scale.py)."""
    written = begin_step(progress, "writing scores", len(preprint_ids) * len(profile_ids))
    per_block = max(1, INSERT_BATCH // max(len(profile_ids), 1))
    postgres = session.get_bind().dialect.name == "postgresql"
    copy_sql = "COPY scores (preprint_id, profile_id, run_id, score) FROM STDIN"
    for first in range(0, len(preprint_ids), per_block):
        block = range(first, min(first + per_block, len(preprint_ids)))
        if postgres:
            lines = "".join(
                f"{preprint_ids[i]}\t{profile_id}\t{run_id}\t{score!r}\n"
                for i in block
                for profile_id, score in zip(profile_ids, probs[i].tolist(), strict=False)
            )
            cursor = session.connection().connection.driver_connection.cursor()
            with cursor, cursor.copy(copy_sql) as copy:
                copy.write(lines)
        else:
            rows = [
                {"preprint_id": preprint_ids[i], "profile_id": profile_id, "run_id": run_id, "score": score}
                for i in block
                for profile_id, score in zip(profile_ids, probs[i].tolist(), strict=False)
            ]
            session.execute(insert(Score), rows)
        if written:
            written(len(block) * len(profile_ids))
    session.flush()


def profile_vectors(session: Session, ctx: ScoringContext, profile: Profile) -> tuple[list[ReferencePaper], np.ndarray]:
    """A profile's reference papers with their vectors (for "why it matched")."""
    papers = list(profile.papers)
    texts = {p.content_hash: document(p.title, p.abstract) for p in papers}
    vectors = ensure_vectors(session, ctx.embedder, ctx.vectors, texts, ctx.progress)
    dim = len(next(iter(vectors.values())))
    return papers, stack(vectors, [p.content_hash for p in papers], dim)
