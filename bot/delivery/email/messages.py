"""What a reader gets: the digest and confirmation messages, built from templates/email/."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import urlencode, urlsplit

from bot.config import Settings
from bot.db import Subscription
from bot.delivery.digests import DigestPlan
from bot.delivery.email.addresses import domain, sender
from bot.delivery.email.smtp import BODY_POLICY, HEADER_POLICY
from bot.delivery.email.tokens import CONFIRM, MAX_AGE, UNSUBSCRIBE, VOTE, make_token
from bot.delivery.subscriptions import describe
from bot.render import render
from bot.scores.rankings import RankedPreprint
from bot.web.access import WebLinks
from scoring.text import one_line


@dataclass(frozen=True)
class VoteLinks:
    relevant: str
    not_relevant: str


@dataclass(frozen=True)
class Section:
    """One profile in a digest email."""

    subscription_id: int
    plan: DigestPlan
    description: str  # "PLOS Genetics: top 1%, daily at 08:00 UTC, up to 20"
    unsubscribe_url: str
    votes: tuple[VoteLinks, ...] = ()  # one per item of the plan, in its order


def section(settings: Settings, email: str, sub: Subscription, plan: DigestPlan) -> Section:
    """A subscription's part of a digest, with its unsubscribe link and a pair of vote links
    per match (signed: a vote speaks for this address on this subscription's profile)."""

    def vote_url(preprint_id: int, relevant: bool) -> str:
        token = make_token(settings, VOTE, email, [sub.id], preprint_id=preprint_id, relevant=relevant)
        return link(settings, "/email/vote", token)

    votes = tuple(VoteLinks(vote_url(pid, True), vote_url(pid, False)) for pid in plan.preprint_ids)
    return Section(sub.id, plan, describe(sub), unsubscribe_url(settings, email, [sub.id]), votes)


def web_url(url: str | None) -> str:
    """`url` when it is an http(s) link a reader may follow; "" for anything else
    (a feed's `javascript:` or `data:` URL is never rendered as a link)."""
    text = one_line(url)
    parts = urlsplit(text)
    return text if parts.scheme.lower() in ("http", "https") and parts.hostname else ""


def readable(item: RankedPreprint) -> RankedPreprint:
    """A feed item as people read it: no control or bidi characters, only an http(s) link."""
    return replace(
        item,
        title=one_line(item.title),
        url=web_url(item.url),
        authors=[one_line(a) for a in item.authors],
        category=one_line(item.category) or None,
        doi=one_line(item.doi) or None,
        abstract=one_line(item.abstract),
        why=[replace(r, title=one_line(r.title)) for r in item.why],
        also=[replace(c, identifier=one_line(c.identifier), url=web_url(c.url)) for c in item.also],
    )


def readable_plan(plan: DigestPlan) -> DigestPlan:
    items = [readable(i) for i in plan.items]
    return replace(plan, profile=one_line(plan.profile), narrowed=one_line(plan.narrowed), items=items)


def link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.base_url}{path}?{urlencode({'token': token})}"


def unsubscribe_url(settings: Settings, email: str, subscription_ids: list[int]) -> str:
    return link(settings, "/email/unsubscribe", make_token(settings, UNSUBSCRIBE, email, subscription_ids))


def digest_subject(sections: list[Section]) -> str:
    total = sum(len(s.plan.items) for s in sections)
    if total == 0:
        return f"Preprint Scout: no new matches for {_join([s.plan.profile for s in sections])}"
    named = [f"{s.plan.profile} ({len(s.plan.items)})" if len(sections) > 1 else s.plan.profile for s in sections]
    return f"Preprint Scout: {total} new match{'es' if total != 1 else ''} for {_join(named)}"


def _join(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _message(
    settings: Settings, to: str, subject: str, text: str, html: str, now: datetime, message_id: str | None = None
) -> EmailMessage:
    from_header, from_addr = sender(settings)
    # The body is encoded under BODY_POLICY (quoted-printable lines of 76 at most), the
    # headers written under HEADER_POLICY: RFC 5322 allows 998-character lines, and at 78
    # Python folds a long Subject right after the colon.
    msg = EmailMessage(policy=BODY_POLICY)
    msg["From"] = from_header
    msg["To"] = to
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id or make_msgid(domain=domain(from_addr))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    # quoted-printable: 7-bit safe for any relay (no 8BITMIME needed), still readable raw.
    msg.set_content(text + "\n", cte="quoted-printable")
    msg.add_alternative(html + "\n", subtype="html", cte="quoted-printable")
    msg.policy = HEADER_POLICY
    return msg


def build_digest_message(
    settings: Settings, email: str, sections: list[Section], now: datetime, message_id: str | None = None
) -> EmailMessage:
    ids = [s.subscription_id for s in sections]
    all_url = unsubscribe_url(settings, email, ids)
    # Feed text and profile names as people should read them, whoever built the sections.
    sections = [replace(s, plan=readable_plan(s.plan), description=one_line(s.description)) for s in sections]
    subject = digest_subject(sections)
    context = {
        "subject": subject,
        "email": email,
        "sections": sections,
        "total": sum(len(s.plan.items) for s in sections),
        "unsubscribe_url": all_url,
        "base_url": settings.base_url,
        "links": WebLinks(settings),
    }
    text = render("email/digest.txt.j2", **context)
    html = render("email/digest.html.j2", **context)
    msg = _message(settings, email, subject, text, html, now, message_id)
    # RFC 8058 one-click: a POST to this URL unsubscribes the recipient from this list.
    msg["List-Unsubscribe"] = f"<{all_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Id"] = f"Preprint Scout digest <digest.{domain(sender(settings)[1])}>"
    return msg


def build_confirm_message(settings: Settings, sub: Subscription, now: datetime) -> EmailMessage:
    token = make_token(settings, CONFIRM, sub.email, [sub.id])
    context = {
        "email": sub.email,
        "profile": one_line(sub.profile.name),
        "description": one_line(describe(sub)),
        "confirm_url": link(settings, "/email/confirm", token),
        "valid_days": MAX_AGE[CONFIRM].days,
        "base_url": settings.base_url,
    }
    subject = f"Confirm your Preprint Scout digest for {one_line(sub.profile.name)}"
    text = render("email/confirm.txt.j2", **context)
    html = render("email/confirm.html.j2", **context)
    return _message(settings, sub.email, subject, text, html, now)
