"""`scout`: the command line. Each command is a thin shell over bot/ and scoring/."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import select

from bot.config import Settings, SettingsError, load_settings
from bot.db import Database, Feed
from bot.feeds import FeedError
from bot.polling import add_feed, find_feed, poll_all
from bot.profiles import MIN_PAPERS, WARN_PAPERS, ProfileError, add_profile, find_profile, paper_counts, read_papers
from bot.rankings import PreprintNotFound, find_preprint, match_preprint, match_text, rank_profile
from bot.render import render
from bot.scores import ScoringContext, is_current, latest_run, update_scores
from scoring.embedder import ModelError, load_embedder

app = typer.Typer(help="Preprint Scout: which new preprints belong in your journal.", no_args_is_help=True)
feeds_app = typer.Typer(help="Feeds to poll (bioRxiv, medRxiv, arXiv, any RSS/Atom).", invoke_without_command=True)
profiles_app = typer.Typer(help="Content profiles: named sets of reference papers.", invoke_without_command=True)
app.add_typer(feeds_app, name="feeds")
app.add_typer(profiles_app, name="profiles")

# soft_wrap: piped output keeps one line per sentence instead of an 80-column wrap.
out = Console(soft_wrap=True)
err = Console(stderr=True)

EXPECTED_ERRORS = (SettingsError, ProfileError, PreprintNotFound, ModelError, FeedError, ValueError)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def database() -> Iterator[tuple[Settings, Database]]:
    """Settings and a migrated database, with expected errors turned into one clear line."""
    try:
        settings = load_settings()
        db = Database(settings.database_url)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    except Exception as exc:  # connection refused, bad path: say which setting to fix
        raise fail(f"cannot open DATABASE_URL ({_safe_url(settings.database_url)}): {exc}") from None
    try:
        yield settings, db
    except EXPECTED_ERRORS as exc:
        raise fail(str(exc)) from None
    finally:
        db.dispose()


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
        out.print(f"database ready: {_safe_url(settings.database_url)}")


# -- feeds -------------------------------------------------------------------------------


@feeds_app.callback()
def feeds_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
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
            "[green]ok[/green]"
            if r["healthy"]
            else ("[dim]never polled[/dim]" if r["healthy"] is None else "[red]failing[/red]")
        )
        table.add_row(
            str(r["id"]),
            f"{r['name']}\n[dim]{r['url']}[/dim]",
            health,
            r["last_success_at"] or "never",
            str(r["items_seen"]),
            r["last_error"] or "",
        )
    out.print(table)


def _feed_row(f: Feed) -> dict:
    healthy = None if f.last_polled_at is None else f.last_error is None
    return {
        "id": f.id,
        "name": f.name,
        "url": f.url,
        "healthy": healthy,
        "last_polled_at": _iso(f.last_polled_at),
        "last_success_at": _iso(f.last_success_at),
        "last_error": f.last_error,
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
) -> None:
    """Add a feed to poll."""
    with database() as (settings, db), db.session() as session:
        feed = add_feed(session, spec, settings, name)
        out.print(f"feed {feed.id}: {feed.name} ({feed.url})")


@feeds_app.command("remove")
def feeds_remove(key: Annotated[str, typer.Argument(help="Feed id, URL, shortcut or name")]) -> None:
    """Stop polling a feed (its preprints stay)."""
    with database() as (_settings, db), db.session() as session:
        feed = find_feed(session, key)
        if feed is None:
            raise fail(f"no feed {key!r}; `scout feeds` lists them")
        session.delete(feed)
        out.print(f"removed feed {feed.name}")


@app.command()
def poll(no_score: Annotated[bool, typer.Option("--no-score", help="Only fetch and store")] = False) -> None:
    """Fetch every feed once, store new preprints, and score them."""
    with database() as (settings, db):
        report = poll_all(db, settings)
        for r in report.feeds:
            if r.ok:
                state = "not modified" if r.not_modified else f"{r.new} new, {r.updated} updated"
                err.print(f"[green]ok[/green] {r.feed}: {state}")
                for warning in r.warnings:
                    err.print(f"   [yellow]warning:[/yellow] {warning}")
            else:
                err.print(f"[red]failed[/red] {r.feed}: {r.error}")
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
def profiles_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
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
        table.add_row(r["name"], str(r["papers"]), r["source"])
    out.print(table)


@profiles_app.command("add")
def profiles_add(
    name: Annotated[str, typer.Argument(help="Profile name, e.g. a journal")],
    papers: Annotated[Path, typer.Option("--papers", help="JSONL or CSV: title, abstract[, doi, year, journal]")],
    replace: Annotated[bool, typer.Option(help="Rebuild a profile that exists")] = False,
    no_score: Annotated[bool, typer.Option("--no-score", help="Skip rescoring")] = False,
) -> None:
    """Add a profile from a file of papers."""
    with database() as (settings, db):
        parsed = read_papers(papers)
        for reason in parsed.skipped[:10]:
            err.print(f"[yellow]skipped[/yellow] {reason}")
        with db.session() as session:
            profile = add_profile(session, name, parsed.papers, source=str(papers), replace=replace)
            count = len(profile.papers)
        out.print(f"profile {profile.name}: {count} papers")
        if count < WARN_PAPERS:
            err.print(
                f"[yellow]warning:[/yellow] {count} papers is thin (minimum {MIN_PAPERS}); "
                f"{WARN_PAPERS} or more give steadier scores"
            )
        if not no_score:
            run_scoring(settings, db)


@profiles_app.command("show")
def profiles_show(
    name: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A profile's reference papers."""
    with database() as (_settings, db), db.session() as session:
        profile = find_profile(session, name)
        data = {
            "name": profile.name,
            "source": profile.source,
            "papers": [{"title": p.title, "year": p.year, "doi": p.doi, "journal": p.journal} for p in profile.papers],
        }
    if as_json:
        out.print_json(data=data)
        return
    out.print(f"[bold]{data['name']}[/bold]: {len(data['papers'])} papers (from {data['source']})")
    table = Table("year", "title", "doi")
    for p in data["papers"]:
        table.add_row(str(p["year"] or ""), p["title"], p["doi"] or "")
    out.print(table)


@profiles_app.command("remove")
def profiles_remove(name: str) -> None:
    """Delete a profile, its papers and its scores."""
    with database() as (_settings, db), db.session() as session:
        profile = find_profile(session, name)
        session.delete(profile)
        out.print(f"removed profile {profile.name}")


# -- rankings ----------------------------------------------------------------------------


@app.command()
def rank(
    name: Annotated[str, typer.Argument(help="Profile name (case-insensitive)")],
    days: Annotated[int, typer.Option(min=1, help="Window: preprints posted in the last N days")] = 90,
    top: Annotated[int, typer.Option(min=1, help="How many to show")] = 20,
    until: Annotated[str | None, typer.Option(help="Window end, YYYY-MM-DD (default today)")] = None,
    abstracts: Annotated[bool, typer.Option("--abstracts", help="Show each abstract")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON (see README)")] = False,
) -> None:
    """Preprints in the window, ranked by match to a profile."""
    end = _parse_date(until)
    with database() as (settings, db):
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


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"--until must be a date like 2026-05-31, not {value!r}") from None


def print_ranking(ranking, abstracts: bool = False) -> None:
    out.print(render("cli/ranking_header.txt.j2", ranking=ranking), highlight=False)
    out.print()
    if not ranking.items:
        out.print(
            "No preprints were posted in this window yet: add feeds (scout feeds add) and poll them (scout poll)."
        )
        return
    for item in ranking.items:
        out.print(f"[bold]{item.rank}.[/bold] [link={item.url}][bold]{_esc(item.title)}[/bold][/link]", highlight=False)
        authors = ", ".join(item.authors[:6]) + (" et al." if len(item.authors) > 6 else "")
        out.print(f"   {_esc(authors) or '[dim]no authors listed[/dim]'}", highlight=False)
        out.print(
            f"   {item.posted or 'undated'} · {_esc(item.category or 'uncategorised')} · {item.server} · "
            f"{_esc(item.doi or item.identifier)}",
            highlight=False,
        )
        out.print(
            f"   [green]{item.top_text}[/green] · match [bold]{item.score_text}[/bold] · {item.lift_text} the average",
            highlight=False,
        )
        if item.why:
            why = "; ".join(
                f"{_esc(r.title[:70])}{f' ({r.year})' if r.year else ''} {r.similarity:.2f}" for r in item.why
            )
            out.print(f"   [dim]closest: {why}[/dim]", highlight=False)
        if abstracts:
            out.print(f"   [dim]{_esc(item.abstract)}[/dim]", highlight=False)
        out.print()


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@app.command()
def match(
    query: Annotated[str | None, typer.Argument(help="DOI or arXiv id of a stored preprint")] = None,
    text: Annotated[str | None, typer.Option("--text", help="Score free text (title and abstract)")] = None,
    top: Annotated[int, typer.Option(min=1, help="How many profiles to show")] = 10,
    days: Annotated[int, typer.Option(min=1, help="Window for top % and lift")] = 90,
    until: Annotated[str | None, typer.Option(help="Window end, YYYY-MM-DD (default today)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Stable JSON (see README)")] = False,
) -> None:
    """The profiles a preprint fits best, with match scores."""
    end = _parse_date(until)
    if (query is None) == (text is None):
        raise fail("give a DOI or arXiv id, or --text 'title and abstract'")
    with database() as (settings, db):
        if not _scores_current(settings, db):
            run_scoring(settings, db)
        with db.session() as session:
            if text is not None:
                result = match_text(session, scoring_context(settings), text, limit=top)
            else:
                result = match_preprint(session, find_preprint(session, query), days=days, until=end, limit=top)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
        return
    out.print(f"[bold]{_esc(result.title)}[/bold]", highlight=False)
    table = Table("profile", "match", f"top % ({days} days)", "lift")
    for m in result.matches:
        table.add_row(m.profile, m.score_text, _top(m.top_share), f"{m.lift:.1f}x" if m.lift is not None else "")
    table.add_row("[dim]published elsewhere[/dim]", f"[dim]{result.background * 100:.1f}%[/dim]", "", "")
    out.print(table)


def _top(share: float | None) -> str:
    from scoring.window import format_top

    return format_top(share) if share is not None else ""


@app.command()
def status() -> None:
    """What is stored: feeds, preprints, profiles, the scoring model."""
    from sqlalchemy import func

    from bot.db import Preprint, Profile

    with database() as (settings, db), db.session() as session:
        run = latest_run(session)
        out.print(f"database: {_safe_url(settings.database_url)}")
        out.print(f"model: {settings.model}")
        out.print(f"feeds: {session.scalar(select(func.count(Feed.id)))}")
        out.print(f"preprints: {session.scalar(select(func.count(Preprint.id)))}")
        out.print(f"profiles: {session.scalar(select(func.count(Profile.id)))}")
        if run:
            out.print(
                f"scoring: fitted {_iso(run.created_at)} on {run.reference_papers} papers, "
                f"{len(run.background_ids)} background preprints, ECE {run.ece:.3f}"
            )


@app.command()
def demo(
    keep: Annotated[Path | None, typer.Option(help="Keep the demo database in this folder")] = None,
) -> None:
    """Run the whole job offline on the bundled sample data and show the result."""
    from bot.demo import run_demo

    run_demo(out, err, keep)


def main() -> None:  # pragma: no cover - console entry for `python -m bot.cli`
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
