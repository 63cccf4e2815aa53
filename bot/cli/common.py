"""What every command shares: the consoles, the one error exit, the database, scoring, progress and dates."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from bot.config import Settings, SettingsError, display_url, load_settings
from bot.db import Database, DatabaseUnavailable
from bot.render import terminal_text
from bot.scores.update import ScoringContext, update_scores
from scoring.errors import ScoutError
from scoring.progress import Advance, Steps
from scoring.text import one_line

# --help lists the panels in the order of the pipeline: set up, fetch, ask, deliver, run.
PANELS = ("Set up", "Fetch and score", "Ask", "Deliver", "Run", "Measure")


class PipelineOrder(TyperGroup):
    """Typer lists a group's commands before its sub-groups (feeds, profiles, digests,
    email), which would put "Fetch and score" above "Set up"; order by panel instead,
    keeping the order of definition within one."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        def panel(name: str) -> int:
            title = getattr(self.commands[name], "rich_help_panel", None)
            return PANELS.index(title) if title in PANELS else len(PANELS)

        return sorted(super().list_commands(ctx), key=panel)


app = typer.Typer(
    cls=PipelineOrder, help="Preprint Scout: which new preprints belong in your journal.", no_args_is_help=True
)


# soft_wrap: piped output keeps one line per sentence instead of an 80-column wrap.
out = Console(soft_wrap=True)


err = Console(stderr=True, soft_wrap=True)


# Fields are only ever added; "version" changes if one is removed or changes meaning.
JSON_HELP = "Print stable JSON instead of text (docs/cli.md, JSON output)"


def log_what_happens() -> None:
    """The long-running processes (clock, web, socket) log each thing they do as one line on
    stderr, time first, for a supervisor's log."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    # The message often quotes what the user typed or a feed sent: never markup.
    err.print(f"[red]error:[/red] {esc(message)}", highlight=False)
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
        raise fail(f"cannot open DATABASE_URL ({display_url(settings.database_url)}): {exc}") from None
    except Exception as exc:  # connection refused, timed out, read-only file: say which setting to fix
        raise fail(f"cannot open DATABASE_URL ({display_url(settings.database_url)}): {_db_reason(exc)}") from None
    try:
        yield settings, db
    except ScoutError as exc:  # said for a person; anything else is a bug and shows its traceback
        raise fail(str(exc)) from None
    except DBAPIError as exc:  # a read-only file, a dropped connection: one line, not a traceback
        raise fail(f"database error ({display_url(settings.database_url)}): {_db_reason(exc)}", code=1) from None
    finally:
        db.dispose()


def _db_reason(exc: BaseException) -> str:
    """The driver's own words, on one line, without SQLAlchemy's SQL echo and help link."""
    cause = getattr(exc, "orig", None) or exc
    text = one_line(str(cause)).split(" [SQL:")[0].split(" (Background on this error")[0]
    return text[:300] or type(cause).__name__


def scoring_context(settings: Settings, progress: Progress | None = None) -> ScoringContext:
    """The configured model, announced on stderr when it loads; long steps (embedding,
    fitting, scoring, writing) as bars on a terminal, else as log lines now and then."""

    return ScoringContext.from_settings(
        settings, lambda message: err.print(f"[dim]{esc(message)}[/dim]"), bar_steps(progress) if progress else None
    )


def bar_steps(progress: Progress) -> Steps:
    """Long steps (scoring.progress) as bars of one rich Progress."""

    def step(name: str, total: int) -> Advance:
        task = progress.add_task(name, total=total)
        return lambda n: progress.advance(task, n)

    return step


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


def api_bar(progress: Progress | None, label: str):
    """A progress callback (records done, total) over a rich task; None off a terminal."""
    if progress is None:
        return None
    task = progress.add_task(label, total=None)

    def advance(done: int, total: int | None) -> None:
        progress.update(task, advance=done, total=total)

    return advance


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


def esc(text: object) -> str:
    """Data fit to print: one line, no control characters (an ESC sequence can retitle the
    terminal), and no square brackets read as rich markup ("[/]" would crash the print).
    Templates do the same with |term."""
    return terminal_text(text)
