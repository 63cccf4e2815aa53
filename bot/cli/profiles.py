"""`scout profiles`: content profiles, from files or from the APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import JSON_HELP, api_bar, app, database, err, esc, fail, out, progress_bar, run_scoring
from bot.profiles.catalog import (
    MIN_PAPERS,
    WARN_PAPERS,
    add_profile,
    find_profile,
    paper_counts,
    read_papers,
    set_workspace,
)
from bot.profiles.votes import vote_changes, vote_counts

profiles_app = typer.Typer(help="Content profiles: named sets of reference papers.", invoke_without_command=True)


app.add_typer(profiles_app, name="profiles", rich_help_panel="Set up")


@profiles_app.callback()
def profiles_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False) -> None:
    """List profiles with their paper counts and the Slack workspace that owns each ("shared": every workspace)."""
    if ctx.invoked_subcommand is not None:
        return
    with database() as (_settings, db), db.session() as session:
        rows = [
            {"name": p.name, "papers": n, "source": p.source, "workspace": p.team_id or None}
            for p, n in paper_counts(session)
        ]
    if as_json:
        out.print_json(data=rows)
        return
    if not rows:
        out.print("no profiles yet: scout profiles add NAME --papers FILE")
        return
    table = Table("profile", "papers", "workspace", "source")
    for r in rows:
        table.add_row(esc(r["name"]), str(r["papers"]), esc(_owner(r["workspace"])), esc(r["source"]))
    out.print(table)


def _owner(team_id: str | None) -> str:
    return team_id or "shared"


WORKSPACE_HELP = (
    "The Slack workspace that owns the profile (its id, e.g. T0123ABCD): only that workspace sees it in "
    "Slack, and its web page opens only with its secret link. Default: shared by every workspace. With "
    "--replace, given changes the owner and omitted keeps it"
)


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
    workspace: Annotated[str | None, typer.Option("--workspace", help=WORKSPACE_HELP)] = None,
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
            err.print(f"[yellow]skipped[/yellow] {esc(reason)}", highlight=False)
        if len(skipped) > 10:
            err.print(f"[yellow]skipped[/yellow] {len(skipped) - 10} more")
        with db.session() as session:
            profile = add_profile(session, name, records, source=origin, replace=replace, team_id=workspace or "")
            if workspace is not None and profile.team_id != workspace.strip().upper():  # replaced: a new owner
                _report_ended(set_workspace(session, profile, workspace), profile.team_id)
            count, owner = len(profile.papers), profile.team_id
        owned = f" (workspace {owner}: only it sees the profile)" if owner else ""
        out.print(f"profile {esc(profile.name)}: {count} papers{owned}", highlight=False)
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
        bar = api_bar(progress, "journal articles" if issn else "bioRxiv/medRxiv publications")
        if issn:
            built = papers_from_issn(sources, issn, source.lower(), limit, progress=bar)
        else:
            servers = (server,) if server else ("biorxiv", "medrxiv")
            built = papers_from_preprints(sources, name, days=days, servers=servers, limit=limit, progress=bar)
    if built.journal:
        err.print(f"[dim]{len(built.papers)} papers from {built.journal}[/dim]", highlight=False)
    return built


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
            results = refresh_profiles(db, Sources.from_settings(settings, client), name, api_bar(progress, "papers"))
        if not results:
            err.print("no profiles built from an API to refresh (profiles from files are rebuilt with add --replace)")
        for r in results:
            if r.error:
                err.print(f"[red]failed[/red] {esc(r.profile)}: {esc(r.error)} (kept its papers)", highlight=False)
            else:
                out.print(f"profile {esc(r.profile)}: {r.papers} papers", highlight=False)
        if not no_score and any(r.error is None for r in results):
            run_scoring(settings, db)
    if results and all(r.error for r in results):
        raise typer.Exit(1)


@profiles_app.command("show")
def profiles_show(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """A profile's reference papers."""
    with database() as (settings, db), db.session() as session:
        profile = find_profile(session, name)
        data = {
            "name": profile.name,
            "workspace": profile.team_id or None,
            "source": profile.source,
            "web_page": _web_page(settings, profile),
            "papers": [{"title": p.title, "year": p.year, "doi": p.doi, "journal": p.journal} for p in profile.papers],
            "votes": vote_counts(session, profile.id).as_dict(),
            "voted": [change.as_dict() for change in vote_changes(session, profile.id)],
        }
    if as_json:
        out.print_json(data=data)
        return
    out.print(
        f"[bold]{esc(data['name'])}[/bold]: {len(data['papers'])} papers (from {esc(data['source'])})",
        highlight=False,
    )
    out.print(f"workspace: {esc(_owner(data['workspace']))}", highlight=False)
    if data["web_page"]:
        out.print(f"web page: {esc(data['web_page'])}", highlight=False, soft_wrap=True)
    votes = data["votes"]
    out.print(f"readers' votes: {votes['relevant']} relevant, {votes['not_relevant']} not relevant")
    for change in data["voted"]:
        out.print(
            f"  {change['effect']}: {esc(change['title'])} ({esc(change['identifier'])}; "
            f"{change['relevant']} relevant, {change['not_relevant']} not)",
            highlight=False,
        )
    table = Table("year", "title", "doi")
    for p in data["papers"]:
        table.add_row(str(p["year"] or ""), esc(p["title"]), esc(p["doi"] or ""))
    out.print(table)


def _web_page(settings, profile) -> str | None:
    """The link to the profile's page as `scout serve` serves it (its secret link under
    SCOUT_WEB_ACCESS=token, and always for a workspace's profile); none when the pages are
    off or no link can be made."""
    from bot.config import SettingsError
    from bot.web.access import profile_url

    try:
        return profile_url(settings, profile.id, profile.name, profile.team_id)
    except SettingsError as exc:
        err.print(f"[yellow]no web link:[/yellow] {esc(str(exc))}", highlight=False)
        return None


@profiles_app.command("workspace")
def profiles_workspace(
    name: Annotated[str, typer.Argument(help="Profile name (case-insensitive)")],
    team_id: Annotated[
        str | None, typer.Argument(help="The Slack workspace id that is to own it, e.g. T0123ABCD")
    ] = None,
    shared: Annotated[bool, typer.Option("--shared", help="Share it with every workspace again")] = False,
) -> None:
    """Give a profile to one Slack workspace, or share it with every workspace again.

    Other workspaces then no longer see it; their subscriptions to it end (their channels'
    digests, and email digests their users started with /scout email)."""
    if team_id is not None and shared:
        raise fail("give a workspace id or --shared, not both")
    if team_id is None and not shared:
        raise fail("give the workspace id that is to own it (scout profiles workspace NAME T0123ABCD) or --shared")
    with database() as (_settings, db), db.session() as session:
        profile = find_profile(session, name)
        ended = set_workspace(session, profile, "" if shared else team_id or "")
        owner = profile.team_id
        _report_ended(ended, owner)
    said = f"belongs to workspace {owner}" if owner else "is shared by every workspace"
    out.print(f"profile {esc(profile.name)} {said}", highlight=False)


def _report_ended(ended: list, owner: str) -> None:
    for sub in ended:
        who = f"Slack workspace {sub.team_id}, channel {sub.channel_id}" if sub.kind == "slack" else sub.email
        err.print(
            f"[yellow]ended[/yellow] the subscription of {esc(who)}: {owner} owns the profile now", highlight=False
        )


@profiles_app.command("remove")
def profiles_remove(name: str) -> None:
    """Delete a profile, its papers and its scores."""
    with database() as (_settings, db):
        with db.session() as session:
            profile = find_profile(session, name)
            removed = profile.name
            session.delete(profile)
        # Said once it is committed: a read-only database refuses at the commit.
        out.print(f"removed profile {esc(removed)}", highlight=False)
