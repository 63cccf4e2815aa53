"""`scout init`, `scout status`, `scout scheduler`, `scout serve`, `scout socket`, `scout demo`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import JSON_HELP, app, database, err, esc, fail, log_what_happens, out, scoring_context
from bot.config import Settings, display_url
from bot.db import Database
from bot.scores.update import ScoringContext


@app.command(rich_help_panel="Set up")
def init() -> None:
    """Create or upgrade the database (also done on every start)."""
    with database() as (settings, _db):
        out.print(f"database ready: {esc(display_url(settings.database_url))}", highlight=False)


@app.command(rich_help_panel="Ask")
def status(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Feeds' health, preprints in the window, profiles, scoring, subscriptions, the active clock."""
    from bot.db import utcnow
    from bot.status import collect

    with database() as (settings, db):
        data = collect(db, settings.window_days, utcnow())
    if as_json:
        out.print_json(data=data)
        return
    out.print(f"database: {esc(display_url(settings.database_url))}   model: {esc(settings.model)}", highlight=False)
    clock = data["clock"]
    out.print(f"clock: {esc(clock['active']) + ' (active)' if clock else 'none running'}", highlight=False)
    if clock and clock["next_runs"]:
        runs = ", ".join(f"{job} {when}" for job, when in sorted(clock["next_runs"].items(), key=lambda kv: kv[1]))
        out.print(f"next runs: {runs}", highlight=False)
    pre = data["preprints"]
    out.print(
        f"preprints: {pre['stored']} stored, {pre['in_window']} posted in the last {pre['window_days']} days; "
        f"last poll {data['last_poll'] or 'never'}",
        highlight=False,
    )
    if data["scoring"]:
        sc = data["scoring"]
        ece = f"{sc['ece']:.3f}" if sc["ece"] is not None else "n/a"
        out.print(
            f"scoring: fitted {sc['fitted_at']} on {sc['reference_papers']} papers, "
            f"{sc['background']} background preprints, ECE {ece}",
            highlight=False,
        )
    feeds = Table("feed", "health", "last success", "items", "last error", title="Feeds")
    for f in data["feeds"]:
        health = {None: "never polled", True: "ok", False: "failing"}[f["healthy"]]
        if f["healthy"] and f["last_warning"]:
            health = "ok, with warnings"
        problem = f["last_error"] or f["last_warning"] or ""
        feeds.add_row(esc(f["name"]), health, f["last_success_at"] or "never", str(f["items_seen"]), esc(problem))
    out.print(feeds)
    names = ", ".join(f"{esc(p['name'])} ({p['papers']})" for p in data["profiles"])
    out.print(f"profiles: {names or 'none'}", highlight=False)
    subs = Table("to", "subscription", "next run", "last digest", title="Subscriptions")
    for s in data["subscriptions"]:
        last = s["last_digest"]
        subs.add_row(
            esc(s["target"]),
            esc(s["description"]),
            s["next_run_at"] or "",
            f"{last['at']} {last['status']} ({last['items']})" if last else "never",
        )
    out.print(subs)


@app.command(rich_help_panel="Run")
def scheduler(
    once: Annotated[
        bool, typer.Option("--once", help="Run one full cycle (poll, score, due digests) and exit")
    ] = False,
    poll_minutes: Annotated[
        int | None, typer.Option(min=1, help="Default minutes between polls of a feed [SCOUT_POLL_MINUTES]")
    ] = None,
) -> None:
    """The clock process: poll, score, send due digests, reconcile, refresh and prune on a schedule."""
    from bot.processes.clock import ClockConfig, Cycle, Leadership, quiet_libraries, run_forever

    log_what_happens()
    quiet_libraries()
    with database() as (settings, db):
        minutes = poll_minutes or settings.poll_minutes
        config = ClockConfig(
            poll_minutes=minutes,
            poll_check_minutes=min(5, minutes),
            digest_check_seconds=settings.digest_check_seconds,
            prune_days=settings.retention_days,
        )
        cycle = Cycle(
            settings,
            db,
            scoring_context(settings),
            lambda: _deliverers(settings, db),
            config,
            reconcile=_reconciler(settings, db),
            refresh=_refresher(settings, db),
        )
        leadership = Leadership(db, lease_seconds=settings.clock_lease_seconds)
        if not once:
            run_forever(cycle, leadership)
            return
        if not leadership.acquire():
            raise fail("another clock is active; --once did nothing", code=1)
        try:
            report = cycle.once()
        finally:
            leadership.release()
        sent = sum(o.sent for o in report.digests)
        failed = [o for o in report.digests if o.error]
        err.print(
            f"cycle done: {report.poll.new if report.poll else 0} new preprints, "
            f"{report.score.scored if report.score else 0} scored, {sent} digest items sent"
            + (f", {len(failed)} digests failed" if failed else "")
        )


def _deliverers(settings: Settings, db: Database) -> list:
    from bot.delivery.deliverers import build_deliverers

    return build_deliverers(settings, db, scoring_context(settings))


def _refresher(settings: Settings, db: Database):
    def refresh() -> None:
        from bot.ingest.apis import Sources
        from bot.ingest.polling import http_client
        from bot.profiles.journals import refresh_profiles

        with http_client(settings) as client:
            for result in refresh_profiles(db, Sources.from_settings(settings, client)):
                if result.error:
                    logging.getLogger("bot.processes.clock").warning(
                        "refresh %s failed: %s", result.profile, result.error
                    )

    return refresh


def _reconciler(settings: Settings, db: Database):
    from bot.ingest.backfill import reconcile_now

    return lambda days: reconcile_now(settings, db, days)


@app.command(rich_help_panel="Run")
def demo(
    keep: Annotated[Path | None, typer.Option(help="Keep the demo database in this folder")] = None,
) -> None:
    """Run the whole job offline on the bundled sample data and show the result."""
    from bot.demo import run_demo

    run_demo(out, err, keep)


@contextmanager
def loading_model(settings: Settings) -> Iterator[ScoringContext]:
    """The long-running processes' model: whatever way they end (a stop signal, a refused
    token, an unreachable Slack), they first wait for a background load to finish."""
    ctx = ScoringContext.from_settings(settings)
    try:
        yield ctx
    finally:
        ctx.settle()


@app.command(rich_help_panel="Run")
def serve(
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "0.0.0.0",
) -> None:
    """The web process: Slack over HTTP (POST /slack/events), email links, web pages and feeds, /healthz."""
    import uvicorn

    from bot.processes.web import build_app

    with database() as (settings, db), loading_model(settings) as ctx:
        log_what_happens()
        web = build_app(settings, db, ctx=ctx)  # with Slack, starts loading the model in the background
        if not settings.slack_configured:
            err.print("[yellow]Slack is not configured[/yellow] (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET)")
        uvicorn.run(web, host=host, port=port, log_level="info", proxy_headers=True)


@app.command(rich_help_panel="Run")
def socket() -> None:
    """Slack over Socket Mode (no public URL needed): needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN."""
    from bot.delivery.slack.app import SlackUnreachable, connect_socket_mode, socket_handler, wait_for_stop_signal

    with database() as (settings, db), loading_model(settings) as ctx:
        log_what_happens()
        handler = socket_handler(settings, db, ctx)  # the model starts loading in the background
        try:
            connect_socket_mode(handler, settings)
        except SlackUnreachable as exc:
            raise fail(str(exc), code=1) from None  # status 1: a supervisor restarts it
        err.print("connected to Slack over Socket Mode; Ctrl-C or SIGTERM stops")
        try:
            wait_for_stop_signal(err.print)  # the connection runs in its own threads, reconnecting as Slack asks
        finally:
            handler.close()
