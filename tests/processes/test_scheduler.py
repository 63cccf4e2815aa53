"""The clock: leadership between several clocks, and APScheduler driven by a fake clock."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from apscheduler.schedulers.background import BackgroundScheduler

from bot.config import load_settings
from bot.db import Preprint, Profile, ReferencePaper, Score, ScoringRun
from bot.delivery.subscriptions import Options, Target, subscribe
from bot.ingest.polling import add_feed
from bot.processes.clock import Cycle, Leadership, active_clock, build_scheduler
from bot.scores.update import update_scores
from tests.loopback import LoopbackServer, wait_for
from tests.paths import FIXTURES

FEED = FIXTURES / "feeds" / "biorxiv_neuroscience.rdf"
T0 = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)  # a Monday, before the 08:00 digests


def test_only_one_clock_is_active_and_a_standby_takes_over(db):
    first, second = Leadership(db, "clock-a"), Leadership(db, "clock-b")
    assert first.acquire(T0)
    assert first.acquire(T0 + timedelta(seconds=10))  # renewing is fine
    assert not second.acquire(T0 + timedelta(seconds=20))
    assert active_clock(db, T0 + timedelta(seconds=20)).holder == "clock-a"
    first.release()
    assert second.acquire(T0 + timedelta(seconds=30))
    assert not first.acquire(T0 + timedelta(seconds=31))
    assert active_clock(db, T0 + timedelta(seconds=31)).holder == "clock-b"
    second.release()


def test_a_dead_clock_is_replaced_within_a_minute(db):
    dead, standby = Leadership(db, "dead", lease_seconds=45), Leadership(db, "standby")
    assert dead.acquire(T0)
    if db.engine.dialect.name == "postgresql":
        # The holder's connection dies with its process; the server frees the lock.
        dead._conn.invalidate()
        dead._conn = None
        assert standby.acquire(T0 + timedelta(seconds=1))
    else:
        assert not standby.acquire(T0 + timedelta(seconds=30))
        assert standby.acquire(T0 + timedelta(seconds=46))
    standby.release()


class RecordingDeliverer:
    """The far side of delivery, seen from the clock: which subscriptions were sent, when."""

    kind = "slack"

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.done = threading.Event()

    def run(self, subscription_ids, now, dry_run, claims=None):
        self.runs.append(list(subscription_ids))
        self.done.set()
        return []


@pytest.fixture
def clock_world(db, scoring_ctx):
    with LoopbackServer() as server:
        server.route("/biorxiv_xml.php", body=FEED.read_bytes(), headers={"Content-Type": "application/rss+xml"})
        settings = load_settings(SCOUT_BIORXIV_RSS_URL=server.url)
        with db.session() as session:
            add_feed(session, "biorxiv:neuroscience", settings)
            profile = Profile(name="Neuro", name_key="neuro", source="t")
            profile.papers = [
                ReferencePaper(
                    title=f"Hippocampal replay study {i}", abstract="Place cells and memory.", content_hash=f"c{i}"
                )
                for i in range(5)
            ]
            session.add(profile)
            session.flush()
            subscribe(session, Target("slack", team_id="T", channel_id="C"), "neuro", Options(), now=T0)
        deliverer = RecordingDeliverer()
        cycle = Cycle(settings, db, scoring_ctx, lambda: [deliverer])
        yield server, cycle, deliverer


def scored(db) -> bool:
    with db.session() as session:
        return session.query(Score).count() > 0


def test_jobs_fire_at_their_times_and_missed_runs_coalesce(clock_world, db):
    server, cycle, deliverer = clock_world
    leadership = Leadership(db, "only")
    with time_machine.travel(T0, tick=False) as traveller:
        scheduler = build_scheduler(cycle, leadership, BackgroundScheduler(timezone="UTC"))
        scheduler.start()
        try:
            traveller.shift(timedelta(minutes=6, seconds=61))  # past the first poll check and its jitter
            scheduler.wakeup()
            wait_for(lambda: len(server.requests_to("/biorxiv_xml.php")) == 1)
            wait_for(lambda: scored(db))  # the poll job ends after scoring what it fetched
            assert deliverer.runs == []  # digests are due at 08:00, not yet
            # Three days of downtime: dozens of missed poll checks and three missed digest
            # times collapse into one run of each.
            traveller.shift(timedelta(days=3))
            scheduler.wakeup()
            wait_for(lambda: deliverer.done.is_set())
            time.sleep(0.5)
            assert len(deliverer.runs) == 1
            wait_for(lambda: len(server.requests_to("/biorxiv_xml.php")) == 2)
            time.sleep(0.5)
            assert len(server.requests_to("/biorxiv_xml.php")) == 2
        finally:
            scheduler.shutdown(wait=True)
            leadership.release()
    with db.session() as session:
        assert session.query(Preprint).count() > 0


def test_status_shows_the_active_clock_and_its_next_runs(clock_world, db):
    from bot.processes.clock import publish_next_runs
    from bot.status import collect

    _, cycle, _ = clock_world
    leadership = Leadership(db, "clock-a")
    scheduler = build_scheduler(cycle, leadership, BackgroundScheduler(timezone="UTC"))
    assert leadership.acquire()
    heartbeat = scheduler.get_job("heartbeat").func
    scheduler.start(paused=True)
    try:
        heartbeat()
        reconcile_at = scheduler.get_job("reconcile").next_run_time
    finally:
        scheduler.shutdown(wait=False)
    clock = collect(db, 90, datetime.now(UTC))["clock"]
    assert clock["active"] == "clock-a"
    assert {"poll", "digests", "reconcile", "prune", "refresh"} <= set(clock["next_runs"])
    assert clock["next_runs"]["reconcile"] == reconcile_at.isoformat(timespec="seconds")
    assert reconcile_at.hour == 3 and reconcile_at.minute == 17
    publish_next_runs(db, "someone-else", {"poll": T0})  # only the holder may publish
    assert collect(db, 90, datetime.now(UTC))["clock"]["next_runs"]["reconcile"] == clock["next_runs"]["reconcile"]
    leadership.release()
    assert collect(db, 90, datetime.now(UTC))["clock"] is None


def test_jobs_never_overlap_and_missed_runs_coalesce_by_configuration(clock_world, db):
    _, cycle, _ = clock_world
    scheduler = build_scheduler(cycle, Leadership(db, "only"), BackgroundScheduler(timezone="UTC"))
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"poll", "digests", "reconcile", "prune", "refresh", "heartbeat"}
    assert all(job.max_instances == 1 and job.coalesce for job in jobs.values())
    assert jobs["reconcile"].trigger.get_next_fire_time(None, T0) == datetime(
        2026, 5, 4, 3, 17, tzinfo=UTC
    ) + timedelta(days=1)


def test_standby_clock_does_no_work(clock_world, db):
    server, cycle, deliverer = clock_world
    active = Leadership(db, "active")
    assert active.acquire()
    standby_cycle_ran = []
    from bot.processes.clock import leader_only

    job = leader_only(Leadership(db, "standby"), "poll", lambda: standby_cycle_ran.append(1))
    job()
    assert standby_cycle_ran == [] and server.requests == []
    active.release()
    job()
    assert standby_cycle_ran == [1]


def test_once_runs_a_full_cycle(clock_world):
    server, cycle, deliverer = clock_world
    report = cycle.once(now=T0 + timedelta(hours=2))
    assert report.poll.new > 0 and report.score.scored == report.poll.new
    assert deliverer.runs and len(server.requests_to("/biorxiv_xml.php")) == 1


def test_the_clock_logs_each_failed_feed_and_each_warning_once(clock_world, db, caplog):
    server, cycle, _deliverer = clock_world
    server.route("/cut.rss", body=FEED.read_bytes().replace(b"</rdf:RDF>", b"<item><title>cut off"))
    with db.session() as session:
        add_feed(session, server.url + "/missing.rss", cycle.settings)
        add_feed(session, server.url + "/cut.rss", cycle.settings)
    with caplog.at_level(logging.WARNING, logger="bot"):
        cycle.poll_and_score(now=T0 + timedelta(hours=2))
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if "missing.rss" in line] == [
        f"feed 127.0.0.1/missing.rss failed: HTTP 404 from {server.url}/missing.rss"
    ]
    cut = [line for line in lines if "cut.rss" in line]
    assert cut and all(line.startswith("feed 127.0.0.1/cut.rss: ") for line in cut), lines
    assert any("feed parsed despite errors" in line for line in cut)


def test_prune_forgets_old_preprints_and_the_vectors_and_runs_nothing_uses(clock_world, db):
    from bot.config import BUNDLED_MODEL
    from bot.db import Embedding
    from scoring.embedder import vector_key

    _, cycle, _ = clock_world
    cycle.once(now=T0 + timedelta(hours=2))  # polls, embeds and scores the feed
    with db.session() as session:  # a refit leaves the first run without scores
        update_scores(session, cycle.ctx, refit=True)
        runs = [run.id for run in session.query(ScoringRun)]
    with db.session() as session:
        kept = session.query(Preprint).first()
        old = Preprint(
            server="biorxiv",
            identifier="10.1101/old",
            title="Old",
            posted=T0.date() - timedelta(days=400),
            content_hash="old-text",
        )
        session.add(old)
        vector = b"\0" * 16
        session.add(Embedding(model=vector_key(BUNDLED_MODEL), content_hash="old-text", dim=4, vector=vector))
        session.add(Embedding(model=vector_key(BUNDLED_MODEL), content_hash="edited-away", dim=4, vector=vector))
        session.add(Embedding(model=BUNDLED_MODEL, content_hash=kept.content_hash, dim=4, vector=vector))  # old limit
        before = session.query(Embedding).filter_by(model=vector_key(BUNDLED_MODEL)).count()
    assert cycle.prune(now=T0) == 1
    with db.session() as session:
        left = {(row.model, row.content_hash) for row in session.query(Embedding)}
        texts = {p.content_hash for p in session.query(Preprint)}
        texts |= {r.content_hash for r in session.query(ReferencePaper)}
    assert len(left) == before - 2  # the pruned preprint's and the orphan's
    assert {model for model, _ in left} == {vector_key(BUNDLED_MODEL)}
    assert {key for _, key in left} <= texts and kept.content_hash in {key for _, key in left}
    with db.session() as session:  # only the run the scores use is kept
        assert len(runs) == 2 and [run.id for run in session.query(ScoringRun)] == [max(runs)]
