"""Profiles from the real world: a journal's recent articles (Crossref or OpenAlex, by ISSN), or the
bioRxiv/medRxiv preprints later published in it ("papers previously published here").

Everything is fetched before anything is written: a build that fails (a 500 that does not
heal, an ambiguous journal name, no usable abstracts) leaves no profile behind. A profile
remembers how it was built in `Profile.source` (e.g. "issn:0028-0836?source=crossref&limit=200"
or "preprints:eLife?days=365&limit=200&servers=biorxiv,medrxiv"), so `refresh` can rebuild it;
a refresh swaps the papers in place, keeping the profile's subscriptions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import Database, Profile
from bot.profiles.catalog import (
    MIN_PAPERS,
    PaperRecord,
    ProfileError,
    add_profile,
    closest_names,
    find_profile,
    normalise_name,
    set_papers,
)
from bot.ingest.apis import Sources
from bot.ingest.biorxiv import SERVERS, Publication
from bot.ingest.http import SourceError
from bot.ingest.records import Collected, normalise_issn

ISSN_SOURCES = ("crossref", "openalex")
DEFAULT_LIMIT = 200
DEFAULT_PUBS_DAYS = 365
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class ProfileSpec:
    kind: str  # "issn" | "preprints"
    value: str  # the ISSN, or the journal name
    source: str = "crossref"
    limit: int = DEFAULT_LIMIT
    days: int = DEFAULT_PUBS_DAYS
    servers: tuple[str, ...] = SERVERS

    def encode(self) -> str:
        if self.kind == "issn":
            return f"issn:{self.value}?" + urlencode({"source": self.source, "limit": self.limit})
        query = urlencode({"days": self.days, "limit": self.limit, "servers": ",".join(self.servers)}, safe=",")
        return f"preprints:{self.value}?{query}"

    @classmethod
    def decode(cls, text: str) -> ProfileSpec | None:
        """The spec a profile was built from; None for a profile built from a file."""
        kind, sep, rest = (text or "").partition(":")
        if not sep or kind not in ("issn", "preprints"):
            return None
        value, _, query = rest.rpartition("?") if "?" in rest else (rest, "", "")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        try:
            limit = int(params.get("limit", DEFAULT_LIMIT))
            days = int(params.get("days", DEFAULT_PUBS_DAYS))
        except ValueError:
            return None
        servers = tuple(s for s in params.get("servers", ",".join(SERVERS)).split(",") if s in SERVERS) or SERVERS
        return cls(kind, value, params.get("source", "crossref"), limit, days, servers)


@dataclass
class Built:
    papers: list[PaperRecord]
    skipped: list[str] = field(default_factory=list)
    journal: str | None = None  # the journal name the source knows it by
    spec: ProfileSpec | None = None


# --------------------------------------------------------------------------- journal names (pure)


def resolve_journal(query: str, counts: Counter[str], where: str) -> str:
    """The one journal name `query` means among names seen (with how often each was seen).

    Case-insensitive exact match first; else the names containing the query; several of those
    is a question back to the user, listing them.
    """
    by_key: dict[str, Counter[str]] = {}
    for name, n in counts.items():
        by_key.setdefault(normalise_name(name), Counter())[name] += n
    key = normalise_name(query)
    if not key:
        raise ProfileError("give a journal name, e.g. --from-preprints with the profile name 'eLife'")
    if key in by_key:
        return by_key[key].most_common(1)[0][0]
    candidates = sorted((k for k in by_key if key in k), key=lambda k: (-sum(by_key[k].values()), k))
    if len(candidates) == 1:
        return by_key[candidates[0]].most_common(1)[0][0]
    if candidates:
        listed = "; ".join(f"{by_key[k].most_common(1)[0][0]} ({sum(by_key[k].values())})" for k in candidates[:15])
        more = f" and {len(candidates) - 15} more" if len(candidates) > 15 else ""
        raise ProfileError(
            f"{query!r} matches several journals {where}: {listed}{more}. "
            "Did you mean one of these? Name the profile exactly as the journal."
        )
    names = [by_key[k].most_common(1)[0][0] for k in by_key]
    close = closest_names(query, names)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ProfileError(
        f"no preprints {where} were published in a journal named {query!r}.{hint} "
        "Try a longer window (--days) or build it from the journal's ISSN (--issn)."
    )


# --------------------------------------------------------------------------- building (network, no DB)


def papers_from_issn(
    sources: Sources, issn: str, source: str = "crossref", limit: int = DEFAULT_LIMIT, progress: Progress | None = None
) -> Built:
    try:
        issn = normalise_issn(issn)
    except ValueError as exc:
        raise ProfileError(str(exc)) from None
    if source not in ISSN_SOURCES:
        raise ProfileError(f"unknown --source {source!r}: use crossref or openalex")
    api = sources.crossref if source == "crossref" else sources.openalex
    label = "Crossref" if source == "crossref" else "OpenAlex"
    rows = max(1, min(100, limit))
    max_pages = math.ceil(limit / rows) * 3 + 2  # a journal whose abstracts are mostly unusable must not page forever
    collected = Collected()
    journals: Counter[str] = Counter()
    seen = 0
    for number, page in enumerate(api.pages(issn, rows), start=1):
        seen += page.count
        for paper, language in page.papers:
            if paper.journal:
                journals[paper.journal] += 1
            if len(collected.papers) < limit:
                collected.offer(paper, language)
        if progress:
            progress(page.count, min(page.total, limit))
        if len(collected.papers) >= limit or number >= max_pages:
            break
    other = "openalex" if source == "crossref" else "crossref"
    if not collected.papers:
        found = f"{seen} articles, none with an abstract we could use" if seen else "no articles with abstracts"
        raise ProfileError(f"{label} has {found} for ISSN {issn}; check the ISSN, or try --source {other}")
    spec = ProfileSpec("issn", issn, source, limit)
    journal = journals.most_common(1)[0][0] if journals else None
    return Built(collected.papers, collected.skipped, journal, spec)


def papers_from_preprints(
    sources: Sources,
    journal: str,
    *,
    days: int = DEFAULT_PUBS_DAYS,
    servers: tuple[str, ...] = SERVERS,
    limit: int = DEFAULT_LIMIT,
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> Built:
    """Preprints published in `journal` (bioRxiv/medRxiv /pubs over the last `days`), newest first.

    /pubs lists every preprint->article link in the interval, with the preprint's abstract
    when it has one; only a record without one costs an extra /details/{server}/{doi} call,
    and only for the `limit` papers we keep. Paging /details over the same interval and
    joining would fetch every preprint posted in it: far more requests for the same result.
    """
    end = today or dt.date.today()
    start = end - dt.timedelta(days=days)
    key = normalise_name(journal)
    names: Counter[str] = Counter()
    kept: list[Publication] = []
    for server in servers:
        cursor = 0
        while True:
            page = sources.biorxiv.pubs_page(server, start, end, cursor)
            for record in page.records:
                names[record.journal] += 1
                if key and key in normalise_name(record.journal):
                    kept.append(record)  # only plausible matches keep their abstracts in memory
            cursor += page.count
            if progress:
                progress(page.count, page.total)
            if page.count == 0 or cursor >= page.total:
                break
    where = f"on {'/'.join(servers)} between {start} and {end}"
    chosen = resolve_journal(journal, names, where)
    chosen_key = normalise_name(chosen)
    matched = [p for p in kept if normalise_name(p.journal) == chosen_key]
    matched.sort(key=lambda p: (p.published_date or dt.date.min, p.preprint_doi), reverse=True)
    collected = Collected()
    done: set[str] = set()
    for pub in matched:
        if len(collected.papers) >= limit:
            break
        if pub.preprint_doi in done:
            continue
        done.add(pub.preprint_doi)
        title, abstract = pub.title, pub.abstract
        if not abstract or not title:
            item = sources.biorxiv.preprint(pub.preprint_doi, (pub.server,))
            if item is not None:
                title, abstract = title or item.title, abstract or item.abstract
        year = (pub.published_date or pub.preprint_date).year if (pub.published_date or pub.preprint_date) else None
        paper = PaperRecord(title, abstract, pub.published_doi or pub.preprint_doi, year, chosen)
        collected.offer(paper, where=pub.preprint_doi)
    if not collected.papers:
        raise ProfileError(f"{len(matched)} preprints {where} were published in {chosen}, none with a usable abstract")
    spec = ProfileSpec("preprints", chosen, limit=limit, days=days, servers=tuple(servers))
    return Built(collected.papers, collected.skipped, chosen, spec)


def build(sources: Sources, spec: ProfileSpec, progress: Progress | None = None) -> Built:
    if spec.kind == "issn":
        return papers_from_issn(sources, spec.value, spec.source, spec.limit, progress)
    return papers_from_preprints(
        sources, spec.value, days=spec.days, servers=spec.servers, limit=spec.limit, progress=progress
    )


# --------------------------------------------------------------------------- writing


def save_new(session: Session, name: str, built: Built, replace: bool = False) -> Profile:
    return add_profile(session, name, built.papers, source=built.spec.encode(), replace=replace)


def replace_papers(session: Session, profile: Profile, built: Built) -> Profile:
    """Swap a profile's papers for freshly built ones; the profile (and its subscriptions) stay."""
    if len(built.papers) < MIN_PAPERS:
        raise ProfileError(
            f"{profile.name}: the refreshed source gave {len(built.papers)} usable papers "
            f"(a profile needs {MIN_PAPERS}); the old papers were kept"
        )
    return set_papers(session, profile, built.papers, built.spec.encode() if built.spec is not None else None)


@dataclass(frozen=True)
class RefreshResult:
    profile: str
    papers: int | None
    error: str | None = None


def refresh_profiles(
    db: Database, sources: Sources, name: str | None = None, progress: Progress | None = None
) -> list[RefreshResult]:
    """Rebuild profiles from their sources (one, or every one built from an API); the scheduler
    runs it weekly. A profile whose source fails keeps its old papers."""
    with db.session() as session:
        if name is not None:
            profile = find_profile(session, name)
            spec = ProfileSpec.decode(profile.source)
            if spec is None:
                raise ProfileError(
                    f"{profile.name} was built from {profile.source or 'a file'}, not from an API; "
                    "rebuild it with scout profiles add --replace"
                )
            targets = [(profile.id, profile.name, spec)]
        else:
            targets = [
                (p.id, p.name, ProfileSpec.decode(p.source))
                for p in session.scalars(select(Profile).order_by(Profile.name))
            ]
            targets = [t for t in targets if t[2] is not None]
    results = []
    for profile_id, profile_name, spec in targets:
        try:
            built = build(sources, spec, progress)
            with db.session() as session:
                profile = session.get(Profile, profile_id)
                replace_papers(session, profile, built)
                results.append(RefreshResult(profile_name, len(built.papers)))
        except (ProfileError, SourceError) as exc:
            if name is not None:
                raise
            results.append(RefreshResult(profile_name, None, str(exc)))
    return results
