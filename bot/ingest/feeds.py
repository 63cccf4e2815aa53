"""Fetch and parse preprint feeds: bioRxiv/medRxiv RSS 1.0, arXiv RSS/Atom, any RSS/Atom.

We fetch the bytes ourselves (feedparser's own HTTP has no timeout) and hand them
to feedparser as a stream. Everything a feed says passes through
`scoring.text.clean_text`, so a title looks the same whichever feed carried it.
Nothing here touches the database: the pipeline stores what `parse_feed` returns.
"""

from __future__ import annotations

import datetime as dt
import difflib
import email.utils
import hashlib
import html
import io
import re
import time
import xml.sax
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx

from bot.config import display_url
from bot.ingest.deadline import cutoff_after
from bot.ingest.identifiers import ARXIV_ID_IN_TEXT, BIORXIV_DOI_IN_LINK, DOI_IN_TEXT, MAX_DOI
from scoring.errors import InputError, ScoutError
from scoring.text import clean_text, one_line

MAX_FEED_BYTES = 20 * 1024 * 1024
# The same bounds on SQLite and PostgreSQL (SQLite would store anything, PostgreSQL refuses
# what overflows a column): longer identifiers are shortened to a prefix and a hash, so they
# stay unique and stable; longer categories are cut; a "DOI" this long is not one.
MAX_IDENTIFIER = 500
MAX_SERVER = 100
MAX_CATEGORY = 200
MAX_FEED_URL = 2000
MAX_NAME = 200
MAX_ETAG = 500
MAX_LAST_MODIFIED = 100
# A posted date this far past today is a typo or a placeholder, not a date.
FUTURE_SLACK = dt.timedelta(days=2)
KNOWN_SERVERS = ("biorxiv", "medrxiv", "arxiv")
BIORXIV_DOI_PREFIXES = ("10.1101/", "10.64898/")

_ACCEPT = (
    "application/rss+xml, application/rdf+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
_SHORTCUT_HELP = (
    "use biorxiv:<subject> (e.g. biorxiv:neuroscience), medrxiv:<subject>, "
    "arxiv:<category>[+<category>...] (e.g. arxiv:cs.LG+stat.ML) or an http(s):// feed URL"
)


class FeedError(ScoutError):
    """A feed could not be fetched or is not a feed; the message is for humans."""


@dataclass(frozen=True)
class FeedItem:
    server: str
    identifier: str
    version: int | None
    title: str
    abstract: str
    authors: tuple[str, ...]
    category: str | None
    posted: dt.date | None
    url: str
    doi: str | None
    announce_type: str | None

    @property
    def key(self) -> tuple[str, str]:
        """Dedup key: one preprint, whatever its version."""
        return (self.server, self.identifier)


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    items: tuple[FeedItem, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class FetchResult:
    status: int
    content: bytes
    etag: str | None
    last_modified: str | None
    content_type: str | None


# --------------------------------------------------------------------------- fetching


def fetch_feed(
    client: httpx.Client,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int = MAX_FEED_BYTES,
    deadline: float | None = None,
) -> FetchResult:
    """Conditional GET of one feed; any failure becomes a FeedError saying what went wrong.

    `deadline` bounds the whole fetch in seconds: httpx's timeout is per read, so a server
    sending a byte a second would otherwise hold the poll for as long as it likes.
    """
    headers = {"Accept": _ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    shown = display_url(url)
    too_long = f"took longer than {deadline:g}s fetching {shown} (SCOUT_FEED_DEADLINE)" if deadline else ""
    with cutoff_after(deadline) as cutoff:
        try:
            with client.stream("GET", url, headers=headers | cutoff.headers, extensions=cutoff.extensions) as response:
                fetched = _read_response(response, shown, etag, last_modified, max_bytes)
        except httpx.TimeoutException:
            raise FeedError(
                too_long if cutoff.passed else f"timed out after {_timeout_seconds(client)} fetching {shown}"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FeedError(
                too_long if cutoff.passed else f"could not fetch {shown}: {one_line(_describe(exc))}"
            ) from None
        if cutoff.passed:  # the cut can look like the end of a body sent without a length
            raise FeedError(too_long)
    return fetched


def _read_response(
    response: httpx.Response,
    url: str,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
) -> FetchResult:
    status = response.status_code
    # Some servers omit the validators on a 304; the ones we sent are still current.
    new_etag = _validator(response.headers.get("etag"), MAX_ETAG) or (etag if status == 304 else None)
    new_modified = _validator(response.headers.get("last-modified"), MAX_LAST_MODIFIED) or (
        last_modified if status == 304 else None
    )
    content_type = response.headers.get("content-type")
    if status == 304:
        return FetchResult(304, b"", new_etag, new_modified, content_type)
    if status >= 300:
        where = response.headers.get("location")
        moved = f" (moved to {where})" if 300 <= status < 400 and where else ""
        raise FeedError(f"HTTP {status} from {url}{moved}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FeedError(f"feed too large ({int(declared):,} bytes, limit {max_bytes:,}) at {url}")
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        # Content-Length can be absent or wrong; a runaway body must not eat memory.
        if len(body) > max_bytes:
            raise FeedError(f"feed too large (over {max_bytes:,} bytes) at {url}")
    return FetchResult(status, bytes(body), new_etag, new_modified, content_type)


def _validator(value: str | None, limit: int) -> str | None:
    """An ETag or Last-Modified worth sending back: a cut one would never match, so drop it."""
    value = one_line(value)
    return value if value and len(value) <= limit else None


def _timeout_seconds(client: httpx.Client) -> str:
    timeout = client.timeout
    seconds = timeout.read or timeout.connect or timeout.pool or timeout.write
    return f"{seconds:g}s" if seconds else "the client timeout"


def _describe(exc: Exception) -> str:
    # httpx wraps OS errors ("[Errno 111] Connection refused"); the innermost text is clearest.
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --------------------------------------------------------------------------- shortcuts


def expand_shortcut(
    spec: str,
    *,
    biorxiv_base: str = "https://connect.biorxiv.org",
    medrxiv_base: str = "https://connect.medrxiv.org",
    arxiv_base: str = "https://rss.arxiv.org",
) -> tuple[str, str]:
    """Turn "biorxiv:neuroscience", "arxiv:cs.LG+stat.ML" or a URL into (feed URL, label).

    Subjects and categories are checked against the servers' own lists, so a typo is
    refused here rather than polled for weeks as an empty feed.
    """
    text = one_line(spec)
    scheme, _, rest = text.partition(":")
    scheme = scheme.lower()
    if scheme in ("biorxiv", "medrxiv") and rest.strip():
        slug = _known_subject_slug(rest, scheme)
        base = biorxiv_base if scheme == "biorxiv" else medrxiv_base
        label = f"{'bioRxiv' if scheme == 'biorxiv' else 'medRxiv'} {slug.replace('_', ' ')}"
        return f"{base.rstrip('/')}/{scheme}_xml.php?subject={slug}", label
    if scheme == "arxiv" and rest.strip():
        categories = _arxiv_categories(rest)
        return f"{arxiv_base.rstrip('/')}/rss/{categories}", f"arXiv {categories}"
    if scheme in ("http", "https"):
        return _feed_url(text)
    raise InputError(f"unrecognised feed {_quoted(spec)}: {_SHORTCUT_HELP}")


def _feed_url(text: str) -> tuple[str, str]:
    """A feed URL with its scheme and host lower-cased (they are case-blind: one feed, one row)."""
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        host = None
    if not host or " " in text:
        raise InputError(f"unrecognised feed {_quoted(text)}: {_SHORTCUT_HELP}")
    if len(text) > MAX_FEED_URL:
        raise InputError(f"feed URL too long ({len(text):,} characters; the limit is {MAX_FEED_URL:,})")
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    url = parts._replace(scheme=parts.scheme.lower(), netloc=f"{userinfo}{at}{hostport.lower()}").geturl()
    label = f"{host}{parts.path.rstrip('/')}"
    return url, label[:MAX_NAME]


def _quoted(text: str) -> str:
    text = one_line(text)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def subject_slug(category: str | None) -> str:
    """The RSS subject slug of a category: "Animal Behavior and Cognition" -> "animal_behavior_and_cognition"."""
    return re.sub(r"[\s-]+", "_", (category or "").strip().lower())


def _known_subject_slug(subject: str, server: str) -> str:
    slug = subject_slug(subject)
    if not re.fullmatch(r"[a-z0-9_]+", slug):
        raise InputError(f"bad subject {_quoted(subject.strip())}: letters, digits and spaces only; {_SHORTCUT_HELP}")
    known = BIORXIV_SUBJECTS if server == "biorxiv" else MEDRXIV_SUBJECTS
    if slug not in known:
        close = difflib.get_close_matches(slug, known, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else f"known subjects: {', '.join(known)}"
        raise InputError(f"{server} has no subject {_quoted(subject.strip())}; {hint}")
    return slug


def _arxiv_categories(text: str) -> str:
    # arXiv categories are case-sensitive (cs.LG, cond-mat.mes-hall): take what was typed
    # case-blind and give back arXiv's own spelling.
    parts = [p for p in re.split(r"[+,\s]+", text.strip()) if p]
    canonical = {c.casefold(): c for c in ARXIV_CATEGORIES}
    chosen = []
    for part in parts:
        if not re.fullmatch(r"[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?", part, re.I):
            raise InputError(f"bad arXiv category {_quoted(part)}; {_SHORTCUT_HELP}")
        found = canonical.get(part.casefold())
        if found is None:
            close = difflib.get_close_matches(part, ARXIV_CATEGORIES, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else " (see https://arxiv.org/category_taxonomy)"
            raise InputError(f"arXiv has no category {_quoted(part)}{hint}")
        chosen.append(found)
    return "+".join(chosen)


BIORXIV_SUBJECTS = [
    "all",
    "animal_behavior_and_cognition",
    "biochemistry",
    "bioengineering",
    "bioinformatics",
    "biophysics",
    "cancer_biology",
    "cell_biology",
    "clinical_trials",
    "developmental_biology",
    "ecology",
    "epidemiology",
    "evolutionary_biology",
    "genetics",
    "genomics",
    "immunology",
    "microbiology",
    "molecular_biology",
    "neuroscience",
    "paleontology",
    "pathology",
    "pharmacology_and_toxicology",
    "physiology",
    "plant_biology",
    "scientific_communication_and_education",
    "synthetic_biology",
    "systems_biology",
    "zoology",
]
MEDRXIV_SUBJECTS = [
    "all",
    "addiction_medicine",
    "allergy_and_immunology",
    "anesthesia",
    "cardiovascular_medicine",
    "dentistry_and_oral_medicine",
    "dermatology",
    "emergency_medicine",
    "endocrinology",
    "epidemiology",
    "forensic_medicine",
    "gastroenterology",
    "genetic_and_genomic_medicine",
    "geriatric_medicine",
    "health_economics",
    "health_informatics",
    "health_policy",
    "health_systems_and_quality_improvement",
    "hematology",
    "hiv_aids",
    "infectious_diseases",
    "intensive_care_and_critical_care_medicine",
    "medical_education",
    "medical_ethics",
    "nephrology",
    "neurology",
    "nursing",
    "nutrition",
    "obstetrics_and_gynecology",
    "occupational_and_environmental_health",
    "oncology",
    "ophthalmology",
    "orthopedics",
    "otolaryngology",
    "pain_medicine",
    "palliative_medicine",
    "pathology",
    "pediatrics",
    "pharmacology_and_therapeutics",
    "primary_care_research",
    "psychiatry_and_clinical_psychology",
    "public_and_global_health",
    "radiology_and_imaging",
    "rehabilitation_medicine_and_physical_therapy",
    "respiratory_medicine",
    "rheumatology",
    "sexual_and_reproductive_health",
    "sports_medicine",
    "surgery",
    "toxicology",
    "transplantation",
    "urology",
]


def _arxiv_taxonomy() -> tuple[str, ...]:
    groups = {
        "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA NE NI OH OS "
        "PF PL RO SC SD SE SI SY",
        "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA RT SG SP ST",
        "stat": "AP CO ME ML OT TH",
        "q-bio": "BM CB GN MN NC OT PE QM SC TO",
        "q-fin": "CP EC GN MF PM PR RM ST TR",
        "econ": "EM GN TH",
        "eess": "AS IV SP SY",
        "astro-ph": "CO EP GA HE IM SR",
        "nlin": "AO CD CG PS SI",
        "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
        "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an ed-ph flu-dyn "
        "gen-ph geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    }
    single = ["gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math-ph", "nucl-ex", "nucl-th", "quant-ph"]
    names = [*groups, *single]
    names += [f"{archive}.{sub}" for archive, subs in groups.items() for sub in subs.split()]
    return tuple(names)


ARXIV_CATEGORIES = _arxiv_taxonomy()


# --------------------------------------------------------------------------- servers

_DOI_PREFIX = re.compile(r"^(?:doi:\s*|info:doi/|https?://(?:dx\.)?doi\.org/)", re.I)


def server_for(url: str, hints: Iterable[str] = ()) -> str:
    """Which server a feed belongs to: its host, else what most of its items point at.

    `hints` holds one link, id or DOI per item. Tests serve real-format feeds from
    127.0.0.1, so the host alone is not enough; a journal feed that links one arXiv
    paper stays the journal's.
    """
    by_host = _server_from_host(url)
    if by_host:
        return by_host
    hints = list(hints)
    votes = Counter(_server_from_hint(h) or _server_from_doi(h) for h in hints)
    votes.pop(None, None)
    if votes:
        server, count = votes.most_common(1)[0]
        if count * 2 > len(hints):
            return server
    return (urlsplit(url).hostname or url).lower()


def _server_from_host(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    labels = host.lower().split(".")
    return next((name for name in KNOWN_SERVERS if name in labels), None)


def _server_from_hint(text: str | None) -> str | None:
    """Server named by an item's link or id ("oai:arXiv.org:..." counts as arXiv)."""
    if not text:
        return None
    if text.lower().startswith("oai:arxiv.org:"):
        return "arxiv"
    return _server_from_host(text) if "://" in text else None


def _entry_hint(entry: Mapping[str, Any]) -> str:
    """The one link, id or DOI of an entry that best says which server it came from."""
    candidates = [_link(entry), _str(entry.get("id")), _str(entry.get("dc_identifier"))]
    for guess in (_server_from_hint, _server_from_doi):
        found = next((c for c in candidates if c and guess(c)), None)
        if found:
            return found
    return candidates[0] or candidates[1]


def _server_from_doi(text: str) -> str | None:
    # A bare 10.1101 DOI does not say bioRxiv or medRxiv; bioRxiv is the larger guess.
    doi = _normalise_doi(text)
    return "biorxiv" if doi and doi.startswith(BIORXIV_DOI_PREFIXES) else None


# --------------------------------------------------------------------------- parsing


def parse_feed(content: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Items of one feed, cleaned and deduplicated; FeedError only when it is not a feed at all."""
    try:
        # A stream, never bytes: feedparser treats a bytes argument as a possible file name.
        parsed = feedparser.parse(
            io.BytesIO(content),
            response_headers=_response_headers(url, content_type, content),
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser promises not to raise; a bug there must not stop a poll
        raise FeedError(f"unparseable feed: {type(exc).__name__}: {exc}") from None
    entries = list(parsed.get("entries") or [])
    warnings: list[str] = []
    items: list[FeedItem] = []
    if entries:
        feed_server = server_for(url, [_entry_hint(entry) for entry in entries])
        items = _collect_items(entries, feed_server, warnings)
    bozo = bool(parsed.get("bozo")) and not _harmless(parsed.get("bozo_exception"))
    unusable = _is_html(content, content_type) or not parsed.get("version") or (not entries and bozo)
    if not items and unusable:
        # Nothing usable and no sign of a feed: say what it was instead. (A feed whose
        # entries were all skipped is still a feed: its warnings name each entry.)
        _raise_not_a_feed(parsed, content, content_type)
    if bozo:
        warnings.insert(0, f"feed parsed despite errors: {_bozo_message(parsed)}")
    if not entries:
        warnings.append(
            "no items in feed (normal for arXiv at weekends; for bioRxiv/medRxiv "
            "an unknown subject also answers with an empty feed)"
        )
    return ParsedFeed(_feed_title(parsed, url), tuple(items), tuple(warnings))


_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def _response_headers(url: str, content_type: str | None, content: bytes = b"") -> dict[str, str]:
    # Pass only XML types on: their charset helps decoding, while feedparser would
    # flag text/html or a missing type although we judge the content ourselves.
    if not content_type or "xml" not in content_type.lower():
        content_type = "application/xml"
    if content.startswith(_BOMS):
        # A byte-order mark says the encoding for certain; a server's default
        # "charset=utf-8" in front of a UTF-16 file would garble every byte.
        content_type = content_type.split(";")[0]
    return {"content-location": url, "content-type": content_type}


def _harmless(exc: BaseException | None) -> bool:
    """feedparser's notes on declared-vs-actual encoding: every poll would warn about them."""
    return isinstance(exc, feedparser.ThingsNobodyCaresAboutButMe)


def _raise_not_a_feed(parsed: Any, content: bytes, content_type: str | None) -> None:
    if _is_html(content, content_type):
        kind = content_type.split(";")[0].strip() if content_type else "an HTML page"
        raise FeedError(f"not a feed (content-type {kind})" if content_type else f"not a feed ({kind})")
    if content_type and not _feedish_type(content_type) and not parsed.get("version"):
        raise FeedError(f"not a feed (content-type {content_type.split(';')[0].strip()})")
    exc = parsed.get("bozo_exception")
    if isinstance(exc, xml.sax.SAXException):
        raise FeedError(f"malformed XML: {_bozo_message(parsed)}")
    if parsed.get("version"):
        return  # a valid, empty feed whose only complaint is e.g. its declared encoding
    if not content.strip():
        raise FeedError("not a feed (empty response)")
    raise FeedError("not a feed (no RSS or Atom document found)")


def _is_html(content: bytes, content_type: str | None) -> bool:
    if content_type and "html" in content_type.lower():
        return True
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head[:512]


def _feedish_type(content_type: str) -> bool:
    lowered = content_type.lower()
    return any(word in lowered for word in ("xml", "rss", "atom", "rdf"))


def _bozo_message(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    text = str(exc) if exc is not None else "unknown error"
    return text if len(text) <= 200 else text[:197] + "..."


def _feed_title(parsed: Any, url: str) -> str:
    feed = parsed.get("feed") or {}
    title = _field_text(feed.get("title_detail"), feed.get("title"))
    return title or (urlsplit(url).hostname or url)


def _collect_items(entries: list, feed_server: str, warnings: list[str]) -> list[FeedItem]:
    """Build items; collapse repeats of one preprint, keeping its highest version.

    One odd entry costs only itself: it is skipped with a warning naming it.
    """
    kept: dict[tuple[str, str], FeedItem] = {}
    for number, entry in enumerate(entries, start=1):
        label = entry_label(number, entry)
        try:
            item = _build_item(entry, feed_server, lambda note, label=label: warnings.append(f"{label}: {note}"))
        except Exception as exc:  # one odd entry must not cost the rest of the feed
            warnings.append(f"skipped {label}: {type(exc).__name__}: {one_line(str(exc))[:200]}")
            continue
        if item is None:
            warnings.append(f"skipped {label}: no title or abstract")
            continue
        previous = kept.get(item.key)
        if previous is None or (item.version or 0) > (previous.version or 0):
            kept[item.key] = item
    return list(kept.values())


def entry_label(number: int, entry: Any) -> str:
    """ "entry 3 ("A title…")": how a warning names an entry, whatever it holds."""
    title = ""
    if isinstance(entry, Mapping):
        try:
            title = _field_text(entry.get("title_detail"), entry.get("title"))
        except Exception:  # the label must never be what fails
            title = ""
    return f'entry {number} ("{title[:60]}{"…" if len(title) > 60 else ""}")' if title else f"entry {number}"


def _build_item(entry: Mapping[str, Any], feed_server: str, warn: Any = None) -> FeedItem | None:
    title = _field_text(entry.get("title_detail"), entry.get("title"))
    abstract = _strip_arxiv_prefix(_abstract(entry))
    if not title and not abstract:
        return None
    link = _link(entry)
    entry_id = _str(entry.get("id"))
    server = (_server_from_hint(link) or _server_from_hint(entry_id) or feed_server)[:MAX_SERVER]
    doi = _entry_doi(entry, link, server)
    if doi and len(doi) > MAX_DOI:
        doi = None
    identifier, version = _identity(entry, server, doi, link, entry_id)
    if not identifier:
        # No link, id or DOI: the title is what names it (a feed repeats the same item
        # each poll, so it must map to the same row).
        identifier = "title:" + hashlib.sha256((title or abstract).casefold().encode("utf-8")).hexdigest()
    category = _category(entry, server)
    return FeedItem(
        server=server,
        identifier=bounded_key(identifier, MAX_IDENTIFIER),
        version=version,
        title=title,
        abstract=abstract,
        authors=_entry_authors(entry, server),
        category=category[:MAX_CATEGORY] if category else None,
        posted=_posted(entry, warn or (lambda note: None)),
        url=link or (entry_id if "://" in entry_id else ""),
        doi=doi,
        announce_type=_announce_type(entry) if server == "arxiv" else None,
    )


def bounded_key(text: str, limit: int) -> str:
    """`text`, or when longer than `limit` a prefix of it and its hash: still unique and stable."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"{text[: limit - len(digest) - 1]}#{digest}"


def _str(value: Any) -> str:
    # Links, ids and dates are one line: a NUL or an ESC in them is never meant.
    return one_line(value) if isinstance(value, str) else ""


def _field_text(detail: Any, fallback: Any) -> str:
    """Clean a title/summary according to the type feedparser detected for it."""
    if isinstance(detail, Mapping) and isinstance(detail.get("value"), str):
        value, kind = detail["value"], str(detail.get("type") or "")
    else:
        value, kind = _str(fallback), "text/html"
    if "html" not in kind:
        # Plain text: "<!channel>" or "a < b" are words, not markup, and must survive cleaning.
        value = html.escape(value, quote=False)
    return clean_text(value)


def _abstract(entry: Mapping[str, Any]) -> str:
    text = _field_text(entry.get("summary_detail"), entry.get("summary"))
    if text:
        return text
    for content in entry.get("content") or []:
        if isinstance(content, Mapping):
            text = _field_text(content, content.get("value"))
            if text:
                return text
    return ""


_ARXIV_PREFIX = re.compile(r"^arXiv:\s*\S+\s+Announce Type:\s*([\w-]+)\s*(?:Abstract:\s*)?", re.I)


def _strip_arxiv_prefix(text: str) -> str:
    return _ARXIV_PREFIX.sub("", text, count=1)


def _announce_type(entry: Mapping[str, Any]) -> str | None:
    value = _str(entry.get("arxiv_announce_type"))
    if not value:
        # Feeds that name the arXiv namespace differently still say it in the summary.
        match = _ARXIV_PREFIX.match(_field_text(entry.get("summary_detail"), entry.get("summary")))
        value = match.group(1) if match else ""
    return value.lower() or None


def _link(entry: Mapping[str, Any]) -> str:
    link = _str(entry.get("link"))
    if link:
        return link
    for candidate in entry.get("links") or []:
        if isinstance(candidate, Mapping) and _str(candidate.get("href")):
            return _str(candidate.get("href"))
    return ""


def _normalise_doi(value: Any) -> str | None:
    text = _DOI_PREFIX.sub("", _str(value))
    match = DOI_IN_TEXT.match(text)
    return match.group(0).rstrip(".,;)").lower() if match else None


def _entry_doi(entry: Mapping[str, Any], link: str, server: str) -> str | None:
    candidates = [entry.get(k) for k in ("dc_identifier", "prism_doi", "arxiv_doi", "doi")]
    candidates.append(entry.get("id"))
    if server == "arxiv":
        # arXiv's own ids are not DOIs, and its links never carry one.
        candidates = [entry.get("arxiv_doi"), entry.get("doi")]
    for candidate in candidates:
        doi = _normalise_doi(candidate)
        if doi:
            return doi
    if server in ("biorxiv", "medrxiv"):
        match = BIORXIV_DOI_IN_LINK.search(link)
        if match:
            return match.group(1).lower()
    if urlsplit(link).hostname in ("doi.org", "dx.doi.org"):
        return _normalise_doi(link)
    return None


def _identity(
    entry: Mapping[str, Any], server: str, doi: str | None, link: str, entry_id: str
) -> tuple[str, int | None]:
    """(dedup identifier, version) as each server spells them."""
    if server == "arxiv":
        found = _arxiv_id(entry, link, entry_id)
        if found:
            return found
    if server in ("biorxiv", "medrxiv"):
        return doi or entry_id or link, _biorxiv_version(link) or _biorxiv_version(entry_id)
    return doi or entry_id or link, None


def _arxiv_id(entry: Mapping[str, Any], link: str, entry_id: str) -> tuple[str, int | None] | None:
    summary = _str(entry.get("summary"))[:200]
    summary_id = summary[len("arXiv:") :] if summary.lower().startswith("arxiv:") else ""
    arxiv_link = link if "/abs/" in link or "/pdf/" in link else ""
    identifier, version = None, None
    for source in (entry_id.removeprefix("oai:arXiv.org:"), summary_id, arxiv_link):
        match = ARXIV_ID_IN_TEXT.search(source)
        if match:
            identifier = identifier or match.group(1)
            if match.group(2) and match.group(1) == identifier:
                version = version or int(match.group(2))
    return (identifier, version) if identifier else None


def _biorxiv_version(text: str) -> int | None:
    # ".../10.1101/2026.05.01.591234v2?rss=1" and ".../short/2026.05.01.591234v2"
    match = re.search(r"\d{6,}v(\d+)(?=$|[?#/.])", text or "")
    return int(match.group(1)) if match else None


def _entry_authors(entry: Mapping[str, Any], server: str) -> tuple[str, ...]:
    authors = entry.get("authors")
    if isinstance(authors, list) and authors:
        return parse_authors(authors, server)
    return parse_authors(_str(entry.get("author")) or None, server)


def _category(entry: Mapping[str, Any], server: str) -> str | None:
    section = clean_text(_str(entry.get("prism_section")))
    if section and server != "arxiv":
        return section
    for tag in entry.get("tags") or []:
        # dc:subject and <category> both land in tags; for arXiv the first is the primary.
        term = clean_text(_str(tag.get("term"))) if isinstance(tag, Mapping) else ""
        if term:
            return term
    return None


def _posted(entry: Mapping[str, Any], warn: Any) -> dt.date | None:
    """The posted date; an unreadable or far-future one is reported and left out (the item
    is then dated the day it was first seen)."""
    unreadable = None
    for key in ("prism_publicationdate", "published", "updated", "created"):
        raw = _str(entry.get(key))
        day = _parse_day(raw, entry.get(f"{key}_parsed"))
        if day:
            if day > dt.date.today() + FUTURE_SLACK:
                warn(f"date {day.isoformat()} is in the future; dated the day it was first seen instead")
                return None
            return day
        unreadable = unreadable or raw
    if unreadable:
        warn(f"unreadable date {_quoted(unreadable)}; dated the day it was first seen instead")
    return None


def _parse_day(raw: str, parsed: Any) -> dt.date | None:
    """The calendar date the feed wrote, before any conversion to UTC shifts it a day."""
    match = re.match(r"(\d{4})-(\d{2})-(\d{2})", raw)
    try:
        if match:
            return dt.date(*(int(g) for g in match.groups()))
        if raw:
            return email.utils.parsedate_to_datetime(raw).date()
    except (ValueError, TypeError, IndexError, OverflowError):
        pass
    if isinstance(parsed, time.struct_time):
        try:
            return dt.date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------- authors

_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_INITIAL_TOKEN = re.compile(r"[^\W\d_]+\.?")
_ET_AL = re.compile(r"et\.?\s+al\.?", re.I)


def parse_authors(value: str | list | None, server: str) -> tuple[str, ...]:
    """Author names from a dc:creator string or feedparser's `authors` list.

    "Surname, I., van der Berg, A." gives ("Surname, I.", "van der Berg, A."): a part
    that is only initials belongs to the surname before it.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        return _split_names(value, server)
    names = [item.get("name") if isinstance(item, Mapping) else item for item in value]
    names = [name for name in names if isinstance(name, str) and name.strip()]
    if len(names) == 1:
        # feedparser turns one dc:creator holding every author into a one-item list.
        return _split_names(names[0], server)
    cleaned = (_clean_name(name, server) for name in names)
    return tuple(name for name in cleaned if name)


def _split_names(text: str, server: str) -> tuple[str, ...]:
    text = _clean_name(text, server)
    if not text:
        return ()
    if ";" in text:
        # The bioRxiv API style "Surname, I.; Other, J." already separates whole names.
        parts = _split_top_level(text, ";")
    else:
        text = re.sub(r"\s*,?\s+(?:and|&)\s+", ", ", text)
        parts = _attach_initials(_split_top_level(text, ","))
    names = (part.strip(" ,") for part in parts)
    return tuple(name for name in names if name and not _ET_AL.fullmatch(name))


def _clean_name(text: str, server: str) -> str:
    text = clean_text(text)
    if server == "arxiv":
        # arXiv lists sometimes carry affiliations: "Ada Lovelace (Cambridge, UK)".
        text = re.sub(r"\s*\([^()]*\)", "", text)
    return text.strip(" ,;")


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on a separator outside parentheses, so "(MIT, USA)" stays in one part."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if char == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _attach_initials(parts: list[str]) -> list[str]:
    names: list[str] = []
    for part in parts:
        if names and _belongs_to(part, names[-1]):
            names[-1] = f"{names[-1]}, {part}"
        else:
            names.append(part)
    return names


def _belongs_to(part: str, previous: str) -> bool:
    """Initials complete a bare surname; "Jr."/"III" complete any name."""
    if _is_suffix(part):
        return True
    return _is_initials(part) and "," not in previous and not _is_initials(previous)


def _is_suffix(part: str) -> bool:
    return part.lower() in _SUFFIXES


def _is_initials(part: str) -> bool:
    """ "I.", "I. J.", "I.J.", "A.-B.", "Ch." or "J P"; but not "Li", "Ng" or "Wei"."""
    tokens = _INITIAL_TOKEN.findall(part)
    leftover = _INITIAL_TOKEN.sub("", part)
    if not tokens or len(tokens) > 4 or leftover.strip(" -\u2010"):
        return False
    if any("." in token for token in tokens):
        return all(_initial_with_dot(token) for token in tokens)
    # Without dots only single capitals count: a two-letter word is usually a surname.
    return all(len(token) == 1 and token.isupper() for token in tokens)


def _initial_with_dot(token: str) -> bool:
    letters = token.rstrip(".")
    if not letters or not letters[0].isupper():
        return False
    return len(letters) == 1 or (len(letters) == 2 and letters[1].islower() and token.endswith("."))
