"""`/scout` text -> a command record. Pure: no database, no Slack; bad text raises UsageError.

help
rank PROFILE [N days] [top N] [public]
match DOI | arXiv id | title and abstract
subscribe PROFILE [top 1% | min 5% | lift 100] [hourly|daily|weekly] [on DAY] [at HH:MM] [kw:WORDS] [cat:CATEGORY]
unsubscribe PROFILE | all
subscriptions
email PROFILE [daily|weekly] [top 1% | min 5% | lift 100] [kw:WORDS] [cat:CATEGORY]
profiles [search]
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

from bot.delivery.digests import SCHEDULES, WEEKDAYS, ScheduleError, parse_time
from bot.fulltext import Narrowing, NarrowingError
from bot.ingest.identifiers import parse_preprint_id
from scoring.errors import InputError
from scoring.thresholds import KINDS, ThresholdError, parse_threshold

MAX_DAYS = 3650
MAX_TOP = 20  # a ranking message stays under Slack's 50 blocks
DEFAULT_DAYS = 90
DEFAULT_TOP = 10

USAGE = {
    "help": "`/scout help`: this message",
    "rank": "`/scout rank PROFILE [N days] [top N] [public]`: the current ranking, e.g. "
    "`/scout rank Neural Networks 30 days top 5`",
    "match": "`/scout match DOI|arXiv id|text`: the profiles a preprint fits, e.g. "
    "`/scout match 10.1101/2024.01.01.123456` or `/scout match 2405.01234`",
    "subscribe": "`/scout subscribe PROFILE [top 1% | min 5% | lift 100] [daily|weekly|hourly] [at HH:MM] "
    "[kw:WORDS] [cat:CATEGORY]`: a digest in this channel, e.g. `/scout subscribe Neural Networks top 1% weekly "
    'at 09:00`; `kw:crispr kw:"gene drive" cat:genetics` keeps only preprints mentioning either, in that category',
    "unsubscribe": "`/scout unsubscribe PROFILE|all`: stop this channel's digests",
    "subscriptions": "`/scout subscriptions`: what this channel follows",
    "email": "`/scout email PROFILE [daily|weekly] [top 1% | min 5% | lift 100] [kw:WORDS] [cat:CATEGORY]`: a digest "
    "by email to the address of your Slack profile, e.g. `/scout email PLOS Genetics weekly top 5% kw:crispr`",
    "profiles": "`/scout profiles [search]`: the profiles you can rank and follow",
}
SUBCOMMANDS = tuple(USAGE)
ALIASES = {"subs": "subscriptions", "list": "subscriptions", "sub": "subscribe", "unsub": "unsubscribe"}


class UsageError(InputError):
    """Text that is not a `/scout` command; the message says what would work."""

    def __init__(self, message: str, subcommand: str | None = None) -> None:
        usage = USAGE.get(subcommand or "")
        full = f"{message}\nUsage: {usage}" if usage else f"{message}\n{usage_text()}"
        super().__init__(full)
        self.subcommand = subcommand


def usage_text() -> str:
    return "Try:\n" + "\n".join(f"• {line}" for line in USAGE.values())


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Rank:
    profile: str
    days: int = DEFAULT_DAYS
    top: int = DEFAULT_TOP
    public: bool = False
    # "rank Cell 2": a bare number is read as days, but if no profile is named "Cell" and one
    # is named "Cell 2", that is what was meant; the answer tries this name next.
    alternative: str | None = None


@dataclass(frozen=True)
class MatchId:
    identifier: str


@dataclass(frozen=True)
class MatchText:
    text: str


@dataclass(frozen=True)
class Subscribe:
    profile: str
    threshold: str | None = None  # as typed, validated; None = the default (top 1%)
    schedule: str = "daily"
    at_time: str = "08:00"
    weekday: int = 0
    narrowing: Narrowing = Narrowing()


@dataclass(frozen=True)
class Unsubscribe:
    profile: str | None  # None = all


@dataclass(frozen=True)
class ListSubscriptions:
    pass


@dataclass(frozen=True)
class ListProfiles:
    search: str = ""


@dataclass(frozen=True)
class Email:
    """`email PROFILE [daily|weekly] [threshold]`: handed to
    bot.delivery.email.subscriptions.subscribe_email_from_slack with the user's address from Slack."""

    profile: str
    schedule: str = "daily"
    threshold: str | None = None
    narrowing: Narrowing = Narrowing()


Command = Help | Rank | MatchId | MatchText | Subscribe | Unsubscribe | ListSubscriptions | ListProfiles | Email

_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")
_DAYS = re.compile(r"\s+(\d+)\s*(?:d|days?)?$", re.IGNORECASE)
_TOP = re.compile(r"\s+top\s*(\d+)$", re.IGNORECASE)
_PUBLIC = re.compile(r"\s+public$", re.IGNORECASE)
# The threshold and schedule words, from the modules that define them, for every command.
_THRESHOLD = re.compile(rf"\s+((?:{'|'.join(KINDS)})\s*\d+(?:\.\d+)?\s*[%x]?)$", re.IGNORECASE)
_BAD_THRESHOLD = re.compile(rf"\s+({'|'.join(KINDS)})(?:\s+\S+)?$", re.IGNORECASE)
_SCHEDULE = re.compile(r"\s+(" + "|".join(SCHEDULES) + r")$", re.IGNORECASE)
_AT = re.compile(r"\s+at\s+(\S+)$", re.IGNORECASE)
_ON = re.compile(r"\s+on\s+([a-z]+)$", re.IGNORECASE)
# kw:word, kw:"two words" (Slack may send curly quotes), cat:genetics
_FILTER = re.compile(r'(?:^|(?<=\s))(kw|cat):(?:"([^"]*)"|\u201c([^\u201d]*)\u201d|(\S+))', re.IGNORECASE)


def clean(text: str) -> str:
    """Undo Slack's formatting of command text: <https://x|label> -> https://x, &amp; -> &."""

    def unlink(m: re.Match) -> str:
        target = m.group(1)
        if target.startswith(("#", "@", "!")):
            return m.group(2) or target
        return target.removeprefix("mailto:")

    return " ".join(html.unescape(_LINK.sub(unlink, text or "")).split())


def parse_command(text: str) -> Command:
    """Parse what followed `/scout`; raises UsageError (and only that) for anything unusable."""
    text = clean(text)
    if not text:
        return Help()
    head, _, rest = text.partition(" ")
    name = ALIASES.get(head.lower(), head.lower())
    rest = rest.strip()
    if name == "help":
        return Help()
    if name == "rank":
        return _rank(rest)
    if name == "match":
        return _match(rest)
    if name == "subscribe":
        return _subscribe(rest)
    if name == "unsubscribe":
        if not rest:
            raise UsageError("Which profile should this channel stop following? (or `all`)", "unsubscribe")
        return Unsubscribe(None if rest.lower() == "all" else rest)
    if name == "subscriptions":
        return ListSubscriptions()
    if name == "profiles":
        return ListProfiles(rest)
    if name == "email":
        return _email(rest)
    close = difflib.get_close_matches(name, SUBCOMMANDS + tuple(ALIASES), n=1, cutoff=0.6)
    hint = f" Did you mean `{ALIASES.get(close[0], close[0])}`?" if close else ""
    raise UsageError(f"`{head[:40]}` is not a /scout command.{hint}")


def _rank(rest: str) -> Rank:
    tail = " " + rest
    days, top, public = DEFAULT_DAYS, DEFAULT_TOP, False
    bare_days: str | None = None
    seen: set[str] = set()
    while True:
        if "public" not in seen and (m := _PUBLIC.search(tail)):
            public = True
            seen.add("public")
        elif "top" not in seen and (m := _TOP.search(tail)):
            top = int(m.group(1))
            seen.add("top")
        elif "days" not in seen and (m := _DAYS.search(tail)):
            days = int(m.group(1))
            bare_days = m.group(0).strip() if m.group(0).strip().isdigit() else None
            seen.add("days")
        else:
            break
        tail = tail[: m.start()]
    profile = tail.strip()
    alternative = f"{profile} {bare_days}" if bare_days and profile else None
    if not profile:
        raise UsageError("Which profile should I rank?", "rank")
    # Checked first: the reading below that folds a bare number into the profile name
    # keeps `top` as parsed ("rank top top 0 0" once returned top 0).
    if not 1 <= top <= MAX_TOP:
        raise UsageError(f"Show 1 to {MAX_TOP} preprints (`top 10`), not {top}.", "rank")
    if alternative and not 1 <= days <= MAX_DAYS:
        return Rank(alternative, DEFAULT_DAYS, top, public)
    if not 1 <= days <= MAX_DAYS:
        raise UsageError(f"The window must be 1 to {MAX_DAYS} days, not {days}.", "rank")
    return Rank(profile, days, top, public, alternative)


def _match(rest: str) -> MatchId | MatchText:
    if not rest:
        raise UsageError("Give a DOI, an arXiv id, or a title and abstract to match.", "match")
    if parse_preprint_id(rest) is not None:
        return MatchId(rest)
    if len(rest.split()) < 5:
        raise UsageError(
            f"`{rest[:60]}` is neither a DOI nor an arXiv id; to score text, give a title and abstract "
            "(at least five words).",
            "match",
        )
    return MatchText(rest)


def _narrowing(rest: str, subcommand: str) -> tuple[str, Narrowing]:
    """`kw:crispr kw:"gene drive" cat:genetics` taken out of the text, wherever they are."""
    found: dict[str, list[str]] = {"kw": [], "cat": []}

    def take(m: re.Match) -> str:
        found[m.group(1).lower()].append(next(g for g in m.groups()[1:] if g is not None))
        return " "

    rest = _FILTER.sub(take, rest)
    try:
        return " ".join(rest.split()), Narrowing.of(found["kw"], found["cat"])
    except NarrowingError as exc:
        raise UsageError(str(exc).capitalize() + ".", subcommand) from None


def _subscribe(rest: str) -> Subscribe:
    rest, narrowing = _narrowing(rest, "subscribe")
    tail = " " + rest
    threshold: str | None = None
    schedule, at_time, weekday = "daily", "08:00", 0
    seen: set[str] = set()
    while True:
        if "at" not in seen and (m := _AT.search(tail)):
            try:
                at_time = parse_time(m.group(1))
            except ScheduleError as exc:
                raise UsageError(str(exc).capitalize() + ".", "subscribe") from None
            seen.add("at")
        elif "on" not in seen and (m := _ON.search(tail)):
            weekday = _weekday(m.group(1))
            seen.add("on")
        elif "schedule" not in seen and (m := _SCHEDULE.search(tail)):
            schedule = m.group(1).lower()
            seen.add("schedule")
        elif "threshold" not in seen and (m := _THRESHOLD.search(tail)):
            try:
                threshold = parse_threshold(m.group(1)).describe()
            except ThresholdError as exc:
                raise UsageError(str(exc).capitalize() + ".", "subscribe") from None
            seen.add("threshold")
        elif "threshold" not in seen and (m := _BAD_THRESHOLD.search(tail)) and tail[: m.start()].strip():
            raise UsageError(f"`{m.group(0).strip()}` is not a threshold.", "subscribe")
        else:
            break
        tail = tail[: m.start()]
    profile = tail.strip()
    if not profile:
        raise UsageError("Which profile should this channel follow?", "subscribe")
    if "on" in seen and schedule != "weekly":
        raise UsageError("`on DAY` goes with `weekly`, e.g. `weekly on monday at 09:00`.", "subscribe")
    return Subscribe(profile, threshold, schedule, at_time, weekday, narrowing)


def _email(rest: str) -> Email:
    rest, narrowing = _narrowing(rest, "email")
    try:
        profile, schedule, threshold = parse_email_command(rest)
    except ValueError:
        raise UsageError("Which profile should be emailed to you?", "email") from None
    if threshold is not None:
        try:
            parse_threshold(threshold)
        except ThresholdError as exc:
            raise UsageError(str(exc).capitalize() + ".", "email") from None
    elif (m := _BAD_THRESHOLD.search(" " + profile)) and profile[: m.start()].strip():
        raise UsageError(f"`{m.group(0).strip()}` is not a threshold.", "email")
    return Email(profile, schedule, threshold, narrowing)


def _weekday(text: str) -> int:
    key = text.lower()
    for i, name in enumerate(WEEKDAYS):
        if len(key) >= 3 and name.startswith(key):
            return i
    raise UsageError(f"`{text[:20]}` is not a weekday; use monday..sunday.", "subscribe")


EMAIL_USAGE = "usage: /scout email PROFILE [daily|weekly] [threshold], e.g. /scout email PLOS Genetics weekly top 5%"


def parse_email_command(text: str) -> tuple[str, str, str | None]:
    """'PLOS Genetics weekly top 5%' -> ('PLOS Genetics', 'weekly', 'top 5%'); schedule and
    threshold are optional and may come in either order after the profile name."""
    rest = " " + " ".join((text or "").split())
    schedule, threshold = "daily", None
    for _ in range(2):
        if threshold is None and (m := _THRESHOLD.search(rest)):
            threshold, rest = m.group(1), rest[: m.start()]
        elif m := _SCHEDULE.search(rest):
            schedule, rest = m.group(1).lower(), rest[: m.start()]
    profile = rest.strip()
    if not profile:
        raise InputError(EMAIL_USAGE)
    return profile, schedule, threshold
