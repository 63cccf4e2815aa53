"""Search over profiles and preprints with the database's own full-text index (migration
0012: FTS5 on SQLite, a tsvector on PostgreSQL), and the keyword filter of custom feeds.

What a person typed is never passed as query syntax: each word becomes a quoted term on
SQLite and goes through plainto_tsquery on PostgreSQL, so `"`, `*`, `NEAR` or `:` are
only text.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot.db import Preprint, Profile
from bot.ingest.identifiers import parse_preprint_id

MAX_QUERY = 200
_WORD = re.compile(r"\w+", re.UNICODE)


def words(query: str) -> list[str]:
    return _WORD.findall(query[:MAX_QUERY].casefold())


def matching_ids(session: Session, query: str, limit: int | None = None, within: list[int] | None = None) -> list[int]:
    """Preprints whose title, abstract, authors or DOI hold every word of `query`, best match
    first; `within` narrows to those ids."""
    terms = words(query)
    if not terms:
        return []
    if session.get_bind().dialect.name == "sqlite":
        match = " ".join('"' + t.replace('"', '""') + '"' for t in terms)
        sql = "SELECT rowid FROM preprints_fts WHERE preprints_fts MATCH :q ORDER BY rank"
        params: dict = {"q": match}
    else:
        sql = (
            "SELECT id FROM preprints, plainto_tsquery('english', :q) query "
            "WHERE search @@ query ORDER BY ts_rank(search, query) DESC, id"
        )
        params = {"q": " ".join(terms)}
    ids = [row[0] for row in session.execute(text(sql), params)]
    if within is not None:
        keep = set(within)
        ids = [i for i in ids if i in keep]
    return ids[:limit] if limit is not None else ids


def search_profiles(session: Session, query: str, limit: int = 10) -> list[str]:
    """Profile names holding every word typed (there are few profiles: a scan is enough)."""
    terms = words(query)
    if not terms:
        return []
    names = session.scalars(select(Profile.name).order_by(Profile.name_key))
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
