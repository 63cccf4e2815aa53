"""The `web` process: one ASGI app for Slack, email links and health, served by uvicorn.

Each concern contributes its own routes (`bot.delivery.slack.routes`, `bot.mail_web.routes`);
this module only composes them, so a deployment scales `web` to several instances
with nothing shared but the database.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.config import Settings
from bot.db import Database


def build_app(settings: Settings, db: Database, extra_routes: list | None = None, ctx=None) -> Starlette:
    """`ctx`: the ScoringContext for Slack answers (default: the configured model, loaded on first need)."""
    from bot.mail_web import routes as mail_routes
    from bot.delivery.slack.app import slack_routes

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [Route("/healthz", healthz, methods=["GET"])]
    routes.extend(slack_routes(settings, db, ctx))  # none when Slack is not configured
    routes.extend(mail_routes(settings, db))  # none without SCOUT_SECRET_KEY
    routes.extend(extra_routes or [])
    app = Starlette(routes=routes)
    app.state.settings = settings
    app.state.db = db
    return app
