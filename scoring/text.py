"""Text cleaning shared by feeds, profiles and the embedder.

Everything that reaches the model or a user passes through here, so that a title
with markup from one feed and the same title as plain text from another embed,
hash and display the same way.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from html.parser import HTMLParser

_WS = re.compile(r"\s+")
# Characters no reader means to see: C0 and C1 controls (an ESC sequence can retitle a
# terminal; PostgreSQL refuses NUL in text) and the bidirectional overrides and isolates
# that make "DNA\u202egnp.exe" read as "DNA exe.png". Tab, newline and carriage return
# are whitespace and are handled as such.
_UNSEEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

# Block-level tags end a word; inline tags (<i>, <sub>) do not, so "H<sub>2</sub>O"
# stays "H2O" while "<p>a</p><p>b</p>" becomes "a b".
_BLOCK_TAGS = frozenset(
    {
        "p",
        "br",
        "div",
        "li",
        "ul",
        "ol",
        "tr",
        "td",
        "th",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "title",
        "abstract",
        "sec",
        "jats:p",
        "jats:title",
        "jats:sec",
    }
)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def clean_text(value: str | None) -> str:
    """Plain, single-spaced text from a string that may hold HTML, JATS or entities."""
    if not value:
        return ""
    text = value
    if "<" in text or "&" in text:
        parser = _TextExtractor()
        parser.feed(text)
        parser.close()
        text = "".join(parser.parts)
        # Doubly-escaped feeds ("&amp;lt;i&amp;gt;") leave entities after one pass.
        text = html.unescape(text)
    text = unicodedata.normalize("NFC", strip_unseen(text))
    return _WS.sub(" ", text).strip()


def strip_unseen(value: str) -> str:
    """`value` without control and bidirectional-override characters (whitespace kept)."""
    return _UNSEEN.sub("", value)


def one_line(value: str | None) -> str:
    """A name, subject or title as one readable line: no controls, single-spaced."""
    return _WS.sub(" ", strip_unseen(value or "")).strip()


def document(title: str | None, abstract: str | None) -> str:
    """The text the model embeds for a paper: title, then abstract."""
    title = clean_text(title)
    abstract = clean_text(abstract)
    if title and abstract:
        return f"{title}. {abstract}" if not title.endswith((".", "?", "!")) else f"{title} {abstract}"
    return title or abstract


def content_hash(title: str | None, abstract: str | None) -> str:
    """Stable key for the embedding cache: the same text always maps to one vector."""
    return hashlib.sha256(document(title, abstract).encode("utf-8")).hexdigest()
