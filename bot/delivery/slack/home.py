"""The App Home tab: a workspace's subscriptions and its recent digests."""

from __future__ import annotations

from sqlalchemy import select

from bot.db import Database, Digest, Subscription
from bot.delivery.slack import blocks
from bot.delivery.subscriptions import describe

RECENT_DIGESTS = 10


def home_view(db: Database, team_id: str) -> dict:
    """The view for views.publish; only this workspace's rows (team isolation)."""
    with db.session() as session:
        subs = list(
            session.scalars(
                select(Subscription)
                .where(Subscription.kind == "slack", Subscription.team_id == team_id)
                .where(Subscription.status != "unsubscribed")
                .order_by(Subscription.channel_id, Subscription.id)
            )
        )
        subscriptions = [
            {
                "channel_id": s.channel_id,
                "description": describe(s),
                "next_run": s.next_run_at.strftime("%Y-%m-%d %H:%M UTC")
                if s.next_run_at and s.status == "active"
                else "",
            }
            for s in subs
        ]
        rows = session.execute(
            select(Digest, Subscription)
            .join(Subscription, Subscription.id == Digest.subscription_id)
            .where(Subscription.kind == "slack", Subscription.team_id == team_id)
            .order_by(Digest.started_at.desc(), Digest.id.desc())
            .limit(RECENT_DIGESTS)
        ).all()
        digests = [
            {
                "started": d.started_at.strftime("%Y-%m-%d %H:%M"),
                "channel_id": d.channel_id or s.channel_id,
                "profile": s.profile.name,
                "items": d.items,
                "status": d.status,
                "error": d.error or "",
            }
            for d, s in rows
        ]
    return {
        "type": "home",
        "blocks": blocks.render_blocks(
            "home", limit=blocks.MAX_VIEW_BLOCKS, subscriptions=subscriptions, digests=digests
        ),
    }
