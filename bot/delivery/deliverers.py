"""Which digest deliverers this deployment has: Slack when configured, email when configured."""

from __future__ import annotations

import logging

from bot.config import Settings
from bot.db import Database
from bot.delivery.digests import Deliverer
from bot.scores.update import ScoringContext


def build_deliverers(settings: Settings, db: Database, ctx: ScoringContext | None) -> list[Deliverer]:
    deliverers: list[Deliverer] = []
    if settings.slack_configured:
        from bot.delivery.slack.delivery import SlackDeliverer

        deliverers.append(SlackDeliverer(settings, db, ctx))
    if settings.smtp_url.get_secret_value():
        from bot.config import SettingsError
        from bot.mail import make_email_deliverer

        try:
            email = make_email_deliverer(settings, db, ctx)
        except SettingsError as exc:  # a half-configured email must not stop Slack digests
            logging.getLogger(__name__).error("email digests are off: %s", exc)
            email = None
        if email is not None:
            deliverers.append(email)
    return deliverers
