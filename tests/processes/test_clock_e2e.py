"""Two real `scout scheduler` processes over one database, the fake Slack Web API and an SMTP
server: one clock is killed mid-digest, the standby takes over, and every due digest is
delivered exactly once. SIGTERM during a digest stops the clock cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from bot.db import Database, Delivery, Digest, Subscription, utcnow
from bot.delivery.subscriptions import Options, Target, subscribe
from tests.fake_slack import FakeSlack, seed_catalog
from tests.loopback import wait_for
from tests.paths import ROOT
from tests.smtp_server import SmtpServer

PROFILES = ["Neural Networks", "PLOS Genetics"]
CHANNELS = ["C1", "C2"]
ITEMS = 12
EMAIL = "editor@example.org"


def score_of(p: int, q: int) -> float:
    return round(0.05 + ((q * 7 + p * 3) % 23) / 100.0, 4)


def follow_everything(db: Database, due: bool = True) -> None:
    """Both channels and one address follow the profiles; every digest is due now (or,
    with `due=False`, not before `make_due`). "top 100%" capped at ITEMS: the clock refits the
    seeded catalog with the real scorer, and a digest must not hang on what that scores."""
    with db.session() as session:
        for channel, profile in zip(CHANNELS, PROFILES, strict=True):
            subscribe(
                session, Target("slack", "T1", channel), profile, Options("top 100%", max_items=ITEMS), created_by="U1"
            )
        for profile in PROFILES:
            subscribe(session, Target("email", email=EMAIL), profile, Options("top 100%", max_items=ITEMS))
        later = timedelta(days=1) if not due else -timedelta(minutes=1)
        session.execute(update(Subscription).values(next_run_at=utcnow() + later))


def make_due(db: Database) -> None:
    with db.session() as session:
        session.execute(update(Subscription).values(next_run_at=utcnow() - timedelta(minutes=1)))


def clock_env(db: Database, slack: FakeSlack, smtp: SmtpServer) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": db.url,
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": "xoxb-t1",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_POST_INTERVAL": "0.25",  # slow enough to be killed mid-digest
        "SLACK_TIMEOUT": "2",
        "SMTP_URL": smtp.url,
        "SCOUT_MAIL_FROM": "Preprint Scout <scout@example.org>",
        "SCOUT_BASE_URL": "https://scout.example.org",
        "SCOUT_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "SCOUT_DIGEST_CHECK_SECONDS": "1",
        "SCOUT_CLOCK_LEASE_SECONDS": "6",
        "SCOUT_DIGEST_LEASE_SECONDS": "3",  # a killed clock's digest is taken over this soon
        "HF_HUB_OFFLINE": "1",
    }


def start_clock(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "scheduler"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )


def thread_replies(slack: FakeSlack) -> list[dict]:
    return [m for m in slack.posted() if m.get("thread_ts")]


def all_done(db: Database) -> bool:
    with db.session() as session:
        subs = list(session.scalars(select(Subscription)))
        return all(s.last_run_at is not None for s in subs)


def assert_exactly_once(db: Database, slack: FakeSlack, smtp: SmtpServer) -> None:
    with db.session() as session:
        ledger = list(session.scalars(select(Delivery)))
        digests = list(session.scalars(select(Digest)))
    assert ledger and all(d.status == "done" for d in digests if d.items)
    for channel in CHANNELS:
        parents = [m for m in slack.posted(channel) if not m.get("thread_ts")]
        assert len(parents) == 1, f"{channel}: one thread, resumed after the kill"
        replies = slack.replies(parents[0]["ts"])
        ids = [m["metadata"]["event_payload"]["preprint_id"] for m in replies]
        assert len(ids) == ITEMS and len(set(ids)) == ITEMS, f"{channel}: every preprint exactly once"
    mails = [m for m in smtp.messages if EMAIL in m.rcpt_tos]
    assert len(mails) == 1, "one email per address per due run"
    per_sub = Counter(d.subscription_id for d in ledger)
    assert sorted(per_sub.values()) == [ITEMS] * 4


def test_two_clocks_one_killed_mid_digest_deliver_every_digest_exactly_once(db, tmp_path):
    seed_catalog(db, PROFILES, [{"title": f"Preprint {i}", "abstract": f"About {i}."} for i in range(30)], score_of)
    with FakeSlack() as slack, SmtpServer() as smtp:
        slack.add_team("T1", "xoxb-t1")
        follow_everything(db, due=False)
        env = clock_env(db, slack, smtp)
        logs = tmp_path / "first.log", tmp_path / "second.log"
        first = start_clock(env, logs[0])
        second = None
        try:
            # Both clocks up, one active and one standing by, before anything is due: how
            # long a process takes to start (a loaded machine) must not decide the test.
            wait_for(lambda: "; active" in logs[0].read_text(), 90, "the first clock to be active")
            second = start_clock(env, logs[1])
            wait_for(lambda: "standing by" in logs[1].read_text(), 90, "the second clock to stand by")
            make_due(db)
            wait_for(lambda: len(thread_replies(slack)) >= 3, 90, "the first clock to start a digest")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            assert not all_done(db), "killed mid-digest"  # 24 posts 0.25 s apart: seconds to spare
            wait_for(lambda: all_done(db), 120, "the standby to finish every digest")
            second.send_signal(signal.SIGTERM)
            assert second.wait(60) == 0
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
        assert_exactly_once(db, slack, smtp)


def test_sigterm_during_a_digest_finishes_it_and_the_next_clock_sends_the_rest(db, tmp_path):
    seed_catalog(db, PROFILES, [{"title": f"Preprint {i}", "abstract": f"About {i}."} for i in range(30)], score_of)
    with FakeSlack() as slack, SmtpServer() as smtp:
        slack.add_team("T1", "xoxb-t1")
        follow_everything(db)
        env = clock_env(db, slack, smtp)
        clock = start_clock(env, tmp_path / "clock.log")
        try:
            wait_for(lambda: len(thread_replies(slack)) >= 2, 90, "a digest to start")
            clock.send_signal(signal.SIGTERM)
            assert clock.wait(120) == 0, (tmp_path / "clock.log").read_text()[-2000:]
        finally:
            if clock.poll() is None:
                clock.kill()
        log = (tmp_path / "clock.log").read_text()
        assert "finishing the digest in hand" in log and "stopped" in log
        with db.session() as session:
            recorded = len(list(session.scalars(select(Delivery))))
        # The digest in hand was finished and written down; the others were left for later.
        assert recorded == len(thread_replies(slack)) == ITEMS and not all_done(db)
        again = start_clock(env, tmp_path / "again.log")
        try:
            wait_for(lambda: all_done(db), 120, "the next clock to finish")
            wait_for(lambda: "starting" in (tmp_path / "again.log").read_text(), 30, "the clock's start")
            again.send_signal(signal.SIGTERM)
            assert again.wait(60) == 0
        finally:
            if again.poll() is None:
                again.kill()
        assert_exactly_once(db, slack, smtp)


def test_a_clock_and_a_digests_run_at_once_send_each_digest_once(db, tmp_path):
    """A person runs `scout digests run` while the clock is sending (the README suggests it):
    the clock is held inside its first post until the person's run has finished; that run
    finds the clock's digest claimed, sends the other, and the clock then finds that one
    already sent. Each channel gets one thread with each preprint once."""
    seed_catalog(db, PROFILES, [{"title": f"Preprint {i}", "abstract": f"About {i}."} for i in range(30)], score_of)
    with FakeSlack() as slack, SmtpServer() as smtp:
        slack.add_team("T1", "xoxb-t1")
        with db.session() as session:
            for channel, profile in zip(CHANNELS, PROFILES, strict=True):
                target = Target("slack", "T1", channel)
                subscribe(session, target, profile, Options("top 100%", max_items=ITEMS), created_by="U1")
            session.execute(update(Subscription).values(next_run_at=utcnow() + timedelta(days=1)))
        # The hold must end neither the clock's claim nor its wait for Slack's answer.
        env = {**clock_env(db, slack, smtp), "SCOUT_DIGEST_LEASE_SECONDS": "120", "SLACK_TIMEOUT": "60"}
        env["SLACK_POST_INTERVAL"] = "0"
        held, release = threading.Event(), threading.Event()

        def hold_first_post(call, answer):
            if not held.is_set():
                held.set()
                release.wait(90)

        slack.on("chat.postMessage", hold_first_post)
        log = tmp_path / "clock.log"
        clock = start_clock(env, log)
        try:
            wait_for(lambda: "; active" in log.read_text(), 90, "the clock to be active")
            make_due(db)
            assert held.wait(90), "the clock never posted"
            person = subprocess.run(
                [sys.executable, "-m", "bot.cli", "digests", "run"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert person.returncode == 0, person.stdout + person.stderr
            assert "Neural Networks: busy" in person.stdout and "PLOS Genetics: sent 12" in person.stdout, person.stdout
            assert not [m for m in slack.posted("C1") if m.get("thread_ts")]  # the person's run left C1 alone
            release.set()
            wait_for(lambda: all_done(db), 120, "the clock to finish its digest")
            clock.send_signal(signal.SIGTERM)
            assert clock.wait(60) == 0
        finally:
            release.set()
            slack.on("chat.postMessage", None)
            if clock.poll() is None:
                clock.kill()
        for channel in CHANNELS:
            parents = [m for m in slack.posted(channel) if not m.get("thread_ts")]
            assert len(parents) == 1, f"{channel}: {len(parents)} parent messages"
            ids = [m["metadata"]["event_payload"]["preprint_id"] for m in slack.replies(parents[0]["ts"])]
            assert len(ids) == ITEMS and len(set(ids)) == ITEMS, f"{channel}: every preprint exactly once"
        with db.session() as session:
            per_sub = Counter(d.subscription_id for d in session.scalars(select(Delivery)))
            assert sorted(per_sub.values()) == [ITEMS] * 2
            assert [d.status for d in session.scalars(select(Digest))] == ["done", "done"]
