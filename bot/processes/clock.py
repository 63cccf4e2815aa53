"""The `clock` process: APScheduler jobs for polling, scoring, digests and housekeeping.

Several clocks may run (a deploy overlap, a standby); only the one holding the
leadership acts. On PostgreSQL leadership is a session advisory lock, released by the
server the moment the holder's connection dies; on SQLite it is a lease row renewed by
a heartbeat and taken over once it expires. Either way a standby takes over within
`LEASE_SECONDS`, and the delivery ledger keeps digests exactly-once across a handover.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import delete, text, update
from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.db import ClockLease, Database, Preprint, utcnow
from bot.delivery.digests import Claims, DigestOutcome, run_due_digests
from bot.ingest.polling import PollReport, due_feed_ids, poll_all
from bot.scores.embeddings import forget_unused_vectors
from bot.scores.progress import logged_steps
from bot.scores.update import ScoreReport, ScoringContext, forget_old_runs, update_scores

log = logging.getLogger(__name__)

LEASE_NAME = "clock"
LEASE_SECONDS = 45
# Keyed by schema too, so two deployments sharing one PostgreSQL database (or parallel
# test runs, each in its own schema) never block each other's clock.
ADVISORY_KEY_SQL = "hashtext('preprint-scout-clock:' || current_schema())"


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership:
    """Try to be (or stay) the active clock; cheap enough to call before every job."""

    def __init__(self, db: Database, holder: str | None = None, lease_seconds: int = LEASE_SECONDS) -> None:
        self.db = db
        self.holder = holder or holder_id()
        self.lease = timedelta(seconds=lease_seconds)
        self._pg = db.engine.dialect.name == "postgresql"
        self._conn = None
        self._lock = threading.Lock()

    def acquire(self, now: datetime | None = None) -> bool:
        with self._lock:
            now = now or utcnow()
            held = self._acquire_advisory() if self._pg else self._acquire_lease(now)
            if held:
                self._record(now)
            return held

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text(f"SELECT pg_advisory_unlock({ADVISORY_KEY_SQL})"))
                    self._conn.close()
                except Exception:  # the connection may already be gone; the lock went with it
                    log.debug("advisory unlock failed", exc_info=True)
                self._conn = None
            with self.db.session() as session:
                session.execute(
                    delete(ClockLease).where(ClockLease.name == LEASE_NAME, ClockLease.holder == self.holder)
                )

    def _acquire_advisory(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("lost the database connection holding the clock lock")
                self._conn = None
        conn = self.db.engine.connect()
        got = conn.execute(text(f"SELECT pg_try_advisory_lock({ADVISORY_KEY_SQL})")).scalar()
        conn.commit()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def _acquire_lease(self, now: datetime) -> bool:
        expires = now + self.lease
        with self.db.session() as session:
            taken = session.execute(
                update(ClockLease)
                .where(
                    ClockLease.name == LEASE_NAME,
                    (ClockLease.holder == self.holder) | (ClockLease.expires_at < now),
                )
                .values(holder=self.holder, expires_at=expires)
            ).rowcount
            if taken:
                return True
        try:
            with self.db.session() as session:
                session.add(ClockLease(name=LEASE_NAME, holder=self.holder, acquired_at=now, expires_at=expires))
        except IntegrityError:
            return False  # someone else holds an unexpired lease
        return True

    def _record(self, now: datetime) -> None:
        if not self._pg:
            return
        with self.db.session() as session:
            lease = session.get(ClockLease, LEASE_NAME)
            if lease is None:
                session.add(
                    ClockLease(name=LEASE_NAME, holder=self.holder, acquired_at=now, expires_at=now + self.lease)
                )
            else:
                if lease.holder != self.holder:
                    lease.holder, lease.acquired_at = self.holder, now
                lease.expires_at = now + self.lease


@dataclass(frozen=True)
class ActiveClock:
    holder: str
    lease_until: datetime
    next_runs: dict[str, str]


def active_clock(db: Database, now: datetime | None = None) -> ActiveClock | None:
    """The active clock (holder, lease expiry, its jobs' next runs), or None when none runs."""
    now = now or utcnow()
    with db.session() as session:
        lease = session.get(ClockLease, LEASE_NAME)
        if lease is None:
            return None
        expires = lease.expires_at if lease.expires_at.tzinfo else lease.expires_at.replace(tzinfo=now.tzinfo)
        if expires < now:
            return None
        return ActiveClock(lease.holder, expires, dict(lease.next_runs or {}))


def publish_next_runs(db: Database, holder: str, runs: dict[str, datetime | None]) -> None:
    """Record the active clock's upcoming job times for `scout status` (only the holder's row)."""
    times = {name: when.isoformat(timespec="seconds") for name, when in runs.items() if when is not None}
    with db.session() as session:
        lease = session.get(ClockLease, LEASE_NAME)
        if lease is not None and lease.holder == holder:
            lease.next_runs = times


@dataclass
class ClockConfig:
    poll_minutes: int = 30
    poll_check_minutes: int = 5
    poll_jitter_seconds: int = 60
    digest_check_seconds: int = 60
    prune_days: int = 365
    reconcile_days: int = 3


@dataclass
class CycleReport:
    poll: PollReport | None = None
    score: ScoreReport | None = None
    digests: list[DigestOutcome] = field(default_factory=list)


class Cycle:
    """The clock's work, one method per job; each runs alone and never raises."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        ctx: ScoringContext,
        deliverers: Callable[[], Sequence],
        config: ClockConfig | None = None,
        reconcile: Callable[[int], object] | None = None,
        refresh: Callable[[], object] | None = None,
    ) -> None:
        self.settings, self.db, self.ctx = settings, db, ctx
        self.deliverers = deliverers
        self.config = config or ClockConfig()
        self.reconcile_fn = reconcile
        # Set on SIGTERM: jobs in hand finish their current recipient, then return.
        self.stopping = threading.Event()
        self.refresh_fn = refresh

    def poll_and_score(self, now: datetime | None = None, *, all_feeds: bool = False) -> CycleReport:
        now = now or utcnow()
        with self.db.session() as session:
            ids = None if all_feeds else due_feed_ids(session, now, self.config.poll_minutes)
        report = CycleReport()
        if ids != []:
            report.poll = poll_all(self.db, self.settings, feed_ids=ids, progress=logged_steps())
            log.info(
                "polled %d feeds: %d new, %d updated, %d failed",
                len(report.poll.feeds),
                report.poll.new,
                report.poll.updated,
                len(report.poll.failed),
            )
            if report.poll.skipped_for:
                log.info("poll skipped: another poll is running (%s)", report.poll.skipped_for)
            log_feed_problems(report.poll)
        report.score = self.score()
        return report

    def score(self) -> ScoreReport:
        with self.db.session() as session:
            result = update_scores(session, self.ctx)
        if result.scored or result.refitted:
            log.info(
                "scored %d preprints against %d profiles%s",
                result.scored,
                result.profiles,
                " (refitted)" if result.refitted else "",
            )
        return result

    def send_digests(self, now: datetime | None = None, *, force: bool = False) -> list[DigestOutcome]:
        claims = Claims(self.db, self.settings.digest_lease)
        outcomes = run_due_digests(
            self.db, self.deliverers(), now or utcnow(), force=force, stop=self.stopping.is_set, claims=claims
        )
        for o in outcomes:
            if o.busy:
                log.info("digest %s for %s: another sender has it", o.profile, o.target)
            elif o.error:
                log.warning("digest %s for %s: %s", o.profile, o.target, o.error)
            elif not o.skipped:
                log.info("digest %s -> %s: %d sent", o.profile, o.target, o.sent)
        return outcomes

    def reconcile(self) -> None:
        if self.reconcile_fn is not None:
            self.reconcile_fn(self.config.reconcile_days)

    def refresh_profiles(self) -> None:
        """Rebuild API-built profiles from their sources (new papers the journal published)."""
        if self.refresh_fn is not None:
            self.refresh_fn()

    def prune(self, now: datetime | None = None) -> int:
        """Forget preprints posted long before any window anyone looks at, and the vectors
        no stored text or current model uses."""
        cutoff = (now or utcnow()).date() - timedelta(days=self.config.prune_days)
        with self.db.session() as session:
            gone = session.execute(delete(Preprint).where(Preprint.posted < cutoff)).rowcount
        with self.db.session() as session:
            vectors = forget_unused_vectors(session, self.ctx.vectors)
            runs = forget_old_runs(session)
        if gone:
            log.info("pruned %d preprints posted before %s", gone, cutoff)
        if vectors:
            log.info("pruned %d cached vectors no stored text or current model uses", vectors)
        if runs:
            log.info("pruned %d fitted scoring runs no score uses", runs)
        return gone

    def once(self, now: datetime | None = None) -> CycleReport:
        report = self.poll_and_score(now, all_feeds=True)
        report.digests = self.send_digests(now)
        return report


def log_feed_problems(poll: PollReport, most: int = 5) -> None:
    """Each failed feed and each feed's warnings (the first `most`) as log lines: the poll's
    report is the one place they are said, and the clock has no other output."""
    for result in poll.feeds:
        if not result.ok:
            log.warning("feed %s failed: %s", result.feed, result.error)
        for warning in result.warnings[:most]:
            log.warning("feed %s: %s", result.feed, warning)
        if len(result.warnings) > most:
            log.warning("feed %s: %d more warnings", result.feed, len(result.warnings) - most)


def leader_only(leadership: Leadership, name: str, job: Callable[[], object]) -> Callable[[], None]:
    """Run `job` only on the active clock, and never let one failure stop the schedule."""

    def run() -> None:
        try:
            if not leadership.acquire():
                log.debug("standing by: another clock is active (%s skipped)", name)
                return
            job()
        except Exception:
            log.exception("job %s failed; it runs again at its next time", name)

    run.__name__ = name
    return run


def build_scheduler(cycle: Cycle, leadership: Leadership, scheduler: BaseScheduler | None = None) -> BaseScheduler:
    cfg = cycle.config
    scheduler = scheduler or BlockingScheduler(timezone="UTC")
    # coalesce: after downtime, missed runs collapse into one (however late: no grace
    # limit); max_instances=1: a slow job never overlaps itself.
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None, "replace_existing": True}
    jobs = [
        ("poll", cycle.poll_and_score, IntervalTrigger(minutes=cfg.poll_check_minutes, jitter=cfg.poll_jitter_seconds)),
        ("digests", cycle.send_digests, IntervalTrigger(seconds=cfg.digest_check_seconds)),
        ("reconcile", cycle.reconcile, CronTrigger(hour=3, minute=17)),
        ("prune", cycle.prune, CronTrigger(hour=4, minute=43)),
        ("refresh", cycle.refresh_profiles, CronTrigger(day_of_week="sun", hour=5, minute=29)),
    ]
    for name, fn, trigger in jobs:
        # Poll at once on start: a clock that was down has the most catching up to do.
        first = {"next_run_time": datetime.now(UTC)} if name == "poll" else {}
        scheduler.add_job(leader_only(leadership, name, fn), trigger, id=name, name=name, **common, **first)
    # Renew well before the lease runs out, even while a long digest job is running.
    heartbeat = max(1.0, leadership.lease.total_seconds() / 3)
    scheduler.add_job(
        _heartbeat(leadership, scheduler),
        IntervalTrigger(seconds=heartbeat),
        id="heartbeat",
        name="heartbeat",
        **common,
    )
    return scheduler


def quiet_libraries() -> None:
    """Keep the clock's log to what it did: APScheduler logs every job start and end at
    INFO, and Alembic every migration step; their warnings still show."""
    for name in ("apscheduler.executors.default", "apscheduler.scheduler", "alembic", "httpx", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _heartbeat(leadership: Leadership, scheduler: BaseScheduler) -> Callable[[], None]:
    def renew() -> None:
        try:
            if leadership.acquire():
                publish_next_runs(leadership.db, leadership.holder, next_runs(scheduler))
        except Exception as exc:  # a busy database must not kill the schedule; try again soon
            log.warning("could not renew the clock lease: %s", exc)

    return renew


def run_forever(cycle: Cycle, leadership: Leadership) -> None:
    """Block until SIGTERM/SIGINT; the job in progress finishes before the process exits."""
    quiet_libraries()
    scheduler = build_scheduler(cycle, leadership)

    def stop(signum, _frame) -> None:
        log.info("received %s: finishing the digest in hand, then stopping", signal.Signals(signum).name)
        cycle.stopping.set()
        # shutdown(wait=True) from a signal handler would block the handler; do it aside.
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "clock %s starting; %s",
        leadership.holder,
        "active" if leadership.acquire() else "standing by until the active clock stops",
    )
    try:
        scheduler.start()
    finally:
        leadership.release()
        log.info("clock %s stopped", leadership.holder)


def next_runs(scheduler: BaseScheduler) -> dict[str, datetime | None]:
    return {job.id: getattr(job, "next_run_time", None) for job in scheduler.get_jobs()}
