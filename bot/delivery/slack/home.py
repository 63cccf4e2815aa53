"""The App Home tab: a workspace's subscriptions and its recent digests."""

from __future__ import annotations

from sqlalchemy import select

from bot.db import Database, Digest, Profile, Subscription
from bot.delivery.slack import blocks
from bot.delivery.subscriptions import describe
from bot.profiles.catalog import workspace_scope

RECENT_DIGESTS = 10


def home_view(db: Database, team_id: str) -> dict:
    """The view for views.publish; only this workspace's rows (team isolation), and only
    of the profiles it may see."""
    visible = workspace_scope(team_id).clause()
    with db.session() as session:
        subs = list(
            session.scalars(
                select(Subscription)
                .join(Profile, Profile.id == Subscription.profile_id)
                .where(Subscription.kind == "slack", Subscription.team_id == team_id, visible)
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
            .join(Profile, Profile.id == Subscription.profile_id)
            .where(Subscription.kind == "slack", Subscription.team_id == team_id, visible)
            .order_by(Digest.started_at.desc(), Digest.id.desc())
            .limit(RECENT_DIGESTS)
        ).all()
        digests = [
            {
                "started": d.started_at.strftime("%Y-%m-%d %H:%M"),
                "channel_id": d.channel_id or s.channel_id,
                "profile": s.profile.name,
                "count": d.items,  # not "items": in the template d.items is the dict's own method
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
