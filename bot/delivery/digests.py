"""Digests: which matches a subscription gets, when it is due, and the delivery ledger.

Shared by Slack and email. Selection is a query over stored scores; delivery belongs
to each channel's deliverer, which writes the ledger item by item *after* the other
side accepted it, so a run that dies halfway resumes without sending anything twice.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import Database, Delivery, Digest, Preprint, Subscription, as_utc, utcnow
from bot.fulltext import Narrowing, narrowed_ids
from bot.scores.embeddings import cached_vectors, stack
from bot.scores.rankings import (
    RankedPreprint,
    preprints_by_id,
    ranked_item,
    reasons_for,
    window_bounds,
    window_scores,
)
from bot.scores.update import ScoringContext
from scoring.duplicates import fold_copies
from scoring.errors import InputError
from scoring.thresholds import Threshold
from scoring.window import top_share, window_stats

log = logging.getLogger(__name__)

SCHEDULES = ("hourly", "daily", "weekly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# An interrupted digest is tried again after as long as it has been open, within these.
RESUME_MIN = timedelta(minutes=1)
RESUME_MAX = timedelta(hours=1)
# A digest looks this many times its room ahead for copies of what it shows (they are
# folded into one item, so they must not use up the room).
COPY_ROOM = 3
PERIOD = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}


class ScheduleError(InputError):
    """A schedule, time or time zone a user typed that cannot be used."""


# -- selection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestPlan:
    """What one subscription's digest would send now."""

    subscription_id: int
    profile: str
    papers: int
    threshold: Threshold
    window_days: int
    window_count: int
    average: float
    items: list[RankedPreprint]
    preprint_ids: list[int]
    day: date = field(default_factory=date.today)
    profile_id: int | None = None
    profile_team: str = ""  # the workspace that owns the profile: its page's link carries the key
    narrowed: str = ""  # 'mentioning crispr, in genetics': what the subscription narrows to

    @property
    def empty(self) -> bool:
        return not self.items


def threshold_of(sub: Subscription) -> Threshold:
    return Threshold(sub.threshold_kind, sub.threshold_value)


def narrowing_of(sub: Subscription) -> Narrowing:
    return Narrowing.from_json(sub.keywords_json, sub.categories_json)


def plan_digest(
    session: Session, ctx: ScoringContext | None, sub: Subscription, now: datetime, window_days: int = 90
) -> DigestPlan:
    """Undelivered above-threshold matches for one subscription, best first, capped.

    A new subscription starts with what arrived in the last schedule period, not with
    the whole window's backlog.
    """
    since, until = window_bounds(window_days, now.date())
    rows = window_scores(session, sub.profile_id, since, until)
    scores = np.array([r.score for r in rows], dtype=np.float64)
    stats = window_stats(scores)
    shares = top_share(scores, scores) if len(scores) else np.array([])
    delivered = set(session.scalars(select(Delivery.preprint_id).where(Delivery.subscription_id == sub.id)))
    # A digest that died halfway resumes with what is left of its cap, not a fresh one.
    room = sub.max_items - _sent_in_open_digest(session, sub.id)
    fresh_from = as_utc(sub.created_at) - PERIOD.get(sub.schedule, PERIOD["daily"])
    threshold, narrowing = threshold_of(sub), narrowing_of(sub)
    narrowed = narrowed_ids(session, narrowing, since, until)
    passing: list[tuple[int, float, float]] = []
    for row, share in zip(rows, shares, strict=True):
        if row.preprint_id in delivered or as_utc(row.first_seen_at) < fresh_from:
            continue
        if narrowed is not None and row.preprint_id not in narrowed:
            continue
        if len(passing) >= room * COPY_ROOM:
            break
        if threshold.passes(row.score, float(share), stats.lift(row.score)):
            passing.append((row.preprint_id, row.score, float(share)))
    sent_in_window = [row.preprint_id for row in rows if row.preprint_id in delivered]
    leaders = _fold_copies(session, ctx, [pid for pid, _, _ in passing], sent_in_window)
    picked = [entry for entry in passing if entry[0] in leaders][: max(room, 0)]
    copies = {pid: leaders[pid] for pid, _, _ in picked}
    preprints = preprints_by_id(session, [pid for pid, _, _ in picked] + [c for cs in copies.values() for c in cs])
    chosen = [(preprints[pid], score, share) for pid, score, share in picked]
    reasons = reasons_for(session, ctx, sub.profile, [p for p, _, _ in chosen]) if ctx and chosen else {}
    items = [
        ranked_item(
            i + 1, p, score, share, stats.lift(score), reasons.get(p.id, []), [preprints[c] for c in copies[p.id]]
        )
        for i, (p, score, share) in enumerate(chosen)
    ]
    return DigestPlan(
        subscription_id=sub.id,
        profile=sub.profile.name,
        papers=len(sub.profile.papers),
        threshold=threshold,
        window_days=window_days,
        window_count=stats.count,
        average=stats.average,
        items=items,
        preprint_ids=[p.id for p, _, _ in chosen],
        day=now.date(),
        profile_id=sub.profile_id,
        profile_team=sub.profile.team_id,
        narrowed=narrowing.describe(),
    )


def _fold_copies(
    session: Session, ctx: ScoringContext | None, candidates: list[int], sent: list[int]
) -> dict[int, list[int]]:
    """The candidates (best first) a digest shows, each with the ids of its copies among
    the others: one preprint under several ids (a new DOI, a cross-post) is one item, and
    one whose text went out under another id is not sent again (scoring.duplicates).
    Without a scoring context there are no vectors to compare, and every candidate stands."""
    if ctx is None or not candidates:
        return {pid: [] for pid in candidates}
    ids = sent + candidates
    hashes = dict(session.execute(select(Preprint.id, Preprint.content_hash).where(Preprint.id.in_(ids))).all())
    vectors = cached_vectors(session, ctx.vectors, list(hashes.values()))
    if len(vectors) < len(set(hashes.values())):  # not embedded yet: nothing to compare
        return {pid: [] for pid in candidates}
    dim = len(next(iter(vectors.values())))
    first = fold_copies(
        stack(vectors, [hashes[pid] for pid in candidates], dim), stack(vectors, [hashes[pid] for pid in sent], dim)
    )
    leaders: dict[int, list[int]] = {}
    for i, (pid, lead) in enumerate(zip(candidates, first.tolist(), strict=True)):
        if lead == i:
            leaders[pid] = []
        elif lead >= 0:  # a copy points at an earlier candidate, the best-scored of its text
            leaders[candidates[lead]].append(pid)
    return leaders


def _sent_in_open_digest(session: Session, subscription_id: int) -> int:
    open_id = session.scalar(
        select(Digest.id).where(Digest.subscription_id == subscription_id, Digest.status == "open").limit(1)
    )
    if open_id is None:
        return 0
    return len(list(session.scalars(select(Delivery.id).where(Delivery.digest_id == open_id))))


# -- schedules ---------------------------------------------------------------------------


def parse_time(text: str) -> str:
    try:
        parsed = time.fromisoformat(text.strip().zfill(5))
    except ValueError:
        raise ScheduleError(f"{text!r} is not a time of day; use HH:MM, e.g. 08:00") from None
    return parsed.strftime("%H:%M")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin or UTC") from None


def next_run(sub: Subscription, after: datetime) -> datetime:
    """The first scheduled moment strictly after `after`, in UTC."""
    tz = zone(sub.timezone or "UTC")
    local = as_utc(after).astimezone(tz)
    hour, minute = (int(x) for x in (sub.at_time or "08:00").split(":"))
    if sub.schedule == "hourly":
        candidate = local.replace(minute=minute, second=0, microsecond=0)
        step = timedelta(hours=1)
    else:
        candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        step = timedelta(days=1)
    while candidate <= local or (sub.schedule == "weekly" and candidate.weekday() != sub.weekday):
        # Step in local wall-clock time so 08:00 stays 08:00 across DST changes.
        naive = candidate.replace(tzinfo=None) + step
        candidate = naive.replace(tzinfo=tz)
    return candidate.astimezone(timezone.utc)


def schedule_next(sub: Subscription, now: datetime) -> None:
    sub.next_run_at = next_run(sub, now)


def due_subscriptions(session: Session, now: datetime, kinds: Sequence[str], force: bool = False) -> list[Subscription]:
    query = select(Subscription).where(Subscription.status == "active", Subscription.kind.in_(kinds))
    subs = list(session.scalars(query.order_by(Subscription.id)))
    if force:
        return subs
    return [s for s in subs if s.next_run_at is None or as_utc(s.next_run_at) <= as_utc(now)]


# -- ledger ------------------------------------------------------------------------------


def open_digest(session: Session, sub: Subscription) -> Digest:
    """The digest to write into: an unfinished one (to resume its thread) or a new one."""
    digest = session.scalar(
        select(Digest)
        .where(Digest.subscription_id == sub.id, Digest.status == "open")
        .order_by(Digest.id.desc())
        .limit(1)
    )
    if digest is None:
        digest = Digest(subscription_id=sub.id, status="open", items=0)
        session.add(digest)
        session.flush()
    return digest


def record_delivery(
    db: Database,
    subscription_id: int,
    preprint_id: int,
    digest_id: int | None,
    score: float,
    message_ts: str | None = None,
) -> bool:
    """Write one ledger row in its own transaction; False if it was already there."""
    try:
        with db.session() as session:
            session.add(
                Delivery(
                    subscription_id=subscription_id,
                    preprint_id=preprint_id,
                    digest_id=digest_id,
                    score=score,
                    message_ts=message_ts,
                )
            )
            if digest_id is not None:
                digest = session.get(Digest, digest_id)
                digest.items += 1
    except IntegrityError:
        return False
    return True


def already_delivered(session: Session, subscription_id: int, preprint_id: int) -> bool:
    return (
        session.scalar(
            select(Delivery.id).where(Delivery.subscription_id == subscription_id, Delivery.preprint_id == preprint_id)
        )
        is not None
    )


def finish_digest(db: Database, digest_id: int, subscription_id: int, now: datetime, error: str | None = None) -> None:
    """Close a digest and move its subscription to the next scheduled run."""
    with db.session() as session:
        digest = session.get(Digest, digest_id)
        digest.status = "failed" if error else "done"
        digest.error = error
        digest.finished_at = utcnow()
        if error is None:
            sub = session.get(Subscription, subscription_id)
            sub.last_run_at = now
            schedule_next(sub, now)


def resume_later(db: Database, subscription_id: int, digest_id: int | None, now: datetime) -> datetime:
    """Move an interrupted digest's next try away, doubling the wait as the outage lasts: it
    waits as long as it has been open (at least RESUME_MIN, at most RESUME_MAX), so a
    channel whose posts fail for an hour is tried a handful of times, not once a minute."""
    with db.session() as session:
        digest = session.get(Digest, digest_id) if digest_id is not None else None
        started = as_utc(digest.started_at) if digest is not None else now
        wait = min(max(as_utc(now) - started, RESUME_MIN), RESUME_MAX)
        sub = session.get(Subscription, subscription_id)
        sub.next_run_at = as_utc(now) + wait
        return sub.next_run_at


# -- one sender at a time ----------------------------------------------------------------

DEFAULT_LEASE = timedelta(minutes=5)


class ClaimLost(Exception):
    """Another sender took the subscription over: this one's lease ran out mid-digest."""


def _sender_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Claims:
    """Who may send a subscription's digest right now.

    A claim is one conditional UPDATE of the subscription row, so it is atomic on SQLite
    and PostgreSQL alike: of two senders (the clock, `scout digests run`, a second clock
    by mistake) exactly one gets it, before anything is posted. It is a lease, renewed
    while the digest goes out and released at the end; a sender killed mid-way leaves a
    lease that the next run takes over once it has expired.
    """

    db: Database
    lease: timedelta = DEFAULT_LEASE
    owner: str = field(default_factory=_sender_name)

    def take(self, subscription_id: int, due_by: datetime | None) -> bool:
        """Claim one subscription; `due_by` also requires it to be due by then (a sender that
        finished it a moment ago has moved it to its next run)."""
        now = utcnow()
        conditions = [
            Subscription.id == subscription_id,
            Subscription.status == "active",
            or_(
                Subscription.claim_expires_at.is_(None),
                Subscription.claim_expires_at < now,
                Subscription.claimed_by == self.owner,
            ),
        ]
        if due_by is not None:
            due_by = as_utc(due_by).astimezone(timezone.utc)  # SQLite compares the stored UTC text
            conditions.append(or_(Subscription.next_run_at.is_(None), Subscription.next_run_at <= due_by))
        return self._update(conditions, claimed_by=self.owner, claim_expires_at=now + self.lease)

    def renew(self, subscription_id: int) -> None:
        """Extend the lease before the next message; ClaimLost if another sender has it now."""
        mine = [Subscription.id == subscription_id, Subscription.claimed_by == self.owner]
        if not self._update(mine, claim_expires_at=utcnow() + self.lease):
            raise ClaimLost(f"another sender took over subscription {subscription_id}")

    def release(self, subscription_id: int) -> None:
        mine = [Subscription.id == subscription_id, Subscription.claimed_by == self.owner]
        self._update(mine, claimed_by=None, claim_expires_at=None)

    def _update(self, conditions: list, **values: object) -> bool:
        with self.db.session() as session:
            result = session.execute(
                update(Subscription).where(*conditions).values(**values).execution_options(synchronize_session=False)
            )
            return result.rowcount == 1


# -- running -----------------------------------------------------------------------------


@dataclass
class DigestOutcome:
    subscription_id: int
    target: str  # "#C123 (T1)" or an address
    profile: str
    sent: int = 0
    planned: int = 0
    skipped: bool = False  # nothing above threshold and an empty digest not wanted
    error: str | None = None
    paused: bool = False
    busy: bool = False  # another sender holds this digest; it is theirs to send


class Deliverer(Protocol):
    """Sends the due digests of one kind ("slack", "email"). The subscriptions handed to
    `run` are claimed for it (`claims`, None on a dry run); a long digest renews its claim
    between messages."""

    kind: str

    def run(
        self, subscription_ids: list[int], now: datetime, dry_run: bool, claims: Claims | None = None
    ) -> list[DigestOutcome]: ...


def run_due_digests(
    db: Database,
    deliverers: Sequence[Deliverer],
    now: datetime | None = None,
    *,
    force: bool = False,
    dry_run: bool = False,
    stop: Callable[[], bool] | None = None,
    claims: Claims | None = None,
) -> list[DigestOutcome]:
    """Every due digest, kind by kind and recipient by recipient; one deliverer failing
    never stops the others. Each subscription is claimed before its deliverer sees it, so
    overlapping runs never send one digest twice: a run that finds it claimed reports it
    busy and moves on. `stop()` is asked between recipients, so a clock told to shut down
    finishes the digest in hand and leaves the rest to the next run."""
    now = now or utcnow()
    claims = claims or Claims(db)
    outcomes: list[DigestOutcome] = []
    for deliverer in deliverers:
        with db.session() as session:
            subs = due_subscriptions(session, now, [deliverer.kind], force=force)
            groups: dict[tuple[str, str, str], list[int]] = {}
            names: dict[int, tuple[str, str]] = {}
            for sub in subs:
                groups.setdefault((sub.team_id, sub.channel_id, sub.email), []).append(sub.id)
                names[sub.id] = (describe_target(sub), sub.profile.name)
        for ids in groups.values():
            if stop is not None and stop():
                return outcomes
            if dry_run:
                outcomes.extend(_run_one(deliverer, ids, now, dry_run, None))
                continue
            mine: list[int] = []
            try:
                mine.extend(i for i in ids if claims.take(i, None if force else now))
                outcomes.extend(DigestOutcome(i, *names[i], busy=True) for i in ids if i not in mine)
                if mine:
                    outcomes.extend(_run_one(deliverer, mine, now, dry_run, claims))
            finally:
                for i in mine:
                    _release(claims, i)
    return outcomes


def _release(claims: Claims, subscription_id: int) -> None:
    try:
        claims.release(subscription_id)
    except Exception:  # the lease runs out by itself; the other claims must still be released
        log.exception("could not release the claim on subscription %s", subscription_id)


def _run_one(
    deliverer: Deliverer, ids: list[int], now: datetime, dry_run: bool, claims: Claims | None
) -> list[DigestOutcome]:
    try:
        return deliverer.run(ids, now, dry_run, claims)
    except Exception as exc:  # a broken deliverer must not stop the next one
        log.exception("%s digests failed", deliverer.kind)
        return [DigestOutcome(ids[0], deliverer.kind, "*", error=str(exc))]


def describe_target(sub: Subscription) -> str:
    """Where a subscription's digest goes: '#C123 (T1)' or an address."""
    return sub.email if sub.kind == "email" else f"#{sub.channel_id} ({sub.team_id})"
