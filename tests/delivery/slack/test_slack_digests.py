"""Slack digests end to end: `scout digests run` against the fake Slack Web API, on SQLite and
PostgreSQL. Threads, exactly-once after a killed run, 429 / 5xx / timeouts, dead channels,
escaping and Slack's block limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.db import Database, Delivery, Digest, Preprint, Score, ScoringRun, Subscription, as_utc
from bot.delivery.slack.delivery import REASONS
from bot.delivery.subscriptions import Options, Target, subscribe
from scoring.text import content_hash
from tests.cli import Scout
from tests.fake_slack import FakeSlack, seed_catalog
from tests.fake_slack.catalog import cache_embedding
from tests.paths import ROOT

PROFILES = ["Neural Networks", "PLOS Genetics"]
THRESHOLD = 0.12


def score_of(p: int, q: int) -> float:
    return round(0.01 + ((q * 7 + p * 3) % 23) / 100.0, 4)


def preprints(n: int = 10, **special: dict) -> list[dict]:
    specs = [{"title": f"Cortical dynamics preprint {i}", "abstract": f"Recordings of area {i}."} for i in range(n)]
    for index, spec in special.items():
        specs[int(index.lstrip("_"))] = spec
    return specs


@dataclass
class Setup:
    fake: FakeSlack
    db: Database
    ids: dict
    env: dict[str, str]
    specs: list[dict]

    def run(self, *args: str, code: int | None = 0) -> str:
        return Scout(self.env)("digests", "run", *args, code=code).output

    def expected(self, profile: int = 0) -> list[int]:
        """Preprint ids above the threshold, best first (what the digest should hold)."""
        order = sorted(range(len(self.specs)), key=lambda q: -score_of(profile, q))
        return [self.ids["preprints"][q] for q in order if score_of(profile, q) >= THRESHOLD]

    def subscribe(self, channel: str = "C1", profile: str = "Neural Networks", team: str = "T1", **options):
        options.setdefault("threshold", f"min {THRESHOLD * 100:g}%")
        with self.db.session() as session:
            sub, _ = subscribe(session, Target("slack", team, channel), profile, Options(**options), created_by="U1")
            return sub.id


def make_setup(db: Database, fake: FakeSlack, specs: list[dict]) -> Setup:
    fake.add_team("T1", "xoxb-t1")
    ids = seed_catalog(db, PROFILES, specs, score_of)
    env = {
        "DATABASE_URL": db.url,
        **fake.sender_env("xoxb-t1"),
        "SCOUT_DIGEST_LEASE_SECONDS": "2",
        "SLACK_CLIENT_ID": "",
        "SLACK_CLIENT_SECRET": "",
    }
    return Setup(fake, db, ids, env, specs)


@pytest.fixture
def setup(db: Database) -> Iterator[Setup]:
    with FakeSlack() as fake:
        yield make_setup(db, fake, preprints())


def item_ids(messages: list[dict]) -> list[int]:
    return [m["metadata"]["event_payload"]["preprint_id"] for m in messages]


# -- a digest with threads ---------------------------------------------------------------


def test_digest_is_a_parent_with_one_threaded_reply_per_preprint(setup: Setup):
    sid = setup.subscribe()
    expected = setup.expected()
    assert f"{len(expected)} planned" in setup.run("--dry-run", "--force") and not setup.fake.posted()
    output = setup.run("--force")
    assert f"sent {len(expected)}" in output
    parents = [m for m in setup.fake.posted("C1") if not m["thread_ts"]]
    assert len(parents) == 1
    parent = parents[0]
    header = parent["blocks"][0]["text"]["text"]
    assert header == f"Neural Networks: {len(expected)} new preprints with a match score of 12% or more"
    assert "threshold: min 12%" in json.dumps(parent["blocks"]) and time.strftime("%Y-%m-%d") in parent["text"]
    replies = setup.fake.replies(parent["ts"])
    assert item_ids(replies) == expected
    for reply in replies:
        assert reply["unfurl_links"] is False and reply["text"]
        assert len(reply["blocks"]) <= 50
        actions = [b for b in reply["blocks"] if b["type"] == "actions"][0]
        assert [e["action_id"] for e in actions["elements"]] == ["scout_vote_relevant", "scout_vote_not_relevant"]
    with setup.db.session() as session:
        ledger = {d.preprint_id: d.message_ts for d in session.scalars(select(Delivery))}
        digest = session.scalar(select(Digest))
        sub = session.get(Subscription, sid)
        assert ledger == {pid: r["ts"] for pid, r in zip(expected, replies, strict=True)}
        assert (digest.status, digest.items, digest.parent_ts) == ("done", len(expected), parent["ts"])
        assert sub.last_run_at is not None
    # Nothing new: no second digest, nothing posted.
    assert "nothing new" in setup.run("--force")
    assert len(setup.fake.posted()) == len(expected) + 1
    assert "no digests due" in setup.run()  # the next run is scheduled in the future


def test_escaping_and_slack_limits(db: Database):
    specs = preprints(
        _1={"title": "<!channel> & <!here> read <@U0ALL> this", "abstract": "x & y <z>"},
        _2={"title": "&" * 4000, "abstract": "a very long one " * 400, "authors": ["<" * 1000] * 6},
        _3={"title": "Ordinary title", "abstract": "Ordinary.", "authors": ["<!everyone>", "Smith & Wesson"]},
    )
    with FakeSlack() as fake:
        setup = make_setup(db, fake, specs)
        setup.subscribe(threshold="min 1%")
        setup.run("--force")
        assert fake.pings() == []
        posted = json.dumps([m["blocks"] for m in fake.posted()])
        assert "&lt;!channel&gt; &amp; &lt;!here&gt; read &lt;@U0ALL&gt; this" in posted
        assert "&lt;!everyone&gt;, Smith &amp; Wesson" in posted
        assert len([m for m in fake.posted() if m["thread_ts"]]) == len(specs)  # the validator accepted every one
        long_one = next(m for m in fake.posted() if m["thread_ts"] and "&amp;&amp;" in m["blocks"][0]["text"]["text"])
        text = long_one["blocks"][0]["text"]["text"]
        assert len(text) <= 3000 and text.endswith("&lt;…")  # cut between entities, never inside one
        assert "<https://www.biorxiv.org/" in text  # the title link survives, its label shortened


def test_blocks_slack_refuses_fall_back_to_text(setup: Setup):
    setup.subscribe()
    setup.fake.fail("chat.postMessage", error="invalid_blocks")  # the parent's blocks
    setup.run("--force")
    parent = [m for m in setup.fake.posted() if not m["thread_ts"]]
    assert len(parent) == 1 and parent[0]["blocks"] is None and "Neural Networks" in parent[0]["text"]
    assert item_ids(setup.fake.replies(parent[0]["ts"])) == setup.expected()


# -- exactly once ------------------------------------------------------------------------


def start_sender(setup: Setup, **env: str) -> subprocess.Popen:
    """`scout digests run --force` as a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "digests", "run", "--force"],
        cwd=ROOT,
        env={**os.environ, **setup.env, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def kill_sender_once(setup: Setup, hook, reached: threading.Event, release: threading.Event) -> None:
    """Run a sender in its own process with `hook` on chat.postMessage; SIGKILL it once the
    hook sets `reached` (Slack has acted; the sender has not heard back)."""
    setup.fake.on("chat.postMessage", hook)
    proc = start_sender(setup, SLACK_TIMEOUT="60")
    try:
        assert reached.wait(120), proc.stdout.read() if proc.poll() is not None else "stalled"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        setup.fake.on("chat.postMessage", None)
        release.set()
        if proc.poll() is None:
            proc.kill()


def assert_each_once(setup: Setup, channel: str = "C1", profile: int = 0) -> dict:
    """One parent in `channel`, each expected preprint exactly once in its thread, in
    order, the ledger agreeing with the thread and the header with the count."""
    parents = [m for m in setup.fake.posted(channel) if not m["thread_ts"]]
    assert len(parents) == 1, f"{len(parents)} parent messages"
    replies = setup.fake.replies(parents[0]["ts"])
    assert item_ids(replies) == setup.expected(profile)
    with setup.db.session() as session:
        digest = session.scalar(select(Digest).where(Digest.parent_ts == parents[0]["ts"]))
        ledger = {
            d.preprint_id: d.message_ts
            for d in session.scalars(select(Delivery).where(Delivery.digest_id == digest.id))
        }
    assert ledger == {item_ids([r])[0]: r["ts"] for r in replies}
    assert (digest.status, digest.items) == ("done", len(replies))
    header = parents[0]["blocks"][0]["text"]["text"]
    assert header.split(": ", 1)[1].startswith(f"{len(replies)} new"), header
    return parents[0]


def test_a_run_killed_mid_digest_resumes_the_same_thread_without_duplicates(setup: Setup):
    setup.subscribe()
    expected = setup.expected()
    assert len(expected) >= 4
    third_accepted, release = threading.Event(), threading.Event()
    accepted: list[str] = []

    def stall_after_third_reply(call, answer):
        if call.args.get("thread_ts"):
            accepted.append(answer["ts"])
            if len(accepted) == 3:
                third_accepted.set()
                release.wait(60)  # Slack took it; the sender dies before it hears back

    setup.run("--dry-run", "--force")  # plans in-process: the embedding cache is warm, the child needs no model
    kill_sender_once(setup, stall_after_third_reply, third_accepted, release)
    with setup.db.session() as session:
        assert session.scalar(select(Digest)).status == "open"
        assert len(list(session.scalars(select(Delivery)))) == 2  # the third was never written down

    # The dead sender's claim holds until its lease runs out; then the next run takes over.
    assert "busy" in setup.run("--force") and len(setup.fake.posted()) == 4
    time.sleep(2.1)
    # A thread that cannot be read *for now* (5xx beyond the retries) is no licence to guess.
    setup.fake.fail("conversations.replies", status=500, times=4)
    assert "will resume" in setup.run("--force", code=1) and len(setup.fake.posted()) == 4
    setup.run("--force")
    parents = [m for m in setup.fake.posted() if not m["thread_ts"]]
    assert len(parents) == 1  # the same thread
    replies = setup.fake.replies(parents[0]["ts"])
    assert sorted(item_ids(replies)) == sorted(expected)  # every preprint exactly once
    assert item_ids(replies) == expected  # and still best first
    with setup.db.session() as session:
        ledger = {d.preprint_id: d.message_ts for d in session.scalars(select(Delivery))}
        digest = session.scalar(select(Digest))
    assert ledger[expected[2]] == accepted[2]  # recorded from the thread, not sent again
    assert (digest.status, digest.items) == ("done", len(expected))
    assert setup.fake.calls_to("chat.update")[-1].args["ts"] == parents[0]["ts"]
    assert_each_once(setup)  # and the updated header counts the whole thread


def test_two_senders_at_once_send_each_digest_once(setup: Setup):
    """Two `digests run --force` processes overlap: the first is held inside its first post
    (C1's parent) until the second has finished; the second finds C1 claimed, leaves it, and
    sends C2, which the first then finds already sent."""
    setup.subscribe("C1", "Neural Networks")
    setup.subscribe("C2", "PLOS Genetics")
    setup.run("--dry-run", "--force")  # warms the embedding cache: the children need no model
    first_post, release = threading.Event(), threading.Event()

    def hold_first_post(call, answer):
        if not first_post.is_set():
            first_post.set()
            release.wait(60)

    setup.fake.on("chat.postMessage", hold_first_post)
    patient = {"SLACK_TIMEOUT": "60", "SCOUT_DIGEST_LEASE_SECONDS": "120"}  # the hold must not end the claim
    first = start_sender(setup, **patient)
    second = None
    try:
        assert first_post.wait(120), "the first sender never posted"
        second = start_sender(setup, **patient)
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 0, output
        assert "Neural Networks: busy" in output and "PLOS Genetics: sent" in output, output
        assert not [m for m in setup.fake.posted("C1") if m["thread_ts"]]  # the second sender left C1 alone
    finally:
        release.set()
        setup.fake.on("chat.postMessage", None)
        output, _ = first.communicate(timeout=120)
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert first.returncode == 0, output
    assert "Neural Networks: sent" in output and "PLOS Genetics: nothing new" in output, output
    assert_each_once(setup, "C1", 0)
    assert_each_once(setup, "C2", 1)
    with setup.db.session() as session:
        assert all(s.claimed_by is None for s in session.scalars(select(Subscription)))  # released


def test_two_senders_started_half_a_second_apart(setup: Setup):
    setup.subscribe("C1", "Neural Networks")
    setup.subscribe("C2", "PLOS Genetics")
    setup.run("--dry-run", "--force")
    slow = {"SLACK_POST_INTERVAL": "0.1"}
    first = start_sender(setup, **slow)
    time.sleep(0.5)
    second = start_sender(setup, **slow)
    outputs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert_each_once(setup, "C1", 0)
    assert_each_once(setup, "C2", 1)
    for profile in PROFILES:  # one sender sent it; the other found it busy or already sent
        assert sum(o.count(f"{profile}: sent") for o in outputs) == 1, outputs


def fail_the_post_after(setup: Setup, count: int, **failure) -> None:
    """Once `count` messages are posted, the next post fails as `failure` says."""
    posts: list = []

    def hook(call, answer):
        posts.append(call)
        if len(posts) == count:
            setup.fake.fail("chat.postMessage", **failure)

    setup.fake.on("chat.postMessage", hook)


@pytest.mark.parametrize("which", ["parent", "reply"])
@pytest.mark.parametrize("fault", ["500", "timeout"])
def test_a_post_slack_accepted_but_answered_badly_is_found_not_sent_again(setup: Setup, which: str, fault: str):
    setup.subscribe()
    failure = {"status": 500} if fault == "500" else {"status": 503, "hang": 1.5}  # SLACK_TIMEOUT=1
    if which == "parent":
        setup.fake.fail("chat.postMessage", after=True, **failure)
    else:
        fail_the_post_after(setup, 2, after=True, **failure)  # the parent and one reply go well
    assert "sent" in setup.run("--force")
    assert_each_once(setup)
    assert len(setup.fake.calls_to("chat.postMessage")) == len(setup.expected()) + 1  # nothing posted twice
    read = "conversations.history" if which == "parent" else "conversations.replies"
    assert len(setup.fake.calls_to(read)) == 1  # it looked once, found it, went on


def kill_during_the_parent_post(setup: Setup) -> None:
    """A sender in its own process, SIGKILLed once Slack has posted its digest's parent message
    and before it hears back: the digest is left open with no parent_ts."""
    accepted, release = threading.Event(), threading.Event()

    def die_on_parent(call, answer):
        if not call.args.get("thread_ts"):
            accepted.set()
            release.wait(60)  # Slack posted it; the sender is killed before it hears back

    setup.run("--dry-run", "--force")
    kill_sender_once(setup, die_on_parent, accepted, release)
    with setup.db.session() as session:
        digest = session.scalar(select(Digest))
        assert (digest.status, digest.parent_ts) == ("open", None) and digest.parent_sent_at is not None


def test_a_kill_during_the_parent_post_adopts_that_parent(setup: Setup):
    setup.subscribe()
    kill_during_the_parent_post(setup)
    time.sleep(2.1)  # the dead sender's claim runs out
    setup.run("--force")
    parent = assert_each_once(setup)  # no orphan parent with an empty thread
    with setup.db.session() as session:
        assert session.scalar(select(Digest)).parent_ts == parent["ts"]


def add_match(setup: Setup, score: float, profile: int = 0) -> int:
    """A preprint posted yesterday, scored `score` for one profile (and no other)."""
    with setup.db.session() as session:
        title, abstract = "A late preprint on cortical waves", "It arrived after the digest began."
        row = Preprint(
            server="biorxiv",
            identifier="10.1101/2026.02.01.999999",
            doi="10.1101/2026.02.01.999999",
            title=title,
            abstract=abstract,
            authors_json='["Late, L."]',
            category="neuroscience",
            posted=date.today() - timedelta(days=1),
            url="https://www.biorxiv.org/content/10.1101/2026.02.01.999999v1",
            content_hash=content_hash(title, abstract),
        )
        session.add(row)
        session.flush()
        cache_embedding(session, row.content_hash)
        run_id = session.scalar(select(ScoringRun.id))
        session.add(Score(preprint_id=row.id, profile_id=setup.ids["profiles"][profile], run_id=run_id, score=score))
        return row.id


def test_a_resumed_digest_header_counts_every_reply_in_its_thread(setup: Setup):
    """A digest whose sender was killed during its parent post announces N; a match that
    arrives before the run that resumes it joins the same thread, and the header is brought
    to N + 1 (not "13 new" over a 14-reply thread)."""
    setup.subscribe()
    count = len(setup.expected())
    kill_during_the_parent_post(setup)
    [parent] = setup.fake.posted("C1")
    assert parent["blocks"][0]["text"]["text"].startswith(f"Neural Networks: {count} new")
    late = add_match(setup, 0.5)
    time.sleep(2.1)  # the dead sender's claim runs out
    setup.run("--force")
    assert [m["ts"] for m in setup.fake.posted("C1") if not m["thread_ts"]] == [parent["ts"]]
    replies = setup.fake.replies(parent["ts"])
    assert item_ids(replies) == [late, *setup.expected()]  # each once, best first
    header = parent["blocks"][0]["text"]["text"]  # as chat.update left it
    assert header.startswith(f"Neural Networks: {count + 1} new"), header
    with setup.db.session() as session:
        digest = session.scalar(select(Digest))
        ledger = {d.preprint_id: d.message_ts for d in session.scalars(select(Delivery))}
    assert (digest.status, digest.items) == ("done", count + 1)
    assert ledger == {item_ids([r])[0]: r["ts"] for r in replies}


@pytest.mark.parametrize("error", ["not_in_channel", "missing_scope"])
def test_a_thread_that_cannot_be_read_back_leaves_the_ledger_to_decide(setup: Setup, error: str):
    """A public channel the app posts to without being a member (chat:write.public) cannot be
    read: resuming a digest there finishes it from the ledger, and pauses nothing."""
    sid = setup.subscribe()
    expected = setup.expected()
    fail_the_post_after(setup, 3, status=500, times=4)  # a reply fails beyond its retries
    assert "will resume" in setup.run("--force", code=1)
    setup.fake.on("chat.postMessage", None)
    setup.fake.fail("conversations.replies", error=error, times=10)
    setup.run("--force")
    with setup.db.session() as session:
        sub = session.get(Subscription, sid)
        assert (sub.status, sub.status_reason) == ("active", None)
    parent = assert_each_once(setup)
    assert len(setup.fake.replies(parent["ts"])) == len(expected)  # nothing dropped, nothing twice


# -- errors that heal --------------------------------------------------------------------


def test_rate_limit_waits_retry_after(setup: Setup):
    setup.subscribe()
    setup.fake.fail("chat.postMessage", status=429, retry_after=1)
    setup.run("--force")
    calls = setup.fake.calls_to("chat.postMessage")
    assert calls[0].args["text"] == calls[1].args["text"]  # the parent, retried
    assert calls[1].at - calls[0].at >= 1.0
    parents = [m for m in setup.fake.posted() if not m["thread_ts"]]
    assert len(parents) == 1 and item_ids(setup.fake.replies(parents[0]["ts"])) == setup.expected()


def test_server_errors_and_timeouts_retry_with_backoff(setup: Setup):
    setup.subscribe()
    setup.fake.fail("chat.postMessage", status=502)
    setup.fake.fail("chat.postMessage", status=500)
    setup.fake.fail("chat.postMessage", hang=1.5, status=503)  # longer than SLACK_TIMEOUT=1
    setup.run("--force")
    assert len(setup.fake.calls_to("chat.postMessage")) == len(setup.expected()) + 1 + 3
    parents = [m for m in setup.fake.posted() if not m["thread_ts"]]
    assert len(parents) == 1 and item_ids(setup.fake.replies(parents[0]["ts"])) == setup.expected()


def test_errors_that_outlast_the_retries_leave_the_digest_open(setup: Setup):
    setup.subscribe()
    setup.fake.fail("chat.postMessage", status=500, times=4)  # 1 + 3 retries
    assert "will resume" in setup.run("--force", code=1)
    with setup.db.session() as session:
        assert session.scalar(select(Digest)).status == "open"
        assert session.scalar(select(Subscription)).status == "active"
    setup.run("--force")
    assert len([m for m in setup.fake.posted() if not m["thread_ts"]]) == 1


def test_an_interrupted_digest_waits_longer_each_time_the_outage_lasts(setup: Setup):
    """Without --force, as the clock runs it: a digest that will resume is not tried again at
    every check, but after as long as it has been open (1 minute at least, 1 hour at most)."""
    sid = setup.subscribe()
    with setup.db.session() as session:
        session.get(Subscription, sid).next_run_at = datetime.now(UTC) - timedelta(minutes=1)
    setup.fake.fail("chat.postMessage", status=500, times=4)
    assert "will resume" in setup.run(code=1)
    tries = len(setup.fake.calls_to("chat.postMessage"))
    with setup.db.session() as session:
        wait = as_utc(session.get(Subscription, sid).next_run_at) - datetime.now(UTC)
    assert timedelta(seconds=40) < wait <= timedelta(minutes=1)
    assert "sent" not in setup.run() and len(setup.fake.calls_to("chat.postMessage")) == tries  # not due yet

    with setup.db.session() as session:  # twenty minutes of outage later
        session.scalar(select(Digest)).started_at = datetime.now(UTC) - timedelta(minutes=20)
        session.get(Subscription, sid).next_run_at = datetime.now(UTC) - timedelta(seconds=1)
    setup.fake.fail("chat.postMessage", status=500, times=4)
    assert "will resume" in setup.run(code=1)
    with setup.db.session() as session:
        wait = as_utc(session.get(Subscription, sid).next_run_at) - datetime.now(UTC)
    assert timedelta(minutes=19) < wait <= timedelta(minutes=20, seconds=5)

    with setup.db.session() as session:  # the outage is over by the next try
        session.get(Subscription, sid).next_run_at = datetime.now(UTC) - timedelta(seconds=1)
    assert f"sent {len(setup.expected())}" in setup.run()
    assert_each_once(setup)


# -- errors that will not heal -----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "error"),
    [("missing", "channel_not_found"), ("archived", "is_archived"), ("not_in_channel", "not_in_channel")],
)
def test_a_dead_channel_pauses_the_subscription_and_tells_its_creator(setup: Setup, state, error):
    sid = setup.subscribe(channel="C9")
    other = setup.subscribe(channel="C2")
    setup.fake.set_channel("C9", state)
    output = setup.run("--force", code=1)  # paused by an error in this run: the run failed
    assert "paused" in output
    with setup.db.session() as session:
        sub = session.get(Subscription, sid)
        assert sub.status == "paused" and sub.status_reason == REASONS[error]
        assert session.get(Subscription, other).status == "active"
    dms = setup.fake.posted("DU1")
    assert len(dms) == 1 and "paused" in dms[0]["text"] and "<#C9>" in dms[0]["text"]
    assert setup.fake.calls_to("conversations.open")[0].args["users"] == "U1"
    assert item_ids(setup.fake.replies(setup.fake.posted("C2")[0]["ts"])) == setup.expected()
    before = len(setup.fake.calls_to("chat.postMessage"))
    setup.run("--force")  # paused: left alone
    assert len(setup.fake.calls_to("chat.postMessage")) == before


def test_a_revoked_token_pauses(setup: Setup):
    sid = setup.subscribe()
    setup.fake.revoke("xoxb-t1")
    setup.run("--force", code=1)
    with setup.db.session() as session:
        sub = session.get(Subscription, sid)
        assert sub.status == "paused" and "revoked" in sub.status_reason
    assert not setup.fake.posted()


def test_nothing_above_the_threshold_sends_nothing(setup: Setup):
    sid = setup.subscribe(threshold="min 90%")
    assert "nothing new" in setup.run("--force")
    assert not setup.fake.posted()
    with setup.db.session() as session:
        assert session.get(Subscription, sid).last_run_at is not None
        assert session.scalar(select(Digest)) is None
    with setup.db.session() as session:
        assert session.scalar(select(Preprint.id)) is not None
