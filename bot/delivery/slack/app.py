"""The Bolt app: `/scout`, the buttons, App Home and install/uninstall events.

Listeners stay small: parse (pure, bot.delivery.slack.commands), ack within Slack's 3 s, then
do the work and answer through `respond()` (the response_url). The app is a sync
Bolt `App` with `process_before_response=False`, so the HTTP answer (the ack) goes
back as soon as `ack()` runs while the listener finishes on Bolt's thread pool; the
ASGI route hands each request to Bolt on a worker thread so the event loop never
waits on one. Socket Mode runs the same listeners.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from slack_bolt import App, BoltResponse
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.config import Settings
from bot.db import Database, Subscription
from bot.scores.update import ScoringContext
from bot.delivery.slack import answers
from bot.delivery.slack.client import make_client
from bot.delivery.slack.commands import Email, Help, Rank, UsageError, parse_command
from bot.delivery.slack.home import home_view
from bot.delivery.slack.oauth import INSTALL_PATH, REDIRECT_PATH, installation_store, oauth_settings
from bot.delivery.subscriptions import pause

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
COMMAND = "/scout"


class SlackConfigError(ValueError):
    """Slack settings missing for what was asked; the message names them."""


class SlackUnreachable(Exception):
    """Slack could not be reached at all (network, DNS): worth a restart, not a config change."""


def default_context(settings: Settings) -> ScoringContext:
    """The model loads on first need (a `match` on free text), once per process."""
    from scoring.embedder import load_embedder

    lock = threading.Lock()
    cache: dict = {}

    def load():
        with lock:
            if "model" not in cache:
                cache["model"] = load_embedder(settings.model)
            return cache["model"]

    return ScoringContext(settings.model, load, settings.background_size)


def build_bolt_app(
    settings: Settings, db: Database, ctx: ScoringContext | None = None, *, socket_mode: bool = False
) -> App:
    ctx = ctx or default_context(settings)
    common = {
        "name": "preprint-scout",
        "process_before_response": False,
        "request_verification_enabled": not socket_mode,
        "signing_secret": settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
    }
    if not socket_mode and not settings.slack_signing_secret:
        raise SlackConfigError("SLACK_SIGNING_SECRET is not set (Basic Information > App Credentials in Slack)")
    if settings.slack_multi_workspace:
        app = App(client=make_client(settings, token=None), oauth_settings=oauth_settings(settings, db), **common)
    elif settings.slack_bot_token:
        # token_verification_enabled=False: start without calling Slack; auth.test runs on the first request.
        with _without_bolt_oauth_env():
            app = App(client=make_client(settings), token_verification_enabled=False, **common)
    else:
        raise SlackConfigError(
            "set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth installs)"
        )
    register(app, settings, db, ctx)
    return app


@contextmanager
def _without_bolt_oauth_env() -> Iterator[None]:
    """Bolt switches on OAuth of its own (installations in a local file) whenever
    SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are in the environment, even empty, as a
    container's `SLACK_CLIENT_ID: ${SLACK_CLIENT_ID}` leaves them. The settings have
    already chosen one workspace; left on, every request was refused as "installation
    no longer available"."""
    saved = {name: os.environ.pop(name) for name in ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET") if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def register(app: App, settings: Settings, db: Database, ctx: ScoringContext) -> None:
    @app.command(COMMAND)
    def scout_command(ack, command, respond, client, logger):
        try:
            cmd = parse_command(command.get("text", ""))
        except UsageError as exc:
            ack(response_type="ephemeral", **answers.error_message(str(exc)))
            return
        if isinstance(cmd, Help):
            ack(response_type="ephemeral", **answers.help_message())
            return
        ack()  # within 3 s; the work below runs after Slack has its answer
        where = answers.Where(command.get("team_id", ""), command.get("channel_id", ""), command.get("user_id", ""))
        try:
            if isinstance(cmd, Email):  # the user's address comes from Slack, with the workspace's token
                message, ok = answers.email_answer(cmd, db, settings, where, client)
            else:
                message, ok = answers.answer(cmd, db, ctx, settings, where)
            public = ok and isinstance(cmd, Rank) and cmd.public
        except Exception:
            logger.exception("/scout %s failed", type(cmd).__name__)
            message, public = answers.error_message("Something went wrong on our side; please try again."), False
        respond(response_type="in_channel" if public else "ephemeral", replace_original=False, **message)

    @app.action("scout_abstract")
    def show_abstract(ack, action, respond):
        ack()
        try:
            message = answers.abstract_message(db, int(action.get("value", "0")))
        except ValueError:
            message = answers.error_message("That button is out of date.")
        respond(response_type="ephemeral", replace_original=False, **message)

    def vote(relevant: bool):
        def listener(ack, action, body, respond):
            ack()
            team = (body.get("team") or {}).get("id", "")
            user = (body.get("user") or {}).get("id", "")
            message = answers.record_vote(db, action.get("value", ""), team, user, relevant)
            respond(response_type="ephemeral", replace_original=False, **message)

        return listener

    app.action("scout_vote_relevant")(vote(True))
    app.action("scout_vote_not_relevant")(vote(False))

    @app.event("app_home_opened")
    def home(event, context, client):
        if event.get("tab", "home") != "home":
            return
        client.views_publish(user_id=event["user"], view=home_view(db, context.team_id or ""))

    @app.event("app_uninstalled")
    def uninstalled(context):
        team = context.team_id or ""
        if settings.slack_multi_workspace:
            installation_store(settings, db).delete_all(enterprise_id=context.enterprise_id, team_id=team)
        _pause_team(db, team, "the app was uninstalled from this workspace")

    @app.event("tokens_revoked")
    def revoked(event, context):
        bots = (event.get("tokens") or {}).get("bot") or []
        if settings.slack_multi_workspace:
            store = installation_store(settings, db)
            if bots:
                store.delete_bot(enterprise_id=context.enterprise_id, team_id=context.team_id)
            if (event.get("tokens") or {}).get("oauth"):
                store.delete_installation(enterprise_id=context.enterprise_id, team_id=context.team_id)
        if bots:
            _pause_team(db, context.team_id or "", "the app's token was revoked")


def _pause_team(db: Database, team_id: str, reason: str) -> None:
    with db.session() as session:
        subs = session.scalars(
            select(Subscription).where(
                Subscription.kind == "slack", Subscription.team_id == team_id, Subscription.status == "active"
            )
        )
        for sub in subs:
            pause(session, sub, reason)


# -- ASGI ------------------------------------------------------------------------------


def slack_routes(settings: Settings, db: Database, ctx: ScoringContext | None = None) -> list[Route]:
    """`POST /slack/events` (commands, interactivity, events) and, with OAuth, install + redirect."""
    if not settings.slack_configured:
        return []
    app = build_bolt_app(settings, db, ctx)

    async def events(request: Request) -> Response:
        body = await request.body()
        bolt_response: BoltResponse = await run_in_threadpool(app.dispatch, to_bolt_request(request, body))
        return to_starlette_response(bolt_response)

    routes = [Route(EVENTS_PATH, events, methods=["POST"])]
    flow = app.oauth_flow
    if flow is not None:

        async def install(request: Request) -> Response:
            bolt_response = await run_in_threadpool(flow.handle_installation, to_bolt_request(request, b""))
            return to_starlette_response(bolt_response)

        async def redirect(request: Request) -> Response:
            bolt_response = await run_in_threadpool(flow.handle_callback, to_bolt_request(request, b""))
            return to_starlette_response(bolt_response)

        routes += [Route(INSTALL_PATH, install, methods=["GET"]), Route(REDIRECT_PATH, redirect, methods=["GET"])]
    return routes


def socket_handler(settings: Settings, db: Database, ctx: ScoringContext | None = None):
    """A Socket Mode handler for `scout socket` (needs SLACK_APP_TOKEN, xapp-...)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    if not settings.slack_app_token:
        raise SlackConfigError("SLACK_APP_TOKEN is not set: create an app-level token with connections:write")
    app_token = settings.slack_app_token.get_secret_value()
    if not app_token.startswith("xapp-"):
        raise SlackConfigError(
            "SLACK_APP_TOKEN must be an app-level token (xapp-..., from Basic Information > App-Level Tokens, "
            "with connections:write), not a bot or user token"
        )
    app = build_bolt_app(settings, db, ctx, socket_mode=True)
    return SocketModeHandler(app, app_token, web_client=make_client(settings, app_token))


def connect_socket_mode(handler, settings: Settings) -> None:
    """Open the Socket Mode connection; a refused token is a SlackConfigError saying what to fix."""
    from slack_sdk.errors import SlackApiError

    try:
        handler.connect()
    except SlackApiError as exc:
        raise SlackConfigError(
            f"Slack refused the Socket Mode connection ({exc.response.get('error')}): SLACK_APP_TOKEN must be "
            "a valid app-level token (xapp-...) with the connections:write scope"
        ) from None
    except OSError as exc:  # URLError included
        raise SlackUnreachable(f"cannot reach Slack at {settings.slack_api_url}: {exc}") from None


def wait_for_stop_signal(announce: Callable[[str], None]) -> None:
    """Block until SIGTERM or SIGINT. Both are set explicitly: a process started in the
    background inherits SIGINT ignored, and supervisors (systemd, Procfile platforms) stop
    a process with SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        announce(f"received {signal.Signals(signum).name}: stopping")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
