"""Pure helpers shared by the API parsers: missing values, dates, ISSNs, language, paper filtering."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.profiles.catalog import PaperRecord
from scoring.errors import InputError
from scoring.text import clean_text, content_hash

_MISSING = {"", "na", "n/a", "null", "none", "nan", "-"}
_ISSN = re.compile(r"^(\d{4})-?(\d{3}[\dXx])$")
# Function words that make up a good share of any English abstract and few others'.
_ENGLISH = frozenset(
    [
        "the",
        "of",
        "and",
        "in",
        "to",
        "a",
        "is",
        "that",
        "we",
        "for",
        "with",
        "are",
        "was",
        "by",
        "on",
        "as",
        "this",
        "from",
        "be",
        "were",
        "these",
        "which",
        "an",
        "at",
        "or",
        "our",
    ]
)
_LEADING_ABSTRACT = re.compile(r"^(?:abstract|summary)\s*[:.]?\s+", re.I)


def present(value: object) -> str | None:
    """A string field, or None when the API left it empty or wrote "NA"."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text.casefold() in _MISSING else text


def clean(value: object) -> str:
    return clean_text(present(value) or "")


def parse_date(value: object) -> dt.date | None:
    text = present(value)
    if not text:
        return None
    match = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if not match:
        return None
    try:
        return dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def as_int(value: object) -> int | None:
    text = present(value)
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def normalise_issn(value: str) -> str:
    """ "12345678" or "1234-5678" -> "1234-5678"; raises ValueError on a malformed ISSN or a bad check digit."""
    text = (value or "").strip().upper()
    match = _ISSN.match(text)
    if not match:
        raise InputError(f"{value!r} is not an ISSN: use the form 1234-5678 (the last digit may be X)")
    digits = match.group(1) + match.group(2)
    total = sum(int(d) * w for d, w in zip(digits[:7], range(8, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    expected = "X" if check == 10 else str(check)
    if digits[7] != expected:
        raise InputError(f"{value!r} is not a valid ISSN (its check digit should be {expected}); check for a typo")
    return f"{digits[:4]}-{digits[4:]}"


def strip_abstract_heading(text: str) -> str:
    """JATS abstracts often start with a title "Abstract"; it is not part of the text."""
    return _LEADING_ABSTRACT.sub("", text, count=1)


def looks_english(text: str, language: str | None = None) -> bool:
    """Whether a text is (probably) English: the declared language if any, else a word-share test.

    Conservative: short texts and texts that read as English pass; a script other than Latin
    or an abstract with almost no English function words does not.
    """
    lang = (present(language) or "").lower()
    if lang:
        return lang.split("-")[0] in ("en", "eng")
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return True
    latin = sum(1 for c in letters if c.isascii() or "\u00c0" <= c <= "\u024f")
    if latin / len(letters) < 0.6:
        return False
    words = re.findall(r"[a-z]+", text.lower())
    if len(words) < 25:
        return True
    return sum(1 for w in words if w in _ENGLISH) / len(words) >= 0.06


@dataclass
class Collected:
    """Papers kept for a profile, and one line per paper left out (with why)."""

    papers: list[PaperRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _dois: set[str] = field(default_factory=set)

    def offer(self, paper: PaperRecord, language: str | None = None, where: str = "") -> bool:
        label = where or (paper.doi or paper.title[:60] or "a record")
        if not paper.title:
            self.skipped.append(f"{label}: no title")
            return False
        if not paper.abstract or len(paper.abstract.split()) < 20:
            self.skipped.append(f"{label}: no abstract (or one too short to use)")
            return False
        if not looks_english(paper.abstract, language):
            self.skipped.append(f"{label}: abstract not in English")
            return False
        key = content_hash(paper.title, paper.abstract)
        doi = (paper.doi or "").lower()
        if key in self._seen or (doi and doi in self._dois):
            self.skipped.append(f"{label}: duplicate")
            return False
        self._seen.add(key)
        if doi:
            self._dois.add(doi)
        self.papers.append(paper)
        return True

    def extend(self, papers: Iterable[tuple[PaperRecord, str | None]]) -> None:
        for paper, language in papers:
            self.offer(paper, language)
