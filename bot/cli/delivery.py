"""`scout email`, `scout digests`: subscriptions by address, and sending what is due."""

from __future__ import annotations

import getpass
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import JSON_HELP, app, database, err, esc, fail, out, scoring_context
from bot.status import iso

email_app = typer.Typer(
    help="Email digests: subscribe an address (double opt-in), list, unsubscribe, send.", no_args_is_help=True
)


app.add_typer(email_app, name="email", rich_help_panel="Deliver")


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
    keyword: Annotated[
        list[str] | None,
        typer.Option(
            "--keyword", "-k", help='Only preprints mentioning these words ("gene drive"); repeat for any of several'
        ),
    ] = None,
    category: Annotated[
        list[str] | None, typer.Option("--category", help="Only preprints in this subject category; repeatable")
    ] = None,
) -> None:
    """Follow a profile by email; the address gets a confirmation link first (double opt-in)."""
    from bot.delivery.email.smtp import MailError
    from bot.delivery.email.subscriptions import subscribe_email
    from bot.delivery.subscriptions import Options
    from bot.fulltext import Narrowing

    with database() as (settings, db):
        options = Options(
            threshold=threshold,
            schedule=schedule,
            at_time=at,
            weekday=weekday,
            timezone=tz,
            max_items=max_items,
            narrowing=Narrowing.of(keyword or [], category or []),
        )
        try:
            result = subscribe_email(db, settings, address, profile, options, created_by="cli")
        except MailError as exc:
            raise fail(str(exc), code=1) from None
        out.print(esc(result.message), highlight=False)


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
                "confirmed_at": iso(s.confirmed_at),
                "last_run_at": iso(s.last_run_at),
                "next_run_at": iso(s.next_run_at),
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
        # The status has its own column: drop describe()'s " [status]" ending (a profile's own
        # name may hold " [" too).
        described = r["description"].rsplit(" [", 1)[0] if r["status"] != "active" else r["description"]
        table.add_row(esc(r["email"]), esc(described), esc(state), r["next_run_at"] or "")
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

    with database() as (_settings, db):
        with db.session() as session:
            ended = unsubscribe(session, Target(KIND, email=normalise_address(address)), profile)
            if not ended:
                raise fail(f"{address} has no email subscriptions{' to ' + profile if profile else ''}", code=1)
            names = ", ".join(s.profile.name for s in ended)
        # Said once it is committed: a read-only database refuses at the commit.
        out.print(f"unsubscribed {esc(normalise_address(address))} from {esc(names)}", highlight=False)


@email_app.command("send")
def email_send(
    force: Annotated[bool, typer.Option("--force", help="Send every active subscription now, due or not")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan the digests, send nothing")] = False,
) -> None:
    """Send the due email digests now (the clock does this on schedule)."""
    from bot.delivery.email.delivery import make_email_deliverer

    with database() as (settings, db):
        deliverer = make_email_deliverer(settings, db, scoring_context(settings))
        if deliverer is None:
            raise fail("SMTP_URL is not set: email digests need an SMTP server (see docs/email.md)")
        outcomes = send_due(settings, db, [deliverer], force, dry_run)
    if not outcomes:
        err.print("no email digests due")
    report(outcomes, dry_run, err)


def send_due(settings, db, deliverers: list, force: bool, dry_run: bool) -> list:
    """Every due digest of these deliverers, each claimed first (whoever else is sending)."""
    from bot.delivery.digests import Claims, run_due_digests

    return run_due_digests(db, deliverers, force=force, dry_run=dry_run, claims=Claims(db, settings.digest_lease))


def report(outcomes: list, dry_run: bool, console) -> None:
    """One line per digest, then the exit rule of `email send` and `digests run`: a run
    failed (status 1) when any digest in it failed or was paused by an error in that run,
    so a cron job or a supervisor sees a server that refused a message as well as one
    that was down."""
    for o in outcomes:
        if o.busy:
            state = "[yellow]busy[/yellow]: another sender is delivering it"
        elif o.error:
            state = f"[red]{'paused' if o.paused else 'failed'}[/red] {esc(o.error)}"
        elif o.skipped:
            state = "[dim]nothing new above the threshold[/dim]"
        else:
            state = f"{o.planned} planned" if dry_run else f"[green]sent[/green] {o.sent}"
        console.print(f"{esc(o.target)} · {esc(o.profile)}: {state}", highlight=False)
    if any(o.error or o.paused for o in outcomes):
        raise typer.Exit(1)


digests_app = typer.Typer(help="Digests to Slack channels (and email addresses).", no_args_is_help=True)


app.add_typer(digests_app, name="digests", rich_help_panel="Deliver")


@digests_app.command("run")
def digests_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan every due digest, send nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="Every subscription's digest now, due or not")] = False,
) -> None:
    """Send every digest that is due (a killed run resumes its threads with no duplicates)."""
    from bot.delivery.deliverers import build_deliverers

    with database() as (settings, db):
        deliverers = build_deliverers(settings, db, scoring_context(settings))
        if not deliverers:
            raise fail("no digest channel is configured: set SLACK_BOT_TOKEN (or OAuth) and/or SMTP_URL")
        outcomes = send_due(settings, db, deliverers, force, dry_run)
    if not outcomes:
        err.print("no digests due (--force sends every subscription's now)")
    report(outcomes, dry_run, out)


class Verdict(StrEnum):
    relevant = "relevant"
    not_relevant = "not-relevant"


@app.command(rich_help_panel="Deliver")
def vote(
    profile: Annotated[str, typer.Argument(help="Profile the preprint was matched to (case-insensitive)")],
    preprint: Annotated[str, typer.Argument(help="A stored preprint's DOI, arXiv id or link")],
    verdict: Annotated[Verdict, typer.Argument(help="relevant or not-relevant")],
    voter: Annotated[
        str | None, typer.Option("--as", help="Who votes (default: your login name); a later vote replaces theirs")
    ] = None,
) -> None:
    """Say whether a match belongs in a profile, as the Relevant / Not relevant buttons of a digest do."""
    from bot.profiles.catalog import find_profile
    from bot.profiles.votes import FROM_CLI, Voter, record_vote, vote_counts
    from bot.scores.rankings import find_preprint

    name = voter or _login_name()
    relevant = verdict is Verdict.relevant
    with database() as (_settings, db), db.session() as session:
        found = find_profile(session, profile)
        paper = find_preprint(session, preprint)
        changed = record_vote(session, found.id, paper.id, Voter(FROM_CLI, name), relevant)
        counts = vote_counts(session, found.id)
        title, profile_name = paper.title, found.name
    said = "noted" if changed else "already noted"
    out.print(
        f"{said}: {esc(name)} says {esc(title)!r} is {verdict.value.replace('-', ' ')} for {esc(profile_name)} "
        f"(readers' votes: {counts.relevant} relevant, {counts.not_relevant} not relevant)",
        highlight=False,
    )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no LOGNAME
        return "cli"
