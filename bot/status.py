"""`scout status`: one look at everything the bot is doing, from the database alone."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import display_url
from bot.db import Database, Digest, Feed, Preprint, Subscription, as_utc
from bot.delivery.subscriptions import describe
from bot.processes.clock import active_clock
from bot.profiles.catalog import paper_counts
from bot.scores.update import latest_run


def iso(value: datetime | date | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        return value.isoformat()
    return as_utc(value).isoformat(timespec="seconds")  # alike on SQLite and PostgreSQL


def collect(db: Database, window_days: int, now: datetime) -> dict:
    with db.session() as session:
        data = {
            "feeds": _feeds(session),
            "last_poll": iso(session.scalar(select(func.max(Feed.last_polled_at)))),
            "preprints": {
                "stored": session.scalar(select(func.count(Preprint.id))) or 0,
                "in_window": session.scalar(
                    select(func.count(Preprint.id)).where(Preprint.posted >= now.date() - timedelta(days=window_days))
                )
                or 0,
                "window_days": window_days,
            },
            "profiles": [{"name": p.name, "papers": n} for p, n in paper_counts(session)],
            "scoring": _scoring(session),
            "subscriptions": _subscriptions(session),
        }
    clock = active_clock(db, now)
    data["clock"] = (
        {"active": clock.holder, "lease_until": iso(clock.lease_until), "next_runs": clock.next_runs} if clock else None
    )
    return data


def feed_health(f: Feed) -> dict:
    """One feed's health, as `scout feeds --json` and `scout status --json` show it."""
    return {
        "id": f.id,
        "name": f.name,
        "url": display_url(f.url),
        "healthy": None if f.last_polled_at is None else f.last_error is None,
        "last_polled_at": iso(f.last_polled_at),
        "last_success_at": iso(f.last_success_at),
        "last_error": f.last_error,
        "last_warning": f.last_warning,
        "last_error_at": iso(f.last_error_at),
        "consecutive_failures": f.consecutive_failures,
        "items_seen": f.items_seen,
    }


def _feeds(session: Session) -> list[dict]:
    return [feed_health(f) for f in session.scalars(select(Feed).order_by(Feed.id))]


def _scoring(session: Session) -> dict | None:
    run = latest_run(session)
    if run is None:
        return None
    return {
        "fitted_at": iso(run.created_at),
        "model": run.model,
        "reference_papers": run.reference_papers,
        "background": len(run.background_ids),
        "ece": run.ece,
    }


def _subscriptions(session: Session) -> list[dict]:
    rows = []
    subs = session.scalars(select(Subscription).where(Subscription.status != "unsubscribed").order_by(Subscription.id))
    for sub in subs:
        last = session.scalar(
            select(Digest).where(Digest.subscription_id == sub.id).order_by(Digest.id.desc()).limit(1)
        )
        rows.append(
            {
                "target": f"{sub.team_id}/{sub.channel_id}" if sub.kind == "slack" else sub.email,
                "kind": sub.kind,
                "description": describe(sub),
                "status": sub.status,
                "next_run_at": iso(sub.next_run_at),
                "last_digest": {
                    "at": iso(last.finished_at or last.started_at),
                    "status": last.status,
                    "items": last.items,
                }
                if last
                else None,
            }
        )
    return rows
