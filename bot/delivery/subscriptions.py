"""Create, list and end subscriptions: the same rules for Slack channels, email and the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import Subscription, utcnow
from bot.delivery.digests import (
    SCHEDULES,
    WEEKDAYS,
    ScheduleError,
    narrowing_of,
    next_run,
    parse_time,
    threshold_of,
    zone,
)
from bot.fulltext import Narrowing
from bot.profiles.catalog import EVERY, Scope, find_profile
from scoring.thresholds import parse_threshold

DEFAULT_MAX_ITEMS = 20


@dataclass(frozen=True)
class Target:
    """Where a digest goes: a Slack channel in a workspace, or an email address."""

    kind: str  # "slack" | "email"
    team_id: str = ""
    channel_id: str = ""
    email: str = ""

    def where(self):
        return (
            Subscription.kind == self.kind,
            Subscription.team_id == self.team_id,
            Subscription.channel_id == self.channel_id,
            Subscription.email == self.email,
        )


@dataclass(frozen=True)
class Options:
    threshold: str | None = None
    schedule: str = "daily"
    at_time: str = "08:00"
    weekday: str | int = 0
    timezone: str = "UTC"
    max_items: int = DEFAULT_MAX_ITEMS
    send_empty: bool = False
    narrowing: Narrowing = Narrowing()


def subscribe(
    session: Session,
    target: Target,
    profile_name: str,
    options: Options,
    *,
    created_by: str = "",
    status: str = "active",
    now: datetime | None = None,
    scope: Scope = EVERY,
) -> tuple[Subscription, bool]:
    """Follow a profile named within `scope` (or update how it is followed); returns
    (subscription, created)."""
    profile = find_profile(session, profile_name, scope)
    threshold = parse_threshold(options.threshold)
    if options.schedule not in SCHEDULES:
        raise ScheduleError(f"{options.schedule!r} is not a schedule; use {', '.join(SCHEDULES)}")
    if not 1 <= options.max_items <= 50:
        raise ScheduleError("a digest can hold 1 to 50 preprints")
    zone(options.timezone)
    sub = session.scalar(select(Subscription).where(*target.where(), Subscription.profile_id == profile.id))
    created = sub is None
    if created:
        sub = Subscription(
            kind=target.kind,
            team_id=target.team_id,
            channel_id=target.channel_id,
            email=target.email,
            profile_id=profile.id,
            created_by=created_by,
            status=status,
            created_at=now or utcnow(),
        )
        session.add(sub)
    elif sub.status in ("paused", "unsubscribed"):
        sub.status, sub.status_reason = status, None
    sub.profile = profile
    sub.threshold_kind, sub.threshold_value = threshold.kind, threshold.value
    sub.schedule = options.schedule
    sub.at_time = parse_time(options.at_time)
    sub.weekday = _weekday(options.weekday)
    sub.timezone = options.timezone
    sub.max_items = options.max_items
    sub.send_empty = options.send_empty
    narrowing = Narrowing.of(options.narrowing.keywords, options.narrowing.categories)
    sub.keywords_json = json.dumps(list(narrowing.keywords))
    sub.categories_json = json.dumps(list(narrowing.categories))
    sub.next_run_at = next_run(sub, now or utcnow())
    session.flush()
    return sub, created


def unsubscribe(
    session: Session, target: Target, profile_name: str | None = None, scope: Scope = EVERY
) -> list[Subscription]:
    """End one profile's subscription for a target, or all of them (profile_name None)."""
    query = select(Subscription).where(*target.where(), Subscription.status != "unsubscribed")
    if profile_name is not None:
        query = query.where(Subscription.profile_id == find_profile(session, profile_name, scope).id)
    subs = list(session.scalars(query))
    for sub in subs:
        sub.status, sub.status_reason = "unsubscribed", None
    session.flush()
    return subs


def subscriptions_for(session: Session, target: Target) -> list[Subscription]:
    query = select(Subscription).where(*target.where(), Subscription.status != "unsubscribed")
    return list(session.scalars(query.order_by(Subscription.id)))


def pause(session: Session, sub: Subscription, reason: str) -> None:
    sub.status, sub.status_reason = "paused", reason
    session.flush()


def describe(sub: Subscription) -> str:
    """'PLOS Genetics: top 1%, daily at 08:00 UTC' for lists and confirmations."""
    when = {
        "hourly": f"hourly at :{sub.at_time[-2:]}",
        "daily": f"daily at {sub.at_time} {sub.timezone}",
        "weekly": f"weekly on {WEEKDAYS[sub.weekday].title()} at {sub.at_time} {sub.timezone}",
    }[sub.schedule]
    narrowed = narrowing_of(sub).describe()
    narrowed = f", {narrowed}" if narrowed else ""
    state = "" if sub.status == "active" else f" [{sub.status}{': ' + sub.status_reason if sub.status_reason else ''}]"
    return f"{sub.profile.name}: {threshold_of(sub).describe()}, {when}, up to {sub.max_items}{narrowed}{state}"


def _weekday(value: str | int) -> int:
    if isinstance(value, int) or str(value).isdigit():
        day = int(value)
        if 0 <= day <= 6:
            return day
    else:
        text = str(value).strip().lower()
        for i, name in enumerate(WEEKDAYS):
            if name.startswith(text[:3]) and len(text) >= 3:
                return i
    raise ScheduleError(f"{value!r} is not a weekday; use monday..sunday")
