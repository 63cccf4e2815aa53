"""The links in emails against the real web app, served by uvicorn on loopback: one-click
unsubscribe (RFC 8058 POST), the unsubscribe page, and the double opt-in confirmation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine

from bot.db import Subscription
from bot.delivery.email.delivery import EmailDeliverer
from bot.delivery.email.subscriptions import subscribe_email
from bot.delivery.email.tokens import CONFIRM, UNSUBSCRIBE, make_token
from bot.delivery.subscriptions import Options
from bot.processes.web import build_app
from tests.loopback import free_port, serve
from tests.mail_data import follow, mail_settings, seed, subscription
from tests.smtp_server import SmtpServer

# The web process confirms with the real clock, so these tests run in the present.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
LATER = NOW + timedelta(days=1, hours=1)  # after the first scheduled run


@pytest.fixture
def site(db, database_url):
    """(db, settings, smtp server, web URL): the app's links point at the live server."""
    seed(db, NOW)
    port = free_port()
    with SmtpServer() as smtp:
        settings = mail_settings(database_url, smtp.url, base_url=f"http://127.0.0.1:{port}")
        with serve(build_app(settings, db), port) as url:
            yield db, settings, smtp, url


def send_digest(db, settings, when=LATER):
    from bot.delivery.digests import run_due_digests

    return run_due_digests(db, [EmailDeliverer(settings, db)], now=when)


def test_one_click_post_unsubscribes(site):
    db, settings, smtp, url = site
    gen = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    elife = follow(db, "ada@example.org", "eLife", NOW)
    send_digest(db, settings)
    msg = smtp.messages[0].message
    target = msg["List-Unsubscribe"].strip("<>")
    assert target.startswith(url + "/email/unsubscribe?token=")

    # What a mail client does for RFC 8058: POST the URL with this body, no cookies, no page.
    reply = httpx.post(
        target,
        content="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert reply.status_code == 200
    assert "Unsubscribed" in reply.text and "ada@example.org" in reply.text
    assert subscription(db, gen).status == subscription(db, elife).status == "unsubscribed"
    assert subscription(db, gen).status_reason == "one-click unsubscribe"

    # Again: still fine, nothing more to do; and no digest goes out any more.
    again = httpx.post(target, content="List-Unsubscribe=One-Click")
    assert again.status_code == 200 and "Already unsubscribed" in again.text
    assert send_digest(db, settings, LATER + timedelta(days=2)) == []
    assert len(smtp.messages) == 1


def test_get_shows_a_page_and_changes_nothing_until_posted(site):
    db, settings, smtp, url = site
    gen = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    follow(db, "ada@example.org", "eLife", NOW)
    send_digest(db, settings)
    text = smtp.messages[0].message.get_body(("plain",)).get_content()
    # The visible per-profile link from the text part.
    link = re.search(r"Unsubscribe from PLOS Genetics: (\S+)", text).group(1)

    page = httpx.get(link)
    assert page.status_code == 200
    assert "Unsubscribe?" in page.text and "PLOS Genetics" in page.text and 'method="post"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert subscription(db, gen).status == "active"  # a link scanner's GET does nothing

    action = re.search(r'action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    done = httpx.post(url + action, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "Unsubscribed" in done.text
    with db.session() as s:
        statuses = {sub.profile.name: sub.status for sub in s.query(Subscription)}
    assert statuses == {"PLOS Genetics": "unsubscribed", "eLife": "active"}


def test_forged_and_tampered_tokens_are_refused(site):
    db, settings, smtp, url = site
    gen = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    send_digest(db, settings)
    target = smtp.messages[0].message["List-Unsubscribe"].strip("<>")
    payload, stamp, signature = target.split("token=")[1].split(".")
    # Someone swaps in another subscription id and keeps the signature.
    first = "B" if payload[0] == "A" else "A"
    forged_payload = payload.replace("WzFd", "WzJd") if "WzFd" in payload else first + payload[1:]
    forged = f"{url}/email/unsubscribe?token={forged_payload}.{stamp}.{signature}"
    # Change the signature's first character: every bit of it counts (the last base64
    # character carries unused bits, so changing it can leave the signature the same).
    tampered = ("B" if signature[0] == "A" else "A") + signature[1:]
    flipped = f"{url}/email/unsubscribe?token={payload}.{stamp}.{tampered}"
    for bad in (forged, flipped, f"{url}/email/unsubscribe", f"{url}/email/unsubscribe?token=nonsense"):
        for method in ("GET", "POST"):
            reply = httpx.request(method, bad)
            assert reply.status_code == 400, (method, bad)
            assert "This link does not work" in reply.text and "Traceback" not in reply.text
    # A confirmation token is no unsubscribe token.
    other = make_token(settings, CONFIRM, "ada@example.org", [gen])
    assert httpx.post(f"{url}/email/unsubscribe?token={other}").status_code == 400
    assert subscription(db, gen).status == "active"


def test_confirmation_link_then_digest(site):
    db, settings, smtp, url = site
    result = subscribe_email(db, settings, "ada@example.org", "PLOS Genetics", Options(threshold="top 10%"), now=NOW)
    assert send_digest(db, settings) == []  # pending: not due, nothing sent
    text = smtp.messages[0].message.get_body(("plain",)).get_content()
    link = re.search(rf"{re.escape(url)}/email/confirm\?token=\S+", text).group(0)

    # What a mail provider's link scanner does: HEAD and GET (twice), following redirects.
    # None of it may subscribe anyone: double opt-in means a person pressed the button.
    assert httpx.head(link, follow_redirects=True).status_code == 200
    for _ in range(2):
        page = httpx.get(link, follow_redirects=True)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert "Confirm the digest?" in page.text and "PLOS Genetics" in page.text and 'method="post"' in page.text
    assert subscription(db, result.subscription_id).status == "pending"
    assert send_digest(db, settings, LATER + timedelta(days=1)) == []

    action = re.search(r'action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    done = httpx.post(url + action)
    assert done.status_code == 200 and "Confirmed" in done.text and "PLOS Genetics" in done.text
    assert subscription(db, result.subscription_id).status == "active"
    assert "Already confirmed" in httpx.post(url + action).text
    assert "Already confirmed" in httpx.get(link).text

    outcomes = send_digest(db, settings, LATER + timedelta(days=1))
    assert [o.sent for o in outcomes] == [4]
    assert smtp.messages[-1].message["Subject"] == "Preprint Scout: 4 new matches for PLOS Genetics"


def test_a_forged_confirmation_post_gets_the_400_page(site):
    db, settings, smtp, url = site
    result = subscribe_email(db, settings, "ada@example.org", "eLife", Options(), now=NOW)
    token = re.search(r"/email/confirm\?token=(\S+)", smtp.messages[0].message.get_body(("plain",)).get_content())
    payload, stamp, signature = token.group(1).split(".")
    forged = ("B" if signature[0] == "A" else "A") + signature[1:]
    for params in ({"token": f"{payload}.{stamp}.{forged}"}, {"token": "nonsense"}, {}):
        reply = httpx.post(f"{url}/email/confirm", params=params)
        assert reply.status_code == 400 and "This link does not work" in reply.text and "Traceback" not in reply.text
    assert subscription(db, result.subscription_id).status == "pending"


def test_expired_and_tampered_confirmation_links_are_refused(site):
    db, settings, smtp, url = site
    result = subscribe_email(db, settings, "ada@example.org", "eLife", Options(), now=NOW)
    with time_machine.travel(datetime.now(UTC) - timedelta(days=8), tick=False):
        old = make_token(settings, CONFIRM, "ada@example.org", [result.subscription_id])
    expired = httpx.get(f"{url}/email/confirm", params={"token": old})
    assert expired.status_code == 400 and "expired" in expired.text and "subscribe again" in expired.text

    text = smtp.messages[0].message.get_body(("plain",)).get_content()
    token = re.search(r"/email/confirm\?token=(\S+)", text).group(1)
    tampered = httpx.get(f"{url}/email/confirm", params={"token": token[:-3] + "abc"})
    assert tampered.status_code == 400 and "not valid" in tampered.text
    assert subscription(db, result.subscription_id).status == "pending"


def _vote_links(message, profile: str) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    relevant = re.search(rf"Relevant for {profile}\? (\S+)", text).group(1)
    not_relevant = re.search(r"Not relevant\? (\S+)", text).group(1)
    return relevant, not_relevant


def _votes(db) -> list[tuple[str, str, bool]]:
    from bot.db import Vote

    with db.session() as s:
        return sorted((v.team_id, v.user_id, v.relevant) for v in s.query(Vote))


def test_vote_links_ask_on_get_and_record_on_post_once_per_reader(site):
    db, settings, smtp, url = site
    follow(db, "ada@example.org", "PLOS Genetics", NOW)
    send_digest(db, settings)
    message = smtp.messages[0].message
    relevant, not_relevant = _vote_links(message, "PLOS Genetics")
    assert relevant.startswith(url + "/email/vote?token=") and relevant != not_relevant
    html = message.get_body(("html",)).get_content()
    assert html.count("/email/vote?token=") == 2 * message.get_body(("plain",)).get_content().count("Not relevant?")

    page = httpx.get(relevant)
    assert page.status_code == 200 and "Mark as relevant?" in page.text and 'method="post"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert httpx.head(relevant).status_code in (200, 405)
    assert _votes(db) == []  # a link scanner's GET or HEAD votes nothing

    action = re.search(r'action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    done = httpx.post(url + action)
    assert done.status_code == 200 and "Thanks: noted as relevant" in done.text
    assert _votes(db) == [("email", "ada@example.org", True)]
    again = httpx.post(relevant)
    assert "That was already your vote" in again.text
    changed = httpx.post(not_relevant)  # the reader changes their mind: still one vote
    assert "noted as not relevant" in changed.text
    assert _votes(db) == [("email", "ada@example.org", False)]


def test_a_vote_link_cannot_be_forged_or_reused_for_another_purpose(site):
    db, settings, smtp, url = site
    gen = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    send_digest(db, settings)
    relevant, _ = _vote_links(smtp.messages[0].message, "PLOS Genetics")
    token = relevant.split("token=")[1]
    payload, stamp, signature = token.split(".")
    tampered = ("B" if signature[0] == "A" else "A") + signature[1:]
    unsubscribe = make_token(settings, UNSUBSCRIBE, "ada@example.org", [gen])
    for bad in (
        f"{url}/email/vote?token={payload}.{stamp}.{tampered}",
        f"{url}/email/vote?token={unsubscribe}",  # an unsubscribe token is no vote
        f"{url}/email/vote",
    ):
        reply = httpx.post(bad)
        assert reply.status_code == 400 and "This link does not work" in reply.text
    assert httpx.post(f"{url}/email/unsubscribe?token={token}").status_code == 400  # nor the other way
    assert subscription(db, gen).status == "active" and _votes(db) == []
