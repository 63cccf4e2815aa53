"""What `/scout` answers: each parsed command -> a Slack message (dict for respond()).

No Bolt here: the listeners in app.py ack, call `answer`, and send what it returns.
Expected errors (unknown profile, bad threshold, unknown preprint) become a message
that says what would work; they never reach the user as a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.config import Settings
from bot.db import Database, Preprint
from bot.delivery.digests import ScheduleError
from bot.delivery.email.addresses import require_email_settings
from bot.delivery.email.subscriptions import subscribe_email_from_slack
from bot.delivery.slack import blocks
from bot.delivery.slack.commands import (
    DEFAULT_DAYS,
    Command,
    Email,
    Help,
    ListProfiles,
    ListSubscriptions,
    MatchId,
    MatchText,
    Rank,
    Subscribe,
    Unsubscribe,
    usage_text,
)
from bot.delivery.subscriptions import Options, Target, describe, subscribe, subscriptions_for, unsubscribe
from bot.ingest.backfill import stored_or_fetched
from bot.profiles.catalog import (
    ProfileError,
    Scope,
    closest_names,
    find_profile,
    normalise_name,
    paper_counts,
    visible_profile,
    workspace_scope,
)
from bot.profiles.votes import Voter, record_vote
from bot.render import render
from bot.scores.rankings import PreprintNotFound, match_preprint, match_text, rank_profile
from bot.scores.update import ScoringContext, update_scores
from bot.web.access import WebLinks
from scoring.errors import InputError, ScoutError
from scoring.thresholds import ThresholdError

EXPECTED = (ProfileError, PreprintNotFound, ThresholdError, ScheduleError)


@dataclass(frozen=True)
class Where:
    """Who asked, from where: the workspace scopes everything."""

    team_id: str
    channel_id: str
    user_id: str

    @property
    def target(self) -> Target:
        return Target("slack", team_id=self.team_id, channel_id=self.channel_id)

    @property
    def scope(self) -> Scope:
        """The profiles this workspace may name and see: the shared ones and its own."""
        return workspace_scope(self.team_id)


def help_message(problem: str | None = None) -> dict:
    return blocks.message("help", problem=problem, usage=usage_text())


def error_message(text: str) -> dict:
    return blocks.notice(":warning: " + blocks.escape(text))


def answer(
    cmd: Command,
    db: Database,
    ctx: ScoringContext,
    settings: Settings,
    where: Where,
    notify: Callable[[dict], None] | None = None,
) -> tuple[dict, bool]:
    """(message, ok): the reply to one command; expected errors come back as an explanation.

    `notify` sends a message before the reply when the reply will take a while (a preprint
    fetched from its server first)."""
    try:
        if isinstance(cmd, MatchId):
            return _match_id(cmd, db, ctx, settings, where, notify), True
        with db.session() as session:
            return _answer(cmd, session, ctx, settings, where), True
    except EXPECTED as exc:
        return error_message(str(exc)), False


def _match_id(
    cmd: MatchId,
    db: Database,
    ctx: ScoringContext,
    settings: Settings,
    where: Where,
    notify: Callable[[dict], None] | None,
) -> dict:
    """As `scout match DOI`: a preprint not stored yet is fetched, stored and scored first
    (how long an unreachable API may take is the SCOUT_HTTP_TIMEOUT/SCOUT_API_RETRIES bound)."""

    def score() -> None:
        with db.session() as session:
            update_scores(session, ctx)

    def announce(text: str) -> None:
        if notify is not None:
            notify(blocks.notice(":hourglass_flowing_sand: " + blocks.escape(text)))

    preprint = stored_or_fetched(settings, db, cmd.identifier, score=score, announce=announce)
    with db.session() as session:
        return _match_message(match_preprint(session, preprint, days=settings.window_days, scope=where.scope))


def _answer(cmd: Command, session, ctx: ScoringContext, settings: Settings, where: Where) -> dict:
    if isinstance(cmd, Help):
        return help_message()
    if isinstance(cmd, Rank):
        name, days = cmd.profile, cmd.days
        if cmd.alternative:
            try:
                find_profile(session, name, where.scope)
            except ProfileError:
                with suppress(ProfileError):  # neither reading: report the first one's error
                    name, days = find_profile(session, cmd.alternative, where.scope).name, DEFAULT_DAYS
        ranking = rank_profile(session, ctx, name, days=days, top=cmd.top, scope=where.scope)
        ids = _ids_for(session, ranking.items)
        header = render("cli/ranking_header.txt.j2", ranking=ranking)
        profile = find_profile(session, ranking.profile, where.scope)
        return blocks.message(
            "ranking", ranking=ranking, header=header, ids=ids, links=WebLinks(settings), profile=profile
        )
    if isinstance(cmd, MatchText):
        return _match_message(match_text(session, ctx, cmd.text, scope=where.scope))
    if isinstance(cmd, Subscribe):
        options = Options(
            threshold=cmd.threshold,
            schedule=cmd.schedule,
            at_time=cmd.at_time,
            weekday=cmd.weekday,
            narrowing=cmd.narrowing,
        )
        sub, created = subscribe(
            session, where.target, cmd.profile, options, created_by=where.user_id, scope=where.scope
        )
        verb = "Subscribed" if created else "Updated"
        when = sub.next_run_at.strftime("%Y-%m-%d %H:%M UTC") if sub.next_run_at else "soon"
        return blocks.notice(
            f":white_check_mark: {verb} <#{where.channel_id}> to {blocks.escape(describe(sub))}.\n"
            f"First digest: {when}. Private channel? Invite the app first (`/invite @Preprint Scout`)."
        )
    if isinstance(cmd, Unsubscribe):
        ended = unsubscribe(session, where.target, cmd.profile, where.scope)
        if not ended:
            what = "anything" if cmd.profile is None else blocks.escape(cmd.profile)
            return blocks.notice(f"<#{where.channel_id}> was not following {what}; nothing changed.")
        names = ", ".join(blocks.escape(s.profile.name) for s in ended)
        return blocks.notice(f":wave: <#{where.channel_id}> no longer gets digests for {names}.")
    if isinstance(cmd, ListSubscriptions):
        subs = subscriptions_for(session, where.target)
        if not subs:
            return blocks.notice(
                f"<#{where.channel_id}> follows no profiles yet. Try `/scout subscribe PROFILE top 1% daily`."
            )
        lines = "\n".join(f"• {blocks.escape(describe(s))}" for s in subs)
        return blocks.notice(f"<#{where.channel_id}> follows:\n{lines}")
    if isinstance(cmd, ListProfiles):
        return _profiles_message(session, cmd.search, where.scope)
    raise TypeError(f"unhandled command {cmd!r}")  # pragma: no cover - Email goes to email_answer


# users.info errors -> what the user can do about them.
_LOOKUP_ERRORS = {
    "missing_scope": "the app may not read Slack profiles yet: a workspace admin reinstalls it with the "
    "users:read and users:read.email scopes (docs/slack-manifest.yml)",
    "user_not_found": "Slack does not know your user in this workspace",
    "user_not_visible": "Slack does not let the app see your profile",
}


def user_email(client: WebClient, user_id: str) -> str:
    """The address on the user's Slack profile (users.info; `profile.email` needs users:read.email).

    "" when Slack gives none; ValueError (said for the user) when Slack refuses the lookup.
    """
    try:
        response = client.users_info(user=user_id)
    except SlackApiError as exc:
        error = str((exc.response.data or {}).get("error") or "") if exc.response is not None else ""
        reason = _LOOKUP_ERRORS.get(error, f"Slack refused to look up your profile ({error or 'no reason given'})")
        raise InputError(f"could not read your email address: {reason}") from None
    user = response.get("user") or {}
    return str((user.get("profile") or {}).get("email") or "")


def email_answer(cmd: Email, db: Database, settings: Settings, where: Where, client: WebClient) -> tuple[dict, bool]:
    """`/scout email`: the user's own address (Slack verified it: active at once) follows a profile.

    The settings are checked before Slack is asked, so an admin sees which one is missing.
    """
    try:
        require_email_settings(settings)
        email = user_email(client, where.user_id)
        reply = subscribe_email_from_slack(
            db,
            settings,
            email=email,
            profile=cmd.profile,
            schedule=cmd.schedule,
            threshold=cmd.threshold,
            narrowing=cmd.narrowing,
            user_id=where.user_id,
            team_id=where.team_id,
        )
    except ScoutError as exc:
        text = str(exc)
        return error_message(text[:1].upper() + text[1:]), False
    return blocks.notice(":white_check_mark: " + blocks.escape(reply)), True


def _ids_for(session, items) -> list[int]:
    """Preprint ids for ranked items (the abstract button carries the id)."""
    ids = []
    for item in items:
        found = session.scalar(
            select(Preprint.id).where(Preprint.server == item.server, Preprint.identifier == item.identifier)
        )
        ids.append(found or 0)
    return ids


def _match_message(result) -> dict:
    if not result.matches:
        return blocks.notice("No profiles to match against yet.")
    lines = "\n".join(
        f"*{blocks.escape(m.profile)}*: match *{m.score_text}*"
        + (f" · {_top(m.top_share)}" if m.top_share is not None else "")
        + (f" · {m.lift:.1f}x the average" if m.lift is not None else "")
        for m in result.matches
    )
    return blocks.message("match", match=result, lines=lines)


def _top(share: float) -> str:
    from scoring.window import format_top

    return format_top(share)


def _profiles_message(session, search: str, scope: Scope) -> dict:
    rows = paper_counts(session, scope)
    if not rows:
        return blocks.notice(
            "There are no profiles yet: an admin adds them with `scout profiles add NAME --papers FILE`."
        )
    if search:
        key = normalise_name(search)
        hits = [(p, n) for p, n in rows if key in p.name_key]
        if not hits:
            close = closest_names(search, [p.name for p, _ in rows])
            hint = f" Closest: {', '.join(blocks.escape(c) for c in close)}." if close else ""
            return blocks.notice(f"No profile matches `{blocks.escape(search)}`.{hint}")
        rows = hits
    lines = "\n".join(f"• *{blocks.escape(p.name)}* ({n} papers)" for p, n in rows[:100])
    more = f"\n…and {len(rows) - 100} more; narrow it with `/scout profiles WORD`." if len(rows) > 100 else ""
    return blocks.notice(f"{len(rows)} profile{'s' if len(rows) != 1 else ''}:\n{lines}{more}")


def abstract_message(db: Database, preprint_id: int) -> dict:
    with db.session() as session:
        preprint = session.get(Preprint, preprint_id)
        if preprint is None:
            return error_message("That preprint is no longer stored.")
        title = blocks.link(preprint.url, preprint.title)
        body = blocks.escape(preprint.abstract) or "_No abstract was published with this preprint._"
    return blocks.notice(f"*{title}*\n{body}")


def vote(db: Database, value: str, team_id: str, user_id: str, relevant: bool) -> dict:
    """Store (or change) one user's vote on a delivered match; `value` is "profile_id:preprint_id"."""
    try:
        profile_id, preprint_id = (int(x) for x in value.split(":"))
    except ValueError:
        return error_message("That button is out of date.")
    with db.session() as session:
        profile = visible_profile(session, profile_id, workspace_scope(team_id))
        if profile is None or session.get(Preprint, preprint_id) is None:
            return error_message("That profile or preprint is no longer stored.")
        record_vote(session, profile_id, preprint_id, Voter(team_id, user_id), relevant)
        name = profile.name
    verdict = "relevant" if relevant else "not relevant"
    return blocks.notice(f"Thanks: noted as *{verdict}* for {blocks.escape(name)}.")
