"""`scout score`, `scout rank`, `scout match`, `scout evaluate`: scores and what they say."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import (
    JSON_HELP,
    MAX_DAYS,
    _parse_date,
    _window,
    app,
    database,
    err,
    esc,
    fail,
    out,
    progress_bar,
    run_scoring,
    scoring_context,
)
from bot.config import Settings, load_settings
from bot.db import Database
from bot.render import render
from bot.scores.rankings import match_preprint, match_text, rank_profile
from bot.scores.update import is_current, vectors_key
from scoring.errors import ScoutError
from scoring.text import one_line


@app.command(rich_help_panel="Fetch and score")
def score(refit: Annotated[bool, typer.Option(help="Refit calibration and rescore everything")] = False) -> None:
    """Score stored preprints that have no scores yet (refits when profiles or model changed)."""
    with database() as (settings, db):
        run_scoring(settings, db, refit=refit)


@app.command(rich_help_panel="Ask")
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
        return is_current(session, vectors_key(settings))


def print_ranking(ranking, abstracts: bool = False) -> None:
    out.print(esc(render("cli/ranking_header.txt.j2", ranking=ranking)), highlight=False)
    out.print()
    if not ranking.items:
        out.print(
            "No preprints were posted in this window yet: add feeds (scout feeds add) and poll them (scout poll)."
        )
        return
    for item in ranking.items:
        authors = ", ".join(item.authors[:6]) + (" et al." if len(item.authors) > 6 else "")
        context = {"item": item, "link": _link_target(item.url), "authors": authors, "abstracts": abstracts}
        out.print(render("cli/ranking_item.txt.j2", **context), highlight=False)
        out.print()


def _link_target(url: str | None) -> str | None:
    """A URL usable inside [link=...]: http(s), without the characters that end the tag."""
    url = one_line(url)
    if not url.startswith(("http://", "https://")) or any(c in url for c in "[] "):
        return None
    return url


@app.command(rich_help_panel="Ask")
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
    out.print(f"[bold]{esc(result.title)}[/bold]", highlight=False)
    table = Table("profile", "match", f"top % ({days} days)", "lift")
    for m in result.matches:
        table.add_row(esc(m.profile), m.score_text, _top(m.top_share), f"{m.lift:.1f}x" if m.lift is not None else "")
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
        announce=lambda message: err.print(f"[dim]{esc(message)}[/dim]", highlight=False),
    )


def _top(share: float | None) -> str:
    from scoring.window import format_top

    return format_top(share) if share is not None else ""


@app.command(rich_help_panel="Measure")
def evaluate(
    data: Annotated[
        Path | None, typer.Option(help="Labelled JSONL (title, abstract, journal[, category]) to cross-validate")
    ] = None,
    folds: Annotated[int, typer.Option(min=2, max=20, help="Folds, stratified by journal")] = 5,
    train: Annotated[Path | None, typer.Option(help="Training JSONL (with --test instead of --data)")] = None,
    test: Annotated[Path | None, typer.Option(help="Test JSONL")] = None,
    methods: Annotated[str | None, typer.Option(help="Comma-separated methods (default: all)")] = None,
    seed: Annotated[int, typer.Option(help="Fold assignment seed")] = 0,
    model: Annotated[str | None, typer.Option(help="Embedding model (default: SCOUT_MODEL)")] = None,
    cache: Annotated[Path, typer.Option(help="Folder of cached embeddings, one file per model")] = Path(
        ".cache/embeddings"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the Markdown tables of docs/results.md")] = False,
) -> None:
    """Scoring quality: every method side by side on the same folds and embeddings."""
    from bot.scores import evaluation

    try:
        settings = load_settings()
        results, setup = evaluation.evaluate_files(
            data=data,
            train=train,
            test=test,
            folds=folds,
            methods=methods,
            seed=seed,
            model=model or settings.model,
            cache_dir=cache,
            err=err,
            backend=settings.backend,
            model_cache=settings.model_cache_dir,
        )
    except ScoutError as exc:
        raise fail(str(exc)) from None
    if as_json:
        print(evaluation.as_json(results, setup))
    elif markdown:
        print(evaluation.as_markdown(results, setup))
    else:
        evaluation.print_table(results, setup, out)
