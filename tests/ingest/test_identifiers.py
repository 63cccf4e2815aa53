"""DOIs and arXiv ids, as typed and as found in feeds: one set of patterns for every reader."""

from __future__ import annotations

import pytest

from bot.ingest.identifiers import ARXIV_ID_IN_TEXT, BIORXIV_DOI_IN_LINK, DOI_IN_TEXT, parse_preprint_id


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("10.1101/2024.01.01.123456", ("doi", "10.1101/2024.01.01.123456")),
        ("  https://doi.org/10.1101/2024.01.01.123456v2 ", ("doi", "10.1101/2024.01.01.123456")),
        ("doi:10.64898/2026.05.01.591234", ("doi", "10.64898/2026.05.01.591234")),
        ("2405.01234", ("arxiv", "2405.01234")),
        ("arXiv:2405.01234v3", ("arxiv", "2405.01234")),
        ("https://arxiv.org/abs/2405.01234", ("arxiv", "2405.01234")),
        ("hep-th/9901001", ("arxiv", "hep-th/9901001")),
        ("math.AG/0601001", ("arxiv", "math.AG/0601001")),
        ("Cortical dynamics of attention", None),
        ("10.1101 is a prefix", None),
        ("", None),
    ],
)
def test_what_a_person_types(typed, parsed):
    assert parse_preprint_id(typed) == parsed


def test_ids_found_in_feed_text():
    assert ARXIV_ID_IN_TEXT.search("oai:arXiv.org:2405.01234v2").groups() == ("2405.01234", "2")
    assert ARXIV_ID_IN_TEXT.search("see 12405.012345") is None
    assert DOI_IN_TEXT.match('10.1101/2024.01.01.123456"').group(0) == "10.1101/2024.01.01.123456"
    link = "https://www.biorxiv.org/content/10.1101/2024.01.01.123456v2?rss=1"
    assert BIORXIV_DOI_IN_LINK.search(link).group(1) == "10.1101/2024.01.01.123456"
