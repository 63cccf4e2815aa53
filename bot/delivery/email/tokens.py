"""Signed, expiring tokens for the links in emails: confirm an address, unsubscribe in one
click, vote on a match.

itsdangerous signs a small JSON payload with `SCOUT_SECRET_KEY`; each purpose has its own
salt, so a confirmation token never works as an unsubscribe token and vice versa. A token
carries the address and the subscription ids it speaks for, and is checked against the
database when used, so it cannot act on anyone else's subscriptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from bot.config import Settings, SettingsError
from scoring.errors import ScoutError

CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
VOTE = "vote"
MAX_AGE = {
    CONFIRM: timedelta(days=7),
    # Long enough for an old digest in someone's inbox to still unsubscribe them.
    UNSUBSCRIBE: timedelta(days=365),
    # A vote on last season's digest is still a reader's judgement of that match.
    VOTE: timedelta(days=365),
}
MIN_SECRET = 16


class TokenError(ScoutError):
    """A link that cannot be honoured; `expired` tells an old link from a forged one."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class LinkToken:
    email: str
    subscription_ids: tuple[int, ...]
    # A vote link's match and verdict; None on other links.
    preprint_id: int | None = None
    relevant: bool | None = None


def secret_key(settings: Settings) -> str:
    key = settings.secret_key.get_secret_value()
    if not key:
        raise SettingsError(
            "SCOUT_SECRET_KEY is not set: email confirmation and unsubscribe links are signed with it. "
            "Set it to a long random string, e.g. the output of "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if len(key) < MIN_SECRET:
        raise SettingsError(f"SCOUT_SECRET_KEY is too short: use at least {MIN_SECRET} random characters")
    return key


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    if purpose not in MAX_AGE:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret_key(settings), salt=f"preprint-scout/email/{purpose}")


def make_token(
    settings: Settings,
    purpose: str,
    email: str,
    subscription_ids: list[int] | tuple[int, ...],
    *,
    preprint_id: int | None = None,
    relevant: bool | None = None,
) -> str:
    payload: dict = {"e": email.lower(), "s": sorted(int(i) for i in subscription_ids)}
    if preprint_id is not None:
        payload.update(p=int(preprint_id), r=bool(relevant))
    return _serializer(settings, purpose).dumps(payload)


def read_token(settings: Settings, purpose: str, token: str | None) -> LinkToken:
    """The payload of a valid token; TokenError for a forged, tampered, foreign or expired one."""
    if not token:
        raise TokenError("this link is incomplete: it carries no token")
    max_age = int(MAX_AGE[purpose].total_seconds())
    try:
        payload = _serializer(settings, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError("this link has expired", expired=True) from None
    except BadSignature:
        raise TokenError("this link is not valid (it was changed or was not made by this Scout)") from None
    try:
        email = str(payload["e"])
        ids = tuple(int(i) for i in payload["s"])
        preprint_id = int(payload["p"]) if "p" in payload else None
        relevant = bool(payload["r"]) if "r" in payload else None
    except (KeyError, TypeError, ValueError):
        raise TokenError("this link is not valid") from None
    if not email or not ids or (purpose == VOTE and preprint_id is None):
        raise TokenError("this link is not valid")
    return LinkToken(email, ids, preprint_id, relevant)
