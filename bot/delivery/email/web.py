"""The web side of email links: confirm an address, unsubscribe in one click (RFC 8058).

GET /email/confirm?token=...      a page that asks, with a button that POSTs (a link
                                  scanner's GET or HEAD confirms nothing)
POST /email/confirm?token=...     confirms a pending subscription (double opt-in)
GET /email/unsubscribe?token=...  a page that asks, with a button that POSTs
POST /email/unsubscribe?token=... unsubscribes; what mail clients send for one-click
                                  ("List-Unsubscribe=One-Click" in the body)
GET /email/vote?token=...         a page that asks, with a button that POSTs
POST /email/vote?token=...        records the reader's "relevant" / "not relevant" on a match

A forged, tampered or expired token gets a 400 page that says what to do; never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from bot.config import Settings, SettingsError
from bot.db import Database
from bot.delivery.email.subscriptions import confirm_by_token, unsubscribe_by_token, vote_by_token
from bot.delivery.email.tokens import CONFIRM, MAX_AGE, TokenError, secret_key
from bot.render import render

log = logging.getLogger(__name__)


# Mail scanners and browsers must not cache or index these pages.
HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}


def _page(template: str, status: int = 200, **context: object) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status_code=status, headers=HEADERS)


def _action(request: Request, token: str | None) -> str:
    # A page's button posts back to the URL the link opened (token in the query, as RFC
    # 8058 wants); a relative URL, so it works behind any proxy.
    return f"{request.url.path}?{urlencode({'token': token or ''})}"


def routes(settings: Settings, db: Database) -> list[Route]:
    """The email link routes; none when SCOUT_SECRET_KEY is unset (no link could be checked)."""
    try:
        secret_key(settings)
    except SettingsError as exc:
        if settings.smtp_url.get_secret_value():
            log.error("email links are not served: %s", exc)
        return []

    def link_page(act, template: str, invalid: Callable[[TokenError], dict], applied=None):
        """One email link: GET shows what the token covers (a scanner's GET or HEAD changes
        nothing), POST acts; a bad token is a 400 page, `invalid` adding what it shows."""

        async def page(request: Request) -> HTMLResponse:
            token = request.query_params.get("token")
            apply = request.method == "POST"
            try:
                result = await run_in_threadpool(act, db, settings, token, apply=apply)
            except TokenError as exc:
                return _page(template, 400, state="invalid", error=str(exc), **invalid(exc))
            if apply and applied is not None:
                applied(result)
            return _page(template, state=result.state, result=result, action=_action(request, token))

        return page

    def confirmed(result) -> None:
        if result.state == "confirmed":
            log.info("email confirmed: %d subscription(s)", len(result.profiles))

    confirm = link_page(
        confirm_by_token,
        "email/confirmed.html.j2",
        lambda exc: {"expired": exc.expired, "valid_days": MAX_AGE[CONFIRM].days},
        confirmed,
    )
    unsubscribe = link_page(
        unsubscribe_by_token,
        "email/unsubscribe.html.j2",
        lambda exc: {},
        lambda result: log.info("one-click unsubscribe: %d subscription(s)", len(result.profiles)),
    )
    vote = link_page(vote_by_token, "email/vote.html.j2", lambda exc: {"result": None})

    return [
        Route("/email/confirm", confirm, methods=["GET", "POST"]),
        Route("/email/unsubscribe", unsubscribe, methods=["GET", "POST"]),
        Route("/email/vote", vote, methods=["GET", "POST"]),
    ]
