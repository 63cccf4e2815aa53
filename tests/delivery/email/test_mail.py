"""Email digests over a real SMTP server on loopback (aiosmtpd), on SQLite and PostgreSQL.

Only the other side of the wire is fake: messages are built, signed, sent over SMTP by
smtplib, received by aiosmtpd, and parsed back here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from sqlalchemy import func, select, update

from bot.config import SettingsError, load_settings
from bot.db import Delivery, Digest, Preprint, Score, Subscription, utcnow
from bot.delivery.digests import run_due_digests
from bot.delivery.email.addresses import normalise_address
from bot.delivery.email.delivery import RETRY_BASE, EmailDeliverer, make_email_deliverer, matches_mark
from bot.delivery.email.smtp import MailError
from bot.delivery.email.subscriptions import (
    confirm_by_token,
    subscribe_email,
    subscribe_email_from_slack,
    unsubscribe_by_token,
)
from bot.delivery.email.tokens import CONFIRM, UNSUBSCRIBE, TokenError, make_token, read_token
from bot.delivery.slack.commands import parse_email_command
from bot.delivery.subscriptions import Options
from tests.certificates import make_tls
from tests.mail_data import BASE_URL, FROM, NASTY_TITLE, SECRET, follow, mail_settings, seed, subscription
from tests.paths import ROOT
from tests.smtp_server import SilentServer, SmtpServer, closed_port_url

NOW = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1, hours=2)  # after the first scheduled run (08:00 next day)


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def seeded(db):
    seed(db, NOW)
    return db


def run(db, settings, when=LATER, **kw):
    return run_due_digests(db, [EmailDeliverer(settings, db)], now=when, **kw)


def parts(msg):
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    return [p.get_content_type() for p in msg.iter_parts()], text, html


def tokens_in(text: str, path: str) -> list[str]:
    urls = re.findall(rf"{re.escape(BASE_URL)}{path}\?token=[A-Za-z0-9_.\-]+", text)
    return [parse_qs(urlsplit(u).query)["token"][0] for u in urls]


# -- the digest email --------------------------------------------------------------------


def test_one_email_per_address_grouping_profiles(seeded, smtp, database_url):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    ada_gen = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    ada_elife = follow(db, "ada@example.org", "eLife", NOW, threshold="top 5%")
    bob = follow(db, "bob@example.org", "PLOS Genetics", NOW, threshold="top 5%")

    outcomes = run(db, settings)

    assert {(o.subscription_id, o.sent) for o in outcomes} == {(ada_gen, 4), (ada_elife, 2), (bob, 2)}
    assert not any(o.error for o in outcomes)
    assert len(smtp.messages) == 2
    by_rcpt = {m.rcpt_tos[0]: m for m in smtp.messages}
    assert by_rcpt["ada@example.org"].mail_from == FROM
    assert b"\r\nSubject: Preprint Scout: 6 new matches" in by_rcpt["ada@example.org"].content  # not folded
    msg = by_rcpt["ada@example.org"].message

    # Headers: stable From, Date, Message-ID, subject naming counts and profiles.
    assert msg["From"] == f"Preprint Scout <{FROM}>"
    assert msg["To"] == "ada@example.org"
    assert msg["Subject"] == "Preprint Scout: 6 new matches for PLOS Genetics (4) and eLife (2)"
    assert parsedate_to_datetime(msg["Date"]) == LATER
    assert re.fullmatch(r"<[^@<>\s]+@example\.org>", msg["Message-ID"])
    assert by_rcpt["bob@example.org"].message["Subject"] == "Preprint Scout: 2 new matches for PLOS Genetics"

    # multipart/alternative: plain text first, HTML second.
    kinds, text, html = parts(msg)
    assert kinds == ["text/plain", "text/html"]
    # Every field of a ranking, in both parts.
    for part in (text, html):
        assert "PLOS Genetics" in part and "eLife" in part
        assert "Preprint number 1 on chromatin and growth" in part
        assert "https://www.biorxiv.org/content/10.1101/2026.01.01.500001v1" in part
        assert "Author0, A., Author1, B." in part and "et al." in part
        assert "2026-03-01" in part and "genetics" in part and "bioRxiv" in part
        assert "10.1101/2026.01.01.500001" in part
        assert "Top 5%" in part and "match 20.0%" in part.replace("<strong>", "").replace("</strong>", "")
        assert "We study growth." in part
    assert text.index("== PLOS Genetics ==") < text.index("== eLife ==")
    assert "based on 3 papers previously published there" in " ".join(text.split())
    assert "word word" in text and "word " * 100 not in text  # a short abstract, not all of it
    assert max(len(line) for line in text.splitlines() if "http" not in line) <= 78

    # Ledger: one row per preprint, digests done, next run scheduled.
    with db.session() as s:
        assert s.scalar(select(func.count(Delivery.id))) == 8
        digests = list(s.scalars(select(Digest)))
        assert {d.status for d in digests} == {"done"} and len(digests) == 3
        assert len({d.message_id for d in digests if d.subscription_id != bob}) == 1
        assert digests[0].message_id == msg["Message-ID"]
        sub = s.get(Subscription, ada_gen)
        assert sub.last_run_at is not None and sub.next_run_at.replace(tzinfo=UTC) > LATER

    # Forcing another run at once sends nothing twice: nothing new above the thresholds.
    again = run(db, settings, force=True)
    assert len(smtp.messages) == 2
    assert all(o.skipped and o.sent == 0 for o in again)


def test_html_escapes_feed_text_and_text_part_keeps_it(seeded, smtp, database_url):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    follow(db, "ada@example.org", "PLOS Genetics", NOW, threshold="top 5%")
    run(db, settings)
    _, text, html = parts(smtp.messages[0].message)
    assert "<script>" not in html and "<!channel>" not in html and "<b>bold</b>" not in html
    assert "<i>with</i>" not in html and "&lt;x@y&gt;" in html
    assert "Gene &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; drives &lt;!channel&gt; &amp; &lt;b&gt;bold" in html
    assert "O&#39;Brien, A." in html
    assert "Gene <script>alert('x')</script> drives <!channel> &" in text  # plain text stays plain
    assert NASTY_TITLE.split(" drives")[0] in text


def test_digest_says_why_it_matched_with_the_real_model(seeded, smtp, database_url, scoring_ctx):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    follow(db, "ada@example.org", "PLOS Genetics", NOW, threshold="top 5%")
    run_due_digests(db, [EmailDeliverer(settings, db, scoring_ctx)], now=LATER)
    _, text, html = parts(smtp.messages[0].message)
    assert "Closest reference papers:" in text and "PLOS Genetics paper 0 (2020), similarity" in " ".join(text.split())
    assert "PLOS Genetics paper 2 (2022), similarity" in html


def test_rfc8058_headers_and_signed_links_per_recipient_and_list(seeded, smtp, database_url):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    gen = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    elife = follow(db, "ada@example.org", "eLife", NOW)
    run(db, settings)
    msg = smtp.messages[0].message
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = msg["List-Unsubscribe"]
    assert re.fullmatch(rf"<{re.escape(BASE_URL)}/email/unsubscribe\?token=[A-Za-z0-9_.\-]+>", header)
    token = tokens_in(header, "/email/unsubscribe")[0]
    assert read_token(settings, UNSUBSCRIBE, token).email == "ada@example.org"
    assert read_token(settings, UNSUBSCRIBE, token).subscription_ids == tuple(sorted((gen, elife)))
    assert "List-Id" in msg and "Auto-Submitted" in msg

    # Visible links: one per profile, one for all, in both parts, all signed.
    _, text, html = parts(msg)
    text_tokens = tokens_in(text, "/email/unsubscribe")
    assert len(text_tokens) == 3 and text_tokens[-1] == token
    assert {read_token(settings, UNSUBSCRIBE, t).subscription_ids for t in text_tokens[:2]} == {(gen,), (elife,)}
    assert set(tokens_in(html.replace("&amp;", "&"), "/email/unsubscribe")) == set(text_tokens)

    # A token signed with another key, or for another purpose, is refused.
    other = load_settings(SCOUT_SECRET_KEY="another-secret-key-0123456789")
    with pytest.raises(TokenError):
        read_token(other, UNSUBSCRIBE, token)
    with pytest.raises(TokenError):
        read_token(settings, CONFIRM, token)
    assert unsubscribe_by_token(db, settings, token, apply=True).state == "done"
    assert subscription(db, gen).status == subscription(db, elife).status == "unsubscribed"


def test_resumes_a_run_that_died_without_sending_twice(seeded, smtp, database_url):
    """A run that died after opening its digest (before the server accepted anything) is
    resumed with the same Message-ID; what was accepted before is never sent again."""
    db, settings = seeded, mail_settings(database_url, smtp.url)
    sub_id = follow(db, "ada@example.org", "PLOS Genetics", NOW, threshold="top 10%")
    with db.session() as s:
        # Preprint 1 went out in an earlier digest; then a run opened a digest and died.
        ids = {
            h: s.scalar(select(Preprint.id).where(Preprint.content_hash == h)) for h in ("pre0", "pre1", "pre2", "pre3")
        }
        s.add(Delivery(subscription_id=sub_id, preprint_id=ids["pre1"], score=0.2))
        # The Message-ID it gave the message names the matches it was sending (matches_mark).
        crashed = f"<crashed.{matches_mark([(sub_id, [ids['pre0'], ids['pre2'], ids['pre3']])])}@example.org>"
        s.add(Digest(subscription_id=sub_id, status="open", message_id=crashed))
    outcomes = run(db, settings)
    assert outcomes[0].sent == 3  # the top 4, less the one already delivered
    msg = smtp.messages[0].message
    assert msg["Message-ID"] == crashed
    assert "Preprint number 1 on" not in msg.get_body(("plain",)).get_content()
    with db.session() as s:
        assert s.scalar(select(func.count(Delivery.id))) == 4
        assert [d.status for d in s.scalars(select(Digest))] == ["done"]


# -- failures ----------------------------------------------------------------------------


def test_refused_recipient_is_paused_and_not_retried(seeded, smtp, database_url):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    smtp.refuse("gone@example.org")
    gone = follow(db, "gone@example.org", "PLOS Genetics", NOW)
    ok = follow(db, "ok@example.org", "PLOS Genetics", NOW)

    outcomes = {o.subscription_id: o for o in run(db, settings)}

    assert outcomes[gone].paused and "550" in outcomes[gone].error and outcomes[gone].sent == 0
    assert outcomes[ok].sent == 4 and outcomes[ok].error is None  # the others still get theirs
    assert [m.rcpt_tos for m in smtp.messages] == [["ok@example.org"]]
    sub = subscription(db, gone)
    assert sub.status == "paused" and "550 5.1.1 No such user here" in sub.status_reason
    with db.session() as s:
        assert s.scalar(select(func.count(Delivery.id)).where(Delivery.subscription_id == gone)) == 0
        assert s.scalar(select(Digest.status).where(Digest.subscription_id == gone)) == "failed"

    attempts = smtp.rcpt_attempts.count("gone@example.org")
    run(db, settings, when=LATER + timedelta(days=3), force=True)
    assert smtp.rcpt_attempts.count("gone@example.org") == attempts  # never tried again


def test_a_relay_refusal_pauses_nobody_and_the_rest_of_the_run_waits(seeded, smtp, database_url):
    """'554 5.7.1 Relay access denied' at RCPT is about the server's policy, not the address:
    every address would meet it, so none is paused; all are retried later."""
    db, settings = seeded, mail_settings(database_url, smtp.url)
    subs = [follow(db, f"editor{i}@example.org", "PLOS Genetics", NOW) for i in range(3)]
    for i in range(3):
        smtp.refuse(f"editor{i}@example.org", "554 5.7.1 Relay access denied")
    outcomes = run(db, settings)
    assert [o.paused for o in outcomes] == [False] * 3 and all("relay" in o.error for o in outcomes)
    assert smtp.rcpt_attempts == ["editor0@example.org"]  # the rest of the run waits
    assert [subscription(db, s).status for s in subs] == ["active"] * 3
    with db.session() as session:
        assert session.scalar(select(func.count(Delivery.id))) == 0


def test_server_down_fails_and_retries_with_backoff(seeded, smtp, database_url):
    db = seeded
    down = mail_settings(database_url, closed_port_url())
    sub_id = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    other = follow(db, "bob@example.org", "PLOS Genetics", NOW)

    outcomes = run(db, down)
    assert all(o.error and "cannot reach the mail server" in o.error and not o.paused for o in outcomes)
    assert len(outcomes) == 2
    sub = subscription(db, sub_id)
    assert sub.status == "active"
    assert sub.next_run_at.replace(tzinfo=UTC) == LATER + RETRY_BASE
    # Not due before the backoff; a second failure doubles it.
    assert run(db, down, when=LATER + timedelta(minutes=1)) == []
    run(db, down, when=LATER + RETRY_BASE)
    assert subscription(db, sub_id).next_run_at.replace(tzinfo=UTC) == LATER + 3 * RETRY_BASE

    # The server is back: the next due run delivers everything, once.
    up = mail_settings(database_url, smtp.url)
    outcomes = run(db, up, when=LATER + 3 * RETRY_BASE)
    assert {o.subscription_id: o.sent for o in outcomes} == {sub_id: 4, other: 4}
    assert len(smtp.messages) == 2
    with db.session() as s:
        statuses = list(s.scalars(select(Digest.status).where(Digest.subscription_id == sub_id).order_by(Digest.id)))
        assert statuses == ["failed", "failed", "done"]
    assert subscription(db, sub_id).next_run_at.replace(tzinfo=UTC) > LATER + timedelta(hours=20)


def test_a_silent_server_costs_one_timeout_per_run_and_loses_nothing(seeded, database_url):
    """A server that accepts the connection and never says a word: the first address waits
    one timeout, the other nineteen fail at once with the same reason and are retried later."""
    db = seeded
    ids = [follow(db, f"reader{i}@example.org", "PLOS Genetics", NOW) for i in range(20)]
    with SilentServer() as silent:
        # A timeout long enough that a loaded machine's own work cannot pass for a second one.
        settings = mail_settings(database_url, silent.url, SCOUT_SMTP_TIMEOUT=6)
        started = time.monotonic()
        outcomes = run(db, settings)
        elapsed = time.monotonic() - started
        assert silent.connections == 1  # no new connection once the server failed to answer
    assert elapsed < 12.0, f"{elapsed:.1f} s for 20 addresses with a 6 s timeout"  # under two timeouts
    assert sorted(o.subscription_id for o in outcomes) == ids
    reasons = {o.error for o in outcomes}
    assert len(reasons) == 1 and "cannot reach the mail server" in reasons.pop()
    assert not any(o.paused or o.sent for o in outcomes)
    for sid in ids:  # none lost, none paused: every address is due again after the backoff
        sub = subscription(db, sid)
        assert sub.status == "active" and sub.next_run_at.replace(tzinfo=UTC) == LATER + RETRY_BASE
    with db.session() as s:
        assert s.scalar(select(func.count(Delivery.id))) == 0


@pytest.mark.parametrize("lost", ["late", "dropped"])
def test_a_lost_answer_to_data_resends_with_the_same_message_id(seeded, smtp, database_url, lost):
    """The server takes the message and answers 250 after the client gave up, or drops the
    connection unanswered: it may hold the message, so the retry carries the same
    Message-ID (the receiving side can drop the copy) instead of passing for a new one."""
    db = seeded
    sub_id = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    settings = mail_settings(database_url, smtp.url, SCOUT_SMTP_TIMEOUT=1)
    if lost == "late":
        smtp.answer_late(2.5)
    else:
        smtp.drop_after_data()
    [outcome] = run(db, settings)
    assert outcome.error and "may have been accepted" in outcome.error and not outcome.paused
    [first] = smtp.messages  # the server did take it
    assert subscription(db, sub_id).next_run_at.replace(tzinfo=UTC) == LATER + RETRY_BASE

    smtp.answer_late(0)
    smtp.drop_after_data(False)
    [outcome] = run(db, settings, when=LATER + RETRY_BASE)
    assert outcome.sent == 4
    first_id, resent_id = (m.message["Message-ID"] for m in smtp.messages)
    assert resent_id == first_id
    with db.session() as s:
        assert s.scalar(select(func.count(Delivery.id))) == 4
        statuses = list(s.scalars(select(Digest.status).order_by(Digest.id)))
        assert statuses == ["failed", "done"]


def test_a_resend_with_other_matches_than_the_lost_message_is_a_new_message(seeded, smtp, database_url):
    """Had the resend kept the Message-ID, a receiving side that drops the copy would drop
    the match that came in since, which the ledger would then count as delivered."""
    db = seeded
    sub_id = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    settings = mail_settings(database_url, smtp.url, SCOUT_SMTP_TIMEOUT=1)
    smtp.answer_late(2.5)
    run(db, settings)
    [first] = smtp.messages
    with db.session() as s:  # a better match is scored before the retry
        newcomer = s.scalar(select(Preprint).where(Preprint.content_hash == "pre20"))
        s.execute(update(Score).where(Score.preprint_id == newcomer.id).values(score=0.9))
        newcomer_doi = newcomer.doi

    smtp.answer_late(0)
    [outcome] = run(db, settings, when=LATER + RETRY_BASE)
    assert outcome.sent == 4
    _, resent = smtp.messages
    assert resent.message["Message-ID"] != first.message["Message-ID"]
    assert newcomer_doi in parts(resent.message)[1] and newcomer_doi not in parts(first.message)[1]
    assert subscription(db, sub_id).status == "active"


def test_no_answer_after_data_costs_one_timeout_for_the_whole_run(seeded, smtp, database_url):
    """The session dies after DATA: the connection is dropped without a QUIT that would wait
    another timeout, and the run's other addresses wait without being tried."""
    db = seeded
    ids = [follow(db, f"{name}@example.org", "PLOS Genetics", NOW) for name in ("ada", "bob", "cy")]
    settings = mail_settings(database_url, smtp.url, SCOUT_SMTP_TIMEOUT=2)
    smtp.answer_late(4.5)
    started = time.monotonic()
    outcomes = run(db, settings)
    assert time.monotonic() - started < 4.0  # under two timeouts
    assert sorted(o.subscription_id for o in outcomes) == ids
    assert all(o.error and not o.paused and o.sent == 0 for o in outcomes)
    assert smtp.rcpt_attempts == ["ada@example.org"]
    smtp.answer_late(0)
    outcomes = run(db, settings, when=LATER + RETRY_BASE)
    assert [o.sent for o in outcomes] == [4, 4, 4]
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == [
        "ada@example.org",
        "ada@example.org",
        "bob@example.org",
        "cy@example.org",
    ]


def test_an_unanswered_quit_is_not_waited_for_at_every_address(seeded, smtp, database_url):
    """The mail is in once DATA got its 250: the answer to QUIT is waited for briefly, and
    not at all once the server left it unanswered in this run."""
    db = seeded
    ids = [follow(db, f"reader{i}@example.org", "PLOS Genetics", NOW) for i in range(5)]
    smtp.answer_quit_late(10)
    started = time.monotonic()
    outcomes = run(db, mail_settings(database_url, smtp.url, SCOUT_SMTP_TIMEOUT=3))
    assert time.monotonic() - started < 3.0  # less than one timeout for the five QUITs
    assert {o.subscription_id: o.sent for o in outcomes} == dict.fromkeys(ids, 4)
    assert len(smtp.messages) == 5 and not any(o.error for o in outcomes)


def test_an_address_that_needs_smtputf8_is_paused_when_the_server_lacks_it(seeded, database_url):
    db = seeded
    intl = follow(db, "josé@example.org", "PLOS Genetics", NOW)
    ok = follow(db, "ok@example.org", "PLOS Genetics", NOW)
    with SmtpServer(smtputf8=False) as plain:
        settings = mail_settings(database_url, plain.url)
        outcomes = {o.subscription_id: o for o in run(db, settings)}
        assert outcomes[intl].paused and "SMTPUTF8" in outcomes[intl].error
        assert "refused the address" not in outcomes[intl].error
        assert outcomes[ok].sent == 4  # the rest of the run goes on
        assert "SMTPUTF8" in subscription(db, intl).status_reason
        run(db, settings, when=LATER + timedelta(days=3), force=True)
        assert "josé@example.org" not in plain.rcpt_attempts  # paused: not retried forever
    # A server that offers SMTPUTF8 takes it (once the subscription is resumed).
    with db.session() as s:
        s.get(Subscription, intl).status = "active"
    with SmtpServer(smtputf8=True) as utf8:
        outcomes = run(db, mail_settings(database_url, utf8.url), when=LATER + timedelta(days=4), force=True)
        assert {o.subscription_id: o.sent for o in outcomes}[intl] == 4
        assert utf8.messages[0].rcpt_tos == ["josé@example.org"]


@pytest.fixture
def scout(scout, smtp):
    """`scout` with mail configured to send through the test's SMTP server."""
    scout.env.update(
        {"SMTP_URL": smtp.url, "SCOUT_MAIL_FROM": FROM, "SCOUT_BASE_URL": BASE_URL, "SCOUT_SECRET_KEY": SECRET}
    )
    return scout


@pytest.mark.parametrize("command", [["email", "send", "--force"], ["digests", "run", "--force"]])
def test_a_message_refused_at_data_is_paused_as_such_and_the_run_fails(seeded, smtp, scout, command):
    """552 at DATA is about the message, not the address; the run that met it exits 1."""
    db = seeded
    sub_id = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    smtp.answer_data("552 5.3.4 Message size exceeds fixed limit")
    with time_machine.travel(LATER, tick=False):
        result = scout(*command, code=1)
    assert "paused" in result.output and "refused the message: 552 5.3.4" in " ".join(result.output.split())
    sub = subscription(db, sub_id)
    assert sub.status == "paused"
    assert sub.status_reason == "the mail server refused the message: 552 5.3.4 Message size exceeds fixed limit"
    assert smtp.messages == [] and smtp.rcpt_attempts == ["ada@example.org"]
    with db.session() as s:
        assert s.scalar(select(func.count(Delivery.id))) == 0


@pytest.fixture
def hostile(seeded, smtp, database_url):
    """One digest whose profile name and feed items carry what must not reach a reader as is:
    a javascript: and a data: URL, bidi overrides, terminal escapes, C1 controls, a long title."""
    db, settings = seeded, mail_settings(database_url, smtp.url)
    sub_id = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    with db.session() as s:
        s.get(Subscription, sub_id).profile.name = "PLOS\u202e Genetics\x1b]0;pwned\x07"
        first = s.scalar(select(Preprint).where(Preprint.content_hash == "pre0"))
        first.url = "javascript:alert(document.cookie)"
        first.title = "DNA \u202egnp.exe and \x1b[31mred\x1b[0m text " + "x" * 200
        first.authors_json = '["Evil\\u202e, A.\\u0007"]'
        first.abstract = "Bidi \u2066isolate\u2069 and \u0085 C1 control " + "word " * 60
        second = s.scalar(select(Preprint).where(Preprint.content_hash == "pre1"))
        second.url = "data:text/html;base64,PHNjcmlwdD4="
    run(db, settings)
    [received] = smtp.messages
    return received


def test_only_http_links_are_links_in_the_email(hostile):
    _, text, html = parts(hostile.message)
    assert "javascript:" not in html and "data:text" not in html
    assert "javascript:" not in text and "data:text" not in text
    assert re.search(r"1\. DNA gnp\.exe", html)  # the title, as text, with no link around it
    assert 'href="https://www.biorxiv.org/content/10.1101/2026.01.02.500002v1"' in html  # http(s) still links


def test_controls_and_bidi_overrides_reach_neither_subject_nor_body(hostile):
    msg = hostile.message
    unseen = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
    assert msg["Subject"] == "Preprint Scout: 4 new matches for PLOS Genetics]0;pwned"
    _, text, html = parts(msg)
    for part in (msg["Subject"], text, html):
        assert not unseen.search(part), repr(unseen.search(part))
    assert "DNA gnp.exe and [31mred[0m text" in text and "Evil, A." in text and "Bidi isolate and C1 control" in text


def test_raw_message_lines_fit_the_rfcs(hostile):
    """RFC 2045: a quoted-printable line is at most 76 characters; RFC 5322: 998 for headers."""
    head, body = hostile.content.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    assert hostile.message.get_body(("plain",))["Content-Transfer-Encoding"] == "quoted-printable"
    long = [line for line in body.split(b"\r\n") if len(line) > 76]
    assert not long, long[:3]


def test_deferred_4xx_is_retried_not_paused(seeded, smtp, database_url):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    sub_id = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    smtp.defer_all("451 4.7.1 Greylisted, try again later")
    [outcome] = run(db, settings)
    assert "451" in outcome.error and not outcome.paused
    assert subscription(db, sub_id).status == "active"
    smtp.defer_all(None)
    [outcome] = run(db, settings, when=LATER + RETRY_BASE)
    assert outcome.sent == 4 and len(smtp.messages) == 1


@pytest.mark.parametrize(
    ("reply", "tried"),
    [("421 4.3.2 Service shutting down", ["ada"]), ("451 4.3.0 Try again later", ["ada", "bob"])],
    ids=["421", "451"],
)
def test_a_4xx_at_data_is_retried_not_paused_and_sent_once(seeded, smtp, database_url, reply, tried):
    """A 4xx answer to the message keeps nothing and blames no one: 421 (the server is closing)
    makes the rest of the run wait, another 4xx goes on to the next address; the retry sends
    each address its digest once."""
    db, settings = seeded, mail_settings(database_url, smtp.url)
    ids = [follow(db, f"{name}@example.org", "PLOS Genetics", NOW) for name in ("ada", "bob")]
    smtp.answer_data(reply)
    outcomes = run(db, settings)
    assert [o.paused for o in outcomes] == [False, False] and all(reply[:3] in o.error for o in outcomes)
    assert smtp.rcpt_attempts == [f"{name}@example.org" for name in tried]
    assert smtp.messages == [] and [subscription(db, s).status for s in ids] == ["active"] * 2
    smtp.answer_data(None)
    outcomes = run(db, settings, when=LATER + RETRY_BASE)
    assert [o.sent for o in outcomes] == [4, 4]
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["ada@example.org", "bob@example.org"]
    with db.session() as s:
        assert s.scalar(select(func.count(Delivery.id))) == 8


@pytest.mark.filterwarnings("ignore:Requiring AUTH")
def test_smtp_login_and_a_bad_password_never_shown(seeded, database_url):
    db = seeded
    follow(db, "ada@example.org", "PLOS Genetics", NOW)
    with SmtpServer(credentials=("scout", "s3cret:pw")) as server:
        bad = mail_settings(database_url, f"smtp://scout:wrong-pw@127.0.0.1:{server.port}")
        [outcome] = run(db, bad)
        assert "login" in outcome.error and "SMTP_URL" in outcome.error and "wrong-pw" not in outcome.error
        assert bad.smtp_display == f"smtp://scout:***@127.0.0.1:{server.port}"
        good = mail_settings(database_url, f"smtp://scout:s3cret%3Apw@127.0.0.1:{server.port}")
        [outcome] = run(db, good, when=LATER + RETRY_BASE)
        assert outcome.sent == 4 and len(server.messages) == 1


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.mark.filterwarnings("ignore:Requiring AUTH")
@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "implicit-tls"])
def test_tls_with_a_verified_certificate_then_login(seeded, database_url, tls, monkeypatch, starttls):
    # The client verifies with Python's default context: trusting a private authority is
    # SSL_CERT_FILE, as for any OpenSSL program (README, "Email").
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
    follow(seeded, "ada@example.org", "PLOS Genetics", NOW)
    with SmtpServer(credentials=("scout", "s3cret"), tls=tls, starttls=starttls) as server:
        scheme, rest = server.url.split("://")
        [outcome] = run(seeded, mail_settings(database_url, f"{scheme}://scout:s3cret@{rest}"))
        assert outcome.error is None and outcome.sent == 4
        assert len(server.messages) == 1 and server.messages[0].rcpt_tos == ["ada@example.org"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH")
@pytest.mark.parametrize("starttls", [True, False], ids=["starttls", "implicit-tls"])
def test_an_untrusted_certificate_sends_nothing_and_is_retried(
    seeded, database_url, tls, tmp_path, monkeypatch, starttls
):
    other = make_tls(tmp_path / "other")  # a certificate authority the server's certificate is not from
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca_file))
    sub_id = follow(seeded, "ada@example.org", "PLOS Genetics", NOW)
    with SmtpServer(credentials=("scout", "s3cret"), tls=tls, starttls=starttls) as server:
        scheme, rest = server.url.split("://")
        settings = mail_settings(database_url, f"{scheme}://scout:s3cret@{rest}")
        [outcome] = run(seeded, settings)
        assert "TLS with" in outcome.error and "certificate verify failed" in outcome.error
        assert "s3cret" not in outcome.error and not outcome.paused
        assert server.messages == [] and server.rcpt_attempts == []
        assert subscription(seeded, sub_id).next_run_at.replace(tzinfo=UTC) == LATER + RETRY_BASE
        # Trusted again (the certificate renewed, the authority added): the retry delivers all.
        monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))
        [outcome] = run(seeded, settings, when=LATER + RETRY_BASE)
        assert outcome.sent == 4 and len(server.messages) == 1


def test_a_certificate_for_another_host_is_refused(seeded, database_url, tls, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))  # trusted, but issued for 127.0.0.1 only
    follow(seeded, "ada@example.org", "PLOS Genetics", NOW)
    with SmtpServer(tls=tls) as server:
        [outcome] = run(seeded, mail_settings(database_url, f"smtp://localhost:{server.port}"))
        assert "TLS with smtp://localhost" in outcome.error and "mismatch" in outcome.error.lower()
        assert server.messages == []


# -- subscribing and confirming ----------------------------------------------------------


def test_typed_address_gets_only_a_confirmation_until_confirmed(seeded, smtp, database_url):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    result = subscribe_email(db, settings, " Ada@Example.ORG ", "plos genetics", Options(threshold="top 10%"), now=NOW)
    assert result.status == "pending" and result.confirmation_sent and result.email == "ada@example.org"
    assert "confirmation sent to ada@example.org" in result.message

    [received] = smtp.messages
    msg = received.message
    assert received.rcpt_tos == ["ada@example.org"]
    assert msg["Subject"] == "Confirm your Preprint Scout digest for PLOS Genetics"
    assert "List-Unsubscribe" not in msg
    kinds, text, html = parts(msg)
    assert kinds == ["text/plain", "text/html"]
    [token] = tokens_in(text, "/email/confirm")
    assert tokens_in(html.replace("&amp;", "&"), "/email/confirm") == [token]

    # Pending: no digest, even when forced.
    assert run(db, settings, force=True) == []
    assert len(smtp.messages) == 1

    # Tampered and foreign tokens are refused and change nothing.
    with pytest.raises(TokenError) as bad:
        confirm_by_token(db, settings, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), apply=True)
    assert not bad.value.expired
    unsub = make_token(settings, UNSUBSCRIBE, "ada@example.org", [result.subscription_id])
    with pytest.raises(TokenError):
        confirm_by_token(db, settings, unsub, apply=True)
    assert subscription(db, result.subscription_id).status == "pending"

    # Expired: a week later the link no longer works.
    with time_machine.travel(datetime.now(UTC) + timedelta(days=8), tick=False), pytest.raises(TokenError) as old:
        confirm_by_token(db, settings, token, apply=True)
    assert old.value.expired

    # Looking at what the link covers (the GET page) confirms nothing.
    assert confirm_by_token(db, settings, token, now=NOW, apply=False).state == "ask"
    assert subscription(db, result.subscription_id).status == "pending"
    confirmed = confirm_by_token(db, settings, token, now=NOW, apply=True)
    assert confirmed.state == "confirmed" and confirmed.profiles == ["PLOS Genetics"]
    sub = subscription(db, result.subscription_id)
    assert sub.status == "active" and sub.confirmed_at is not None
    assert confirm_by_token(db, settings, token, apply=True).state == "already"

    [outcome] = run(db, settings)
    assert outcome.sent == 4 and len(smtp.messages) == 2


def test_slack_subscription_is_active_at_once(seeded, smtp, database_url):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    reply = subscribe_email_from_slack(
        db,
        settings,
        email="Ada@example.org",
        profile="plos genetics",
        schedule="weekly",
        threshold="top 5%",
        user_id="U1",
        team_id="T1",
        now=NOW,
    )
    assert reply.startswith("Email digest for ada@example.org: PLOS Genetics: top 5%, weekly on Monday")
    assert smtp.messages == []  # Slack verified the address: no confirmation round trip
    with db.session() as s:
        sub = s.scalar(select(Subscription))
        assert (sub.status, sub.created_by, sub.schedule) == ("active", "slack:T1:U1", "weekly")
    outcomes = run(db, settings, when=NOW + timedelta(days=8))
    assert outcomes[0].sent == 2
    with pytest.raises(ValueError, match="users:read.email"):
        subscribe_email_from_slack(db, settings, email="", profile="eLife")


def test_parse_email_command_and_addresses():
    assert parse_email_command("PLOS Genetics") == ("PLOS Genetics", "daily", None)
    assert parse_email_command("PLOS Genetics weekly top 5%") == ("PLOS Genetics", "weekly", "top 5%")
    assert parse_email_command("eLife min 2% daily") == ("eLife", "daily", "min 2%")
    assert parse_email_command("  Genome  Biology   lift 100 ") == ("Genome Biology", "daily", "lift 100")
    with pytest.raises(ValueError, match="usage"):
        parse_email_command("weekly")
    assert normalise_address("Ada Lovelace <Ada@Example.org>") == "ada@example.org"
    for bad in (
        "",
        "ada",
        "ada@",
        "ada@example",
        "a b@example.org",
        "ada@example.org\nBcc: x@y.org",
        "ada\u202egro.elpmaxe@example.org",
        "ada\u2066@example.org",
    ):
        with pytest.raises(ValueError, match="not an email address"):
            normalise_address(bad)


def test_settings_checks(database_url, smtp):
    assert make_email_deliverer(load_settings(DATABASE_URL=database_url), None) is None
    no_secret = load_settings(
        DATABASE_URL=database_url, SMTP_URL=smtp.url, SCOUT_MAIL_FROM=FROM, SCOUT_BASE_URL=BASE_URL
    )
    with pytest.raises(SettingsError, match="SCOUT_SECRET_KEY is not set"):
        make_email_deliverer(no_secret, None)
    with pytest.raises(SettingsError, match="SCOUT_MAIL_FROM, SCOUT_BASE_URL are not set"):
        make_email_deliverer(load_settings(SMTP_URL=smtp.url, SCOUT_SECRET_KEY=SECRET), None)
    with pytest.raises(SettingsError, match="SMTP_URL"):
        load_settings(SMTP_URL="http://mail.example.org")
    assert "pw" not in repr(load_settings(SMTP_URL="smtp://u:pw@mail.example.org:587"))


def test_send_failure_of_confirmation_is_explained(seeded, database_url):
    settings = mail_settings(database_url, closed_port_url())
    with pytest.raises(MailError, match="could not send the confirmation email to ada@example.org.*run the same"):
        subscribe_email(seeded, settings, "ada@example.org", "eLife", Options(), now=NOW)
    with seeded.session() as s:
        assert s.scalar(select(Subscription.status)) == "pending"


# -- the CLI -----------------------------------------------------------------------------


def test_cli_subscribe_list_unsubscribe(seeded, smtp, scout):
    out = scout(
        "email", "subscribe", "ada@example.org", "plos genetics", "--schedule", "weekly", "--threshold", "top 5%"
    )
    assert "confirmation sent to ada@example.org" in out.stdout
    assert len(smtp.messages) == 1 and smtp.messages[0].message["Subject"].startswith("Confirm")
    scout(
        "email", "subscribe", "ada@example.org", "elife", "-k", "gene drive", "-k", "crispr", "--category", "genomics"
    )
    import json

    rows = json.loads(scout("email", "list", "--json").stdout)
    assert [(r["email"], r["profile"], r["status"]) for r in rows] == [
        ("ada@example.org", "PLOS Genetics", "pending"),
        ("ada@example.org", "eLife", "pending"),
    ]
    assert "top 5%, weekly" in rows[0]["description"]
    assert 'up to 20, mentioning "gene drive" or crispr, in genomics [pending]' in rows[1]["description"]
    assert "pending" in scout("email", "list").stdout

    assert "unsubscribed ada@example.org from eLife" in scout("email", "unsubscribe", "ada@example.org", "elife").stdout
    assert [r["profile"] for r in json.loads(scout("email", "list", "--json").stdout)] == ["PLOS Genetics"]
    assert "no email subscriptions" in scout("email", "unsubscribe", "ada@example.org", "elife", code=1).stderr

    bad = scout("email", "subscribe", "not-an-address", "elife", code=2)
    assert "not an email address" in bad.stderr and "Traceback" not in bad.stderr
    assert "Did you mean" in scout("email", "subscribe", "ada@example.org", "genetcs", code=2).stderr
    assert "threshold" in scout("email", "subscribe", "ada@example.org", "elife", "--threshold", "best", code=2).stderr
    assert "at least one letter" in scout("email", "subscribe", "ada@example.org", "elife", "-k", "?", code=2).stderr
    del scout.env["SCOUT_SECRET_KEY"]
    assert "SCOUT_SECRET_KEY is not set" in scout("email", "subscribe", "ada@example.org", "elife", code=2).stderr


# -- two senders at once -----------------------------------------------------------------


def test_two_senders_at_once_send_one_email(db, smtp, database_url, scoring_ctx):
    """Two `scout email send --force` processes overlap while the server is still taking the
    first one's message: the second finds the address's digests claimed and sends nothing."""
    now = utcnow()
    seed(db, now)
    for profile in ("PLOS Genetics", "eLife"):
        follow(db, "ada@example.org", profile, now - timedelta(days=1))
    settings = mail_settings(database_url, smtp.url)
    # A dry run in this process caches the vectors "why it matched" needs, so neither child loads the model.
    run_due_digests(db, [EmailDeliverer(settings, db, scoring_ctx)], now=now, force=True, dry_run=True)
    smtp.hold_answers()  # the first sender is mid-message until the second has finished
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "SMTP_URL": smtp.url,
        "SCOUT_MAIL_FROM": f"Preprint Scout <{FROM}>",
        "SCOUT_BASE_URL": BASE_URL,
        "SCOUT_SECRET_KEY": SECRET,
        "SCOUT_SMTP_TIMEOUT": "30",
    }
    command = [sys.executable, "-m", "bot.cli", "email", "send", "--force"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True, "cwd": ROOT, "env": env}
    first = subprocess.Popen(command, **pipes)
    second = None
    try:
        deadline = time.monotonic() + 60
        while not smtp.rcpt_attempts and time.monotonic() < deadline:
            time.sleep(0.05)
        assert smtp.rcpt_attempts, "the first sender never reached the server"
        second = subprocess.Popen(command, **pipes)
        output, _ = second.communicate(timeout=60)
        assert second.returncode == 0 and output.count("busy") == 2, output
        smtp.release()
        output, _ = first.communicate(timeout=60)
        assert first.returncode == 0 and output.count("sent") == 2, output
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert len(smtp.messages) == 1
    assert "PLOS Genetics" in smtp.messages[0].message["Subject"] and "eLife" in smtp.messages[0].message["Subject"]
    with db.session() as s:
        digests = list(s.scalars(select(Digest)))
        assert [d.status for d in digests] == ["done", "done"]  # one digest per subscription, no second attempt
        assert s.scalar(select(func.count(Delivery.id))) == sum(d.items for d in digests) > 0


def _database_refuses_deliveries(db, refuse: bool) -> None:
    """The database refuses ledger rows (a trigger): it fails right after the server took a message."""
    with db.engine.begin() as conn:
        if not refuse:
            conn.exec_driver_sql("DROP TRIGGER refuse" + ("" if db.url.startswith("sqlite") else " ON deliveries"))
        elif db.url.startswith("sqlite"):
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ "
                "LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON deliveries FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


def test_a_ledger_that_fails_after_the_server_took_the_message_resends_with_its_message_id(seeded, smtp, database_url):
    db, settings = seeded, mail_settings(database_url, smtp.url)
    sub = follow(db, "ada@example.org", "PLOS Genetics", NOW)
    _database_refuses_deliveries(db, True)
    [outcome] = run(db, settings)
    assert outcome.error and "recording it failed" in outcome.error and not outcome.paused
    _database_refuses_deliveries(db, False)
    run(db, settings, when=LATER + timedelta(hours=1), force=True)
    assert len(smtp.messages) == 2
    first, again = (m.message["Message-ID"] for m in smtp.messages)
    assert first == again  # the receiving side can tell it is the same message
    with db.session() as s:
        assert s.scalar(select(func.count(Delivery.id)).where(Delivery.subscription_id == sub)) == 4
