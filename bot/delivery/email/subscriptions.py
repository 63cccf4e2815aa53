"""Subscriptions by address: double opt-in, Slack users' own addresses, confirm and unsubscribe links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.config import Settings
from bot.db import Database, Preprint, Subscription, utcnow
from bot.delivery.digests import schedule_next
from bot.delivery.email import KIND
from bot.delivery.email.addresses import normalise_address, require_email_settings, sender
from bot.delivery.email.messages import build_confirm_message
from bot.delivery.email.smtp import (
    MailError,
    smtp_client,
)
from bot.delivery.email.tokens import CONFIRM, MAX_AGE, UNSUBSCRIBE, VOTE, LinkToken, TokenError, read_token
from bot.delivery.subscriptions import Options, Target, describe, subscribe, subscriptions_for
from bot.fulltext import Narrowing
from bot.profiles.catalog import EVERY, Scope, workspace_scope
from bot.profiles.votes import FROM_EMAIL, Voter, record_vote
from scoring.errors import InputError
from scoring.text import one_line


@dataclass(frozen=True)
class EmailSubscription:
    subscription_id: int
    email: str
    profile: str
    description: str
    status: str  # "active" | "pending"
    created: bool
    confirmation_sent: bool

    @property
    def message(self) -> str:
        if self.status == "pending":
            return (
                f"confirmation sent to {self.email}: the digest ({self.description}) starts once the link in it "
                f"is clicked (valid {MAX_AGE[CONFIRM].days} days)"
            )
        return f"{self.email} {'now follows' if self.created else 'follows'} {self.description}"


def subscribe_email(
    db: Database,
    settings: Settings,
    address: str,
    profile: str,
    options: Options,
    *,
    created_by: str = "cli",
    verified: bool = False,
    now: datetime | None = None,
    scope: Scope = EVERY,
) -> EmailSubscription:
    """Follow a profile by email. An address typed by a person (verified=False) gets a
    confirmation email and nothing else until the signed link in it is followed."""
    require_email_settings(settings)
    now = now or utcnow()
    email = normalise_address(address)
    with db.session() as session:
        sub, created = subscribe(
            session,
            Target(KIND, email=email),
            profile,
            options,
            created_by=created_by,
            status="active" if verified else "pending",
            now=now,
            scope=scope,
        )
        if verified and sub.status == "pending":
            sub.status = "active"
        if sub.status == "active" and sub.confirmed_at is None:
            sub.confirmed_at = now
        result = dict(
            subscription_id=sub.id, email=email, profile=sub.profile.name, description=describe(sub), status=sub.status
        )
        message = build_confirm_message(settings, sub, now) if sub.status == "pending" else None
    sent = False
    if message is not None:
        with smtp_client(settings) as client:
            try:
                client.send(message, sender(settings)[1], email)
            except MailError as exc:
                raise MailError(
                    f"could not send the confirmation email to {email}: {exc}. The subscription waits, unconfirmed; "
                    "run the same command again to resend it"
                ) from None
        sent = True
    return EmailSubscription(**result, created=created, confirmation_sent=sent)


def subscribe_email_from_slack(
    db: Database,
    settings: Settings,
    *,
    email: str,
    profile: str,
    schedule: str = "daily",
    threshold: str | None = None,
    narrowing: Narrowing | None = None,
    user_id: str = "",
    team_id: str = "",
    now: datetime | None = None,
) -> str:
    """`/scout email PROFILE [daily|weekly] [threshold] [kw:... cat:...]` for a Slack user, to their own address.

    `email` is the user's `profile.email` from users.info: Slack verified it, so there is no
    confirmation round trip. Returns the reply for Slack; raises SettingsError, ProfileError,
    ThresholdError, ScheduleError or ValueError with a message to show as is.
    """
    if not email:
        raise InputError(
            "your Slack profile has no email address Scout can read (the app needs the users:read.email scope)"
        )
    result = subscribe_email(
        db,
        settings,
        email,
        profile,
        Options(threshold=threshold, schedule=schedule, narrowing=narrowing or Narrowing()),
        created_by=f"slack:{team_id}:{user_id}" if team_id else f"slack:{user_id}",
        verified=True,
        now=now,
        scope=workspace_scope(team_id),
    )
    return f"Email digest for {result.email}: {result.description}. Every email has a one-click unsubscribe link."


def email_subscriptions(session, address: str | None = None) -> list[Subscription]:
    """Email subscriptions (all, or one address's), not counting ended ones."""
    if address is not None:
        return subscriptions_for(session, Target(KIND, email=normalise_address(address)))
    query = select(Subscription).where(Subscription.kind == KIND, Subscription.status != "unsubscribed")
    return list(session.scalars(query.order_by(Subscription.email, Subscription.id)))


# -- links: confirm and unsubscribe ------------------------------------------------------


@dataclass(frozen=True)
class LinkResult:
    email: str
    profiles: list[str]
    state: str  # confirm: ask | confirmed | already | ended; unsubscribe: ask | done | already


def _token_subs(session, data: LinkToken) -> tuple[str, list[Subscription]]:
    subs = [session.get(Subscription, i) for i in data.subscription_ids]
    subs = [s for s in subs if s is not None and s.kind == KIND and s.email.lower() == data.email]
    if not subs:
        raise TokenError("this link points to a subscription that no longer exists")
    return data.email, subs


def _profiles(subs: list[Subscription]) -> list[str]:
    return [one_line(s.profile.name) for s in subs]


@dataclass(frozen=True)
class VoteResult:
    email: str
    profile: str
    title: str
    relevant: bool
    state: str  # ask | noted | already


def vote_by_token(db: Database, settings: Settings, token: str | None, *, apply: bool) -> VoteResult:
    """What a vote link says (apply=False, for the GET page: a link scanner's GET must not
    vote) or record it (apply=True, the page's POST) as this address's vote on the match."""
    with db.session() as session:
        data = read_token(settings, VOTE, token)
        email, subs = _token_subs(session, data)
        sub, preprint = subs[0], session.get(Preprint, data.preprint_id)
        if preprint is None:
            raise TokenError("this link points to a preprint that is no longer stored")
        relevant = bool(data.relevant)
        state = "ask"
        if apply:
            changed = record_vote(session, sub.profile_id, preprint.id, Voter(FROM_EMAIL, email), relevant)
            state = "noted" if changed else "already"
        return VoteResult(email, one_line(sub.profile.name), one_line(preprint.title), relevant, state)


def confirm_by_token(
    db: Database, settings: Settings, token: str | None, now: datetime | None = None, *, apply: bool
) -> LinkResult:
    """What a confirmation link covers (apply=False, for the GET page: a link scanner's GET
    or HEAD must not subscribe anyone) or confirm it (apply=True, the page's POST)."""
    now = now or utcnow()
    with db.session() as session:
        email, subs = _token_subs(session, read_token(settings, CONFIRM, token))
        states = set()
        for sub in subs:
            if sub.status == "pending":
                if apply:
                    sub.status, sub.status_reason, sub.confirmed_at = "active", None, now
                    schedule_next(sub, now)
                states.add("confirmed" if apply else "ask")
            else:
                states.add("already" if sub.status == "active" else "ended")
        state = next(s for s in ("confirmed", "ask", "already", "ended") if s in states)
        return LinkResult(email, _profiles(subs), state)


def unsubscribe_by_token(db: Database, settings: Settings, token: str | None, *, apply: bool) -> LinkResult:
    """What a one-click link covers (apply=False, for the GET page) or end it (apply=True, POST)."""
    with db.session() as session:
        email, subs = _token_subs(session, read_token(settings, UNSUBSCRIBE, token))
        live = [s for s in subs if s.status != "unsubscribed"]
        if apply:
            for sub in live:
                sub.status, sub.status_reason = "unsubscribed", "one-click unsubscribe"
        state = ("done" if apply else "ask") if live else "already"
        return LinkResult(email, _profiles(subs), state)
