"""Who may see a page (SCOUT_WEB_ACCESS): anyone, or only who holds a profile's secret link.

A profile's key is an HMAC of its id under SCOUT_SECRET_KEY: nothing to store, the same on
every web instance, and a new SCOUT_SECRET_KEY revokes every link at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from bot.config import Settings
from bot.delivery.email.tokens import secret_key
from bot.web.queries import profile_path

KEY_PARAM = "key"


def profile_key(settings: Settings, profile_id: int) -> str:
    message = f"preprint-scout/web/profile/{profile_id}".encode()
    digest = hmac.new(secret_key(settings).encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def key_matches(settings: Settings, profile_id: int, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), profile_key(settings, profile_id).encode())


def profile_url(settings: Settings, profile_id: int, name: str) -> str | None:
    """The link to a profile's page as this deployment serves it: with its key under `token`,
    none when the pages are off. Absolute with SCOUT_BASE_URL, a path without."""
    if settings.web_access == "off":
        return None
    url = settings.base_url + profile_path(name)
    if settings.web_access == "token":
        url += f"?{KEY_PARAM}={profile_key(settings, profile_id)}"
    return url
