"""The Bolt app: `/scout`, the buttons, App Home and install/uninstall events.

Listeners only parse (pure, bot.delivery.slack.commands), hand the work to the app's own bounded
`WorkPool` and ack: nothing slow (the model, the database, a slow response_url, a preprint
API) ever runs before the ack, so one user's slow command never holds up another's
3 s. `help` and usage errors are answered in the ack itself; a full pool is too ("busy,
try again in a minute"). The work answers through the response_url with a timeout
(SLACK_TIMEOUT). The app runs with `process_before_response=True`: the listener runs on
the thread that dispatches the request, not on Bolt's own 5-thread pool, which a few
slow listeners used to fill until every other request was refused. Socket Mode runs the
same listeners.
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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.config import Settings, SettingsError
from bot.db import Database, Subscription
from bot.delivery.slack import answers
from bot.delivery.slack.client import make_client
from bot.delivery.slack.commands import Email, Help, Rank, UsageError, parse_command
from bot.delivery.slack.home import home_view
from bot.delivery.slack.oauth import INSTALL_PATH, REDIRECT_PATH, installation_store, oauth_settings
from bot.delivery.slack.workers import WorkPool, respond
from bot.delivery.subscriptions import pause
from bot.scores.update import ScoringContext
from scoring.errors import ScoutError

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
COMMAND = "/scout"


class SlackConfigError(SettingsError):
    """Slack settings missing for what was asked; the message names them."""


class SlackUnreachable(ScoutError):
    """Slack could not be reached at all (network, DNS): worth a restart, not a config change."""


def build_bolt_app(
    settings: Settings, db: Database, ctx: ScoringContext | None = None, *, socket_mode: bool = False
) -> App:
    if not socket_mode and not settings.slack_signing_secret:
        raise SlackConfigError("SLACK_SIGNING_SECRET is not set (Basic Information > App Credentials in Slack)")
    if not settings.slack_multi_workspace and not settings.slack_bot_token:
        raise SlackConfigError(
            "set SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (OAuth installs)"
        )
    ctx = ctx or ScoringContext.from_settings(settings)
    ctx.preload()  # so the first `/scout match <text>` does not pay for it, and no ack ever does
    common = {
        "name": "preprint-scout",
        # The listeners return at once (the work goes to the WorkPool), so they can run
        # before the response on the dispatching thread, never queued behind slow ones.
        "process_before_response": True,
        "request_verification_enabled": not socket_mode,
        "signing_secret": settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
    }
    if settings.slack_multi_workspace:
        app = App(client=make_client(settings, token=None), oauth_settings=oauth_settings(settings, db), **common)
    else:
        # token_verification_enabled=False: start without calling Slack; auth.test runs on the first request.
        with _without_bolt_oauth_env():
            app = App(client=make_client(settings), token_verification_enabled=False, **common)
    register(app, settings, db, ctx, WorkPool(settings.slack_workers, settings.slack_queue))
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


# The work behind one request: given `notify` (sends an early message), returns (reply, public).
Work = Callable[[Callable[[dict], None]], tuple[dict, bool]]
BUSY = "Preprint Scout is busy answering other requests: please try again in a minute."


def register(app: App, settings: Settings, db: Database, ctx: ScoringContext, pool: WorkPool) -> None:
    def answer_later(ack, response_url: str | None, work: Work, what: str) -> None:
        """Ack now; `work(notify)` -> (message, public) runs on the pool and goes to the
        response_url, as may what it passes to `notify` (ephemeral) before that."""

        def send(message: dict, public: bool = False) -> None:
            if response_url:
                reply = {"response_type": "in_channel" if public else "ephemeral", "replace_original": False}
                respond(response_url, {**reply, **message}, settings.slack_timeout)

        def job() -> None:
            try:
                message, public = work(send)
            except Exception:
                log.exception("%s failed", what)
                message, public = answers.error_message("Something went wrong on our side; please try again."), False
            send(message, public)

        if pool.submit(job, what):
            ack()
        else:
            ack(response_type="ephemeral", **answers.error_message(BUSY))

    @app.command(COMMAND)
    def scout_command(ack, command, client):
        try:
            cmd = parse_command(command.get("text", ""))
        except UsageError as exc:
            ack(response_type="ephemeral", **answers.error_message(str(exc)))
            return
        if isinstance(cmd, Help):
            ack(response_type="ephemeral", **answers.help_message())
            return
        where = answers.Where(command.get("team_id", ""), command.get("channel_id", ""), command.get("user_id", ""))

        def work(notify: Callable[[dict], None]) -> tuple[dict, bool]:
            if isinstance(cmd, Email):  # the user's address comes from Slack, with the workspace's token
                message, ok = answers.email_answer(cmd, db, settings, where, client)
            else:
                message, ok = answers.answer(cmd, db, ctx, settings, where, notify)
            return message, ok and isinstance(cmd, Rank) and cmd.public

        answer_later(ack, command.get("response_url"), work, f"/scout {type(cmd).__name__}")

    @app.action("scout_abstract")
    def show_abstract(ack, action, body):
        def work(_notify: Callable[[dict], None]) -> tuple[dict, bool]:
            try:
                return answers.abstract_message(db, int(action.get("value", "0"))), False
            except ValueError:
                return answers.error_message("That button is out of date."), False

        answer_later(ack, body.get("response_url"), work, "the abstract button")

    def vote(relevant: bool):
        def listener(ack, action, body):
            team = (body.get("team") or {}).get("id", "")
            user = (body.get("user") or {}).get("id", "")
            value = action.get("value", "")

            def work(_notify: Callable[[dict], None]) -> tuple[dict, bool]:
                return answers.vote(db, value, team, user, relevant), False

            answer_later(ack, body.get("response_url"), work, "a vote button")

        return listener

    app.action("scout_vote_relevant")(vote(True))
    app.action("scout_vote_not_relevant")(vote(False))

    @app.event("app_home_opened")
    def home(event, context, client):
        if event.get("tab", "home") != "home":
            return
        user, team = event["user"], context.team_id or ""

        def publish() -> None:
            client.views_publish(user_id=user, view=home_view(db, team))

        # Full: the tab keeps its last view; it is published again the next time it is opened.
        pool.submit(publish, "the App Home tab")

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
        if not _timestamp_ok(request.headers.get("x-slack-request-timestamp")):
            return JSONResponse({"error": "invalid request"}, status_code=401)  # as Bolt refuses a bad signature
        body = await request.body()  # at most bot.processes.web.MAX_BODY_BYTES: larger requests never get here
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


def _timestamp_ok(value: str | None) -> bool:
    """Slack's request timestamp is Unix seconds; anything else would fail the signature
    check with a 500 (Bolt calls int() on it) instead of the 401 it deserves. At most a
    dozen digits: int() refuses strings of thousands. A missing one is Bolt's to judge
    (401, except Slack's unsigned ssl_check pings, which Bolt answers first)."""
    return value is None or (len(value) <= 12 and value.isascii() and value.isdigit())


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
