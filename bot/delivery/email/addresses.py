"""Email settings and addresses: what email needs, one plain address, the sender."""

from __future__ import annotations

import re
from email.utils import parseaddr

from bot.config import Settings, SettingsError
from scoring.errors import InputError
from scoring.text import strip_unseen

DEFAULT_NAME = "Preprint Scout"
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


def require_email_settings(settings: Settings) -> None:
    """Email needs SMTP_URL, SCOUT_MAIL_FROM, SCOUT_BASE_URL and SCOUT_SECRET_KEY; say which are missing."""
    from bot.delivery.email.tokens import secret_key

    missing = [
        name
        for name, value in (
            ("SMTP_URL", settings.smtp_url.get_secret_value()),
            ("SCOUT_MAIL_FROM", settings.mail_from),
            ("SCOUT_BASE_URL", settings.base_url),
        )
        if not value
    ]
    if missing:
        raise SettingsError(
            f"email is not set up: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
            "(SMTP_URL=smtp://user:pass@host:587, SCOUT_MAIL_FROM=scout@example.org, "
            "SCOUT_BASE_URL=https://scout.example.org; see docs/email.md)"
        )
    secret_key(settings)
    if not _ADDRESS.match(parseaddr(settings.mail_from)[1]):
        raise SettingsError(f"SCOUT_MAIL_FROM is not an email address: {settings.mail_from!r}")


def normalise_address(text: str) -> str:
    """One plain address, lower-cased; ValueError with an example otherwise."""
    raw = (text or "").strip()
    # "Name <addr>" or a bare address; parseaddr is too lenient ("a b@x.org" -> "ab@x.org").
    match = re.fullmatch(r"[^<>]*<([^<>]+)>|([^<>]+)", raw)
    addr = (match.group(1) or match.group(2)).strip().lower() if match else ""
    if any(ord(c) < 32 for c in raw) or strip_unseen(raw) != raw or not _ADDRESS.fullmatch(addr):
        raise InputError(f"{raw!r} is not an email address; give one plain address, e.g. editor@example.org")
    return addr


def sender(settings: Settings) -> tuple[str, str]:
    """(From header, envelope sender): a stable From, with a display name."""
    name, addr = parseaddr(settings.mail_from)
    display = f"{name or DEFAULT_NAME} <{addr}>"
    return display, addr


def domain(address: str) -> str:
    return address.rsplit("@", 1)[-1]
