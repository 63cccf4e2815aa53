"""Full-text queries over stored preprints, with the database's own index (migration 0012:
FTS5 on SQLite, a tsvector on PostgreSQL): the web's search box, and the keywords and
subject categories that narrow a custom feed or a digest.

What a person typed is never passed as query syntax: each word becomes a quoted term on
SQLite and goes through plainto_tsquery on PostgreSQL, so `"`, `*`, `NEAR` or `:` are
only text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bot.db import Preprint
from scoring.errors import InputError

MAX_QUERY = 200
MAX_TERMS = 10
_WORD = re.compile(r"\w+", re.UNICODE)


class NarrowingError(InputError):
    """Keywords or categories that cannot be used; the message says the limits."""


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


@dataclass(frozen=True)
class Narrowing:
    """Keywords and subject categories a ranking is narrowed to. A preprint passes with any
    one keyword (every word of it in its title, abstract or authors) and any one category
    (its feed's subject, in any case); nothing given narrows nothing."""

    keywords: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @classmethod
    def of(cls, keywords: list[str] | tuple[str, ...] = (), categories: list[str] | tuple[str, ...] = ()) -> Narrowing:
        """Checked and tidied: blanks dropped, a repeat (in any case) once, the limits of a custom feed."""
        kept = []
        for name, values in (("keywords", keywords), ("categories", categories)):
            firsts: dict[str, str] = {}
            for value in values:
                spaced = " ".join((value or "").split())
                if spaced:
                    firsts.setdefault(spaced.casefold(), spaced)
            tidy = tuple(firsts.values())
            if len(tidy) > MAX_TERMS or any(len(v) > MAX_QUERY for v in tidy):
                raise NarrowingError(f"at most {MAX_TERMS} {name}, each at most {MAX_QUERY} characters")
            if name == "keywords" and any(not words(v) for v in tidy):
                raise NarrowingError("a keyword needs at least one letter or digit")
            kept.append(tidy)
        return cls(*kept)

    @classmethod
    def from_json(cls, keywords: str | None, categories: str | None) -> Narrowing:
        return cls(tuple(json.loads(keywords or "[]")), tuple(json.loads(categories or "[]")))

    def __bool__(self) -> bool:
        return bool(self.keywords or self.categories)

    def describe(self) -> str:
        """'mentioning "gene drive" or crispr, in genetics' ('' when nothing narrows)."""
        parts = []
        if self.keywords:
            parts.append("mentioning " + " or ".join(f'"{k}"' if " " in k else k for k in self.keywords))
        if self.categories:
            parts.append("in " + " or ".join(self.categories))
        return ", ".join(parts)


def narrowed_ids(session: Session, narrowing: Narrowing, since: date, until: date) -> set[int] | None:
    """The ids of the window's preprints that pass `narrowing`; None when it narrows nothing."""
    if not narrowing:
        return None
    query = select(Preprint.id).where(Preprint.posted >= since, Preprint.posted <= until)
    if narrowing.categories:
        query = query.where(func.lower(Preprint.category).in_([c.casefold() for c in narrowing.categories]))
    keep = set(session.scalars(query))
    if narrowing.keywords:
        hits: set[int] = set()
        for keyword in narrowing.keywords:
            hits.update(matching_ids(session, keyword))
        keep &= hits
    return keep
