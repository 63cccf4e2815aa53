"""Sending due email digests: one message per address, a ledger written after the server took it."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import make_msgid

from sqlalchemy import select

from bot.config import Settings
from bot.db import Database, Delivery, Digest, Subscription, utcnow
from bot.delivery.digests import Claims, DigestOutcome, open_digest, plan_digest, schedule_next
from bot.delivery.email import KIND
from bot.delivery.email.addresses import domain, require_email_settings, sender
from bot.delivery.email.messages import Section, build_digest_message, section
from bot.delivery.email.smtp import (
    SmtpClient,
    TemporaryMailError,
    Undeliverable,
    smtp_client,
)
from bot.scores.update import ScoringContext
from scoring.text import one_line

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=6)


@dataclass
class _Group:
    email: str
    subs: list[Subscription] = field(default_factory=list)


@dataclass(frozen=True)
class _Batch:
    """One address's message, ready to send."""

    email: str
    sections: list[Section]
    digest_ids: dict[int, int]
    message_id: str

    def outcomes(self, sent: bool) -> list[DigestOutcome]:
        return [
            DigestOutcome(
                s.subscription_id,
                self.email,
                one_line(s.plan.profile),
                sent=len(s.plan.items) if sent else 0,
                planned=len(s.plan.items),
            )
            for s in self.sections
        ]


@dataclass
class _RunState:
    """What one run (one `now`) learnt about the mail server, for its other addresses."""

    now: datetime
    outage: str | None = None  # it failed to answer: the rest of the run waits, untried
    quit_unanswered: bool = False  # it left QUIT unanswered: do not wait for that again


class EmailDeliverer:
    """Sends due email digests: one message per address, grouping every profile it follows.

    run_due_digests calls `run` once per address, all with the same `now`: an outage seen
    by one call (timeout, refused connection, TLS failure) is remembered for that `now`,
    so one outage costs one timeout per run, not one per address, and a run's time on a
    silent server stays about one timeout whatever the number of addresses.
    """

    kind = KIND

    def __init__(self, settings: Settings, db: Database, ctx: ScoringContext | None = None) -> None:
        require_email_settings(settings)
        self.settings = settings
        self.db = db
        self.ctx = ctx
        self._run: _RunState | None = None

    def _state(self, now: datetime) -> _RunState:
        if self._run is None or self._run.now != now:
            self._run = _RunState(now)
        return self._run

    def run(
        self, subscription_ids: list[int], now: datetime, dry_run: bool, claims: Claims | None = None
    ) -> list[DigestOutcome]:
        with self.db.session() as session:
            subs = list(
                session.scalars(
                    select(Subscription)
                    .where(Subscription.id.in_(subscription_ids), Subscription.kind == KIND)
                    .order_by(Subscription.id)
                )
            )
            groups: dict[str, _Group] = {}
            for sub in subs:
                groups.setdefault(sub.email.lower(), _Group(sub.email.lower())).subs.append(sub)
            addresses = list(groups)
        outcomes: list[DigestOutcome] = []
        state = self._state(now)
        client = smtp_client(self.settings)
        if state.quit_unanswered:
            client.quit_wait = 0
        with client:
            for email in addresses:
                ids = [s.id for s in groups[email].subs]
                outcomes.extend(self._deliver(client, state, email, ids, dry_run))
        state.quit_unanswered = state.quit_unanswered or client.quit_unanswered
        return outcomes

    def _deliver(
        self, client: SmtpClient, state: _RunState, email: str, ids: list[int], dry_run: bool
    ) -> list[DigestOutcome]:
        """One address's digest: sent, failed (retried later) or paused; never raises."""
        now = state.now
        try:
            skipped, batch = self._prepare(email, ids, now, dry_run)
        except Exception as exc:  # a bad row must not stop the other addresses
            log.exception("email digest for subscriptions %s failed", ids)
            return self._failed(ids, f"{type(exc).__name__}: {exc}", now, paused=False)
        if batch is None:
            return skipped
        if dry_run:
            return skipped + batch.outcomes(sent=False)
        attempted = [s.subscription_id for s in batch.sections]
        try:
            if state.outage is not None:
                raise TemporaryMailError(state.outage, server_down=True)
            self._send(client, batch, now)
            return skipped + batch.outcomes(sent=True)
        except TemporaryMailError as exc:
            if exc.server_down and state.outage is None:
                state.outage = str(exc)
            # The server may hold the message: the resend keeps its Message-ID.
            carry = batch.message_id if exc.maybe_sent else None
            return skipped + self._failed(attempted, str(exc), now, paused=False, message_id=carry)
        except Undeliverable as exc:  # the address (or this message to it) is no good: all of it pauses
            return skipped + self._failed(ids, str(exc), now, paused=True)
        except Exception as exc:
            log.exception("email digest for subscriptions %s failed", attempted)
            return skipped + self._failed(attempted, f"{type(exc).__name__}: {exc}", now, paused=False)

    def _prepare(
        self, email: str, ids: list[int], now: datetime, dry_run: bool
    ) -> tuple[list[DigestOutcome], _Batch | None]:
        """Plan each subscription of one address; move the empty ones on; open digests for the rest."""
        with self.db.session() as session:
            subs = [session.get(Subscription, i) for i in ids]
            subs = [s for s in subs if s is not None and s.status == "active"]
            plans = [(s, plan_digest(session, self.ctx, s, now, self.settings.window_days)) for s in subs]
            wanted = [(s, p) for s, p in plans if p.items or s.send_empty]
            skipped = [s for s, p in plans if not (p.items or s.send_empty)]
            outcomes = [DigestOutcome(s.id, email, one_line(s.profile.name), skipped=True) for s in skipped]
            if not dry_run:
                for s in skipped:  # nothing to say: on to the next scheduled run
                    s.last_run_at = now
                    schedule_next(s, now)
            if not wanted:
                return outcomes, None
            sections = [section(self.settings, email, s, p) for s, p in wanted]
            if dry_run:
                return outcomes, _Batch(email, sections, {}, "")
            digests = {s.id: open_digest(session, s) for s, _ in wanted}
            message_id = self._message_id(sections, [d.message_id for d in digests.values()])
            for d in digests.values():
                d.message_id = message_id
            session.flush()
            return outcomes, _Batch(email, sections, {sid: d.id for sid, d in digests.items()}, message_id)

    def _message_id(self, sections: list[Section], carried: list[str | None]) -> str:
        """A resend of a message the server may hold keeps its Message-ID, so the receiving
        side can drop the copy; but only with the same matches. A Message-ID names its
        matches (a hash in its local part): if new ones came in since, dropping the copy
        would drop them, so the message is new, and a match it repeats may come twice
        rather than not at all."""
        mark = matches_mark([(s.subscription_id, s.plan.preprint_ids) for s in sections])
        same = next((m for m in carried if m and f".{mark}@" in m), None)
        return same or make_msgid(idstring=mark, domain=domain(sender(self.settings)[1]))

    def _send(self, client: SmtpClient, batch: _Batch, now: datetime) -> None:
        message = build_digest_message(self.settings, batch.email, batch.sections, now, batch.message_id)
        client.send(message, sender(self.settings)[1], batch.email)
        try:
            self._record_sent(batch.sections, batch.digest_ids, now)
        except Exception as exc:  # the server has it: a resend must carry the same Message-ID
            log.exception("the server took the digest for %s, but recording it failed", batch.email)
            raise TemporaryMailError(
                f"the mail server took the message, but recording it failed ({type(exc).__name__}); "
                "the next run resends it with the same Message-ID",
                maybe_sent=True,
            ) from exc

    def _record_sent(self, sections: list[Section], digest_ids: dict[int, int], now: datetime) -> None:
        """The server accepted the message: ledger rows, digests and schedules in one transaction."""
        with self.db.session() as session:
            for section in sections:
                sid = section.subscription_id
                done = set(
                    session.scalars(
                        select(Delivery.preprint_id).where(
                            Delivery.subscription_id == sid, Delivery.preprint_id.in_(section.plan.preprint_ids)
                        )
                    )
                )
                new = 0
                for pid, item in zip(section.plan.preprint_ids, section.plan.items, strict=True):
                    if pid not in done:
                        session.add(
                            Delivery(subscription_id=sid, preprint_id=pid, digest_id=digest_ids[sid], score=item.score)
                        )
                        new += 1
                digest = session.get(Digest, digest_ids[sid])
                digest.items += new
                digest.status, digest.error, digest.finished_at = "done", None, utcnow()
                sub = session.get(Subscription, sid)
                sub.last_run_at = now
                schedule_next(sub, now)

    def _failed(
        self, ids: list[int], error: str, now: datetime, paused: bool, message_id: str | None = None
    ) -> list[DigestOutcome]:
        """Mark the address's digests failed; pause (refused) or back off (temporary).

        With `message_id` (the server may have taken the message) a new open digest keeps
        it, so the resend is the same message to the receiving side."""
        outcomes = []
        with self.db.session() as session:
            for sid in ids:
                sub = session.get(Subscription, sid)
                if sub is None or sub.status != "active":
                    continue
                digest = open_digest(session, sub)
                digest.status, digest.error, digest.finished_at = "failed", error, utcnow()
                if paused:
                    sub.status, sub.status_reason = "paused", error
                else:
                    sub.next_run_at = now + retry_delay(session, sid)
                if message_id is not None and not paused:
                    session.add(Digest(subscription_id=sid, status="open", items=0, message_id=message_id))
                outcomes.append(DigestOutcome(sid, sub.email, one_line(sub.profile.name), error=error, paused=paused))
        return outcomes


def retry_delay(session, subscription_id: int) -> timedelta:
    """Exponential backoff over the failed digests since the last one that went out."""
    statuses = session.scalars(
        select(Digest.status).where(Digest.subscription_id == subscription_id).order_by(Digest.id.desc()).limit(12)
    )
    failures = 0
    for status in statuses:
        if status == "open":  # a resend waiting with a Message-ID the server may have seen
            continue
        if status != "failed":
            break
        failures += 1
    return min(RETRY_BASE * 2 ** max(failures - 1, 0), RETRY_MAX)


def matches_mark(matches: list[tuple[int, list[int]]]) -> str:
    """A short hash of what a digest email holds: (subscription id, preprint ids) per section."""
    content = ";".join(f"{sid}:{','.join(map(str, ids))}" for sid, ids in matches)
    return hashlib.sha256(content.encode()).hexdigest()[:12]


def make_email_deliverer(settings: Settings, db: Database, ctx: ScoringContext | None = None) -> EmailDeliverer | None:
    """The email deliverer, or None when SMTP_URL is not set (email is optional)."""
    if not settings.smtp_url.get_secret_value():
        return None
    return EmailDeliverer(settings, db, ctx)
