"""Slack digests: a parent message per subscription and one threaded reply per preprint.

Exactly once: each reply carries message metadata naming its preprint, and the ledger
row (bot.delivery.digests.record_delivery) is written only after Slack accepted the reply. A
run killed halfway leaves the Digest row open with the parent's ts; the next run
re-uses that thread, first reading it back (conversations.replies) so a reply Slack
accepted just before the crash is recorded instead of sent again.

Errors that heal (429, 5xx, timeouts) are retried by the client; if they persist the
digest stays open for the next run. Errors that will not heal (client.PERMANENT)
pause the subscription and tell its creator by DM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import select

from bot.config import Settings
from bot.db import Database, Digest, Subscription
from bot.delivery.digests import (
    DigestOutcome,
    DigestPlan,
    finish_digest,
    open_digest,
    plan_digest,
    record_delivery,
    schedule_next,
)
from bot.delivery.digests import already_delivered as in_ledger
from bot.scores.update import ScoringContext
from bot.delivery.slack import blocks
from bot.delivery.slack.client import PERMANENT, make_client
from bot.delivery.slack.oauth import TokenSource
from bot.delivery.subscriptions import pause

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

    def run(self, subscription_ids: list[int], now: datetime, dry_run: bool) -> list[DigestOutcome]:
        outcomes = []
        for sid in subscription_ids:
            try:
                outcomes.append(self.deliver(sid, now, dry_run))
            except Exception as exc:  # one broken subscription never stops the others
                log.exception("slack digest for subscription %s failed", sid)
                outcomes.append(DigestOutcome(sid, "?", "?", error=str(exc)))
        return outcomes

    # -- one subscription ----------------------------------------------------------------

    def deliver(self, subscription_id: int, now: datetime, dry_run: bool = False) -> DigestOutcome:
        with self.db.session() as session:
            sub = session.get(Subscription, subscription_id)
            plan = plan_digest(session, self.ctx, sub, now, self.settings.window_days)
            team, channel, creator = sub.team_id, sub.channel_id, sub.created_by
            send_empty = sub.send_empty
            profile_id = sub.profile_id
            outcome = DigestOutcome(subscription_id, f"#{channel} ({team})", plan.profile, planned=len(plan.items))
            resuming = (
                session.scalar(
                    select(Digest.id).where(
                        Digest.subscription_id == subscription_id,
                        Digest.status == "open",
                        Digest.parent_ts.is_not(None),
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
        client = make_client(self.settings, token)

        with self.db.session() as session:
            sub = session.get(Subscription, subscription_id)
            digest = open_digest(session, sub)
            digest_id, parent_ts = digest.id, digest.parent_ts
            channel = digest.channel_id or channel
            earlier = digest.items
        try:
            items = list(zip(plan.items, plan.preprint_ids, strict=True))
            if parent_ts:
                items = self._reconcile(client, channel, parent_ts, subscription_id, digest_id, items)
                total = earlier + len(items)
                self._update_parent(client, channel, parent_ts, plan, total)
            else:
                parent_ts = self._post_parent(client, channel, plan, len(items), digest_id)
            for item, preprint_id in items:
                with self.db.session() as session:
                    if in_ledger(session, subscription_id, preprint_id):
                        continue
                ts = self._post_item(client, channel, parent_ts, item, preprint_id, subscription_id, profile_id)
                if record_delivery(self.db, subscription_id, preprint_id, digest_id, item.score, ts):
                    outcome.sent += 1
        except PermanentError as exc:
            finish_digest(self.db, digest_id, subscription_id, now, error=exc.error)
            self._pause(subscription_id, exc.error, client, creator)
            outcome.error, outcome.paused = exc.error, True
            return outcome
        except (SlackApiError, SlackClientError, OSError) as exc:
            # Healing errors that outlasted the retries: the digest stays open and the next
            # run resumes this thread.
            outcome.error = f"will resume: {_error_text(exc)}"
            log.warning("digest %s for subscription %s interrupted: %s", digest_id, subscription_id, outcome.error)
            return outcome
        finish_digest(self.db, digest_id, subscription_id, now)
        return outcome

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

    def _post_parent(self, client: WebClient, channel: str, plan: DigestPlan, count: int, digest_id: int) -> str:
        title = headline(plan.profile, count, plan)
        message = blocks.message("digest_parent", plan=plan, headline=title, count=count)
        metadata = {"event_type": PARENT_EVENT, "event_payload": {"digest_id": digest_id}}
        response = self._post(client, channel, message, metadata=metadata)
        ts = response["ts"]
        with self.db.session() as session:
            digest = session.get(Digest, digest_id)
            # The channel id Slack answers with (a user id becomes a DM channel id).
            digest.parent_ts, digest.channel_id = ts, response.get("channel") or channel
        return ts

    def _update_parent(self, client: WebClient, channel: str, ts: str, plan: DigestPlan, total: int) -> None:
        """A resumed digest may hold more (or fewer) items than its header first said."""
        title = headline(plan.profile, total, plan)
        message = blocks.message("digest_parent", plan=plan, headline=title, count=total)
        try:
            self._call(channel, lambda: client.chat_update(channel=channel, ts=ts, **message))
        except SlackApiError as exc:
            log.info("could not update digest header %s: %s", ts, _error_text(exc))

    def _post_item(
        self,
        client: WebClient,
        channel: str,
        parent_ts: str,
        item,
        preprint_id: int,
        subscription_id: int,
        profile_id: int,
    ) -> str:
        context = {"item": item, "preprint_id": preprint_id, "vote": f"{profile_id}:{preprint_id}"}
        message = blocks.message("digest_item", **context)
        metadata = {
            "event_type": ITEM_EVENT,
            "event_payload": {"subscription_id": subscription_id, "preprint_id": preprint_id},
        }

        return self._post(client, channel, message, metadata=metadata, thread_ts=parent_ts)["ts"]

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

    def _reconcile(
        self, client: WebClient, channel: str, parent_ts: str, subscription_id: int, digest_id: int, items: list
    ) -> list:
        """Record replies Slack accepted before a crash; return the items still to send."""
        posted: dict[int, str] = {}
        cursor = None
        try:
            while True:
                response = self._call(
                    channel,
                    lambda c=cursor: client.conversations_replies(
                        channel=channel, ts=parent_ts, include_all_metadata=True, limit=200, cursor=c
                    ),
                )
                for msg in response.get("messages", []):
                    meta = msg.get("metadata") or {}
                    payload = meta.get("event_payload") or {}
                    if meta.get("event_type") == ITEM_EVENT and payload.get("subscription_id") == subscription_id:
                        posted[int(payload["preprint_id"])] = msg["ts"]
                cursor = (response.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except PermanentError:
            raise
        except SlackApiError as exc:
            # Without channels:history the ledger alone decides; say so once.
            log.info("cannot read back thread %s (%s); resuming from the ledger", parent_ts, _error_text(exc))
        left = []
        for item, preprint_id in items:
            if preprint_id in posted:
                record_delivery(self.db, subscription_id, preprint_id, digest_id, item.score, posted[preprint_id])
            else:
                left.append((item, preprint_id))
        return left

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
}


def _error_text(exc: Exception) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or exc.response.status_code)
    return str(exc) or type(exc).__name__
