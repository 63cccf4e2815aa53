"""Feed fetching and parsing against hand-written fixtures in the real formats."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.ingest.feeds import (
    FeedError,
    FeedItem,
    expand_shortcut,
    fetch_feed,
    parse_authors,
    parse_feed,
    server_for,
)
from tests.loopback import LoopbackServer, free_port
from tests.paths import FIXTURES

FIXTURES = FIXTURES / "feeds"
BIORXIV_URL = "https://connect.biorxiv.org/biorxiv_xml.php?subject=neuroscience"
LOOPBACK_FEED = "http://127.0.0.1:8999/biorxiv_xml.php?subject=neuroscience"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def by_id(items: tuple[FeedItem, ...]) -> dict[str, FeedItem]:
    return {item.identifier: item for item in items}


def rss(items_xml: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Journal</title><link>https://journal.example/</link>{items_xml}"
        "</channel></rss>"
    ).encode()


# --------------------------------------------------------------------------- bioRxiv


@pytest.mark.parametrize("url", [BIORXIV_URL, LOOPBACK_FEED])
def test_biorxiv_items_fields(url: str) -> None:
    feed = parse_feed(fixture("biorxiv_neuroscience.rdf"), url)
    assert feed.title == "bioRxiv Subject Collection: Neuroscience"
    assert feed.warnings == ()
    item = by_id(feed.items)["10.1101/2026.05.01.591234"]
    assert item.server == "biorxiv"  # from the links even when served from 127.0.0.1
    assert item.version == 1
    assert item.doi == "10.1101/2026.05.01.591234"
    assert item.title.startswith("Hippocampal sharp-wave ripples")
    assert item.abstract.startswith("Sharp-wave ripples (SWRs)")
    assert item.authors == ("Okafor, C. N.", "van der Berg, A.", "Müller, J.-P.", "Smith, J.")
    assert item.category == "Neuroscience"
    assert item.posted == dt.date(2026, 5, 3)
    assert item.url == "https://www.biorxiv.org/content/10.1101/2026.05.01.591234v1?rss=1"
    assert item.announce_type is None


def test_biorxiv_duplicates_collapse_to_highest_version() -> None:
    feed = parse_feed(fixture("biorxiv_neuroscience.rdf"), BIORXIV_URL)
    assert len(feed.items) == 4  # six entries: one repeated, one posted as v1 and v2
    assert len({item.key for item in feed.items}) == 4
    newer = by_id(feed.items)["10.64898/2026.05.02.601877"]
    assert newer.version == 2
    assert newer.title == "A cortical map of interoceptive prediction errors in the mouse insula"
    assert newer.authors == ("Lindqvist, E.", "Tanaka, H.", "Abebe, S.")
    assert newer.posted == dt.date(2026, 5, 5)
    # The first place in the feed is kept, so order follows the feed.
    assert [item.identifier for item in feed.items][:2] == [
        "10.1101/2026.05.01.591234",
        "10.64898/2026.05.02.601877",
    ]


def test_biorxiv_new_doi_prefix() -> None:
    feed = parse_feed(fixture("biorxiv_neuroscience.rdf"), BIORXIV_URL)
    prefixes = {item.identifier.split("/")[0] for item in feed.items}
    assert prefixes == {"10.1101", "10.64898"}
    assert all(item.doi == item.identifier for item in feed.items)


def test_biorxiv_html_stripped_from_title_and_abstract() -> None:
    item = by_id(parse_feed(fixture("biorxiv_neuroscience.rdf"), BIORXIV_URL).items)["10.1101/2026.04.29.590412"]
    assert item.title == ("Dopamine release in Drosophila mushroom bodies tracks reward & punishment prediction")
    assert "<" not in item.abstract and "&" not in item.abstract
    assert "(GRABDA)" in item.abstract and "γ lobe" in item.abstract
    assert item.authors == ("de la Cruz, M. A.", "O'Neill, R.", "Wang, X.-Y.")


def test_biorxiv_paragraphs_become_spaces() -> None:
    item = by_id(parse_feed(fixture("biorxiv_neuroscience.rdf"), BIORXIV_URL).items)["10.64898/2026.05.02.601877"]
    assert "heart rate. Responses scaled" in item.abstract


def test_channel_mention_kept_as_literal_text() -> None:
    item = by_id(parse_feed(fixture("biorxiv_neuroscience.rdf"), BIORXIV_URL).items)["10.1101/2026.04.30.590955"]
    # Escaping for Slack happens at delivery; here the title must keep what the feed said.
    assert item.title == ("Attention please: <!channel> cells in the superior colliculus gate orienting")
    assert item.authors == ("Nguyen, T. H.",)


def test_channel_mention_survives_in_an_html_title() -> None:
    feed = parse_feed(
        rss(
            "<item><title>&lt;i&gt;Mus&lt;/i&gt; &lt;!channel&gt; &amp; a &lt; b</title>"
            "<link>https://journal.example/1</link></item>"
        ),
        "https://journal.example/feed",
    )
    assert feed.items[0].title == "Mus <!channel> & a < b"


# --------------------------------------------------------------------------- medRxiv


def test_medrxiv_items() -> None:
    feed = parse_feed(fixture("medrxiv_epidemiology.rdf"), "http://127.0.0.1:9/medrxiv_xml.php")
    items = by_id(feed.items)
    assert {item.server for item in feed.items} == {"medrxiv"}
    first = items["10.1101/2026.04.28.26351234"]
    assert first.authors == (
        "Haddad, L.",
        "Kowalski, P. M.",
        "Osei, K. A.-B.",
        "Fernández-García, I.",
    )
    assert first.category == "Epidemiology"
    assert items["10.1101/2026.04.30.26351702"].version == 3
    assert items["10.1101/2026.04.30.26351702"].title.endswith("2019–2025")
    no_abstract = items["10.1101/2026.05.01.26352011"]
    assert no_abstract.abstract == "" and no_abstract.title  # kept: a title is enough
    assert no_abstract.category is None


# --------------------------------------------------------------------------- arXiv


@pytest.mark.parametrize("name", ["arxiv_cs_lg.rss", "arxiv_cs_lg.atom"])
def test_arxiv_items(name: str) -> None:
    feed = parse_feed(fixture(name), "http://127.0.0.1:9/rss/cs.LG")
    assert feed.title == "cs.LG updates on arXiv.org"
    assert feed.warnings == ()
    items = by_id(feed.items)
    new = items["2605.01234"]  # no version in the identifier
    assert new.server == "arxiv"
    assert new.version == 1
    assert new.announce_type == "new"
    assert new.abstract.startswith("Mixture-of-experts (MoE) layers")
    assert "Announce Type" not in new.abstract and "arXiv:" not in new.abstract
    assert new.authors == ("Priya Raman", "Tomás Ibáñez", "Wei Zhang")
    assert new.category == "cs.LG"
    assert new.posted == dt.date(2026, 5, 5)  # not shifted to another day by UTC conversion
    assert new.url == "https://arxiv.org/abs/2605.01234"
    assert new.doi is None
    cross = items["2605.01876"]
    assert (cross.announce_type, cross.category) == ("cross", "stat.ML")
    assert "neighbourhood overlap & prove" in cross.abstract
    replaced = items["2603.14502"]
    assert (replaced.announce_type, replaced.version) == ("replace", 3)
    assert replaced.doi == "10.1137/25m1712345"


def test_arxiv_replace_cross_and_inline_markup() -> None:
    item = by_id(parse_feed(fixture("arxiv_cs_lg.rss"), "https://rss.arxiv.org/rss/cs.LG").items)["2602.09911"]
    assert (item.announce_type, item.version, item.category) == ("replace-cross", 2, "q-bio.BM")
    assert "with k-NN and fine-tuned heads" in item.abstract


def test_arxiv_rss_and_atom_agree() -> None:
    rss_items = by_id(parse_feed(fixture("arxiv_cs_lg.rss"), "https://rss.arxiv.org/rss/cs.LG").items)
    atom_items = parse_feed(fixture("arxiv_cs_lg.atom"), "https://rss.arxiv.org/atom/cs.LG").items
    for item in atom_items:
        assert item == rss_items[item.identifier]


# --------------------------------------------------------------------------- other feeds


def test_generic_atom_feed() -> None:
    url = "https://journals.plos.org/plosone/feed/atom"
    feed = parse_feed(fixture("generic_atom.xml"), url)
    assert feed.title == "PLOS ONE: New Articles"
    first, second = feed.items
    assert first.server == "journals.plos.org"
    assert first.identifier == first.doi == "10.1371/journal.pone.0312345"
    assert first.version is None and first.announce_type is None
    assert first.title == "Sleep fragmentation and amyloid-β accumulation in aged rats"
    assert first.authors == ("Grace Adeleke", "Mateo Rinaldi")
    assert first.posted == dt.date(2026, 5, 5)
    assert "<p>" not in first.abstract
    # DOI from the Atom id ("info:doi/...") when there is no dc:identifier.
    assert second.identifier == "10.1371/journal.pone.0309876"


def test_generic_identifier_falls_back_to_guid_then_link() -> None:
    feed = parse_feed(
        rss(
            "<item><title>With guid</title><guid isPermaLink='false'>post-17</guid>"
            "<link>https://journal.example/a</link></item>"
            "<item><title>Only a link</title><link>https://journal.example/b</link></item>"
        ),
        "https://journal.example/feed.rss",
    )
    assert [(i.server, i.identifier) for i in feed.items] == [
        ("journal.example", "post-17"),
        ("journal.example", "https://journal.example/b"),
    ]


def test_item_link_names_the_server_in_a_mixed_feed() -> None:
    feed = parse_feed(
        rss(
            "<item><title>An arXiv paper</title><link>https://arxiv.org/abs/2605.00001v2</link>"
            "</item><item><title>A journal paper</title><link>https://journal.example/p</link>"
            "</item>"
        ),
        "https://journal.example/feed.rss",
    )
    assert [(i.server, i.identifier, i.version) for i in feed.items] == [
        ("arxiv", "2605.00001", 2),
        ("journal.example", "https://journal.example/p", None),
    ]


def test_entry_without_title_or_abstract_is_skipped_with_warning() -> None:
    feed = parse_feed(
        rss(
            "<item><link>https://journal.example/empty</link></item>"
            "<item><title>Kept</title><link>https://journal.example/kept</link></item>"
        ),
        "https://journal.example/feed.rss",
    )
    assert [item.title for item in feed.items] == ["Kept"]
    assert any("skipped entry 1" in warning for warning in feed.warnings)


def test_empty_feed_is_not_an_error() -> None:
    feed = parse_feed(fixture("biorxiv_empty.rdf"), BIORXIV_URL, "application/rss+xml")
    assert feed.items == ()
    assert feed.title == "bioRxiv Subject Collection: Neurosciense"
    assert any("no items" in warning for warning in feed.warnings)


def test_malformed_xml_raises() -> None:
    with pytest.raises(FeedError, match="^malformed XML: "):
        parse_feed(fixture("malformed.xml"), BIORXIV_URL, "text/xml")


def test_truncated_feed_keeps_parsed_items_with_warning() -> None:
    data = fixture("arxiv_cs_lg.rss")
    cut = data.index(b"</item>", data.index(b"</item>") + 1) + len(b"</item>")
    feed = parse_feed(data[:cut] + b"\n<item><title>Half an it", "https://rss.arxiv.org/rss/cs.LG")
    assert {"2605.01234", "2605.01876"} <= {item.identifier for item in feed.items}
    assert any("despite errors" in warning for warning in feed.warnings)


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", None])
def test_html_page_raises(content_type: str | None) -> None:
    with pytest.raises(FeedError, match="^not a feed") as excinfo:
        parse_feed(fixture("not_a_feed.html"), BIORXIV_URL, content_type)
    if content_type:
        assert str(excinfo.value) == "not a feed (content-type text/html)"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"", None),
        (b'{"messages": [{"status": "ok"}]}', "application/json"),
        (b"<config><item>1</item></config>", "application/xml"),
        (str(FIXTURES / "generic_atom.xml").encode(), None),  # a path is data, never opened
    ],
)
def test_other_non_feeds_raise(content: bytes, content_type: str | None) -> None:
    with pytest.raises(FeedError):
        parse_feed(content, "https://journal.example/feed", content_type)


def test_text_xml_without_charset_does_not_warn() -> None:
    # RFC 3023 makes that us-ascii; feedparser notes the override on every poll otherwise.
    url = "https://connect.medrxiv.org/medrxiv_xml.php?subject=epidemiology"
    feed = parse_feed(fixture("medrxiv_epidemiology.rdf"), url, "text/xml")
    assert feed.warnings == ()
    assert len(feed.items) == 3


def test_rss_served_as_text_html_still_parses() -> None:
    feed = parse_feed(fixture("arxiv_cs_lg.rss"), "https://rss.arxiv.org/rss/cs.LG", "text/html")
    assert len(feed.items) == 4


def test_server_for() -> None:
    assert server_for("https://connect.biorxiv.org/biorxiv_xml.php?subject=all") == "biorxiv"
    assert server_for("https://connect.medrxiv.org/medrxiv_xml.php") == "medrxiv"
    assert server_for("https://rss.arxiv.org/rss/cs.LG") == "arxiv"
    assert server_for("https://export.arxiv.org/rss/cs.LG") == "arxiv"
    assert server_for("https://journals.plos.org/plosone/feed/atom") == "journals.plos.org"
    loop = "http://127.0.0.1:1234/feed"
    medrxiv_link = "https://www.medrxiv.org/content/10.1101/2026.04.28.26351234v1?rss=1"
    assert server_for(loop, [medrxiv_link, medrxiv_link, "https://journal.example/1"]) == ("medrxiv")
    assert server_for(loop, [medrxiv_link, "https://journal.example/1"]) == "127.0.0.1"
    assert server_for(loop, ["oai:arXiv.org:2605.01234v1"]) == "arxiv"
    assert server_for(loop, ["doi:10.64898/2026.05.02.601877"]) == "biorxiv"
    assert server_for(loop, ["https://journal.example/1"]) == "127.0.0.1"


# --------------------------------------------------------------------------- shortcuts


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "biorxiv:neuroscience",
            ("https://connect.biorxiv.org/biorxiv_xml.php?subject=neuroscience", "bioRxiv neuroscience"),
        ),
        (
            "bioRxiv: Plant Biology",
            ("https://connect.biorxiv.org/biorxiv_xml.php?subject=plant_biology", "bioRxiv plant biology"),
        ),
        (
            "medrxiv:epidemiology",
            ("https://connect.medrxiv.org/medrxiv_xml.php?subject=epidemiology", "medRxiv epidemiology"),
        ),
        ("arxiv:cs.LG", ("https://rss.arxiv.org/rss/cs.LG", "arXiv cs.LG")),
        ("arxiv:cs.LG+stat.ML", ("https://rss.arxiv.org/rss/cs.LG+stat.ML", "arXiv cs.LG+stat.ML")),
        ("arxiv:q-bio.NC", ("https://rss.arxiv.org/rss/q-bio.NC", "arXiv q-bio.NC")),
        (
            "https://journals.plos.org/plosone/feed/atom",
            ("https://journals.plos.org/plosone/feed/atom", "journals.plos.org/plosone/feed/atom"),
        ),
        ("  http://example.org/  ", ("http://example.org/", "example.org")),
    ],
)
def test_expand_shortcut(spec: str, expected: tuple[str, str]) -> None:
    assert expand_shortcut(spec) == expected


def test_expand_shortcut_custom_bases() -> None:
    assert expand_shortcut("biorxiv:all", biorxiv_base="http://127.0.0.1:5/")[0] == (
        "http://127.0.0.1:5/biorxiv_xml.php?subject=all"
    )
    assert expand_shortcut("medrxiv:all", medrxiv_base="http://127.0.0.1:6")[0] == (
        "http://127.0.0.1:6/medrxiv_xml.php?subject=all"
    )
    assert expand_shortcut("arxiv:cs.AI", arxiv_base="http://127.0.0.1:7")[0] == ("http://127.0.0.1:7/rss/cs.AI")


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "neuroscience",
        "pubmed:cancer",
        "biorxiv:",
        "arxiv:",
        "biorxiv:neuro/science",
        "arxiv:cs.LG;rm",
        "ftp://example.org/feed",
        "https://",
        "biorxiv:a&b=c",
    ],
)
def test_expand_shortcut_rejects_bad_specs(spec: str) -> None:
    with pytest.raises(ValueError, match="biorxiv:<subject>.*arxiv:<category>.*http"):
        expand_shortcut(spec)


# --------------------------------------------------------------------------- authors


@pytest.mark.parametrize(
    ("value", "server", "expected"),
    [
        (
            "Surname, I., Surname, I. J., van der Berg, A.",
            "biorxiv",
            ("Surname, I.", "Surname, I. J.", "van der Berg, A."),
        ),
        ("Wang, X., Li, Y., Ng, A. Y.", "biorxiv", ("Wang, X.", "Li, Y.", "Ng, A. Y.")),
        (
            "Kim, I.J., Osei, K. A.-B., Smith, J., Jr., Doe, Ch.",
            "medrxiv",
            ("Kim, I.J.", "Osei, K. A.-B.", "Smith, J., Jr.", "Doe, Ch."),
        ),
        ("Smith, J. P, Doe, A", "biorxiv", ("Smith, J. P", "Doe, A")),
        ("Pereira, A. C.; Santos, M.; Lima, J. R.", "biorxiv", ("Pereira, A. C.", "Santos, M.", "Lima, J. R.")),
        ("Name One, Name Two", "arxiv", ("Name One", "Name Two")),
        ("Ada Lovelace, Alan Turing and Grace Hopper", "arxiv", ("Ada Lovelace", "Alan Turing", "Grace Hopper")),
        ("Ada Lovelace, Alan Turing, and Grace Hopper", "arxiv", ("Ada Lovelace", "Alan Turing", "Grace Hopper")),
        ("Ada Lovelace (Cambridge, UK), Alan Turing (NPL)", "arxiv", ("Ada Lovelace", "Alan Turing")),
        (
            '<a href="https://arxiv.org/a/one_n_1">Name One</a>, <a href="x">Name Two</a>',
            "arxiv",
            ("Name One", "Name Two"),
        ),
        ("A. B. Smith; C. Jones", "journal.example", ("A. B. Smith", "C. Jones")),
        ("Smith, J., Doe, A., et al.", "biorxiv", ("Smith, J.", "Doe, A.")),
        ("  ", "biorxiv", ()),
        (None, "biorxiv", ()),
        ([], "arxiv", ()),
        ([{"name": "Okafor, C. N., Smith, J."}], "biorxiv", ("Okafor, C. N.", "Smith, J.")),
        ([{"name": "Priya Raman"}, {"name": "Wei Zhang"}, {}], "arxiv", ("Priya Raman", "Wei Zhang")),
        (["Smith, John", "Doe, Jane"], "journal.example", ("Smith, John", "Doe, Jane")),
    ],
)
def test_parse_authors(value: object, server: str, expected: tuple[str, ...]) -> None:
    assert parse_authors(value, server) == expected


# --------------------------------------------------------------------------- fetching


@pytest.fixture
def client():
    with httpx.Client(timeout=0.5, headers={"User-Agent": "scout-tests"}) as http:
        yield http


def test_fetch_200_then_304_with_etag(server: LoopbackServer, client: httpx.Client) -> None:
    body = fixture("biorxiv_neuroscience.rdf")
    server.route(
        "/biorxiv_xml.php",
        body=body,
        headers={
            "Content-Type": "application/rss+xml; charset=utf-8",
            "Last-Modified": "Tue, 05 May 2026 06:00:00 GMT",
        },
        etag='"feed-v1"',
    )
    url = server.url + "/biorxiv_xml.php?subject=neuroscience"
    first = fetch_feed(client, url)
    assert (first.status, first.content, first.etag) == (200, body, '"feed-v1"')
    assert first.last_modified == "Tue, 05 May 2026 06:00:00 GMT"
    assert first.content_type == "application/rss+xml; charset=utf-8"
    assert "if-none-match" not in server.requests[0].headers
    assert server.requests[0].headers["user-agent"] == "scout-tests"

    second = fetch_feed(client, url, etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.content, second.etag) == (304, b"", '"feed-v1"')
    assert second.last_modified == first.last_modified  # kept when the 304 omits it
    sent = server.requests[1].headers
    assert sent["if-none-match"] == '"feed-v1"'
    assert sent["if-modified-since"] == "Tue, 05 May 2026 06:00:00 GMT"

    parsed = parse_feed(first.content, url, first.content_type)
    assert {item.server for item in parsed.items} == {"biorxiv"}


def test_fetch_stale_etag_gets_full_body(server: LoopbackServer, client: httpx.Client) -> None:
    server.route("/feed", body=b"<rss/>", etag='"v2"')
    result = fetch_feed(client, server.url + "/feed", etag='"v1"')
    assert (result.status, result.content, result.etag) == (200, b"<rss/>", '"v2"')


@pytest.mark.parametrize("status", [404, 500, 503])
def test_fetch_http_error(server: LoopbackServer, client: httpx.Client, status: int) -> None:
    server.route("/feed", status=status, body=b"oops")
    with pytest.raises(FeedError, match=f"^HTTP {status} from http://127.0.0.1"):
        fetch_feed(client, server.url + "/feed")


def test_fetch_redirect_not_followed_says_where(server: LoopbackServer, client: httpx.Client) -> None:
    server.route("/old", status=301, headers={"Location": "/new"})
    with pytest.raises(FeedError, match=r"HTTP 301 .*moved to /new"):
        fetch_feed(client, server.url + "/old")


def test_fetch_timeout(server: LoopbackServer, client: httpx.Client) -> None:
    server.route("/slow", body=b"<rss/>", delay=2.0)
    started = time.monotonic()
    with pytest.raises(FeedError, match=r"^timed out after 0.5s"):
        fetch_feed(client, server.url + "/slow")
    assert time.monotonic() - started < 1.8


def test_fetch_connection_refused(client: httpx.Client) -> None:
    with pytest.raises(FeedError, match="^could not fetch"):
        fetch_feed(client, f"http://127.0.0.1:{free_port()}/feed")


def test_fetch_too_large(server: LoopbackServer, client: httpx.Client) -> None:
    server.route("/big", body=b"x" * 5000)
    with pytest.raises(FeedError, match="too large"):
        fetch_feed(client, server.url + "/big", max_bytes=1000)


def test_fetch_bad_url(client: httpx.Client) -> None:
    with pytest.raises(FeedError):
        fetch_feed(client, "gopher://example.org/feed")


# --------------------------------------------------------------------------- loopback server


def test_loopback_query_routes_and_handler(server: LoopbackServer) -> None:
    server.route("/x", body="path only")
    server.route("/x?subject=a", body="subject a")
    server.route("/api/echo", method="POST", handler=lambda req: (201, {"X-Echo": "1"}, req.body[::-1]))
    assert httpx.get(server.url + "/x?subject=a").text == "subject a"
    assert httpx.get(server.url + "/x?subject=b").text == "path only"
    echoed = httpx.post(server.url + "/api/echo", content=b"abc")
    assert (echoed.status_code, echoed.headers["x-echo"], echoed.content) == (201, "1", b"cba")
    assert httpx.get(server.url + "/api/echo").status_code == 404  # GET is not routed
    assert httpx.get(server.url + "/missing").status_code == 404
    assert server.requests_to("/api/echo")[0].body == b"abc"
    assert [r.query.get("subject") for r in server.requests_to("/x")] == [["a"], ["b"]]


# --------------------------------------------------------------------------- fuzzing

_SEEDS = [fixture(name) for name in sorted(p.name for p in FIXTURES.iterdir() if p.is_file())]


@st.composite
def damaged_feeds(draw: st.DrawFn) -> bytes:
    """A real fixture cut short and with random bytes spliced in."""
    data = draw(st.sampled_from(_SEEDS))
    cut = draw(st.integers(0, len(data)))
    at = draw(st.integers(0, cut))
    noise = draw(st.binary(max_size=40))
    return data[:at] + noise + data[at:cut]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    content=st.one_of(st.binary(max_size=2000), damaged_feeds()),
    content_type=st.sampled_from([None, "application/rss+xml", "text/html", "text/xml"]),
)
def test_parse_feed_only_raises_feed_error(content: bytes, content_type: str | None) -> None:
    try:
        feed = parse_feed(content, "http://127.0.0.1:1/feed", content_type)
    except FeedError as exc:
        assert str(exc)
        return
    for item in feed.items:
        assert item.identifier and (item.title or item.abstract)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["biorxiv", "arxiv", "journal.example"]))
def test_parse_authors_never_raises(text: str, server: str) -> None:
    names = parse_authors(text, server)
    assert all(name and name == name.strip() for name in names)
