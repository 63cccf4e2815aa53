"""Slack digests: a parent message per subscription and one threaded reply per preprint.

Exactly once: the subscription is claimed before anything is posted (bot.delivery.digests.Claims,
so overlapping senders never both send it); each message carries metadata naming its
digest or preprint, and the ledger row (bot.delivery.digests.record_delivery) is written only
after Slack accepted the reply. When Slack's answer is lost after it may have acted (a
5xx, a timeout, a kill mid-call) the message is looked for before it is sent again: a
reply in its thread (conversations.replies), a parent in the channel's history since the
moment it was sent (conversations.history). A run killed halfway leaves the Digest row
open; the next run re-uses that thread, first reading it back so a reply Slack accepted
just before the crash is recorded instead of sent again. Where a thread cannot be read
(a public channel the app posts to without being a member), the ledger alone decides.

Errors that heal (429, 5xx, timeouts) are retried; if they persist the digest stays
open for the next run. Errors that will not heal (client.PERMANENT) on a post pause the
subscription and tell its creator by DM; on a read they only mean "cannot check".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import or_, select

from bot.config import Settings
from bot.db import Database, Digest, Subscription, as_utc, utcnow
from bot.delivery.digests import (
    ClaimLost,
    Claims,
    DigestOutcome,
    DigestPlan,
    describe_target,
    finish_digest,
    open_digest,
    plan_digest,
    record_delivery,
    resume_later,
    schedule_next,
)
from bot.delivery.digests import already_delivered as in_ledger
from bot.delivery.slack import blocks
from bot.delivery.slack.client import PERMANENT, SERVER_RETRIES, make_client
from bot.delivery.slack.oauth import TokenSource
from bot.delivery.subscriptions import pause
from bot.scores.update import ScoringContext
from bot.web.access import WebLinks

log = logging.getLogger(__name__)

ITEM_EVENT = "scout_preprint"
PARENT_EVENT = "scout_digest"


class PermanentError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def headline(profile: str, count: int, plan: DigestPlan) -> str:
    """'Neural Networks: 4 new preprints in the top 1%'."""
    noun = "preprint" if count == 1 else "preprints"
    return f"{profile}: {count} new {noun} {plan.threshold.headline()}"


class SlackDeliverer:
    """bot.delivery.digests.Deliverer for kind "slack"."""

    kind = "slack"

    def __init__(
        self,
        settings: Settings,
        db: Database,
        ctx: ScoringContext | None,
        tokens: TokenSource | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.db = db
        self.ctx = ctx
        self.tokens = tokens or TokenSource(settings, db)
        self._sleep = sleep
        self._last_post: dict[str, float] = {}

    def run(
        self, subscription_ids: list[int], now: datetime, dry_run: bool, claims: Claims | None = None
    ) -> list[DigestOutcome]:
        outcomes = []
        for sid in subscription_ids:
            try:
                outcomes.append(self.deliver(sid, now, dry_run, claims))
            except Exception as exc:  # one broken subscription never stops the others
                log.exception("slack digest for subscription %s failed", sid)
                outcomes.append(DigestOutcome(sid, "?", "?", error=str(exc)))
        return outcomes

    # -- one subscription ----------------------------------------------------------------

    def deliver(
        self, subscription_id: int, now: datetime, dry_run: bool = False, claims: Claims | None = None
    ) -> DigestOutcome:
        with self.db.session() as session:
            sub = session.get(Subscription, subscription_id)
            plan = plan_digest(session, self.ctx, sub, now, self.settings.window_days)
            team, channel, creator = sub.team_id, sub.channel_id, sub.created_by
            send_empty = sub.send_empty
            profile_id = sub.profile_id
            outcome = DigestOutcome(subscription_id, describe_target(sub), plan.profile, planned=len(plan.items))
            resuming = (
                session.scalar(
                    select(Digest.id).where(
                        Digest.subscription_id == subscription_id,
                        Digest.status == "open",
                        or_(Digest.parent_ts.is_not(None), Digest.parent_sent_at.is_not(None)),
                    )
                )
                is not None
            )
        if dry_run:
            return outcome
        if plan.empty and not send_empty and not resuming:
            outcome.skipped = True
            with self.db.session() as session:
                sub = session.get(Subscription, subscription_id)
                sub.last_run_at = now
                schedule_next(sub, now)
            return outcome

        token = self.tokens.bot_token(team)
        if not token:
            self._pause(subscription_id, "no_installation", None, creator)
            outcome.error, outcome.paused = "the app is not installed in this workspace", True
            return outcome
        slack = _Clients(make_client(self.settings, token), make_client(self.settings, token, posting=True))
        keep = (lambda: claims.renew(subscription_id)) if claims else (lambda: None)

        digest_id = None
        try:
            keep()  # a sender whose claim lapsed must not open a digest beside the new owner's
            with self.db.session() as session:
                sub = session.get(Subscription, subscription_id)
                digest = open_digest(session, sub)
                digest_id, parent_ts, parent_sent_at = digest.id, digest.parent_ts, digest.parent_sent_at
                channel = digest.channel_id or channel
            items = list(zip(plan.items, plan.preprint_ids, strict=True))
            if not parent_ts and parent_sent_at is not None:
                # An earlier run sent the parent and never heard back: find it before posting another.
                parent_ts = self._find_parent(slack.reader, channel, subscription_id, digest_id, parent_sent_at)
                if parent_ts:
                    self._adopt_parent(digest_id, parent_ts, channel)
            if parent_ts:
                items = self._reconcile(slack.reader, channel, parent_ts, subscription_id, digest_id, items)
                self._update_parent(slack.reader, channel, parent_ts, plan, self._count(digest_id) + len(items))
            else:
                parent_ts = self._post_parent(slack, channel, plan, len(items), subscription_id, digest_id, keep)
            for item, preprint_id in items:
                with self.db.session() as session:
                    if in_ledger(session, subscription_id, preprint_id):
                        continue
                ts = self._post_item(slack, channel, parent_ts, item, preprint_id, subscription_id, profile_id, keep)
                if record_delivery(self.db, subscription_id, preprint_id, digest_id, item.score, ts):
                    outcome.sent += 1
        except ClaimLost:
            log.warning("digest %s for subscription %s: another sender took over", digest_id, subscription_id)
            outcome.busy = True
            return outcome
        except PermanentError as exc:
            finish_digest(self.db, digest_id, subscription_id, now, error=exc.error)
            self._pause(subscription_id, exc.error, slack.reader, creator)
            outcome.error, outcome.paused = exc.error, True
            return outcome
        except (SlackApiError, SlackClientError, OSError) as exc:
            # Healing errors that outlasted the retries: the digest stays open and the next
            # run resumes this thread.
            outcome.error = f"will resume: {_error_text(exc)}"
            retry_at = resume_later(self.db, subscription_id, digest_id, now)
            log.warning(
                "digest %s for subscription %s interrupted: %s; next try at %s",
                digest_id,
                subscription_id,
                outcome.error,
                retry_at,
            )
            return outcome
        finish_digest(self.db, digest_id, subscription_id, now)
        return outcome

    def _count(self, digest_id: int) -> int:
        with self.db.session() as session:
            return session.get(Digest, digest_id).items

    # -- Slack calls ---------------------------------------------------------------------

    def _call(self, channel: str, fn: Callable[[], dict]) -> dict:
        """One Web API call, paced per channel; a permanent error becomes PermanentError."""
        wait = self._last_post.get(channel, 0.0) + self.settings.slack_post_interval - time.monotonic()
        if wait > 0:
            self._sleep(wait)
        try:
            return fn()
        except SlackApiError as exc:
            error = exc.response.get("error", "") if exc.response is not None else ""
            if error in PERMANENT:
                raise PermanentError(error) from None
            raise
        finally:
            self._last_post[channel] = time.monotonic()

    def _post_parent(
        self,
        slack: _Clients,
        channel: str,
        plan: DigestPlan,
        count: int,
        subscription_id: int,
        digest_id: int,
        keep: Callable[[], None],
    ) -> str:
        title = headline(plan.profile, count, plan)
        message = blocks.message("digest_parent", plan=plan, headline=title, count=count, links=WebLinks(self.settings))
        metadata = {
            "event_type": PARENT_EVENT,
            "event_payload": {"subscription_id": subscription_id, "digest_id": digest_id},
        }
        with self.db.session() as session:
            sent_at = utcnow()
            session.get(Digest, digest_id).parent_sent_at = sent_at  # written before Slack can act on it

        def find() -> tuple[str, str] | None:
            ts = self._find_parent(slack.reader, channel, subscription_id, digest_id, sent_at)
            return (ts, channel) if ts else None

        ts, answered_channel = self._post_reconciled(slack.poster, channel, message, find, keep, metadata=metadata)
        self._adopt_parent(digest_id, ts, answered_channel)
        return ts

    def _adopt_parent(self, digest_id: int, ts: str, channel: str) -> None:
        with self.db.session() as session:
            digest = session.get(Digest, digest_id)
            digest.parent_ts, digest.channel_id = ts, channel

    def _update_parent(self, client: WebClient, channel: str, ts: str, plan: DigestPlan, total: int) -> None:
        """A resumed digest may hold more (or fewer) items than its header first said."""
        title = headline(plan.profile, total, plan)
        message = blocks.message("digest_parent", plan=plan, headline=title, count=total, links=WebLinks(self.settings))
        try:
            self._call(channel, lambda: client.chat_update(channel=channel, ts=ts, **message))
        except PermanentError as exc:  # the next post decides whether the channel is gone
            log.info("could not update digest header %s: %s", ts, exc.error)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.info("could not update digest header %s: %s", ts, _error_text(exc))

    def _post_item(
        self,
        slack: _Clients,
        channel: str,
        parent_ts: str,
        item,
        preprint_id: int,
        subscription_id: int,
        profile_id: int,
        keep: Callable[[], None],
    ) -> str:
        context = {
            "item": item,
            "preprint_id": preprint_id,
            "vote": f"{profile_id}:{preprint_id}",
            "links": WebLinks(self.settings),
        }
        message = blocks.message("digest_item", **context)
        metadata = {
            "event_type": ITEM_EVENT,
            "event_payload": {"subscription_id": subscription_id, "preprint_id": preprint_id},
        }

        def find() -> tuple[str, str] | None:
            posted = self._thread_items(slack.reader, channel, parent_ts, subscription_id)
            if posted is None:
                log.warning("cannot read thread %s to check preprint %s; sending it again", parent_ts, preprint_id)
                return None
            return (posted[preprint_id], channel) if preprint_id in posted else None

        ts, _ = self._post_reconciled(
            slack.poster, channel, message, find, keep, metadata=metadata, thread_ts=parent_ts
        )
        return ts

    def _post_reconciled(
        self,
        client: WebClient,
        channel: str,
        message: dict,
        find: Callable[[], tuple[str, str] | None],
        keep: Callable[[], None],
        **extra,
    ) -> tuple[str, str]:
        """(ts, channel) of a message Slack holds. When the answer is lost or ambiguous (a
        5xx, a timeout, a dropped connection: Slack may have posted it), look for the
        message before posting it again; `find` reads it back by its metadata. The claim is
        renewed before every attempt, so a slow Slack cannot outlast it unnoticed."""
        attempts = SERVER_RETRIES + 1
        for attempt in range(attempts):
            keep()
            try:
                response = self._post(client, channel, message, **extra)
                return response["ts"], response.get("channel") or channel
            except PermanentError:
                raise
            except (SlackApiError, SlackClientError, OSError) as exc:
                if not _ambiguous(exc):
                    raise
                # Slack may still be finishing a post it took: wait before looking for it.
                self._sleep(self.settings.slack_retry_backoff * 2**attempt)
                log.info("Slack's answer was lost (%s); checking whether it posted", _error_text(exc))
                if found := find():
                    return found
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, client: WebClient, channel: str, message: dict, **extra) -> dict:
        """chat.postMessage without link previews; blocks Slack refuses fall back to the text."""

        def post(payload: dict) -> dict:
            return self._call(
                channel,
                lambda: client.chat_postMessage(
                    channel=channel, unfurl_links=False, unfurl_media=False, **extra, **payload
                ),
            )

        try:
            return post(message)
        except SlackApiError as exc:
            if exc.response is None or exc.response.get("error") != "invalid_blocks":
                raise
            # A restyled template Slack refuses: still deliver, as text.
            log.warning("Slack refused a digest message's blocks (%s); sending text", exc.response.get("errors"))
            return post({"text": message["text"]})

    # -- reading back --------------------------------------------------------------------

    def _reconcile(
        self, client: WebClient, channel: str, parent_ts: str, subscription_id: int, digest_id: int, items: list
    ) -> list:
        """Record replies Slack accepted before a crash; return the items still to send.
        Where the thread cannot be read, the ledger alone decides."""
        posted = self._thread_items(client, channel, parent_ts, subscription_id) or {}
        left = []
        for item, preprint_id in items:
            if preprint_id in posted:
                record_delivery(self.db, subscription_id, preprint_id, digest_id, item.score, posted[preprint_id])
            else:
                left.append((item, preprint_id))
        return left

    def _thread_items(
        self, client: WebClient, channel: str, parent_ts: str, subscription_id: int
    ) -> dict[int, str] | None:
        """{preprint id: reply ts} of this subscription's replies in a thread; None when the
        thread cannot be read (no history scope, a public channel the app posts to without
        being a member: not_in_channel, missing_scope), which is no reason to pause."""
        messages = self._read(client.conversations_replies, channel=channel, ts=parent_ts)
        if messages is None:
            return None
        posted: dict[int, str] = {}
        for msg in messages:
            payload = _payload(msg, ITEM_EVENT)
            if payload.get("subscription_id") == subscription_id and "preprint_id" in payload:
                posted[int(payload["preprint_id"])] = msg["ts"]
        return posted

    def _find_parent(
        self, client: WebClient, channel: str, subscription_id: int, digest_id: int, since: datetime
    ) -> str | None:
        """The ts of this digest's parent message if Slack holds it (posted since `since`)."""
        oldest = f"{as_utc(since).timestamp() - PARENT_CLOCK_SKEW:.6f}"
        for msg in self._read(client.conversations_history, channel=channel, oldest=oldest) or []:
            payload = _payload(msg, PARENT_EVENT)
            if payload.get("digest_id") == digest_id and payload.get("subscription_id") == subscription_id:
                return msg["ts"]
        return None

    def _read(self, method: Callable[..., dict], **args) -> list[dict] | None:
        """Every message a paged conversations.* read returns; None when Slack will not say."""
        messages: list[dict] = []
        cursor = None
        try:
            while True:
                response = method(include_all_metadata=True, limit=200, cursor=cursor, **args)
                messages.extend(response.get("messages", []))
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return messages
        except SlackApiError as exc:
            error = exc.response.get("error", "") if exc.response is not None else ""
            if error not in UNREADABLE:
                raise  # a 5xx or a rate limit that outlasted the retries: resume later, do not guess
            log.info("cannot read back %s (%s); the ledger decides", args.get("channel"), error)
            return None

    # -- pausing -------------------------------------------------------------------------

    def _pause(self, subscription_id: int, error: str, client: WebClient | None, creator: str) -> None:
        reason = REASONS.get(error, error)
        with self.db.session() as session:
            sub = session.get(Subscription, subscription_id)
            pause(session, sub, reason)
            channel, profile = sub.channel_id, sub.profile.name
        log.warning("paused subscription %s: %s", subscription_id, reason)
        if client is None or not creator.startswith(("U", "W")):
            return
        text = (
            f":pause_button: Your Preprint Scout digest of *{blocks.escape(profile)}* for <#{channel}> is paused: "
            f"{blocks.escape(reason)}. Fix that, then run `/scout subscribe {blocks.escape(profile)}` in the channel "
            "to resume."
        )
        try:
            dm = client.conversations_open(users=creator)
            client.chat_postMessage(channel=dm["channel"]["id"], text=text, unfurl_links=False)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not tell %s that subscription %s is paused: %s", creator, subscription_id, exc)


REASONS = {
    "channel_not_found": "the channel no longer exists (or the app cannot see it)",
    "not_in_channel": "the app is not a member of the channel; invite it",
    "is_archived": "the channel is archived",
    "channel_is_archived": "the channel is archived",
    "token_revoked": "the app's token was revoked",
    "account_inactive": "the app's account is inactive",
    "invalid_auth": "the app's token is not valid",
    "no_installation": "the app is not installed in this workspace",
    "restricted_action": "the workspace does not let the app post in this channel",
    "restricted_action_read_only_channel": "the channel is read-only for the app",
    "restricted_action_thread_only_channel": "the channel takes only replies in threads",
    "restricted_action_non_threadable_channel": "the channel does not allow threads",
}


# Reads the app may never be allowed (a public channel it posts to without being a member,
# an install without the history scopes): the ledger decides, and nothing is paused.
UNREADABLE = frozenset({"not_in_channel", "missing_scope", "channel_not_found", "thread_not_found"})
# Slack's own errors after which a message may or may not have been posted.
AMBIGUOUS = frozenset({"internal_error", "fatal_error", "request_timeout", "service_unavailable"})
# Slack's clock and ours may differ a little; look a bit further back for a lost parent.
PARENT_CLOCK_SKEW = 60.0


@dataclass(frozen=True)
class _Clients:
    """Reads and updates retry anything that heals; posts retry only what Slack refused
    outright (429), because a post retried blindly after a lost answer is a duplicate."""

    reader: WebClient
    poster: WebClient


def _ambiguous(exc: Exception) -> bool:
    """Slack may have acted before this went wrong."""
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return exc.response.status_code >= 500 or exc.response.get("error") in AMBIGUOUS
    return True  # a timeout or a dropped connection: the request may have arrived


def _payload(message: dict, event_type: str) -> dict:
    meta = message.get("metadata") or {}
    return (meta.get("event_payload") or {}) if meta.get("event_type") == event_type else {}


def _error_text(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or exc.response.status_code)
    return str(exc) or type(exc).__name__
