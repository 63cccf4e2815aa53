"""Rankings and matches: the queries behind `scout rank`, `scout match` and every surface.

Each surface (CLI, Slack, email, JSON) renders the same `Ranking` / `Match` records,
so they all carry the same fields: rank, title, authors, date, category, DOI, server,
percentile, match score, lift and why it matched (docs/scores.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import numpy as np
from sqlalchemy import func, literal, or_, select
from sqlalchemy.orm import Session

from bot.db import Preprint, Profile, Score
from bot.ingest.identifiers import parse_preprint_id
from bot.profiles.catalog import EVERY, Scope, find_profile, paper_count, visible_names
from bot.scores.embeddings import ensure_vectors
from bot.scores.update import ScoringContext, fingerprint_matches, latest_run, load_scorer, profile_vectors
from scoring.errors import ScoutError
from scoring.lexical import lexical_features
from scoring.text import clean_text, document
from scoring.window import WindowStats, format_lift, format_score, format_top, top_shares_of_best

WHY_COUNT = 3


class PreprintNotFound(ScoutError):
    """A preprint that is not stored (or a malformed identifier); the message says what works."""


@dataclass(frozen=True)
class Reason:
    title: str
    year: int | None
    similarity: float


@dataclass(frozen=True)
class OtherCopy:
    """The same text under another identifier (a new DOI, a cross-post to another server)."""

    server: str
    identifier: str
    url: str


@dataclass(frozen=True)
class RankedPreprint:
    rank: int
    title: str
    url: str
    authors: list[str]
    posted: str | None
    category: str | None
    doi: str | None
    identifier: str
    server: str
    score: float
    top_share: float
    lift: float
    abstract: str
    why: list[Reason] = field(default_factory=list)
    also: list[OtherCopy] = field(default_factory=list)

    @property
    def score_text(self) -> str:
        return format_score(self.score)

    @property
    def top_text(self) -> str:
        return format_top(self.top_share)

    @property
    def lift_text(self) -> str:
        return format_lift(self.lift)


@dataclass(frozen=True)
class Ranking:
    profile: str
    papers: int
    days: int
    since: str
    until: str
    window_count: int
    average: float
    items: list[RankedPreprint]

    @property
    def average_text(self) -> str:
        return format_score(self.average)

    @property
    def ends_today(self) -> bool:
        """Whether the window ends today ("the last N days") or at an earlier --until."""
        return self.until >= datetime.now(UTC).date().isoformat()

    def to_json(self) -> dict:
        data = asdict(self)
        data["version"] = 1
        return data


@dataclass(frozen=True)
class ProfileMatch:
    profile: str
    score: float
    top_share: float | None
    lift: float | None

    @property
    def score_text(self) -> str:
        return format_score(self.score)


@dataclass(frozen=True)
class Match:
    query: str
    title: str
    identifier: str | None
    server: str | None
    background: float
    matches: list[ProfileMatch]

    def to_json(self) -> dict:
        data = asdict(self)
        data["version"] = 1
        return data


def window_bounds(days: int, until: date | None = None) -> tuple[date, date]:
    """The first and last posting dates of "the last `days` days", both included, ending
    today (UTC, like every stored timestamp) unless told otherwise."""
    until = until or datetime.now(UTC).date()
    return until - timedelta(days=days - 1), until


def rank_profile(
    session: Session,
    ctx: ScoringContext,
    name: str,
    *,
    days: int = 90,
    top: int = 20,
    until: date | None = None,
    why: bool = True,
    offset: int = 0,
    scope: Scope = EVERY,
) -> Ranking:
    """The window's preprints ranked for one profile (named within `scope`); `items` holds
    ranks offset+1 to offset+top (a page of the ranking), the header figures are the whole window's."""
    profile = find_profile(session, name, scope)
    since, until = window_bounds(days, until)
    start = max(offset, 0)
    # The best rows down to this page's last, from the index; the figures of the header
    # (count, average) from one aggregate: a page of a 20,000-preprint window stays light.
    best = window_top(session, profile.id, since, until, start + max(top, 0))
    scores = [score for _, score in best]
    stats, reaching = window_summary(session, profile.id, since, until, scores[-1] if scores else None)
    shares = top_shares_of_best(scores, stats.count, reaching)
    page = best[start:]
    preprints = preprints_by_id(session, [pid for pid, _ in page])
    chosen = [preprints[pid] for pid, _ in page]
    reasons = reasons_for(session, ctx, profile, chosen) if why and page else {}
    items = [
        ranked_item(start + i + 1, p, score, shares[start + i], stats.lift(score), reasons.get(p.id, []))
        for i, (p, (_, score)) in enumerate(zip(chosen, page, strict=True))
    ]
    return Ranking(
        profile.name,
        paper_count(session, profile.id),
        days,
        since.isoformat(),
        until.isoformat(),
        stats.count,
        stats.average,
        items,
    )


def _in_window(profile_id: int, since: date, until: date):
    return (Score.profile_id == profile_id, Preprint.posted >= since, Preprint.posted <= until)


def window_top(session: Session, profile_id: int, since: date, until: date, top: int) -> list[tuple[int, float]]:
    """(preprint id, score) of the window's `top` best for one profile, best first (ties:
    the newest, then the first stored): read down the (profile, score) index, not sorted
    from the whole window."""
    if top <= 0:
        return []
    rows = session.execute(
        select(Score.preprint_id, Score.score)
        .join(Preprint, Score.preprint_id == Preprint.id)
        .where(*_in_window(profile_id, since, until))
        .order_by(Score.score.desc(), Preprint.posted.desc(), Preprint.id)
        .limit(top)
    ).all()
    return [(pid, float(score)) for pid, score in rows]


def window_summary(
    session: Session, profile_id: int, since: date, until: date, at_least: float | None = None
) -> tuple[WindowStats, int]:
    """The window's count and average score for one profile, computed by the database
    (the average is the mean up to floating-point summation order), and how many
    preprints score `at_least` (0 without it)."""
    reaching = func.count().filter(Score.score >= at_least) if at_least is not None else literal(0)
    count, average, n = session.execute(
        select(func.count(), func.avg(Score.score), reaching)
        .select_from(Score)
        .join(Preprint, Score.preprint_id == Preprint.id)
        .where(*_in_window(profile_id, since, until))
    ).one()
    return WindowStats(int(count), float(average) if count else 0.0), int(n or 0)


class WindowRow(NamedTuple):
    preprint_id: int
    score: float
    first_seen_at: datetime


def window_scores(session: Session, profile_id: int, since: date, until: date) -> list[WindowRow]:
    """Every preprint posted in the window with its score for one profile, best first.

    Only the columns the window's statistics and a digest's choice need: a ranking shows
    20 of tens of thousands, and loading each as a full row (title, abstract, authors)
    took most of its time (`preprints_by_id` loads the shown ones)."""
    rows = session.execute(
        select(Score.preprint_id, Score.score, Preprint.first_seen_at)
        .join(Preprint, Score.preprint_id == Preprint.id)
        .where(Score.profile_id == profile_id, Preprint.posted >= since, Preprint.posted <= until)
        .order_by(Score.score.desc(), Preprint.posted.desc(), Preprint.id)
    ).all()
    return [WindowRow(pid, float(s), seen) for pid, s, seen in rows]


def preprints_by_id(session: Session, ids: list[int]) -> dict[int, Preprint]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Preprint).where(Preprint.id.in_(ids)))}


def window_score_ids(session: Session, profile_id: int, since: date, until: date) -> list[tuple[int, float]]:
    """(preprint id, score) for every preprint posted in the window, in `window_scores` order."""
    rows = session.execute(
        select(Preprint.id, Score.score)
        .join(Score, Score.preprint_id == Preprint.id)
        .where(Score.profile_id == profile_id, Preprint.posted >= since, Preprint.posted <= until)
        .order_by(Score.score.desc(), Preprint.posted.desc(), Preprint.id)
    ).all()
    return [(i, float(s)) for i, s in rows]


def ranked_item(
    rank: int,
    p: Preprint,
    score: float,
    share: float,
    lift: float,
    why: list[Reason],
    also: list[Preprint] = (),
) -> RankedPreprint:
    return RankedPreprint(
        rank=rank,
        title=p.title,
        url=p.url,
        authors=p.authors,
        posted=p.posted.isoformat() if p.posted else None,
        category=p.category,
        doi=p.doi,
        identifier=p.identifier,
        server=p.server,
        score=score,
        top_share=share,
        lift=lift,
        abstract=p.abstract,
        why=why,
        also=[OtherCopy(c.server, c.identifier, c.url) for c in also],
    )


def reasons_for(
    session: Session, ctx: ScoringContext, profile: Profile, preprints: list[Preprint]
) -> dict[int, list[Reason]]:
    """The reference papers each preprint is closest to: why it matched."""
    papers, refs = profile_vectors(session, ctx, profile)
    texts = {p.content_hash: document(p.title, p.abstract) for p in preprints}
    vectors = ensure_vectors(session, ctx.embedder, ctx.vectors, texts, ctx.progress)
    out: dict[int, list[Reason]] = {}
    for p in preprints:
        sims = refs @ vectors[p.content_hash]
        best = np.argsort(-sims)[:WHY_COUNT]
        out[p.id] = [Reason(papers[i].title, papers[i].year, round(float(sims[i]), 3)) for i in best]
    return out


def find_preprint(session: Session, query: str) -> Preprint:
    """A stored preprint by DOI (any of its spellings) or arXiv id."""
    text = query.strip()
    parsed = parse_preprint_id(text)
    if parsed is not None and parsed[0] == "doi":
        key = parsed[1]
        found = session.scalar(
            select(Preprint).where(or_(func.lower(Preprint.doi) == key, Preprint.identifier == key)).limit(1)
        )
    elif parsed is not None:
        found = session.scalar(select(Preprint).where(Preprint.server == "arxiv", Preprint.identifier == parsed[1]))
    else:
        raise PreprintNotFound(
            f"{query!r} is neither a DOI (10.1101/2024.01.01.123456) nor an arXiv id (2405.01234); "
            "to score free text use --text"
        )
    if found is None:
        raise PreprintNotFound(f"no stored preprint with id {text}; poll its feed first (scout poll), or use --text")
    return found


def match_preprint(
    session: Session,
    preprint: Preprint,
    days: int = 90,
    limit: int = 10,
    until: date | None = None,
    scope: Scope = EVERY,
) -> Match:
    """The profiles within `scope` a stored preprint fits best. The scores are one
    distribution over every profile plus "published elsewhere"; the profiles out of sight
    count as elsewhere, so what is shown still adds up to 100%."""
    rows = session.execute(
        select(Profile.id, Profile.name, Score.score)
        .join(Score, Score.profile_id == Profile.id)
        .where(Score.preprint_id == preprint.id, scope.clause())
        .order_by(Score.score.desc())
    ).all()
    if not rows and session.scalar(select(Score.profile_id).where(Score.preprint_id == preprint.id).limit(1)) is None:
        raise PreprintNotFound("this preprint has no scores yet: run scout score")
    since, until = window_bounds(days, until)
    matches = []
    for profile_id, name, score in rows[:limit]:
        stats, reaching = window_summary(session, profile_id, since, until, score)
        share = reaching / stats.count if stats.count else None
        matches.append(ProfileMatch(name, float(score), share, stats.lift(score) if stats.count else None))
    background = max(0.0, 1.0 - sum(s for _, _, s in rows))
    return Match(preprint.identifier, preprint.title, preprint.identifier, preprint.server, background, matches)


def match_text(session: Session, ctx: ScoringContext, text: str, limit: int = 10, scope: Scope = EVERY) -> Match:
    """As `match_preprint`, for a text scored now by the stored model."""
    text = clean_text(text)
    if len(text.split()) < 5:
        raise PreprintNotFound("give a title and abstract to score (at least a few words of text)")
    run = latest_run(session)
    if run is None:
        raise PreprintNotFound("no profiles scored yet: add a profile first (scout profiles add NAME --papers FILE)")
    if not fingerprint_matches(session, ctx.vectors, run):
        # The stored model was fitted on another catalog (a profile was just added or
        # removed, or the model changed); its numbers would belong to other profiles.
        raise PreprintNotFound(
            "the profiles changed since the scores were computed; they are refreshed on the "
            "next scoring run (scout score) - try again in a few minutes"
        )
    fitted = load_scorer(session, ctx, run)
    x = ctx.embedder().embed([text])
    probs = fitted.scorer.predict_proba(x, lexical=lexical_features([text]))[0]
    names = fitted.scorer.catalog.names
    seen = set(visible_names(session, scope))
    shown = [i for i in np.argsort(-probs[:-1]) if names[i] in seen]
    matches = [ProfileMatch(names[i], float(probs[i]), None, None) for i in shown[:limit]]
    background = max(0.0, 1.0 - float(sum(probs[i] for i in shown)))
    return Match(text[:80], text[:200], None, None, background, matches)
