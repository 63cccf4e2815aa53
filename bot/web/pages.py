"""The pages of `scout serve`: the index, a profile's ranking, its reference list and a
preprint's matches, server-rendered from templates/web/.

Every page reads the same records as `scout rank` and `scout match` (bot/scores/rankings.py)
and renders them with the same filters, so a page says what the terminal says. A request
that cannot be met gets a page saying why: 404 with names worth trying, 400 with the values
allowed; never a 500.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.config import Settings
from bot.db import Database, Preprint, Profile
from bot.delivery.email.tokens import secret_key
from bot.fulltext import MAX_QUERY, MAX_TERMS
from bot.profiles.catalog import EVERY, SHARED
from bot.render import render
from bot.scores.rankings import PreprintNotFound, find_preprint, match_preprint, rank_profile, window_bounds
from bot.scores.update import ScoringContext
from bot.web.access import KEY_PARAM, key_matches, needs_key
from bot.web.custom import MAX_PROFILES, CustomFeed, custom_feed
from bot.web.feeds import FEED_LIMIT, TAG_AUTHORITY, feed_entries, feed_threshold, feed_updated
from bot.web.queries import (
    NotFound,
    all_scores,
    last_poll,
    prediction_set,
    preprint_path,
    profile_by_slug,
    profile_path,
    profile_summaries,
    profiles_by_slug,
    reference_papers,
    unknown_slug,
)
from bot.web.search import search_preprints, search_profiles
from scoring.errors import ScoutError
from scoring.text import one_line
from scoring.thresholds import ThresholdError

PAGE_SIZE = 25
DAY_CHOICES = (7, 30, 90, 365)
PREDICTION_LEVELS = (0.5, 0.9)
# Nothing leaves the page's own origin: no CDN, no web font, no script.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STYLESHEET = "/static/scout.css"
JSON_LIMIT = 1000
CUSTOM_LIMIT = 100
# Feed readers poll: a few minutes of caching costs nothing, scores change at most per poll.
FEED_HEADERS = {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}


class BadQuery(ScoutError):
    """A query value outside what a page allows; the message says what is allowed."""


@dataclass(frozen=True)
class Page:
    template: str
    context: dict
    status: int = 200


def page_response(page: Page) -> HTMLResponse:
    html = render(page.template, stylesheet=STYLESHEET, **page.context)
    return HTMLResponse(html, status_code=page.status, headers=HEADERS)


def error_page(status: int, message: str, suggestions: list[tuple[str, str]] | None = None) -> Page:
    titles = {400: "Bad request", 404: "Not found"}
    return Page(
        "web/error.html.j2", {"title": titles[status], "message": message, "suggestions": suggestions or []}, status
    )


def is_number(raw: str) -> bool:
    """ASCII digits only: "²" and "٣" are digits to str.isdigit but not to int()."""
    return raw.isascii() and raw.isdigit()


def int_choice(request: Request, name: str, allowed: list[int], default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not is_number(raw) or int(raw) not in allowed:
        words = ", ".join(str(a) for a in allowed)
        raise BadQuery(f"{name}={raw[:40]!r} is not allowed: {name} is one of {words}.")
    return int(raw)


def page_number(request: Request) -> int:
    raw = request.query_params.get("page")
    if raw is None or raw == "":
        return 1
    if not is_number(raw) or not 1 <= int(raw) <= 100_000:
        raise BadQuery(f"page={raw[:40]!r} is not allowed: page is a whole number from 1.")
    return int(raw)


@dataclass
class Pages:
    settings: Settings
    db: Database
    ctx: ScoringContext
    # The JSON feed reads its window afresh: it is what `scout rank --json` prints, to the digit.

    @property
    def token(self) -> bool:
        return self.settings.web_access == "token"

    def open_profile(self, session, request: Request) -> tuple[Profile, str]:
        """The profile a request names, and the query that keeps its key on every link when
        its pages need one (all under `token`, a Slack workspace's own always). Without the
        right key it does not exist: under `token` no name is suggested, otherwise only the
        shared ones, as for a slug that names nothing."""
        slug = request.path_params["slug"]
        given = request.query_params.get(KEY_PARAM)
        for profile in profiles_by_slug(session, slug, EVERY):
            if not needs_key(self.settings, profile.team_id):
                return profile, ""
            if key_matches(self.settings, profile.id, given):
                return profile, urlencode({KEY_PARAM: given})
        if self.token:
            raise NotFound("No such page: a profile's page opens with the link its owner shares.")
        raise unknown_slug(session, slug, SHARED)

    @property
    def day_choices(self) -> list[int]:
        return sorted({*DAY_CHOICES, self.settings.window_days})

    def index(self, request: Request) -> Page:
        days = int_choice(request, "days", self.day_choices, self.settings.window_days)
        since, until = window_bounds(days)
        with self.db.session() as session:
            profiles = profile_summaries(session, since, until, SHARED)
            polled = last_poll(session)
        context = {"profiles": profiles, "days": days, "last_poll": polled}
        return Page("web/index.html.j2", context)

    def profile(self, request: Request) -> Page:
        days = int_choice(request, "days", self.day_choices, self.settings.window_days)
        number = page_number(request)
        slug = request.path_params["slug"]
        with self.db.session() as session:
            profile, key = self.open_profile(session, request)
            offset = (number - 1) * PAGE_SIZE
            ranking = rank_profile(session, self.ctx, profile.name, days=days, top=PAGE_SIZE, offset=offset)
        pages = max(1, math.ceil(ranking.window_count / PAGE_SIZE))
        if number > pages:
            raise BadQuery(f"page={number} is not allowed: this ranking has pages 1 to {pages}.")

        def page_link(n: int, d: int = days) -> str:
            query = {k: v for k, v in (("days", d), ("page", n)) if (k, v) not in (("page", 1),)}
            if d == self.settings.window_days:
                query.pop("days", None)
            query_text = "&".join(q for q in (urlencode(query), key) if q)
            return request.url.path + (f"?{query_text}" if query_text else "")

        context = {
            "ranking": ranking,
            "header": render("cli/ranking_header.txt.j2", ranking=ranking),
            "slug": slug,
            "days": days,
            "day_choices": self.day_choices,
            "number": number,
            "pages": pages,
            "page_link": page_link,
            "key": f"?{key}" if key else "",
            # Under `token` the preprint pages, which name every profile, are not served.
            "preprint_path": (lambda doi, ident: None) if self.token else preprint_path,
        }
        return Page("web/profile.html.j2", context)

    def atom(self, request: Request) -> Response:
        days = int_choice(request, "days", self.day_choices, self.settings.window_days)
        try:
            threshold = feed_threshold(request)
        except ThresholdError as exc:
            raise BadQuery(str(exc)) from None
        slug = request.path_params["slug"]
        base = self.settings.base_url or str(request.base_url).rstrip("/")
        with self.db.session() as session:
            profile, key = self.open_profile(session, request)
            ranking = rank_profile(session, self.ctx, profile.name, days=days, top=FEED_LIMIT, why=False)
            entries = feed_entries(session, slug, ranking.items, threshold, base, pages=not self.token)
            updated = feed_updated(session, entries)
        # Re-encoded: a reader may have sent "?top=1%" raw, which is no valid URI in a feed.
        query = f"?{urlencode(request.query_params.multi_items())}" if request.query_params else ""
        xml = render(
            "web/feed.atom.xml.j2",
            title=f"{ranking.profile}: preprints {threshold.headline()}",
            subtitle=render("cli/ranking_header.txt.j2", ranking=ranking),
            entries=entries,
            updated=updated,
            feed_id=f"{TAG_AUTHORITY}{slug}/{threshold.kind}-{threshold.value:g}",
            self_url=base + request.url.path + query,
            page_url=f"{base}/profiles/{slug}" + (f"?{key}" if key else ""),
        )
        return Response(xml + "\n", media_type="application/atom+xml", headers=FEED_HEADERS)

    def json(self, request: Request) -> Response:
        days = int_choice(request, "days", self.day_choices, self.settings.window_days)
        top = request.query_params.get("top", "20")
        if not is_number(top) or not 1 <= int(top) <= JSON_LIMIT:
            raise BadQuery(f"top={top[:40]!r} is not allowed: top is a whole number from 1 to {JSON_LIMIT}.")
        with self.db.session() as session:
            profile, _key = self.open_profile(session, request)
            ranking = rank_profile(session, self.ctx, profile.name, days=days, top=int(top))
        return JSONResponse(ranking.to_json(), headers=FEED_HEADERS)

    def search(self, request: Request) -> Page:
        q = one_line(request.query_params.get("q", ""))
        if len(q) > MAX_QUERY:
            raise BadQuery(f"q is {len(q)} characters long: a search is at most {MAX_QUERY}.")
        with self.db.session() as session:
            names = search_profiles(session, q, scope=SHARED) if q else []
            found = search_preprints(session, q) if q else []
            preprints = [(p, preprint_path(p.doi, p.identifier)) for p in found]
            context = {"q": q, "profiles": [(n, profile_path(n)) for n in names], "preprints": preprints}
            return Page("web/search.html.j2", context)

    def custom_query(self, session, request: Request) -> tuple[list[Profile], list[str], list[str], int]:
        """The custom feed's profiles (p), keywords (kw), categories (cat) and window (days)."""
        slugs = request.query_params.getlist("p")
        if not slugs or len(slugs) > MAX_PROFILES:
            raise BadQuery(f"p names 1 to {MAX_PROFILES} profiles by their slug, e.g. /feed?p=elife&p=plos-genetics.")
        terms = {}
        for name in ("kw", "cat"):
            values = [one_line(v) for v in request.query_params.getlist(name) if one_line(v)]
            if len(values) > MAX_TERMS or any(len(v) > MAX_QUERY for v in values):
                raise BadQuery(f"{name} is allowed at most {MAX_TERMS} times, each at most {MAX_QUERY} characters.")
            terms[name] = values
        days = int_choice(request, "days", self.day_choices, self.settings.window_days)
        # Shared profiles only: a workspace's profile is never part of a public feed.
        profiles = list({p.id: p for p in (profile_by_slug(session, s, SHARED) for s in slugs)}.values())
        return profiles, terms["kw"], terms["cat"], days

    def custom(self, request: Request) -> Page:
        with self.db.session() as session:
            profiles, keywords, categories, days = self.custom_query(session, request)
            feed = custom_feed(session, profiles, keywords, categories, days, CUSTOM_LIMIT)
        atom_query = urlencode([*request.query_params.multi_items(), ("top", "1%")])
        context = {
            "feed": feed,
            "sentence": custom_sentence(feed),
            "atom_url": f"/feed.atom?{atom_query}",
            "preprint_path": preprint_path,
            "profile_path": profile_path,
        }
        return Page("web/custom.html.j2", context)

    def custom_atom(self, request: Request) -> Response:
        try:
            threshold = feed_threshold(request)
        except ThresholdError as exc:
            raise BadQuery(str(exc)) from None
        base = self.settings.base_url or str(request.base_url).rstrip("/")
        with self.db.session() as session:
            profiles, keywords, categories, days = self.custom_query(session, request)
            feed = custom_feed(session, profiles, keywords, categories, days, FEED_LIMIT)
            items = [e.item for e in feed.items]
            entries = feed_entries(session, "feed", items, threshold, base, profiles=[e.profile for e in feed.items])
            updated = feed_updated(session, entries)
        page_query = urlencode(
            [(k, v) for k, v in request.query_params.multi_items() if k not in ("top", "min", "lift")]
        )
        xml = render(
            "web/feed.atom.xml.j2",
            title=f"Preprints {threshold.headline()} for {', '.join(feed.profiles)}",
            subtitle=custom_sentence(feed),
            entries=entries,
            updated=updated,
            feed_id=f"{TAG_AUTHORITY}feed?{urlencode(sorted(request.query_params.multi_items()))}",
            self_url=f"{base}/feed.atom?{urlencode(request.query_params.multi_items())}",
            page_url=f"{base}/feed?{page_query}",
        )
        return Response(xml + "\n", media_type="application/atom+xml", headers=FEED_HEADERS)

    def papers(self, request: Request) -> Page:
        slug = request.path_params["slug"]
        with self.db.session() as session:
            profile, key = self.open_profile(session, request)
            papers = reference_papers(session, profile)
            context = {"profile": profile.name, "slug": slug, "papers": papers, "key": f"?{key}" if key else ""}
            return Page("web/papers.html.j2", context)

    def preprint(self, request: Request) -> Page:
        key = request.path_params["key"]
        days = self.settings.window_days
        if not key.isprintable():  # a NUL or control character is no identifier (and PostgreSQL refuses it)
            raise NotFound(f"No stored preprint with id {one_line(key)[:200]!r}.")
        with self.db.session() as session:
            try:
                preprint = find_preprint(session, key)
            except PreprintNotFound:
                raise NotFound(f"No stored preprint with id {key[:200]!r}.", close_preprints(session, key)) from None
            # Shared profiles only; the workspaces' own count as "published elsewhere".
            match = match_preprint(session, preprint, days=days, limit=10, scope=SHARED)
            scores = all_scores(session, preprint, SHARED)
            sets = [prediction_set(scores, match.background, level) for level in PREDICTION_LEVELS]
            context = {
                "preprint": preprint,
                "match": match,
                "sets": sets,
                "days": days,
                "profile_path": profile_path,
            }
            return Page("web/preprint.html.j2", context)


def custom_sentence(feed: CustomFeed) -> str:
    """What a custom feed holds, in one sentence."""
    names = ", ".join(feed.profiles[:-1]) + (" or " if len(feed.profiles) > 1 else "") + feed.profiles[-1]
    words = f" mentioning {' or '.join(repr(k) for k in feed.keywords)}" if feed.keywords else ""
    cats = f" in {' or '.join(feed.categories)}" if feed.categories else ""
    return (
        f"Preprints posted in the last {feed.days} days{cats}{words}, each under the profile it fits best of "
        f"{names}, ranked by match score: {feed.matched:,} in all."
    )


def close_preprints(session, key: str) -> list[tuple[str, str]]:
    """Stored preprints whose id starts like the one asked for (a typo near the end)."""
    stem = key.strip().lower()[: max(8, len(key) - 6)]
    rows = session.execute(
        select(Preprint.title, Preprint.doi, Preprint.identifier)
        .where(Preprint.identifier.startswith(stem, autoescape=True))
        .order_by(Preprint.identifier)
        .limit(3)
    ).all()
    return [(title, path) for title, doi, ident in rows if (path := preprint_path(doi, ident))]


def serve(view: Callable[[Request], Page | Response]) -> Callable:
    async def endpoint(request: Request) -> Response:
        try:
            page = await run_in_threadpool(view, request)
        except NotFound as exc:
            page = error_page(404, str(exc), exc.suggestions)
        except BadQuery as exc:
            page = error_page(400, str(exc))
        return page if isinstance(page, Response) else page_response(page)

    return endpoint


async def stylesheet(_request: Request) -> Response:
    css = render("web/scout.css")
    return Response(css, media_type="text/css", headers={**HEADERS, "Cache-Control": "public, max-age=3600"})


def routes(settings: Settings, db: Database, ctx: ScoringContext | None = None) -> list[Route]:
    """The pages SCOUT_WEB_ACCESS allows: all; a profile's own under `token`; none when `off`."""
    if settings.web_access == "off":
        return []
    if settings.web_access == "token":
        secret_key(settings)  # no secret, no links: say so at start, not on the first request
    pages = Pages(settings, db, ctx or ScoringContext.from_settings(settings))
    profile_routes = [
        Route(STYLESHEET, stylesheet, methods=["GET"]),
        Route("/profiles/{slug}.atom", serve(pages.atom), methods=["GET"]),
        Route("/profiles/{slug}.json", serve(pages.json), methods=["GET"]),
        Route("/profiles/{slug}/papers", serve(pages.papers), methods=["GET"]),
        Route("/profiles/{slug}", serve(pages.profile), methods=["GET"]),
    ]
    if settings.web_access == "token":
        return profile_routes
    return [
        Route("/", serve(pages.index), methods=["GET"]),
        Route("/search", serve(pages.search), methods=["GET"]),
        Route("/feed", serve(pages.custom), methods=["GET"]),
        Route("/feed.atom", serve(pages.custom_atom), methods=["GET"]),
        *profile_routes,
        Route("/preprints/{key:path}", serve(pages.preprint), methods=["GET"]),
    ]
