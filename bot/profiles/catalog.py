"""Content profiles: named sets of reference papers, read from files and looked up by name."""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from bot.db import Profile, ReferencePaper, Subscription, utcnow
from bot.ingest.identifiers import MAX_DOI
from scoring.errors import ScoutError
from scoring.text import clean_text, content_hash, one_line

MIN_PAPERS = 5
WARN_PAPERS = 10
# The same bounds on SQLite and PostgreSQL (columns: name 300, source 500, doi 300, journal 500).
MAX_NAME = 200
MAX_SOURCE = 500
MAX_JOURNAL = 500


class ProfileError(ScoutError):
    """A profile request that cannot be met; the message says what would work."""


@dataclass(frozen=True)
class Scope:
    """Which profiles a request may name or see.

    A profile is shared (`team_id` "") or belongs to one Slack workspace. A workspace sees
    the shared profiles and its own; the public web the shared ones only; the operator's
    CLI every one. A profile outside the scope is answered for exactly as a name that does
    not exist, so nobody learns of another workspace's profiles."""

    team_id: str | None = None  # None: every profile; "": the shared ones; "T…": shared + that workspace's

    def clause(self) -> ColumnElement[bool]:
        if self.team_id is None:
            return true()
        return Profile.team_id.in_(sorted({"", self.team_id}))

    def sees(self, profile: Profile) -> bool:
        return self.team_id is None or profile.team_id in ("", self.team_id)


EVERY = Scope()  # the operator: `scout` on the command line
SHARED = Scope("")  # the public: the web's index, search, preprint pages and custom feeds


def workspace_scope(team_id: str) -> Scope:
    """What a Slack workspace sees (a request without a workspace sees the shared ones)."""
    return Scope(team_id or "")


@dataclass(frozen=True)
class PaperRecord:
    title: str
    abstract: str
    doi: str | None = None
    year: int | None = None
    journal: str | None = None


@dataclass(frozen=True)
class PapersFile:
    papers: list[PaperRecord]
    skipped: list[str]  # one reason per row that could not be used


def normalise_name(name: str) -> str:
    return " ".join(name.split()).casefold()


def read_papers(path: Path) -> PapersFile:
    """Papers from a JSONL or CSV file with title and abstract (doi, year, journal optional)."""
    if not path.exists():
        raise ProfileError(f"no such file: {path}")
    if not path.is_file():
        raise ProfileError(f"{path} is a folder, not a file: give the JSONL or CSV file of papers")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path.name} is not UTF-8 text (byte {exc.start}): save it as UTF-8 JSONL or CSV") from None
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc.strerror or exc}") from None
    rows, skipped = _rows(text, path)
    papers: list[PaperRecord] = []
    seen: set[str] = set()
    for line, row in rows:
        junk = _not_text(row)
        if junk:
            skipped.append(f"row {line}: {junk} is not text")
            continue
        title = clean_text(row.get("title") or "")
        abstract = clean_text(row.get("abstract") or "")
        if not title and not abstract:
            skipped.append(f"row {line}: no title or abstract")
            continue
        key = content_hash(title, abstract)
        if key in seen:
            skipped.append(f"row {line}: duplicate of an earlier paper")
            continue
        seen.add(key)
        papers.append(
            PaperRecord(
                title=title or abstract[:120],
                abstract=abstract,
                doi=_bounded(one_line(str(row["doi"])), MAX_DOI) if row.get("doi") else None,
                year=_year(row.get("year")),
                journal=_bounded(clean_text(str(row["journal"])), MAX_JOURNAL) if row.get("journal") else None,
            )
        )
    return PapersFile(papers, skipped)


def _not_text(row: dict) -> str | None:
    """The first of title/abstract that holds something other than text (5, [..], {..})."""
    return next((key for key in ("title", "abstract") if row.get(key) and not isinstance(row[key], str)), None)


def _bounded(text: str, limit: int) -> str | None:
    return text[:limit] or None


def check_profile_name(name: str) -> str:
    """A profile name as one clean line, within the same bound on every database."""
    cleaned = " ".join(one_line(name).split())
    if not cleaned:
        raise ProfileError("a profile needs a name")
    if len(cleaned) > MAX_NAME:
        raise ProfileError(f"profile name too long ({len(cleaned):,} characters; the limit is {MAX_NAME})")
    return cleaned


def _rows(text: str, path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    skipped: list[str] = []
    if path.suffix.lower() in {".csv", ".tsv"}:
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        fields = {f.strip().lower() for f in reader.fieldnames or []}
        if not {"title", "abstract"} & fields:
            raise ProfileError(f"{path.name}: the header needs 'title' and 'abstract' columns")
        return [(i + 2, {k.strip().lower(): v for k, v in r.items() if k}) for i, r in enumerate(reader)], skipped
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            skipped.append(f"line {number}: not JSON ({exc.msg})")
            continue
        if not isinstance(row, dict):
            skipped.append(f"line {number}: not a JSON object")
            continue
        rows.append((number, row))
    return rows, skipped


def _year(value: object) -> int | None:
    try:
        year = int(str(value)[:4])
    except (TypeError, ValueError):
        return None
    return year if 1800 < year < 2200 else None


def find_profile(session: Session, name: str, scope: Scope = EVERY) -> Profile:
    """Case-insensitive look-up within `scope`; an unknown name raises with the closest names."""
    profile = session.scalar(select(Profile).where(Profile.name_key == normalise_name(name), scope.clause()))
    if profile is not None:
        return profile
    raise ProfileError(unknown_profile_message(session, name, scope))


def visible_profile(session: Session, profile_id: int, scope: Scope) -> Profile | None:
    """A profile by id (a button's value), or None when it is gone or outside `scope`."""
    profile = session.get(Profile, profile_id)
    return profile if profile is not None and scope.sees(profile) else None


def visible_names(session: Session, scope: Scope) -> list[str]:
    return list(session.scalars(select(Profile.name).where(scope.clause()).order_by(Profile.name)))


def unknown_profile_message(session: Session, name: str, scope: Scope = EVERY) -> str:
    """What to say of a name not found: the closest names the asker may see, and only those."""
    names = visible_names(session, scope)
    if not names:
        return f"no profile named {name!r}: there are no profiles yet (scout profiles add NAME --papers FILE)"
    close = closest_names(name, names)
    hint = f" Did you mean: {', '.join(close)}?" if close else f" Profiles: {', '.join(names[:10])}"
    return f"no profile named {name!r}.{hint}"


def closest_names(name: str, names: list[str], limit: int = 3) -> list[str]:
    keyed = {normalise_name(n): n for n in names}
    query = normalise_name(name)
    hits = difflib.get_close_matches(query, list(keyed), n=limit, cutoff=0.5)
    # Substring hits ("genetics" -> "PLOS Genetics") matter more than edit distance.
    subs = [k for k in keyed if query and query in k and k not in hits]
    return [keyed[k] for k in (subs + hits)[:limit]]


def add_profile(
    session: Session,
    name: str,
    papers: list[PaperRecord],
    source: str,
    *,
    replace: bool = False,
    team_id: str = "",
) -> Profile:
    """A new profile (shared, or owned by the workspace `team_id`), or with `replace` new
    papers for one that exists, which keeps its workspace (set_workspace changes that)."""
    name = check_profile_name(name)
    source = source[:MAX_SOURCE]
    if len(papers) < MIN_PAPERS:
        raise ProfileError(f"a profile needs at least {MIN_PAPERS} papers with a title or abstract; got {len(papers)}")
    team = check_team_id(team_id)
    existing = session.scalar(select(Profile).where(Profile.name_key == normalise_name(name)))
    if existing is not None and not replace:
        raise ProfileError(f"a profile named {existing.name!r} exists; use --replace to rebuild it")
    if existing is not None:
        # Swap the papers in place: the profile's subscriptions and votes stay.
        return set_papers(session, existing, papers, source)
    profile = Profile(name=name, name_key=normalise_name(name), source=source, team_id=team)
    session.add(profile)
    return set_papers(session, profile, papers, source)


# Slack's workspace ids: T (or E, an Enterprise Grid organisation) and capitals and digits.
_TEAM_ID = re.compile(r"[TE][A-Z0-9]{1,49}")


def check_team_id(team_id: str) -> str:
    """A Slack workspace id as Slack writes it ("" = shared by every workspace)."""
    team = team_id.strip().upper()
    if team and not _TEAM_ID.fullmatch(team):
        raise ProfileError(
            f"{team_id[:60]!r} is not a Slack workspace id: it looks like T0123ABCD "
            "(the T... in app.slack.com/client/T.../ when the workspace is open in a browser)"
        )
    return team


def set_workspace(session: Session, profile: Profile, team_id: str) -> list[Subscription]:
    """Give a profile to one workspace ("" shares it again). Other workspaces lose sight of
    it, so their subscriptions to it end: their Slack channels' digests, and the email
    digests their users started with /scout email. Returns the subscriptions ended."""
    team = check_team_id(team_id)
    profile.team_id = team
    ended: list[Subscription] = []
    if team:
        subs = session.scalars(
            select(Subscription).where(Subscription.profile_id == profile.id, Subscription.status != "unsubscribed")
        )
        ended = [s for s in subs if subscriber_team(s) not in (None, team)]
        for sub in ended:
            sub.status, sub.status_reason = "unsubscribed", "the profile now belongs to another workspace"
    session.flush()
    return ended


def subscriber_team(sub: Subscription) -> str | None:
    """The workspace a subscription was made from: a Slack channel's, or that of the Slack
    user who started an email digest with /scout email ("slack:T…:U…"); None for the CLI's."""
    if sub.kind == "slack":
        return sub.team_id
    parts = sub.created_by.split(":")
    return parts[1] if len(parts) == 3 and parts[0] == "slack" else None


def set_papers(session: Session, profile: Profile, papers: list[PaperRecord], source: str | None) -> Profile:
    """Replace a profile's reference papers (the scores are refitted on the next run)."""
    if len(papers) < MIN_PAPERS:
        raise ProfileError(f"a profile needs at least {MIN_PAPERS} papers with a title or abstract; got {len(papers)}")
    profile.papers.clear()
    session.flush()
    profile.papers.extend(
        ReferencePaper(
            title=p.title,
            abstract=p.abstract,
            # Bounded here too: API-built profiles (Crossref, OpenAlex) arrive without read_papers.
            doi=_bounded(p.doi or "", MAX_DOI),
            year=p.year,
            journal=_bounded(p.journal or "", MAX_JOURNAL),
            content_hash=content_hash(p.title, p.abstract),
        )
        for p in papers
    )
    if source is not None:
        profile.source = source[:MAX_SOURCE]
    profile.updated_at = utcnow()
    session.flush()
    return profile


def paper_count(session: Session, profile_id: int) -> int:
    return session.scalar(select(func.count(ReferencePaper.id)).where(ReferencePaper.profile_id == profile_id)) or 0


def paper_counts(session: Session, scope: Scope = EVERY) -> list[tuple[Profile, int]]:
    rows = session.execute(
        select(Profile, func.count(ReferencePaper.id))
        .outerjoin(ReferencePaper)
        .where(scope.clause())
        .group_by(Profile.id)
        .order_by(Profile.name)
    )
    return [(profile, count) for profile, count in rows]
