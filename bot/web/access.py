"""Who may see a page (SCOUT_WEB_ACCESS): anyone, or only who holds a profile's secret link.
A profile that belongs to a Slack workspace is never public: its pages open only with its
secret link, whatever SCOUT_WEB_ACCESS says (`off` still serves nothing).

A profile's key is an HMAC of its id under SCOUT_SECRET_KEY: nothing to store, the same on
every web instance, and a new SCOUT_SECRET_KEY revokes every link at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from bot.config import Settings, SettingsError
from bot.delivery.email.tokens import secret_key
from bot.web.queries import preprint_path, profile_path

KEY_PARAM = "key"


def profile_key(settings: Settings, profile_id: int) -> str:
    message = f"preprint-scout/web/profile/{profile_id}".encode()
    digest = hmac.new(secret_key(settings).encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def key_matches(settings: Settings, profile_id: int, given: str | None) -> bool:
    """Whether `given` is the profile's key; never without SCOUT_SECRET_KEY (under `public` a
    workspace's profile then has no link at all, rather than a page for everyone)."""
    if given is None:
        return False
    try:
        key = profile_key(settings, profile_id)
    except SettingsError:
        return False
    return hmac.compare_digest(given.encode(), key.encode())


def needs_key(settings: Settings, team_id: str) -> bool:
    """Whether a profile's pages open only with its key: all of them under `token`, and a
    Slack workspace's own (`team_id` not "") always."""
    return settings.web_access == "token" or bool(team_id)


def profile_url(settings: Settings, profile_id: int, name: str, team_id: str = "") -> str | None:
    """The link to a profile's page as this deployment serves it: with its key when the page
    needs one, none when the pages are off. Absolute with SCOUT_BASE_URL, a path without."""
    if settings.web_access == "off":
        return None
    url = settings.base_url + profile_path(name)
    if needs_key(settings, team_id):
        url += f"?{KEY_PARAM}={profile_key(settings, profile_id)}"
    return url


@dataclass(frozen=True)
class WebLinks:
    """Links from Slack and email to the pages: only with SCOUT_BASE_URL set (else nothing
    changes), to profile pages unless the pages are off, to preprint pages when public."""

    settings: Settings

    def profile(self, name: str, profile_id: int | None, team_id: str = "") -> str | None:
        """The profile page; a workspace's own profile's link carries its key (only its
        workspace's digests and answers, and its email subscribers, ever get one)."""
        if not self.settings.base_url or profile_id is None:
            return None
        try:
            return profile_url(self.settings, profile_id, name, team_id)
        except SettingsError:  # token links without SCOUT_SECRET_KEY: `scout serve` refuses to start
            return None

    def preprint(self, doi: str | None, identifier: str) -> str | None:
        if not self.settings.base_url or self.settings.web_access != "public":
            return None
        path = preprint_path(doi, identifier)
        return self.settings.base_url + path if path else None
