"""`scout feeds`, `scout poll`, `scout backfill`: what to follow, and fetching it."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from bot.cli.common import (
    JSON_HELP,
    api_bar,
    app,
    bar_steps,
    database,
    err,
    esc,
    fail,
    out,
    progress_bar,
    run_scoring,
)
from bot.config import display_url
from bot.db import Feed
from bot.ingest.feeds import FeedError
from bot.ingest.polling import add_feed, find_feed, poll_all, preview_feed
from bot.scores.progress import logged_steps
from bot.status import feed_health
from scoring.text import one_line

feeds_app = typer.Typer(help="Feeds to poll (bioRxiv, medRxiv, arXiv, any RSS/Atom).", invoke_without_command=True)


app.add_typer(feeds_app, name="feeds", rich_help_panel="Set up")


@feeds_app.callback()
def feeds_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List feeds with their health."""
    if ctx.invoked_subcommand is not None:
        return
    with database() as (_settings, db), db.session() as session:
        feeds = list(session.scalars(select(Feed).order_by(Feed.id)))
        rows = [feed_health(f) for f in feeds]
    if as_json:
        out.print_json(data=rows)
        return
    if not rows:
        out.print("no feeds yet: scout feeds add biorxiv:neuroscience")
        return
    table = Table("id", "name", "health", "last success", "items seen", "last error")
    for r in rows:
        health = (
            ("[green]ok[/green]" if not r["last_warning"] else "[yellow]ok, with warnings[/yellow]")
            if r["healthy"]
            else ("[dim]never polled[/dim]" if r["healthy"] is None else "[red]failing[/red]")
        )
        table.add_row(
            str(r["id"]),
            f"{esc(r['name'])}\n[dim]{esc(r['url'])}[/dim]",
            health,
            r["last_success_at"] or "never",
            str(r["items_seen"]),
            esc(r["last_error"] or r["last_warning"] or ""),
        )
    out.print(table)


@feeds_app.command("add")
def feeds_add(
    spec: Annotated[str, typer.Argument(help="URL, or biorxiv:SUBJECT, medrxiv:SUBJECT, arxiv:CATEGORY[+CATEGORY]")],
    name: Annotated[str | None, typer.Option(help="Display name")] = None,
    every: Annotated[
        int | None, typer.Option(min=1, max=1440, help="Minutes between polls (default SCOUT_POLL_MINUTES)")
    ] = None,
) -> None:
    """Add a feed to poll (again: change its name or interval); it is fetched once to show what it holds."""
    with database() as (settings, db):
        with db.session() as session:
            feed = add_feed(session, spec, settings, name, every)
            every_text = f", every {feed.poll_minutes} min" if feed.poll_minutes else ""
            feed_id, feed_name, url = feed.id, feed.name, feed.url
        out.print(f"feed {feed_id}: {esc(feed_name)} ({esc(display_url(url))}{every_text})", highlight=False)
        try:
            parsed = preview_feed(settings, url)
        except FeedError as exc:
            err.print(
                f"[yellow]warning:[/yellow] fetching it now failed: {esc(str(exc))} (kept; retried at each poll)",
                highlight=False,
            )
            return
        out.print(f"  it says: {esc(parsed.title)}; {len(parsed.items)} items now", highlight=False)
        for warning in parsed.warnings[:3]:
            err.print(f"   [yellow]warning:[/yellow] {esc(warning)}", highlight=False)


@feeds_app.command("remove")
def feeds_remove(key: Annotated[str, typer.Argument(help="Feed id, URL, shortcut or name")]) -> None:
    """Stop polling a feed (its preprints stay)."""
    with database() as (_settings, db):
        with db.session() as session:
            feed = find_feed(session, key)
            if feed is None:
                raise fail(f"no feed {one_line(key)!r}; `scout feeds` lists them")
            removed = feed.name
            session.delete(feed)
        # Said once it is committed: a read-only database refuses at the commit.
        out.print(f"removed feed {esc(removed)}", highlight=False)


@app.command(rich_help_panel="Fetch and score")
def poll(no_score: Annotated[bool, typer.Option("--no-score", help="Only fetch and store")] = False) -> None:
    """Fetch every feed once, store new preprints, and score them."""
    with database() as (settings, db):
        with progress_bar() as progress:
            report = poll_all(db, settings, progress=bar_steps(progress) if progress else logged_steps())
        if report.skipped_for:
            err.print(f"another poll is running ({esc(report.skipped_for)}); skipped this one", highlight=False)
            return
        for r in report.feeds:
            if r.ok:
                state = "not modified" if r.not_modified else f"{r.new} new, {r.updated} updated"
                err.print(f"[green]ok[/green] {esc(r.feed)}: {state}", highlight=False)
                for warning in r.warnings[:20]:
                    err.print(f"   [yellow]warning:[/yellow] {esc(warning)}", highlight=False)
                if len(r.warnings) > 20:
                    err.print(f"   [yellow]warning:[/yellow] {len(r.warnings) - 20} more", highlight=False)
            else:
                err.print(f"[red]failed[/red] {esc(r.feed)}: {esc(r.error or '')}", highlight=False)
        if not report.feeds:
            err.print("no feeds yet: scout feeds add biorxiv:neuroscience")
        if not no_score:
            run_scoring(settings, db)
    if report.failed and len(report.failed) == len(report.feeds):
        raise typer.Exit(1)


@app.command(rich_help_panel="Fetch and score")
def backfill(
    days: Annotated[int, typer.Option(min=1, max=3650, help="Backfill the last N days")] = 90,
    server: Annotated[
        str | None, typer.Option("--server", help="biorxiv, medrxiv or arxiv (default: what the feeds follow)")
    ] = None,
    all_subjects: Annotated[
        bool, typer.Option("--all-subjects", help="Every bioRxiv/medRxiv subject, not only the feeds' subjects")
    ] = False,
    no_score: Annotated[bool, typer.Option("--no-score", help="Only fetch and store")] = False,
) -> None:
    """Fetch every preprint of the last N days from the APIs (resumes where a run stopped)."""
    from datetime import timedelta

    from bot.ingest.apis import Sources
    from bot.ingest.backfill import Plan, feed_plan, run_plan
    from bot.ingest.polling import http_client

    if server is not None and server not in ("biorxiv", "medrxiv", "arxiv"):
        raise fail(f"--server must be biorxiv, medrxiv or arxiv, not {server!r}")
    with database() as (settings, db):
        plan = feed_plan(db, settings)
        if not plan.servers and not plan.arxiv:
            plan = Plan({"biorxiv": None, "medrxiv": None})
        if server == "arxiv":
            if not plan.arxiv:
                raise fail("no arXiv feeds: add one first (scout feeds add arxiv:cs.LG), it names the categories")
            plan = Plan({}, plan.arxiv)
        elif server is not None:
            plan = Plan({server: plan.servers.get(server)})
        if all_subjects:
            plan = Plan({s: None for s in plan.servers}, plan.arxiv)
        end = date.today()
        start = end - timedelta(days=days)
        with http_client(settings) as client, progress_bar() as progress:
            sources = Sources.from_settings(settings, client)
            reports = run_plan(db, sources, plan, start, end, lambda name: api_bar(progress, f"backfill {name}"))
        for report in reports:
            err.print(f"[green]ok[/green] {esc(report.summary())}", highlight=False)
            for reason in report.skipped[:5]:
                err.print(f"   [yellow]skipped[/yellow] {esc(reason)}", highlight=False)
        if not no_score:
            run_scoring(settings, db)
