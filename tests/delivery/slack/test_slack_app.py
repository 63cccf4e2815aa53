"""The Slack app end to end: the real app served over HTTP on a free port, slash commands and
button clicks sent to it as Slack sends them (form-encoded, signed), and a fake Slack Web API
on loopback taking its answers. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import select as io_select
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from bot.config import BUNDLED_MODEL, Settings, load_settings
from bot.db import Database, Preprint, Profile, Score, Subscription, Vote
from bot.processes.web import build_app
from bot.scores.update import ScoringContext
from scoring.embedder import load_embedder
from tests.cli import Scout
from tests.fake_slack import FakeSlack, SlackSender, seed_catalog
from tests.loopback import LoopbackServer, serve, wait_for
from tests.mail_data import BASE_URL as MAIL_BASE_URL
from tests.mail_data import FROM as MAIL_FROM
from tests.mail_data import SECRET as MAIL_SECRET
from tests.paths import FIXTURES
from tests.smtp_server import SmtpServer

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PROFILES = ["Neural Networks", "PLOS Genetics", "Genome Biology and Evolution"]


def score_of(p: int, q: int) -> float:
    """A fixed, distinct score per (profile, preprint): rankings differ per profile."""
    return round(0.01 + ((q * 7 + p * 3) % 23) / 100.0, 4)


PREPRINTS = [
    {"title": f"Synaptic plasticity study {i}", "abstract": f"We measured circuit {i} in mice."} for i in range(12)
]
PREPRINTS[4] = {
    "title": "<!channel> Big news & <b>bold</b> claims",
    "abstract": "Ping <!here> & <@U123> everyone <https://evil.example|click>.",
}


@dataclass
class Live:
    fake: FakeSlack
    slack: SlackSender
    settings: Settings
    db: Database
    ids: dict
    url: str


def api_settings(server: LoopbackServer, **extra) -> dict:
    """The preprint APIs (on-demand fetches) on a loopback server, fast to give up."""
    return {
        "SCOUT_BIORXIV_API_URL": server.url,
        "SCOUT_ARXIV_API_URL": server.url,
        "SCOUT_BIORXIV_API_INTERVAL": 0,
        "SCOUT_ARXIV_API_INTERVAL": 0,
        "SCOUT_API_BACKOFF": 0,
        "SCOUT_API_RETRIES": 1,
        "SCOUT_HTTP_TIMEOUT": 1,
        **extra,
    }


def slack_settings(db: Database, fake: FakeSlack, **extra) -> Settings:
    values = {
        "DATABASE_URL": db.url,
        "SLACK_API_URL": fake.api_url,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_POST_INTERVAL": 0,
        "SLACK_RETRY_BACKOFF": 0.05,
        "SLACK_CLIENT_ID": None,
        "SLACK_CLIENT_SECRET": None,
        "SLACK_BOT_TOKEN": "xoxb-t1",
    }
    values.update(extra)
    return load_settings(**values)


def lazy_ctx() -> ScoringContext:
    """The real model, loaded only if something is not in the embedding cache."""
    return ScoringContext(BUNDLED_MODEL, lambda: load_embedder(BUNDLED_MODEL))


@pytest.fixture
def live(db: Database, server: LoopbackServer) -> Iterator[Live]:
    with FakeSlack() as fake:
        fake.add_team("T1", "xoxb-t1")
        ids = seed_catalog(db, PROFILES, PREPRINTS, score_of)
        settings = slack_settings(db, fake, **api_settings(server))
        with serve(build_app(settings, db, ctx=lazy_ctx())) as url:
            yield Live(fake, SlackSender(url, SECRET, fake), settings, db, ids, url)


def texts(payload: dict) -> str:
    """Everything a user would read in a message payload."""
    return payload.get("text", "") + "\n" + json.dumps(payload.get("blocks", []), ensure_ascii=False)


def answer(live: Live, text: str, **kw) -> dict:
    ack, url = live.slack.command(text, **kw)
    assert ack.status_code == 200, ack.text
    assert ack.text in ("", "null"), f"expected an empty ack, got {ack.text}"
    return live.fake.wait_response(url)[0]


def ack_body(live: Live, text: str, **kw) -> dict:
    ack, _ = live.slack.command(text, **kw)
    assert ack.status_code == 200
    return ack.json()


# -- signatures --------------------------------------------------------------------------


def test_bad_signature_and_stale_timestamp_are_refused(live: Live):
    ack, url = live.slack.command("rank Neural Networks", secret="not-the-secret")
    assert ack.status_code == 401
    ack, url2 = live.slack.command("rank Neural Networks", timestamp=int(time.time()) - 6 * 60)
    assert ack.status_code == 401
    ack, url3 = live.slack.command("rank Neural Networks")
    assert ack.status_code == 200
    live.fake.wait_response(url3)
    time.sleep(0.2)
    assert live.fake.responses[urlsplit(url).path].payloads == []
    assert live.fake.responses[urlsplit(url2).path].payloads == []
    assert httpx.get(live.url + "/healthz").json() == {"ok": True}


def test_a_timestamp_that_is_not_a_number_is_refused_not_a_server_error(live: Live):
    ack, url = live.slack.command("rank Neural Networks", timestamp="yesterday")
    assert ack.status_code == 401
    for bad in ("9" * 5000, "-1", ""):  # int() refuses the first: 4,300 digits at most
        assert live.slack.command("help", timestamp=bad)[0].status_code == 401
    body = "command=%2Fscout&text=help"
    missing = live.slack.http.post(
        live.url + "/slack/events",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Signature": "v0=abc"},
    )
    assert missing.status_code == 401
    time.sleep(0.2)
    assert live.fake.responses[urlsplit(url).path].payloads == []


def post_by_hand(url: str, headers: dict[str, str], chunks: Iterable[bytes], timeout: float = 5.0) -> int | None:
    """POST /slack/events over a raw socket (a lying Content-Length, a chunked stream that
    goes on); stops sending as soon as the server answers. The status, None if none came."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /slack/events HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n".encode())
        for chunk in chunks:
            if io_select.select([sock], [], [], 0)[0]:
                break  # the server answered before the end of the body
            try:
                sock.sendall(chunk)
            except OSError:
                break
        answer = b""
        try:
            while b"\r\n" not in answer:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
        except (TimeoutError, ConnectionResetError):
            pass
    return int(answer.split()[1]) if answer.startswith(b"HTTP/") else None


def test_an_oversized_post_is_refused_before_it_is_read(live: Live):
    """A 200 MB Content-Length with only a few bytes sent: answered 413 at once, not after
    waiting for (and holding) the whole body."""
    signed = live.slack.signed_headers("x")
    started = time.monotonic()
    status = post_by_hand(
        live.url,
        {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(200 * 2**20), **signed},
        [b"command=%2Fscout&text="],
    )
    assert status == 413 and time.monotonic() - started < 3
    # Chunked (no Content-Length): refused once the stream passes the limit.
    chunk = b"text=" + b"a" * (64 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    status = post_by_hand(
        live.url,
        {"Content-Type": "application/x-www-form-urlencoded", "Transfer-Encoding": "chunked", **signed},
        [*[framed] * 128, b"0\r\n\r\n"],  # 8 MB
    )
    assert status == 413
    assert answer(live, "profiles")  # the server is fine


# -- help and bad input ------------------------------------------------------------------


def test_help_and_bad_input_answer_ephemerally_with_what_works(live: Live):
    for text in ("", "help"):
        body = ack_body(live, text)
        assert body["response_type"] == "ephemeral"
        assert "/scout rank PROFILE" in texts(body) and "/scout subscribe PROFILE" in texts(body)
        assert "/scout email PROFILE" in texts(body)
    typo = ack_body(live, "rnak Neural Networks")
    assert "Did you mean `rank`" in texts(typo) and typo["response_type"] == "ephemeral"
    assert "Which profile" in texts(ack_body(live, "rank"))
    assert "between 0% and 100%" in texts(ack_body(live, "subscribe Neural Networks top 150%"))
    assert "lift threshold must be above 1" in texts(ack_body(live, "subscribe Neural Networks lift 0.5"))
    assert "not a time of day" in texts(ack_body(live, "subscribe Neural Networks at 25:00"))
    assert "at least five words" in texts(ack_body(live, "match hello there"))
    assert "Give a DOI" in texts(ack_body(live, "match"))


def test_unknown_profile_suggests_the_closest_names(live: Live):
    reply = answer(live, "rank neural netwrks")
    assert reply["response_type"] == "ephemeral"
    assert "Did you mean: Neural Networks" in texts(reply)
    reply = answer(live, "subscribe genetics top 1%")
    assert "PLOS Genetics" in texts(reply)
    with live.db.session() as session:
        assert session.scalar(select(Subscription.id)) is None


# -- rank --------------------------------------------------------------------------------


def _expected_order(db: Database, profile: str) -> list[str]:
    with db.session() as session:
        rows = session.execute(
            select(Preprint.title, Score.score)
            .join(Score, Score.preprint_id == Preprint.id)
            .join(Profile, Profile.id == Score.profile_id)
            .where(Profile.name == profile)
            .order_by(Score.score.desc(), Preprint.posted.desc(), Preprint.id)
        ).all()
    return [t for t, _ in rows]


def test_rank_shows_the_ranking_with_every_field(live: Live):
    reply = answer(live, "rank PLOS Genetics top 3")
    assert reply["response_type"] == "ephemeral"
    blocks = reply["blocks"]
    header = blocks[0]["text"]["text"]
    assert "ranked by how well they match PLOS Genetics's content profile, based on 5 papers" in header
    items = [
        b for b in blocks if b["type"] == "section" and b.get("accessory", {}).get("action_id") == "scout_abstract"
    ]
    assert len(items) == 3
    expected = _expected_order(live.db, "PLOS Genetics")[:3]
    for block, title in zip(items, expected, strict=True):
        text = block["text"]["text"]
        assert title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in text
        assert "<https://www.biorxiv.org/content/" in text  # the title links to the preprint
        assert "Doe, J., Roe, R." in text and "neuroscience" in text and "biorxiv" in text
        assert "DOI <https://doi.org/10.1101/" in text
        assert re.search(r"\*Top [\d.]+%\* · match \*[\d.]+%\*", text)
    assert any(b["type"] == "context" and "Closest:" in b["elements"][0]["text"] for b in blocks)
    assert len(blocks) <= 50


def test_rank_public_posts_in_channel_and_days_window(live: Live):
    reply = answer(live, "rank Neural Networks 5 days top 20 public")
    assert reply["response_type"] == "in_channel"
    with live.db.session() as session:
        since = datetime.now(UTC).date() - timedelta(days=4)  # "5 days": five posting dates, today included
        in_window = sum(1 for p in session.scalars(select(Preprint)) if p.posted >= since)
    shown = [b for b in reply["blocks"] if b.get("accessory", {}).get("action_id") == "scout_abstract"]
    assert len(shown) == in_window > 0
    assert "in the 5 days to" in reply["blocks"][0]["text"]["text"]


def test_ack_comes_before_the_work_finishes(live: Live):
    """The answer's delivery is slow (the response_url takes 4 s); the ack is not held up by it."""
    started = time.monotonic()
    ack, url = live.slack.command("rank Neural Networks top 5", response_delay=4.0)
    acked = time.monotonic() - started
    assert ack.status_code == 200 and acked < 3.0
    live.fake.wait_response(url)
    answered = live.fake.responses[urlsplit(url).path].times[0] - started
    assert answered >= 4.0 > acked


def settings_for(live: Live, **extra) -> Settings:
    return slack_settings(live.db, live.fake, **extra)


def test_a_full_queue_answers_busy_at_once(live: Live):
    """One worker, one waiting place: the third command is told to try again, in the ack."""
    settings = settings_for(live, SCOUT_SLACK_WORKERS=1, SCOUT_SLACK_QUEUE=1)
    with serve(build_app(settings, live.db, ctx=lazy_ctx())) as url:
        sender = SlackSender(url, SECRET, live.fake)
        first = sender.command("profiles", response_delay=2.0)
        time.sleep(0.3)  # the worker is now waiting on the slow response_url
        second = sender.command("profiles")
        started = time.monotonic()
        third, third_url = sender.command("profiles")
        assert third.status_code == 200 and time.monotonic() - started < 3
        assert "busy" in texts(third.json()) and third.json()["response_type"] == "ephemeral"
        for ack, url_ in (first, second):
            assert ack.status_code == 200 and ack.text in ("", "null")
            assert "Neural Networks" in texts(live.fake.wait_response(url_)[0])
        again, again_url = sender.command("profiles")  # the first is done: room again
        assert again.text in ("", "null") and "Neural Networks" in texts(live.fake.wait_response(again_url)[0])
    assert live.fake.responses[urlsplit(third_url).path].payloads == []


def test_a_response_url_that_hangs_does_not_hold_the_worker(live: Live):
    """SLACK_TIMEOUT bounds each respond(): with one worker, the next command is answered soon."""
    settings = settings_for(live, SCOUT_SLACK_WORKERS=1, SLACK_TIMEOUT=0.5)
    with serve(build_app(settings, live.db, ctx=lazy_ctx())) as url:
        sender = SlackSender(url, SECRET, live.fake)
        sender.command("profiles", response_delay=20.0)
        time.sleep(0.2)
        ack, next_url = sender.command("profiles")
        asked = time.monotonic()
        assert ack.status_code == 200
        live.fake.wait_response(next_url, timeout=10)
        assert live.fake.responses[urlsplit(next_url).path].times[0] - asked < 3


def test_escaping_pings_nobody(live: Live):
    reply = answer(live, "rank Neural Networks top 20")
    body = texts(reply)
    assert "&lt;!channel&gt; Big news &amp; &lt;b&gt;bold&lt;/b&gt; claims" in body
    bad_id = live.ids["preprints"][4]
    ack, url = live.slack.click("scout_abstract", str(bad_id))
    assert ack.status_code == 200
    abstract = live.fake.wait_response(url)[0]
    assert "Ping &lt;!here&gt; &amp; &lt;@U123&gt;" in texts(abstract)
    assert live.fake.pings() == []


# -- match -------------------------------------------------------------------------------


def test_match_by_doi_lists_profiles_by_score(live: Live):
    with live.db.session() as session:
        doi = session.get(Preprint, live.ids["preprints"][2]).doi
    reply = answer(live, f"match <https://doi.org/{doi}|doi.org/{doi}>")
    lines = reply["blocks"][1]["text"]["text"].splitlines()
    names = [re.match(r"\*(.+?)\*", line).group(1) for line in lines]
    expected = sorted(range(len(PROFILES)), key=lambda p: -score_of(p, 2))
    assert names == [PROFILES[p] for p in expected]
    assert f"{100 * score_of(expected[0], 2):.1f}%" in lines[0]
    ack, url = live.slack.command("match 10.1101/2099.01.01.999999")
    assert ack.status_code == 200
    fetching, missing = live.fake.wait_response(url, count=2)
    assert "is not stored yet: fetching it" in texts(fetching)
    assert "no stored preprint" in texts(missing) and "bioRxiv or medRxiv does not know it" in texts(missing)


def add_real_profiles(db: Database, scoring_ctx) -> None:
    from bot.profiles.catalog import add_profile, read_papers
    from bot.scores.update import update_scores

    with db.session() as session:
        for name, file in (
            ("eLife", "elife.jsonl"),
            ("PLOS Computational Biology", "plos-computational-biology.jsonl"),
        ):
            add_profile(session, name, read_papers(FIXTURES / "profiles" / file).papers, source=file)
        update_scores(session, scoring_ctx)


def test_match_fetches_a_preprint_not_stored_yet(db: Database, scoring_ctx, server: LoopbackServer):
    """As `scout match` does: fetched from the bioRxiv API, stored, scored, answered. An API
    that accepts and never answers gives a clear message within the HTTP timeouts."""
    add_real_profiles(db, scoring_ctx)
    doi = "10.1101/2026.05.20.700001"
    server.route(
        f"/details/biorxiv/{doi}",
        body=(FIXTURES / "api" / "biorxiv_details_doi.json").read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    server.route("/details/biorxiv/10.1101/2026.05.20.700002", body=b"{}", delay=60)  # hangs
    with FakeSlack() as fake:
        fake.add_team("T1", "xoxb-t1")
        settings = slack_settings(db, fake, **api_settings(server))
        with serve(build_app(settings, db, ctx=scoring_ctx)) as url:
            live = Live(fake, SlackSender(url, SECRET, fake), settings, db, {}, url)
            ack, url_ = live.slack.command(f"match https://doi.org/{doi}v1")
            assert ack.status_code == 200 and ack.text in ("", "null")
            fetching, reply = (texts(p) for p in fake.wait_response(url_, count=2))
            assert "is not stored yet: fetching it" in fetching
            assert "Structural basis of ion selectivity in a potassium channel" in reply
            assert "*eLife*: match *" in reply and "*PLOS Computational Biology*: match *" in reply
            with db.session() as session:
                stored = session.scalar(select(Preprint).where(Preprint.doi == doi))
                assert stored is not None
                assert session.scalar(select(Score.score).where(Score.preprint_id == stored.id)) is not None
            started = time.monotonic()
            ack, url_ = live.slack.command("match 10.1101/2026.05.20.700002")
            _fetching, hung = (texts(p) for p in fake.wait_response(url_, count=2, timeout=10))
            assert time.monotonic() - started < 10
            assert "fetching it failed" in hung and "timed out" in hung and "bioRxiv API" in hung


# -- subscriptions -----------------------------------------------------------------------


def test_subscribe_list_unsubscribe(live: Live):
    reply = answer(live, "subscribe neural networks top 5% weekly on friday at 09:30")
    assert "Subscribed <#C1> to Neural Networks: top 5%, weekly on Friday at 09:30 UTC" in texts(reply)
    with live.db.session() as session:
        sub = session.scalar(select(Subscription))
        assert (sub.kind, sub.team_id, sub.channel_id, sub.created_by) == ("slack", "T1", "C1", "U1")
        assert (sub.threshold_kind, sub.threshold_value, sub.schedule, sub.weekday) == ("top", 0.05, "weekly", 4)
    again = answer(live, "subscribe Neural Networks lift 100 daily")
    assert "Updated" in texts(again)
    narrowed = texts(answer(live, 'subscribe PLOS Genetics min 5% kw:"gene drive" cat:genetics'))
    assert 'PLOS Genetics: min 5%, daily at 08:00 UTC, up to 20, mentioning "gene drive", in genetics' in narrowed
    listed = texts(answer(live, "subscriptions"))
    assert "Neural Networks: lift 100x, daily at 08:00 UTC" in listed and "PLOS Genetics: min 5%" in listed
    assert 'mentioning "gene drive", in genetics' in listed
    assert "follows no profiles" in texts(answer(live, "subscriptions", channel_id="C2"))
    assert "no longer gets digests for PLOS Genetics" in texts(answer(live, "unsubscribe plos genetics"))
    assert "no longer gets digests for Neural Networks" in texts(answer(live, "unsubscribe all"))
    assert "nothing changed" in texts(answer(live, "unsubscribe all"))


def test_team_isolation(live: Live):
    """Two workspaces with the same channel id: neither sees or changes the other's."""
    live.fake.add_team("T2", "xoxb-t2")
    answer(live, "subscribe Neural Networks", team_id="T1", channel_id="C1")
    assert "follows no profiles" in texts(answer(live, "subscriptions", team_id="T2", channel_id="C1"))
    assert "nothing changed" in texts(answer(live, "unsubscribe all", team_id="T2", channel_id="C1"))
    answer(live, "subscribe PLOS Genetics", team_id="T2", channel_id="C1")
    t1 = texts(answer(live, "subscriptions", team_id="T1", channel_id="C1"))
    assert "Neural Networks" in t1 and "PLOS Genetics" not in t1
    with live.db.session() as session:
        subs = {(s.team_id, s.profile.name, s.status) for s in session.scalars(select(Subscription))}
    assert subs == {("T1", "Neural Networks", "active"), ("T2", "PLOS Genetics", "active")}
    assert live.slack.event({"type": "app_home_opened", "user": "U7", "tab": "home"}, team_id="T2").status_code == 200
    wait_for(lambda: live.fake.views, what="the App Home view")
    home = json.dumps(live.fake.views[-1]["view"], ensure_ascii=False)
    assert "PLOS Genetics" in home and "Neural Networks" not in home


def match_lines(reply: dict) -> tuple[list[str], str]:
    """The profile names a /scout match answer lists, and its "Published elsewhere" share."""
    names = re.findall(r"^\*(.+?)\*: match", reply["blocks"][1]["text"]["text"], re.M)
    return names, re.search(r"Published elsewhere: ([\d.]+)%", texts(reply)).group(1)


def test_a_workspaces_own_profile_is_out_of_sight_of_every_other_workspace(live: Live):
    """PLOS Genetics belongs to T1: T2 is answered as if it did not exist, everywhere; T1 as before."""
    from bot.db import Digest

    live.fake.add_team("T2", "xoxb-t2")
    t1, t2 = {"team_id": "T1", "channel_id": "C1"}, {"team_id": "T2", "channel_id": "C9", "user_id": "U2"}
    answer(live, "subscribe PLOS Genetics", **t2)  # while it is shared
    with live.db.session() as session:
        session.add(Digest(subscription_id=session.scalar(select(Subscription.id)), status="done", items=3))
    scout = Scout({"DATABASE_URL": live.db.url})
    assert "channel C9" in scout("profiles", "workspace", "PLOS Genetics", "T1").stderr  # T2's digest ends

    hidden = texts(answer(live, "rank PLOS Genetics", **t2))
    assert "no profile named 'PLOS Genetics'" in hidden
    assert "PLOS Genetics" not in texts(answer(live, "rank genetics", **t2))
    assert "Did you mean: PLOS Genetics" in texts(answer(live, "rank genetics", **t1))
    assert "ranked by how well they match PLOS Genetics" in texts(answer(live, "rank PLOS Genetics", **t1))

    assert "no profile named 'PLOS Genetics'" in texts(answer(live, "subscribe PLOS Genetics weekly", **t2))
    assert "follows no profiles" in texts(answer(live, "subscriptions", **t2))
    assert "Subscribed <#C1> to PLOS Genetics" in texts(answer(live, "subscribe PLOS Genetics", **t1))
    with live.db.session() as session:
        active = {(s.team_id, s.profile.name) for s in session.scalars(select(Subscription)) if s.status == "active"}
    assert active == {("T1", "PLOS Genetics")}

    listed = texts(answer(live, "profiles", **t2))
    assert "2 profiles" in listed and "Neural Networks" in listed and "PLOS Genetics" not in listed
    assert "PLOS Genetics" not in texts(answer(live, "profiles genetics", **t2))
    assert "3 profiles" in texts(answer(live, "profiles", **t1))

    with live.db.session() as session:
        doi = session.get(Preprint, live.ids["preprints"][2]).doi
    seen, seen_elsewhere = match_lines(answer(live, f"match {doi}", **t1))
    unseen, unseen_elsewhere = match_lines(answer(live, f"match {doi}", **t2))
    assert sorted(seen) == sorted(PROFILES) and sorted(unseen) == sorted(set(PROFILES) - {"PLOS Genetics"})
    # What T2 cannot see counts as published elsewhere: its shares still add up to 100%.
    assert float(unseen_elsewhere) == pytest.approx(float(seen_elsewhere) + 100 * score_of(1, 2), abs=0.06)

    vote = f"{live.ids['profiles'][1]}:{live.ids['preprints'][2]}"
    refused = live.slack.click("scout_vote_relevant", vote, team_id="T2", user_id="U2")[1]
    assert "no longer stored" in texts(live.fake.wait_response(refused)[0])
    noted = live.slack.click("scout_vote_relevant", vote, team_id="T1")[1]
    assert "noted as *relevant* for PLOS Genetics" in texts(live.fake.wait_response(noted)[0])
    with live.db.session() as session:
        assert [(v.team_id, v.user_id) for v in session.scalars(select(Vote))] == [("T1", "U1")]

    assert live.slack.event({"type": "app_home_opened", "user": "U2", "tab": "home"}, team_id="T2").status_code == 200
    wait_for(lambda: live.fake.views, what="the App Home view")
    home = json.dumps(live.fake.views[-1]["view"], ensure_ascii=False)
    assert "PLOS Genetics" not in home and "No digests sent yet" in home

    scout("profiles", "remove", "PLOS Genetics")  # now it does not exist: T2 was told the same
    assert texts(answer(live, "rank PLOS Genetics", **t2)) == hidden


def test_profiles_with_search(live: Live):
    listed = texts(answer(live, "profiles"))
    assert all(name in listed for name in PROFILES) and "(5 papers)" in listed
    found = texts(answer(live, "profiles genetics"))
    assert "PLOS Genetics" in found and "Neural Networks" not in found
    assert "No profile matches" in texts(answer(live, "profiles zzzz"))


# -- email digests to the user's own address --------------------------------------------


def test_email_subscribes_the_users_own_address(db: Database):
    """`/scout email`: users.info gives the address Slack verified; active at once, no confirmation mail."""
    seed_catalog(db, PROFILES, PREPRINTS[:3], score_of)
    with FakeSlack() as fake, SmtpServer() as smtp:
        fake.add_team("T1", "xoxb-t1")
        fake.add_user("T1", "U1", "Ada.Lovelace@Example.org")
        fake.add_user("T1", "U2", None)  # Slack leaves profile.email out without users:read.email
        settings = slack_settings(
            db,
            fake,
            SMTP_URL=smtp.url,
            SCOUT_MAIL_FROM=f"Preprint Scout <{MAIL_FROM}>",
            SCOUT_BASE_URL=MAIL_BASE_URL,
            SCOUT_SECRET_KEY=MAIL_SECRET,
        )
        with serve(build_app(settings, db, ctx=lazy_ctx())) as url:
            live = Live(fake, SlackSender(url, SECRET, fake), settings, db, {}, url)
            reply = answer(live, "email PLOS Genetics weekly top 5%")
            assert reply["response_type"] == "ephemeral"
            assert "Email digest for ada.lovelace@example.org: PLOS Genetics: top 5%, weekly" in texts(reply)
            [lookup] = fake.calls_to("users.info")
            assert (lookup.args["user"], lookup.token) == ("U1", "xoxb-t1")

            unknown = answer(live, "email plos genetcs daily")
            assert unknown["response_type"] == "ephemeral" and "PLOS Genetics" in texts(unknown)
            assert "users:read.email" in texts(answer(live, "email eLife", user_id="U2"))
            assert "does not know your user" in texts(answer(live, "email eLife", user_id="U9"))
        assert smtp.messages == []  # Slack verified the address: no confirmation round trip
    with db.session() as session:
        subs = [
            (s.kind, s.email, s.status, s.profile.name, s.schedule, s.created_by)
            for s in session.scalars(select(Subscription))
        ]
    assert subs == [("email", "ada.lovelace@example.org", "active", "PLOS Genetics", "weekly", "slack:T1:U1")]


def test_email_follows_only_a_profile_the_workspace_sees(db: Database):
    """Two workspaces installed by OAuth, each asking Slack with its own token; PLOS Genetics is T1's."""
    from slack_sdk.oauth.installation_store import Installation

    from bot.delivery.slack.oauth import installation_store

    ids = seed_catalog(db, PROFILES, PREPRINTS[:3], score_of)
    with db.session() as session:
        session.get(Profile, ids["profiles"][1]).team_id = "T1"  # PLOS Genetics
    with FakeSlack() as fake, SmtpServer() as smtp:
        settings = slack_settings(
            db,
            fake,
            SLACK_BOT_TOKEN=None,
            SLACK_CLIENT_ID=fake.client_id,
            SLACK_CLIENT_SECRET=fake.client_secret,
            SMTP_URL=smtp.url,
            SCOUT_MAIL_FROM=f"Preprint Scout <{MAIL_FROM}>",
            SCOUT_BASE_URL=MAIL_BASE_URL,
            SCOUT_SECRET_KEY=MAIL_SECRET,
        )
        for team, user, email in (("T1", "U1", "ada@example.org"), ("T2", "U2", "bob@example.org")):
            token = f"xoxb-{team.lower()}"
            fake.add_team(team, token)
            fake.add_user(team, user, email)
            installation_store(settings, db).save(
                Installation(app_id="A0SCOUT", team_id=team, bot_token=token, bot_id=f"B{team}", user_id=user)
            )
        with serve(build_app(settings, db, ctx=lazy_ctx())) as url:
            live = Live(fake, SlackSender(url, SECRET, fake), settings, db, {}, url)
            refused = texts(answer(live, "email PLOS Genetics weekly", team_id="T2", user_id="U2"))
            assert "No profile named 'PLOS Genetics'" in refused and "Did you mean" not in refused
            assert "Email digest for ada@example.org: PLOS Genetics" in texts(answer(live, "email PLOS Genetics"))
            assert {(c.args["user"], c.token) for c in fake.calls_to("users.info")} == {
                ("U1", "xoxb-t1"),
                ("U2", "xoxb-t2"),
            }
    with db.session() as session:
        subs = [(s.email, s.profile.name, s.created_by) for s in session.scalars(select(Subscription))]
    assert subs == [("ada@example.org", "PLOS Genetics", "slack:T1:U1")]


def test_email_without_email_settings_names_what_is_missing(live: Live):
    reply = answer(live, "email PLOS Genetics")
    assert reply["response_type"] == "ephemeral"
    assert "SMTP_URL, SCOUT_MAIL_FROM, SCOUT_BASE_URL are not set" in texts(reply)
    assert live.fake.calls_to("users.info") == []  # settings first: nothing asked of Slack
    with live.db.session() as session:
        assert session.scalar(select(Subscription.id)) is None


# -- buttons and home --------------------------------------------------------------------


def test_votes_are_stored_and_shown_in_profiles_show(live: Live):
    profile_id, preprint_id = live.ids["profiles"][0], live.ids["preprints"][1]
    for user, action in (
        ("U1", "scout_vote_relevant"),
        ("U2", "scout_vote_relevant"),
        ("U3", "scout_vote_not_relevant"),
    ):
        ack, url = live.slack.click(action, f"{profile_id}:{preprint_id}", user_id=user)
        assert ack.status_code == 200
        assert "Thanks: noted as" in texts(live.fake.wait_response(url)[0])
    ack, url = live.slack.click("scout_vote_not_relevant", f"{profile_id}:{preprint_id}", user_id="U1")
    live.fake.wait_response(url)  # U1 changes their mind: still one vote each
    with live.db.session() as session:
        votes = sorted((v.user_id, v.relevant, v.team_id) for v in session.scalars(select(Vote)))
    assert votes == [("U1", False, "T1"), ("U2", True, "T1"), ("U3", False, "T1")]
    result = Scout({"DATABASE_URL": live.db.url})("profiles", "show", "Neural Networks")
    assert "readers' votes: 1 relevant, 2 not relevant" in result.output
    stale = live.slack.click("scout_vote_relevant", "garbage")
    assert "out of date" in texts(live.fake.wait_response(stale[1])[0])


def test_home_tab_shows_subscriptions_and_recent_digests(live: Live):
    answer(live, "subscribe Neural Networks min 20%", channel_id="C5")
    assert live.slack.event({"type": "app_home_opened", "user": "U1", "tab": "home"}).status_code == 200
    wait_for(lambda: live.fake.views, what="the App Home view")
    view = live.fake.views[-1]
    assert view["user_id"] == "U1" and view["view"]["type"] == "home"
    body = json.dumps(view["view"], ensure_ascii=False)
    assert "<#C5> · Neural Networks: min 20%" in body and "No digests sent yet" in body


def test_home_tab_counts_each_digests_preprints(live: Live):
    from bot.db import Digest

    answer(live, "subscribe PLOS Genetics min 20%", channel_id="C6")
    with live.db.session() as session:
        sub = session.scalar(select(Subscription))
        session.add(Digest(subscription_id=sub.id, status="done", items=7, channel_id="C6", parent_ts="1.2"))
    assert live.slack.event({"type": "app_home_opened", "user": "U1", "tab": "home"}).status_code == 200
    wait_for(lambda: live.fake.views, what="the App Home view")
    body = json.dumps(live.fake.views[-1]["view"], ensure_ascii=False)
    assert "<#C6> · PLOS Genetics · 7 preprints · done" in body
    assert "built-in method" not in body


# -- match on free text (real model, real scoring) ---------------------------------------


def test_match_free_text_scores_with_the_model(db: Database, scoring_ctx):
    from bot.profiles.catalog import read_papers

    add_real_profiles(db, scoring_ctx)
    papers = read_papers(FIXTURES / "profiles" / "plos-computational-biology.jsonl").papers
    text = f"{papers[0].title}. {papers[0].abstract}"
    with FakeSlack() as fake:
        fake.add_team("T1", "xoxb-t1")
        settings = slack_settings(db, fake)
        with serve(build_app(settings, db, ctx=scoring_ctx)) as url:
            sender = SlackSender(url, SECRET, fake)
            ack, response_url = sender.command(f"match {text[:1500]}")
            assert ack.status_code == 200
            reply = fake.wait_response(response_url)[0]
    lines = reply["blocks"][1]["text"]["text"].splitlines()
    assert lines[0].startswith("*PLOS Computational Biology*: match *")
    shown = [float(m) for m in re.findall(r"match \*([\d.]+)%\*", reply["blocks"][1]["text"]["text"])]
    background = float(re.search(r"Published elsewhere: ([\d.]+)%", texts(reply)).group(1))
    assert abs(sum(shown) + background - 100) < 1.0  # probabilities over profiles + elsewhere


# -- OAuth: many workspaces --------------------------------------------------------------


def test_oauth_install_then_uninstall(db: Database):
    from bot.delivery.slack.oauth import installation_store

    seed_catalog(db, PROFILES[:1], PREPRINTS[:3], score_of)
    with FakeSlack() as fake:
        settings = slack_settings(
            db, fake, SLACK_BOT_TOKEN=None, SLACK_CLIENT_ID=fake.client_id, SLACK_CLIENT_SECRET=fake.client_secret
        )
        with serve(build_app(settings, db, ctx=lazy_ctx())) as url, httpx.Client(base_url=url) as browser:
            page = browser.get("/slack/install")
            assert page.status_code == 200
            authorize = re.search(r'href="([^"]+oauth/v2/authorize[^"]+)"', page.text).group(1).replace("&amp;", "&")
            query = parse_qs(urlsplit(authorize).query)
            assert query["client_id"] == [fake.client_id] and "commands" in query["scope"][0]
            fake.add_oauth_code("code-t2", "T2", "xoxb-t2")
            # The state cookie is Secure (the browser sends it back over https); hand it back here.
            cookie = page.headers["set-cookie"].split(";")[0]
            done = browser.get(
                "/slack/oauth_redirect",
                params={"code": "code-t2", "state": query["state"][0]},
                headers={"Cookie": cookie},
            )
            assert done.status_code == 200, done.text
            store = installation_store(settings, db)
            assert store.find_bot(enterprise_id=None, team_id="T2").bot_token == "xoxb-t2"

            sender = SlackSender(url, SECRET, fake)
            ack, response_url = sender.command("subscribe Neural Networks", team_id="T2")
            assert ack.status_code == 200
            assert "Subscribed" in texts(fake.wait_response(response_url)[0])
            assert {c.token for c in fake.calls_to("auth.test")} == {"xoxb-t2"}  # the install's own token
            unknown, _ = sender.command("subscriptions", team_id="T3")  # never installed there
            assert "install" in unknown.text.lower() or unknown.status_code == 200

            assert sender.event({"type": "app_uninstalled"}, team_id="T2").status_code == 200
            wait_for(lambda: store.find_bot(enterprise_id=None, team_id="T2") is None, what="the installation to go")
            with db.session() as session:
                sub = session.scalar(select(Subscription))
                for _ in range(100):
                    if sub.status == "paused":
                        break
                    time.sleep(0.05)
                    session.refresh(sub)
                assert sub.status == "paused" and "uninstalled" in sub.status_reason


def test_blank_oauth_variables_leave_one_workspace_working(db: Database, monkeypatch):
    # A container passing through unset variables: Bolt used to switch on OAuth of its own.
    monkeypatch.setenv("SLACK_CLIENT_ID", "")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "")
    with FakeSlack() as fake:
        fake.add_team("T1", "xoxb-t1")
        seed_catalog(db, PROFILES, PREPRINTS, score_of)
        with serve(build_app(slack_settings(db, fake), db, ctx=lazy_ctx())) as url:
            ack, response_url = SlackSender(url, SECRET, fake).command("rank PLOS Genetics top 3")
            assert ack.status_code == 200
            [reply] = fake.wait_response(response_url)
    assert reply["response_type"] == "ephemeral" and "PLOS Genetics" in reply["blocks"][0]["text"]["text"]
