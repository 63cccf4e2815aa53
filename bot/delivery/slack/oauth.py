"""Workspaces and their tokens: one bot token (single workspace) or OAuth installs in the database.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET the app installs by OAuth and keeps each
workspace's bot token in slack_sdk's SQLAlchemy installation store (tables created by
migration 0004); otherwise SLACK_BOT_TOKEN serves the one workspace it belongs to.
"""

from __future__ import annotations

from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from bot.config import Settings
from bot.db import Database

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_SECONDS = 600


def installation_store(settings: Settings, db: Database) -> SQLAlchemyInstallationStore:
    return SQLAlchemyInstallationStore(client_id=settings.slack_client_id or "", engine=db.engine)


def oauth_settings(settings: Settings, db: Database) -> OAuthSettings:
    return OAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value() if settings.slack_client_secret else None,
        scopes=scopes(settings),
        user_scopes=[],
        installation_store=installation_store(settings, db),
        state_store=SQLAlchemyOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=db.engine),
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=authorization_url(settings.slack_api_url),
    )


def scopes(settings: Settings) -> list[str]:
    return [s.strip() for s in settings.slack_scopes.split(",") if s.strip()]


def authorization_url(api_url: str) -> str:
    """Slack's authorize page next to its Web API (https://slack.com/api/ -> https://slack.com/oauth/v2/authorize)."""
    base = api_url.rstrip("/")
    base = base[: -len("/api")] if base.endswith("/api") else base
    return f"{base}/oauth/v2/authorize"


class TokenSource:
    """The bot token for a workspace: from the installation store, or the one configured token."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._settings = settings
        self._store = installation_store(settings, db) if settings.slack_multi_workspace else None

    def bot_token(self, team_id: str) -> str | None:
        if self._store is not None:
            bot = self._store.find_bot(enterprise_id=None, team_id=team_id or None)
            return bot.bot_token if bot else None
        token = self._settings.slack_bot_token
        return token.get_secret_value() if token else None
