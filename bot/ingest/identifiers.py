"""DOIs and arXiv ids: how they look, in a feed's text and as a person types them.

One place for the patterns that feeds (finding an id in an entry), rankings (finding a
stored preprint) and Slack (telling `/scout match ID` from `/scout match text`) share.
"""

from __future__ import annotations

import re

# The longest DOI stored; a longer one is not taken for a DOI (the item keeps its other ids).
MAX_DOI = 300

_DOI_BODY = r"10\.\d{4,9}/[^\s\"<>]+"
# New-style (2405.01234) or old-style (hep-th/9901001, math.AG/0601001) arXiv ids.
_ARXIV_BODY = r"\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Za-z]{2})?/\d{7}"

# In running text: a feed's dc:identifier, an entry id, a link.
DOI_IN_TEXT = re.compile(_DOI_BODY)
ARXIV_ID_IN_TEXT = re.compile(rf"(?<![\w.])({_ARXIV_BODY})(?:v(\d+))?(?![\d])")
# bioRxiv/medRxiv content links: /content/10.1101/2024.01.01.123456v2
BIORXIV_DOI_IN_LINK = re.compile(r"(10\.\d{4,9}/(?:\d{4}\.\d{2}\.\d{2}\.)?\d{6,})(?:v\d+)?")

# As typed: the whole text is one id, perhaps as a URL or with a prefix.
_TYPED_DOI = re.compile(rf"^(?:https?://(?:dx\.)?doi\.org/|doi:)?({_DOI_BODY})$", re.IGNORECASE)
_TYPED_ARXIV = re.compile(rf"^(?:https?://arxiv\.org/abs/|arxiv:)?({_ARXIV_BODY})(v\d+)?$", re.IGNORECASE)


def parse_preprint_id(query: str) -> tuple[str, str] | None:
    """("doi", "10.1101/...") or ("arxiv", "2405.01234") for what a person typed; None if it is
    neither. The DOI loses a trailing version ("...123456v2"): stored preprints are keyed
    without it."""
    text = query.strip()
    if doi := _TYPED_DOI.match(text):
        return "doi", re.sub(r"v\d+$", "", doi.group(1).lower().rstrip("."))
    if arxiv := _TYPED_ARXIV.match(text):
        return "arxiv", arxiv.group(1)
    return None
