"""The `web` process: one ASGI app for Slack, email links and health, served by uvicorn.

Each concern contributes its own routes (`bot.delivery.slack.routes`, `bot.delivery.email.web.routes`);
this module only composes them, so a deployment scales `web` to several instances
with nothing shared but the database.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.config import Settings
from bot.db import Database

# Slack's requests (commands, clicks, events) are a few kilobytes and the email links' are
# smaller: a body past this is refused (413) before it is read, whatever it claims to be.
MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(Exception):
    """A request's body went past MAX_BODY_BYTES while being read."""


class BodyLimit:
    """413 for a request body over `limit` bytes, without reading it whole: at once when its
    Content-Length says so, or as soon as a body sent without one (chunked) passes the limit."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen, started = 0, False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"Request body too large (the limit is {self.limit} bytes)."
        await PlainTextResponse(message, status_code=413, headers={"Connection": "close"})(scope, receive, send)


def build_app(settings: Settings, db: Database, extra_routes: list | None = None, ctx=None) -> Starlette:
    """`ctx`: the ScoringContext for Slack answers (default: the configured model, loaded on first need)."""
    from bot.delivery.email.web import routes as mail_routes
    from bot.delivery.slack.app import slack_routes
    from bot.web.pages import routes as page_routes

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [Route("/healthz", healthz, methods=["GET"])]
    routes.extend(slack_routes(settings, db, ctx))  # none when Slack is not configured
    routes.extend(mail_routes(settings, db))  # none without SCOUT_SECRET_KEY
    routes.extend(extra_routes or [])
    routes.extend(page_routes(settings, db, ctx))  # the ranking as web pages: /, /profiles/..., /preprints/...
    app = Starlette(routes=routes, middleware=[Middleware(BodyLimit, limit=MAX_BODY_BYTES)])
    app.state.settings = settings
    app.state.db = db
    return app
