"""`scout`: the command line. Each command is a thin shell over bot/ and scoring/."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from bot.config import Settings, SettingsError, load_settings
from bot.db import Database, DatabaseUnavailable, Feed
from bot.ingest.feeds import FeedError, display_url
from bot.ingest.http import SourceError
from bot.ingest.polling import add_feed, find_feed, poll_all, preview_feed
from bot.profiles.catalog import (
    MIN_PAPERS,
    WARN_PAPERS,
    ProfileError,
    add_profile,
    find_profile,
    paper_counts,
    read_papers,
)
from bot.render import render
from bot.scores.rankings import PreprintNotFound, match_preprint, match_text, rank_profile
from bot.scores.update import ScoringContext, is_current, update_scores
from scoring.embedder import ModelError, load_embedder
from scoring.text import one_line

app = typer.Typer(help="Preprint Scout: which new preprints belong in your journal.", no_args_is_help=True)
feeds_app = typer.Typer(help="Feeds to poll (bioRxiv, medRxiv, arXiv, any RSS/Atom).", invoke_without_command=True)
profiles_app = typer.Typer(help="Content profiles: named sets of reference papers.", invoke_without_command=True)
app.add_typer(feeds_app, name="feeds")
app.add_typer(profiles_app, name="profiles")

# soft_wrap: piped output keeps one line per sentence instead of an 80-column wrap.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
# Fields are only ever added; "version" changes if one is removed or changes meaning.
JSON_HELP = "Print stable JSON instead of text (docs/cli.md, JSON output)"

EXPECTED_ERRORS = (SettingsError, ProfileError, PreprintNotFound, ModelError, FeedError, SourceError, ValueError)


def fail(message: str, code: int = 2) -> typer.Exit:
    # The message often quotes what the user typed or a feed sent: never markup.
    err.print(f"[red]error:[/red] {_esc(message)}", highlight=False)
    return typer.Exit(code)


@contextmanager
def database() -> Iterator[tuple[Settings, Database]]:
    """Settings and a migrated database, with expected errors turned into one clear line."""
    try:
        settings = load_settings()
        db = Database(settings.database_url, connect_timeout=settings.db_connect_timeout)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    except DatabaseUnavailable as exc:
        raise fail(f"cannot open DATABASE_URL ({_safe_url(settings.database_url)}): {exc}") from None
    except Exception as exc:  # connection refused, timed out, read-only file: say which setting to fix
        raise fail(f"cannot open DATABASE_URL ({_safe_url(settings.database_url)}): {_db_reason(exc)}") from None
    try:
        yield settings, db
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    except DBAPIError as exc:  # a read-only file, a dropped connection: one line, not a traceback
        raise fail(f"database error ({_safe_url(settings.database_url)}): {_db_reason(exc)}", code=1) from None
    finally:
        db.dispose()


def _db_reason(exc: BaseException) -> str:
    """The driver's own words, on one line, without SQLAlchemy's SQL echo and help link."""
    cause = getattr(exc, "orig", None) or exc
    text = one_line(str(cause)).split(" [SQL:")[0].split(" (Background on this error")[0]
    return text[:300] or type(cause).__name__


def _safe_url(url: str) -> str:
    # Never print a password from DATABASE_URL.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def scoring_context(settings: Settings, progress: Progress | None = None) -> ScoringContext:
    def load():
        err.print(f"[dim]loading model {settings.model}…[/dim]")
        return load_embedder(settings.model)

    def bar(total: int):
        if progress is None:
            return None
        task = progress.add_task("embedding", total=total)
        return lambda n: progress.advance(task, n)

    return ScoringContext(settings.model, load, settings.background_size, bar)


@contextmanager
def progress_bar() -> Iterator[Progress | None]:
    if not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        yield progress


def run_scoring(settings: Settings, db: Database, refit: bool = False) -> None:
    with progress_bar() as progress, db.session() as session:
        report = update_scores(session, scoring_context(settings, progress), refit=refit)
    if report.profiles == 0:
        err.print("no profiles yet: nothing to score (scout profiles add NAME --papers FILE)")
        return
    what = "refitted the catalog and scored" if report.refitted else "scored"
    ece = f", calibration error {report.ece:.3f}" if report.ece is not None and report.refitted else ""
    err.print(f"{what} {report.scored} preprints against {report.profiles} profiles{ece}")


# -- setup -------------------------------------------------------------------------------


@app.command()
def init() -> None:
    """Create or upgrade the database (also done on every start)."""
    with database() as (settings, _db):
        out.print(f"database ready: {_esc(_safe_url(settings.database_url))}", highlight=False)


# -- feeds -------------------------------------------------------------------------------


@feeds_app.callback()
def feeds_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List feeds with their health."""
    if ctx.invoked_subcommand is not None:
        return
    with database() as (_settings, db), db.session() as session:
        feeds = list(session.scalars(select(Feed).order_by(Feed.id)))
        rows = [_feed_row(f) for f in feeds]
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
            f"{_esc(r['name'])}\n[dim]{_esc(r['url'])}[/dim]",
            health,
            r["last_success_at"] or "never",
            str(r["items_seen"]),
            _esc(r["last_error"] or r["last_warning"] or ""),
        )
    out.print(table)


def _feed_row(f: Feed) -> dict:
    healthy = None if f.last_polled_at is None else f.last_error is None
    return {
        "id": f.id,
        "name": f.name,
        "url": display_url(f.url),
        "healthy": healthy,
        "last_polled_at": _iso(f.last_polled_at),
        "last_success_at": _iso(f.last_success_at),
        "last_error": f.last_error,
        "last_warning": f.last_warning,
        "last_error_at": _iso(f.last_error_at),
        "consecutive_failures": f.consecutive_failures,
        "items_seen": f.items_seen,
    }


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


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
        out.print(f"feed {feed_id}: {_esc(feed_name)} ({_esc(display_url(url))}{every_text})", highlight=False)
        try:
            parsed = preview_feed(settings, url)
        except FeedError as exc:
            err.print(
                f"[yellow]warning:[/yellow] fetching it now failed: {_esc(str(exc))} (kept; retried at each poll)",
                highlight=False,
            )
            return
        out.print(f"  it says: {_esc(parsed.title)}; {len(parsed.items)} items now", highlight=False)
        for warning in parsed.warnings[:3]:
            err.print(f"   [yellow]warning:[/yellow] {_esc(warning)}", highlight=False)


@feeds_app.command("remove")
def feeds_remove(key: Annotated[str, typer.Argument(help="Feed id, URL, shortcut or name")]) -> None:
    """Stop polling a feed (its preprints stay)."""
    with database() as (_settings, db), db.session() as session:
        feed = find_feed(session, key)
        if feed is None:
            raise fail(f"no feed {one_line(key)!r}; `scout feeds` lists them")
        session.delete(feed)
        out.print(f"removed feed {_esc(feed.name)}", highlight=False)


@app.command()
def poll(no_score: Annotated[bool, typer.Option("--no-score", help="Only fetch and store")] = False) -> None:
    """Fetch every feed once, store new preprints, and score them."""
    with database() as (settings, db):
        report = poll_all(db, settings)
        if report.skipped_for:
            err.print(f"another poll is running ({_esc(report.skipped_for)}); skipped this one", highlight=False)
            return
        for r in report.feeds:
            if r.ok:
                state = "not modified" if r.not_modified else f"{r.new} new, {r.updated} updated"
                err.print(f"[green]ok[/green] {_esc(r.feed)}: {state}", highlight=False)
                for warning in r.warnings[:20]:
                    err.print(f"   [yellow]warning:[/yellow] {_esc(warning)}", highlight=False)
                if len(r.warnings) > 20:
                    err.print(f"   [yellow]warning:[/yellow] {len(r.warnings) - 20} more", highlight=False)
            else:
                err.print(f"[red]failed[/red] {_esc(r.feed)}: {_esc(r.error or '')}", highlight=False)
        if not report.feeds:
            err.print("no feeds yet: scout feeds add biorxiv:neuroscience")
        if not no_score:
            run_scoring(settings, db)
    if report.failed and len(report.failed) == len(report.feeds):
        raise typer.Exit(1)


@app.command()
def score(refit: Annotated[bool, typer.Option(help="Refit calibration and rescore everything")] = False) -> None:
    """Score stored preprints that have no scores yet (refits when profiles or model changed)."""
    with database() as (settings, db):
        run_scoring(settings, db, refit=refit)


# -- profiles ----------------------------------------------------------------------------


@profiles_app.callback()
def profiles_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List profiles with their paper counts."""
    if ctx.invoked_subcommand is not None:
        return
    with database() as (_settings, db), db.session() as session:
        rows = [{"name": p.name, "papers": n, "source": p.source} for p, n in paper_counts(session)]
    if as_json:
        out.print_json(data=rows)
        return
    if not rows:
        out.print("no profiles yet: scout profiles add NAME --papers FILE")
        return
    table = Table("profile", "papers", "source")
    for r in rows:
        table.add_row(_esc(r["name"]), str(r["papers"]), _esc(r["source"]))
    out.print(table)


@profiles_app.command("add")
def profiles_add(
    name: Annotated[str, typer.Argument(help="Profile name, e.g. a journal")],
    papers: Annotated[
        Path | None, typer.Option("--papers", help="JSONL or CSV: title, abstract[, doi, year, journal]")
    ] = None,
    from_preprints: Annotated[
        bool,
        typer.Option("--from-preprints", help="From bioRxiv/medRxiv preprints later published in the journal NAME"),
    ] = False,
    issn: Annotated[str | None, typer.Option("--issn", help="From the journal's recent articles, by ISSN")] = None,
    source: Annotated[str, typer.Option("--source", help="For --issn: crossref or openalex")] = "crossref",
    limit: Annotated[int, typer.Option(min=5, max=2000, help="At most this many papers (API sources)")] = 200,
    days: Annotated[int, typer.Option(min=1, max=3650, help="For --from-preprints: look back this many days")] = 365,
    server: Annotated[
        str | None, typer.Option("--server", help="For --from-preprints: biorxiv or medrxiv (default both)")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Rebuild a profile that exists")] = False,
    no_score: Annotated[bool, typer.Option("--no-score", help="Skip rescoring")] = False,
) -> None:
    """Add a profile: from a file of papers, from preprints published in the journal, or by ISSN."""
    chosen = [flag for flag, on in (("--papers", papers), ("--from-preprints", from_preprints), ("--issn", issn)) if on]
    if len(chosen) != 1:
        raise fail(
            ("give only one of " + ", ".join(chosen) if chosen else "say where the papers come from")
            + ": --papers FILE, --from-preprints (journal named NAME) or --issn XXXX-XXXX [--source crossref|openalex]"
        )
    with database() as (settings, db):
        if papers is not None:
            parsed = read_papers(papers)
            skipped, records, origin = parsed.skipped, parsed.papers, str(papers)
        else:
            built = _build_from_api(settings, name, from_preprints, issn, source, limit, days, server)
            skipped, records, origin = built.skipped, built.papers, built.spec.encode()
        for reason in skipped[:10]:
            err.print(f"[yellow]skipped[/yellow] {_esc(reason)}", highlight=False)
        if len(skipped) > 10:
            err.print(f"[yellow]skipped[/yellow] {len(skipped) - 10} more")
        with db.session() as session:
            profile = add_profile(session, name, records, source=origin, replace=replace)
            count = len(profile.papers)
        out.print(f"profile {_esc(profile.name)}: {count} papers", highlight=False)
        if count < WARN_PAPERS:
            err.print(
                f"[yellow]warning:[/yellow] {count} papers is thin (minimum {MIN_PAPERS}); "
                f"{WARN_PAPERS} or more give steadier scores"
            )
        if not no_score:
            run_scoring(settings, db)


def _build_from_api(settings, name, from_preprints, issn, source, limit, days, server):
    from bot.ingest.apis import Sources
    from bot.ingest.polling import http_client
    from bot.profiles.journals import papers_from_issn, papers_from_preprints

    if server is not None and server not in ("biorxiv", "medrxiv"):
        raise fail(f"--server must be biorxiv or medrxiv, not {server!r}")
    with http_client(settings) as client, progress_bar() as progress:
        sources = Sources.from_settings(settings, client)
        bar = _api_bar(progress, "journal articles" if issn else "bioRxiv/medRxiv publications")
        if issn:
            built = papers_from_issn(sources, issn, source.lower(), limit, progress=bar)
        else:
            servers = (server,) if server else ("biorxiv", "medrxiv")
            built = papers_from_preprints(sources, name, days=days, servers=servers, limit=limit, progress=bar)
    if built.journal:
        err.print(f"[dim]{len(built.papers)} papers from {built.journal}[/dim]", highlight=False)
    return built


def _api_bar(progress: Progress | None, label: str):
    """A progress callback (records done, total) over a rich task; None off a terminal."""
    if progress is None:
        return None
    task = progress.add_task(label, total=None)

    def advance(done: int, total: int | None) -> None:
        progress.update(task, advance=done, total=total)

    return advance


@profiles_app.command("refresh")
def profiles_refresh(
    name: Annotated[str | None, typer.Argument(help="Profile to refresh (default: every API-built profile)")] = None,
    no_score: Annotated[bool, typer.Option("--no-score", help="Skip rescoring")] = False,
) -> None:
    """Rebuild profiles from the API they were built from (ISSN or published preprints)."""
    from bot.ingest.apis import Sources
    from bot.ingest.polling import http_client
    from bot.profiles.journals import refresh_profiles

    with database() as (settings, db):
        with http_client(settings) as client, progress_bar() as progress:
            results = refresh_profiles(db, Sources.from_settings(settings, client), name, _api_bar(progress, "papers"))
        if not results:
            err.print("no profiles built from an API to refresh (profiles from files are rebuilt with add --replace)")
        for r in results:
            if r.error:
                err.print(f"[red]failed[/red] {_esc(r.profile)}: {_esc(r.error)} (kept its papers)", highlight=False)
            else:
                out.print(f"profile {_esc(r.profile)}: {r.papers} papers", highlight=False)
        if not no_score and any(r.error is None for r in results):
            run_scoring(settings, db)
    if results and all(r.error for r in results):
        raise typer.Exit(1)


@app.command()
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
            reports = run_plan(db, sources, plan, start, end, lambda name: _api_bar(progress, f"backfill {name}"))
        for report in reports:
            err.print(f"[green]ok[/green] {_esc(report.summary())}", highlight=False)
            for reason in report.skipped[:5]:
                err.print(f"   [yellow]skipped[/yellow] {_esc(reason)}", highlight=False)
        if not no_score:
            run_scoring(settings, db)


@profiles_app.command("show")
def profiles_show(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A profile's reference papers."""
    with database() as (_settings, db), db.session() as session:
        profile = find_profile(session, name)
        data = {
            "name": profile.name,
            "source": profile.source,
            "papers": [{"title": p.title, "year": p.year, "doi": p.doi, "journal": p.journal} for p in profile.papers],
            "votes": _votes(session, profile.id),
        }
    if as_json:
        out.print_json(data=data)
        return
    out.print(
        f"[bold]{_esc(data['name'])}[/bold]: {len(data['papers'])} papers (from {_esc(data['source'])})",
        highlight=False,
    )
    votes = data["votes"]
    out.print(f"votes from Slack: {votes['relevant']} relevant, {votes['not_relevant']} not relevant")
    table = Table("year", "title", "doi")
    for p in data["papers"]:
        table.add_row(str(p["year"] or ""), _esc(p["title"]), _esc(p["doi"] or ""))
    out.print(table)


def _votes(session, profile_id: int) -> dict:
    """Feedback from the Slack buttons on this profile's delivered matches."""
    from sqlalchemy import func

    from bot.db import Vote

    rows = dict(
        session.execute(
            select(Vote.relevant, func.count(Vote.id)).where(Vote.profile_id == profile_id).group_by(Vote.relevant)
        ).all()
    )
    return {"relevant": rows.get(True, 0), "not_relevant": rows.get(False, 0)}


@profiles_app.command("remove")
def profiles_remove(name: str) -> None:
    """Delete a profile, its papers and its scores."""
    with database() as (_settings, db), db.session() as session:
        profile = find_profile(session, name)
        session.delete(profile)
        out.print(f"removed profile {_esc(profile.name)}", highlight=False)


# -- rankings ----------------------------------------------------------------------------


@app.command()
def rank(
    name: Annotated[str, typer.Argument(help="Profile name (case-insensitive)")],
    days: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_DAYS, help="Window: preprints posted in the last N days [SCOUT_WINDOW_DAYS]"),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="How many to show")] = 20,
    until: Annotated[str | None, typer.Option(help="Window end, YYYY-MM-DD (default today)")] = None,
    abstracts: Annotated[bool, typer.Option("--abstracts", help="Show each abstract")] = False,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Preprints in the window, ranked by match to a profile."""
    end = _parse_date(until)
    with database() as (settings, db):
        days = _window(days, settings, end)
        if not _scores_current(settings, db):
            run_scoring(settings, db)
        with progress_bar() as progress, db.session() as session:
            ranking = rank_profile(session, scoring_context(settings, progress), name, days=days, top=top, until=end)
    if as_json:
        sys.stdout.write(json.dumps(ranking.to_json(), indent=2, ensure_ascii=False) + "\n")
        return
    print_ranking(ranking, abstracts)


def _scores_current(settings: Settings, db: Database) -> bool:
    with db.session() as session:
        return is_current(session, settings.model)


MAX_DAYS = 3650
EARLIEST = date(1990, 1, 1)  # before any preprint server


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"--until must be a date like 2026-05-31, not {one_line(value)!r}") from None
    if day < EARLIEST:
        raise fail(f"--until {day.isoformat()} is before any preprint server existed (earliest {EARLIEST})")
    return day


def _window(days: int | None, settings: Settings, end: date | None) -> int:
    """--days, else SCOUT_WINDOW_DAYS; never reaching before EARLIEST (date arithmetic overflows)."""
    days = days or settings.window_days
    if end is not None and (end - EARLIEST).days + 1 < days:
        raise fail(f"--days {days} before --until {end} starts before {EARLIEST}: use fewer days")
    return days


def print_ranking(ranking, abstracts: bool = False) -> None:
    out.print(_esc(render("cli/ranking_header.txt.j2", ranking=ranking)), highlight=False)
    out.print()
    if not ranking.items:
        out.print(
            "No preprints were posted in this window yet: add feeds (scout feeds add) and poll them (scout poll)."
        )
        return
    for item in ranking.items:
        link = _link_target(item.url)
        title = f"[bold]{_esc(item.title)}[/bold]"
        out.print(f"[bold]{item.rank}.[/bold] " + (f"[link={link}]{title}[/link]" if link else title), highlight=False)
        authors = ", ".join(item.authors[:6]) + (" et al." if len(item.authors) > 6 else "")
        out.print(f"   {_esc(authors) or '[dim]no authors listed[/dim]'}", highlight=False)
        out.print(
            f"   {item.posted or 'undated'} · {_esc(item.category or 'uncategorised')} · {_esc(item.server)} · "
            f"{_esc(item.doi or item.identifier)}",
            highlight=False,
        )
        out.print(
            f"   [green]{item.top_text}[/green] · match [bold]{item.score_text}[/bold] · {item.lift_text} the average",
            highlight=False,
        )
        if item.why:
            why = "; ".join(_reason(r) for r in item.why)
            out.print(f"   [dim]closest: {why}[/dim]", highlight=False)
        if abstracts:
            out.print(f"   [dim]{_esc(item.abstract)}[/dim]", highlight=False)
        out.print()


def _reason(reason) -> str:
    year = f" ({reason.year})" if reason.year else ""
    return f"{_esc(textwrap.shorten(reason.title, 70, placeholder='…'))}{year} {reason.similarity:.2f}"


def _esc(text: object) -> str:
    """Data fit to print: one line, no control characters (an ESC sequence can retitle the
    terminal), and no square brackets read as rich markup ("[/]" would crash the print)."""
    return escape(one_line(str(text)))


def _link_target(url: str | None) -> str | None:
    """A URL usable inside [link=...]: http(s), without the characters that end the tag."""
    url = one_line(url)
    if not url.startswith(("http://", "https://")) or any(c in url for c in "[] "):
        return None
    return url


@app.command()
def match(
    query: Annotated[str | None, typer.Argument(help="DOI or arXiv id of a stored preprint")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Score free text (title and abstract)")] = None,
    top: Annotated[int, typer.Option(min=1, help="How many profiles to show")] = 10,
    days: Annotated[
        int | None, typer.Option(min=1, max=MAX_DAYS, help="Window for top % and lift [SCOUT_WINDOW_DAYS]")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Window end, YYYY-MM-DD (default today)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """The profiles a preprint fits best, with match scores."""
    end = _parse_date(until)
    if (query is None) == (text is None):
        raise fail("give a DOI or arXiv id, or --text 'title and abstract'")
    with database() as (settings, db):
        days = _window(days, settings, end)
        if not _scores_current(settings, db):
            run_scoring(settings, db)
        preprint = _stored_or_fetched(settings, db, query) if text is None else None
        with db.session() as session:
            if text is not None:
                result = match_text(session, scoring_context(settings), text, limit=top)
            else:
                result = match_preprint(session, preprint, days=days, until=end, limit=top)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
        return
    out.print(f"[bold]{_esc(result.title)}[/bold]", highlight=False)
    table = Table("profile", "match", f"top % ({days} days)", "lift")
    for m in result.matches:
        table.add_row(_esc(m.profile), m.score_text, _top(m.top_share), f"{m.lift:.1f}x" if m.lift is not None else "")
    table.add_row("[dim]published elsewhere[/dim]", f"[dim]{result.background * 100:.1f}%[/dim]", "", "")
    out.print(table)


def _stored_or_fetched(settings: Settings, db: Database, query: str):
    """A stored preprint, or one fetched from the bioRxiv/medRxiv or arXiv API, stored and scored."""
    from bot.ingest.backfill import stored_or_fetched

    return stored_or_fetched(
        settings,
        db,
        query,
        score=lambda: run_scoring(settings, db),
        announce=lambda message: err.print(f"[dim]{_esc(message)}[/dim]", highlight=False),
    )


def _top(share: float | None) -> str:
    from scoring.window import format_top

    return format_top(share) if share is not None else ""


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """Feeds' health, preprints in the window, profiles, scoring, subscriptions, the active clock."""
    from bot.db import utcnow
    from bot.status import collect

    with database() as (settings, db):
        data = collect(db, settings.window_days, utcnow())
    if as_json:
        out.print_json(data=data)
        return
    out.print(f"database: {_esc(_safe_url(settings.database_url))}   model: {_esc(settings.model)}", highlight=False)
    clock = data["clock"]
    out.print(f"clock: {_esc(clock['active']) + ' (active)' if clock else 'none running'}", highlight=False)
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
        feeds.add_row(_esc(f["name"]), health, f["last_success_at"] or "never", str(f["items_seen"]), _esc(problem))
    out.print(feeds)
    names = ", ".join(f"{_esc(p['name'])} ({p['papers']})" for p in data["profiles"])
    out.print(f"profiles: {names or 'none'}", highlight=False)
    subs = Table("to", "subscription", "next run", "last digest", title="Subscriptions")
    for s in data["subscriptions"]:
        last = s["last_digest"]
        subs.add_row(
            _esc(s["target"]),
            _esc(s["description"]),
            s["next_run_at"] or "",
            f"{last['at']} {last['status']} ({last['items']})" if last else "never",
        )
    out.print(subs)


@app.command()
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

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
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


@app.command()
def evaluate(
    data: Annotated[
        Path | None, typer.Option(help="Labelled JSONL (title, abstract, journal[, category]) to cross-validate")
    ] = None,
    folds: Annotated[int, typer.Option(min=2, max=20, help="Folds, stratified by journal")] = 5,
    train: Annotated[Path | None, typer.Option(help="Training JSONL (with --test instead of --data)")] = None,
    test: Annotated[Path | None, typer.Option(help="Test JSONL")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated methods (default: all)")] = None,
    seed: Annotated[int, typer.Option(help="Fold assignment seed")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
) -> None:
    """Scoring quality: every method side by side on the same folds and embeddings."""
    from bot.scores.evaluation import evaluate_command

    code = evaluate_command(data=data, train=train, test=test, folds=folds, as_json=as_json, methods=methods, seed=seed)
    if code:
        raise typer.Exit(code)


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option(help="Keep the demo database in this folder")] = None,
) -> None:
    """Run the whole job offline on the bundled sample data and show the result."""
    from bot.demo import run_demo

    run_demo(out, err, keep)


# -- email -------------------------------------------------------------------------------

email_app = typer.Typer(
    help="Email digests: subscribe an address (double opt-in), list, unsubscribe, send.", no_args_is_help=True
)
app.add_typer(email_app, name="email")


@email_app.command("subscribe")
def email_subscribe(
    address: Annotated[str, typer.Argument(help="Email address, e.g. editor@example.org")],
    profile: Annotated[str, typer.Argument(help="Profile to follow (case-insensitive)")],
    schedule: Annotated[str, typer.Option(help="daily or weekly (or hourly)")] = "daily",
    threshold: Annotated[str | None, typer.Option(help='"top 1%" (default), "min 5%" or "lift 100"')] = None,
    at: Annotated[str, typer.Option("--at", help="Time of day, HH:MM")] = "08:00",
    weekday: Annotated[str, typer.Option(help="For weekly: monday..sunday")] = "monday",
    tz: Annotated[str, typer.Option("--timezone", help="IANA time zone, e.g. Europe/Berlin")] = "UTC",
    max_items: Annotated[int, typer.Option(min=1, max=50, help="At most this many preprints per profile")] = 20,
) -> None:
    """Follow a profile by email; the address gets a confirmation link first (double opt-in)."""
    from bot.delivery.email.smtp import MailError
    from bot.delivery.email.subscriptions import subscribe_email
    from bot.delivery.subscriptions import Options

    options = Options(
        threshold=threshold, schedule=schedule, at_time=at, weekday=weekday, timezone=tz, max_items=max_items
    )
    with database() as (settings, db):
        try:
            result = subscribe_email(db, settings, address, profile, options, created_by="cli")
        except MailError as exc:
            raise fail(str(exc), code=1) from None
        out.print(result.message, highlight=False)


@email_app.command("list")
def email_list(
    address: Annotated[str | None, typer.Argument(help="Only this address")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Email subscriptions, with their status (pending = waiting for confirmation)."""
    from bot.delivery.email.subscriptions import email_subscriptions
    from bot.delivery.subscriptions import describe

    with database() as (_settings, db), db.session() as session:
        rows = [
            {
                "id": s.id,
                "email": s.email,
                "profile": s.profile.name,
                "status": s.status,
                "status_reason": s.status_reason,
                "description": describe(s),
                "confirmed_at": _iso(s.confirmed_at),
                "last_run_at": _iso(s.last_run_at),
                "next_run_at": _iso(s.next_run_at),
            }
            for s in email_subscriptions(session, address)
        ]
    if as_json:
        out.print_json(data=rows)
        return
    if not rows:
        out.print("no email subscriptions yet: scout email subscribe ADDRESS PROFILE")
        return
    table = Table("address", "subscription", "status", "next digest")
    for r in rows:
        state = r["status"] + (f": {r['status_reason']}" if r["status_reason"] else "")
        table.add_row(r["email"], r["description"].split(" [")[0], state, r["next_run_at"] or "")
    out.print(table)


@email_app.command("unsubscribe")
def email_unsubscribe(
    address: Annotated[str, typer.Argument(help="Email address")],
    profile: Annotated[str | None, typer.Argument(help="Only this profile (default: all of them)")] = None,
) -> None:
    """Stop emailing an address (one profile, or everything)."""
    from bot.delivery.email import KIND
    from bot.delivery.email.addresses import normalise_address
    from bot.delivery.subscriptions import Target, unsubscribe

    with database() as (_settings, db), db.session() as session:
        ended = unsubscribe(session, Target(KIND, email=normalise_address(address)), profile)
        if not ended:
            raise fail(f"{address} has no email subscriptions{' to ' + profile if profile else ''}", code=1)
        names = ", ".join(s.profile.name for s in ended)
        out.print(f"unsubscribed {normalise_address(address)} from {names}", highlight=False)


@email_app.command("send")
def email_send(
    force: Annotated[bool, typer.Option("--force", help="Send every active subscription now, due or not")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan the digests, send nothing")] = False,
) -> None:
    """Send the due email digests now (the clock does this on schedule)."""
    from bot.delivery.digests import Claims, run_due_digests
    from bot.delivery.email.delivery import make_email_deliverer

    with database() as (settings, db):
        deliverer = make_email_deliverer(settings, db, scoring_context(settings))
        if deliverer is None:
            raise fail("SMTP_URL is not set: email digests need an SMTP server (see docs/email.md)")
        claims = Claims(db, settings.digest_lease)
        outcomes = run_due_digests(db, [deliverer], force=force, dry_run=dry_run, claims=claims)
    if not outcomes:
        err.print("no email digests due")
    for o in outcomes:
        if o.busy:
            state = "[yellow]busy[/yellow]: another sender is delivering it"
        elif o.error:
            state = f"[red]{'paused' if o.paused else 'failed'}[/red] {_esc(o.error)}"
        elif o.skipped:
            state = "[dim]nothing new above the threshold[/dim]"
        else:
            state = f"{o.planned} planned" if dry_run else f"[green]sent[/green] {o.sent}"
        err.print(f"{o.target} · {_esc(o.profile)}: {state}", highlight=False)
    if run_failed(outcomes):
        raise typer.Exit(1)


def run_failed(outcomes: list) -> bool:
    """The exit rule of `email send` and `digests run`: a run failed (status 1) when any
    digest in it failed or was paused by an error in that run, so a cron job or a
    supervisor sees a server that refused a message as well as one that was down."""
    return any(o.error or o.paused for o in outcomes)


# -- Slack and digests -------------------------------------------------------------------

digests_app = typer.Typer(help="Digests to Slack channels (and email addresses).", no_args_is_help=True)
app.add_typer(digests_app, name="digests")


@app.command()
def serve(
    port: Annotated[int, typer.Option(envvar="PORT", help="Port to listen on")] = 8000,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "0.0.0.0",
) -> None:
    """The web process: Slack over HTTP (POST /slack/events, OAuth install), email links, /healthz."""
    import uvicorn

    from bot.processes.web import build_app

    with database() as (settings, db):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
        web = build_app(settings, db)  # starts loading the model in the background
        if not settings.slack_configured:
            err.print("[yellow]Slack is not configured[/yellow] (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET)")
        uvicorn.run(web, host=host, port=port, log_level="info", proxy_headers=True)


@app.command()
def socket() -> None:
    """Slack over Socket Mode (no public URL needed): needs SLACK_APP_TOKEN and SLACK_BOT_TOKEN."""
    from bot.delivery.slack.app import (
        SlackUnreachable,
        connect_socket_mode,
        default_context,
        socket_handler,
        wait_for_stop_signal,
    )

    with database() as (settings, db):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
        handler = socket_handler(settings, db, default_context(settings))  # the model loads in the background
        try:
            connect_socket_mode(handler, settings)
        except SlackUnreachable as exc:
            raise fail(str(exc), code=1) from None  # status 1: a supervisor restarts it
        err.print("connected to Slack over Socket Mode; Ctrl-C or SIGTERM stops")
        try:
            wait_for_stop_signal(err.print)  # the connection runs in its own threads, reconnecting as Slack asks
        finally:
            handler.close()


@digests_app.command("run")
def digests_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan every due digest, send nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="Every subscription's digest now, due or not")] = False,
) -> None:
    """Send every digest that is due (a killed run resumes its threads with no duplicates)."""
    from bot.delivery.deliverers import build_deliverers
    from bot.delivery.digests import Claims, run_due_digests

    with database() as (settings, db):
        deliverers = build_deliverers(settings, db, scoring_context(settings))
        if not deliverers:
            raise fail("no digest channel is configured: set SLACK_BOT_TOKEN (or OAuth) and/or SMTP_URL")
        claims = Claims(db, settings.digest_lease)
        outcomes = run_due_digests(db, deliverers, force=force, dry_run=dry_run, claims=claims)
    if not outcomes:
        err.print("no digests due (--force sends every subscription's now)")
    for o in outcomes:
        if o.busy:
            state = "[yellow]busy[/yellow]: another sender is delivering it"
        elif o.paused:
            state = f"[red]paused[/red] {_esc(o.error or '')}"
        elif o.error:
            state = f"[red]failed[/red] {_esc(o.error)}"
        elif o.skipped:
            state = "[dim]nothing new above the threshold[/dim]"
        else:
            state = f"{o.planned} planned" if dry_run else f"[green]sent[/green] {o.sent}"
        out.print(f"{o.target} · {_esc(o.profile)}: {state}", highlight=False)
    if run_failed(outcomes):
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry for `python -m bot.cli`
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
