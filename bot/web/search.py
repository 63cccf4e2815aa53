"""The web's search box: profiles by name, preprints by DOI, arXiv id or full text
(bot/fulltext.py)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.db import Preprint, Profile
from bot.fulltext import matching_ids, words
from bot.ingest.identifiers import parse_preprint_id
from bot.profiles.catalog import SHARED, Scope


def search_profiles(session: Session, query: str, limit: int = 10, scope: Scope = SHARED) -> list[str]:
    """Names of the profiles within `scope` holding every word typed (there are few
    profiles: a scan is enough)."""
    terms = words(query)
    if not terms:
        return []
    names = session.scalars(select(Profile.name).where(scope.clause()).order_by(Profile.name_key))
    return [n for n in names if all(t in n.casefold() for t in terms)][:limit]


def search_preprints(session: Session, query: str, limit: int = 25) -> list[Preprint]:
    """A DOI or arXiv id finds its preprint first; then the full-text matches."""
    found: list[Preprint] = []
    parsed = parse_preprint_id(query)
    if parsed is not None:
        key = parsed[1]
        found = list(
            session.scalars(
                select(Preprint).where((func.lower(Preprint.doi) == key) | (Preprint.identifier == key)).limit(1)
            )
        )
    ids = [i for i in matching_ids(session, query, limit) if all(i != p.id for p in found)]
    rows = {p.id: p for p in session.scalars(select(Preprint).where(Preprint.id.in_(ids)))} if ids else {}
    return (found + [rows[i] for i in ids if i in rows])[:limit]
