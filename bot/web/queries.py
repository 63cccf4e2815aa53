"""What the pages read that `scout rank` and `scout match` do not: profile slugs, the index's
figures, a profile's reference list and a preprint's prediction set."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import Feed, Preprint, Profile, ReferencePaper, Score
from bot.ingest.identifiers import parse_preprint_id
from bot.profiles.catalog import SHARED, Scope, closest_names
from scoring.errors import ScoutError

ELSEWHERE = "published elsewhere"


class NotFound(ScoutError):
    """A page that does not exist; `suggestions` are (label, path) pairs worth trying instead."""

    def __init__(self, message: str, suggestions: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


@dataclass(frozen=True)
class ProfileSummary:
    name: str
    slug: str
    papers: int
    window_count: int


@dataclass(frozen=True)
class PredictionSet:
    level: float
    members: list[str]
    total: float


def slugify(name: str) -> str:
    """A profile's name as a URL part: "PLOS Computational Biology" -> "plos-computational-biology"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "profile"


def profile_path(name: str) -> str:
    return f"/profiles/{slugify(name)}"


def preprint_path(doi: str | None, identifier: str) -> str | None:
    """The preprint page of a DOI or arXiv id; None for an item of a generic feed that has neither."""
    key = doi or identifier
    if not key or parse_preprint_id(key) is None:
        return None
    return "/preprints/" + quote(key, safe="/:")


def profiles_by_slug(session: Session, slug: str, scope: Scope) -> list[Profile]:
    """The profiles within `scope` whose name gives this slug, oldest first (two names may
    give the same one)."""
    return [
        p
        for p in session.scalars(select(Profile).where(scope.clause()).order_by(Profile.id))
        if slugify(p.name) == slug
    ]


def profile_by_slug(session: Session, slug: str, scope: Scope = SHARED) -> Profile:
    """The profile within `scope` whose name gives this slug (the oldest, should two give the same one)."""
    found = profiles_by_slug(session, slug, scope)
    if found:
        return found[0]
    raise unknown_slug(session, slug, scope)


def unknown_slug(session: Session, slug: str, scope: Scope = SHARED) -> NotFound:
    """The 404 of a slug that names nothing within `scope`, suggesting names from it alone."""
    names = list(session.scalars(select(Profile.name).where(scope.clause()).order_by(Profile.id)))
    close = closest_names(slug.replace("-", " "), names)
    if not names:
        return NotFound("There are no profiles yet (scout profiles add NAME --papers FILE).")
    return NotFound(f"No profile at {slug!r}.", [(n, profile_path(n)) for n in close or names[:10]])


def profile_summaries(session: Session, since: date, until: date, scope: Scope = SHARED) -> list[ProfileSummary]:
    """Every profile within `scope` with its paper count and how many scored preprints its window holds."""
    papers = dict(
        session.execute(
            select(ReferencePaper.profile_id, func.count(ReferencePaper.id)).group_by(ReferencePaper.profile_id)
        ).all()
    )
    window = dict(
        session.execute(
            select(Score.profile_id, func.count(Score.preprint_id))
            .join(Preprint, Preprint.id == Score.preprint_id)
            .where(Preprint.posted >= since, Preprint.posted <= until)
            .group_by(Score.profile_id)
        ).all()
    )
    profiles = session.execute(select(Profile.id, Profile.name).where(scope.clause()).order_by(Profile.name_key)).all()
    return [ProfileSummary(name, slugify(name), papers.get(i, 0), window.get(i, 0)) for i, name in profiles]


def last_poll(session: Session) -> datetime | None:
    return session.scalar(select(func.max(Feed.last_polled_at)))


def reference_papers(session: Session, profile: Profile) -> list[ReferencePaper]:
    return list(
        session.scalars(
            select(ReferencePaper)
            .where(ReferencePaper.profile_id == profile.id)
            .order_by(ReferencePaper.year.desc().nulls_last(), ReferencePaper.title)
        )
    )


def all_scores(session: Session, preprint: Preprint, scope: Scope = SHARED) -> list[tuple[str, float]]:
    """(profile name, score) for every profile within `scope`, best first."""
    rows = session.execute(
        select(Profile.name, Score.score)
        .join(Score, Score.profile_id == Profile.id)
        .where(Score.preprint_id == preprint.id, scope.clause())
        .order_by(Score.score.desc(), Profile.name_key)
    ).all()
    return [(name, float(score)) for name, score in rows]


def prediction_set(scores: list[tuple[str, float]], background: float, level: float) -> PredictionSet:
    """The fewest outcomes (profiles, or being published elsewhere) whose scores add up to `level`.

    The scores are one calibrated distribution over every profile plus "published
    elsewhere", so that outcome takes its place in the order like any profile."""
    outcomes = sorted([*scores, (ELSEWHERE, background)], key=lambda o: -o[1])
    members: list[str] = []
    total = 0.0
    for name, score in outcomes:
        if total >= level - 1e-9:
            break
        members.append(name)
        total += score
    return PredictionSet(level, members, total)
