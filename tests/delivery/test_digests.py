"""Digest selection, schedules and the ledger, on stored scores (no model needed)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, update

from bot.db import (
    Delivery,
    Digest,
    Embedding,
    Preprint,
    Profile,
    ReferencePaper,
    Score,
    ScoringRun,
    Subscription,
    utcnow,
)
from bot.delivery.digests import (
    ClaimLost,
    Claims,
    ScheduleError,
    finish_digest,
    next_run,
    open_digest,
    parse_time,
    plan_digest,
    record_delivery,
    run_due_digests,
)
from bot.delivery.email.messages import Section, build_digest_message
from bot.delivery.slack import blocks
from bot.delivery.subscriptions import Options, Target, describe, subscribe, subscriptions_for, unsubscribe
from bot.fulltext import Narrowing
from bot.web.access import WebLinks
from scoring.thresholds import ThresholdError
from tests.mail_data import mail_settings

NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
CHANNEL = Target("slack", team_id="T1", channel_id="C1")


def seed(db, scores: list[float], *, seen: datetime = NOW - timedelta(hours=2)) -> None:
    """One profile and one preprint per score, posted yesterday."""
    with db.session() as session:
        profile = Profile(name="Genetics", name_key="genetics", source="test")
        profile.papers = [ReferencePaper(title=f"Paper {i}", abstract="A", content_hash=f"r{i}") for i in range(5)]
        session.add(profile)
        run = ScoringRun(fingerprint="f", model="m", profiles=1, reference_papers=5, tau=0.05, temperature=1.0)
        session.add(run)
        session.flush()
        for i, score in enumerate(scores):
            p = Preprint(
                server="biorxiv",
                identifier=f"10.1101/{i:06d}",
                title=f"Preprint {i}",
                abstract="Text.",
                content_hash=f"h{i}",
                posted=NOW.date() - timedelta(days=1),
                url=f"https://x/{i}",
                first_seen_at=seen,
            )
            session.add(p)
            session.flush()
            session.add(Score(preprint_id=p.id, profile_id=profile.id, run_id=run.id, score=score))


def make_sub(db, threshold: str, **kw) -> int:
    with db.session() as session:
        sub, created = subscribe(
            session,
            CHANNEL,
            "genetics",
            Options(threshold=threshold, **kw),
            created_by="U1",
            now=NOW - timedelta(hours=1),
        )
        assert created
        return sub.id


def plan(db, sub_id: int):
    with db.session() as session:
        return plan_digest(session, None, session.get(Subscription, sub_id), NOW)


def test_plan_takes_undelivered_above_threshold_best_first_and_capped(db):
    seed(db, [0.01 * i for i in range(1, 101)])  # 100 preprints, scores 1%..100%
    sub = make_sub(db, "top 5%", max_items=3)
    first = plan(db, sub)
    assert [round(i.score, 2) for i in first.items] == [1.0, 0.99, 0.98]
    assert first.items[0].top_share == pytest.approx(0.01) and first.window_count == 100
    assert first.average == pytest.approx(0.505)
    digest_id = _digest_id(db, sub)
    for pid, item in zip(first.preprint_ids, first.items, strict=True):
        assert record_delivery(db, sub, pid, digest_id, item.score)
    assert not record_delivery(db, sub, first.preprint_ids[0], digest_id, 1.0)  # the ledger is unique
    assert plan(db, sub).empty  # resuming this digest: its cap of 3 is used up
    finish_digest(db, digest_id, sub, NOW)
    second = plan(db, sub)
    assert [round(i.score, 2) for i in second.items] == [0.97, 0.96]  # only the top 5% remain
    assert not set(second.preprint_ids) & set(first.preprint_ids)


@pytest.mark.parametrize(("threshold", "expected"), [("min 90%", 11), ("lift 1.9", 5), ("top 1%", 1)])
def test_each_threshold_kind(db, threshold, expected):
    seed(db, [0.01 * i for i in range(1, 101)])
    sub = make_sub(db, threshold, max_items=50)
    assert len(plan(db, sub).items) == expected


def test_a_new_subscription_does_not_get_the_old_backlog(db):
    seed(db, [0.9, 0.8], seen=NOW - timedelta(days=5))
    sub = make_sub(db, "min 50%")
    assert plan(db, sub).empty


def test_open_digest_is_resumed_until_finished(db):
    seed(db, [0.5])
    sub = make_sub(db, "top 100%")
    first = _digest_id(db, sub)
    assert _digest_id(db, sub) == first
    finish_digest(db, first, sub, NOW)
    assert _digest_id(db, sub) != first
    with db.session() as session:
        s = session.get(Subscription, sub)
        assert s.next_run_at.replace(tzinfo=UTC) == datetime(2026, 5, 5, 8, 0, tzinfo=UTC)


def _digest_id(db, sub_id: int) -> int:
    with db.session() as session:
        return open_digest(session, session.get(Subscription, sub_id)).id


def sub_at(schedule: str, at: str = "08:00", tz: str = "UTC", weekday: int = 0) -> Subscription:
    return Subscription(schedule=schedule, at_time=at, timezone=tz, weekday=weekday)


def test_next_run_daily_weekly_hourly_and_time_zones():
    assert next_run(sub_at("daily"), NOW) == datetime(2026, 5, 5, 8, 0, tzinfo=UTC)
    assert next_run(sub_at("daily", "10:00"), NOW) == datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    assert next_run(sub_at("hourly", "00:15"), NOW) == datetime(2026, 5, 4, 10, 15, tzinfo=UTC)
    # 2026-05-04 is a Monday; the next Friday 08:00 is the 8th.
    assert next_run(sub_at("weekly", weekday=4), NOW) == datetime(2026, 5, 8, 8, 0, tzinfo=UTC)
    berlin = next_run(sub_at("daily", "08:00", "Europe/Berlin"), NOW)
    assert berlin == datetime(2026, 5, 5, 6, 0, tzinfo=UTC)  # CEST is UTC+2
    # Across the autumn DST change the wall-clock time stays 08:00.
    autumn = next_run(sub_at("daily", "08:00", "Europe/Berlin"), datetime(2026, 10, 24, 12, tzinfo=UTC))
    assert autumn == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


def test_bad_schedules_say_what_works(db):
    seed(db, [0.5])
    with pytest.raises(ScheduleError, match="HH:MM"):
        parse_time("8am")
    with db.session() as session:
        with pytest.raises(ScheduleError, match="daily"):
            subscribe(session, CHANNEL, "genetics", Options(schedule="monthly"))
        with pytest.raises(ScheduleError, match="IANA"):
            subscribe(session, CHANNEL, "genetics", Options(timezone="Mars/Olympus"))
        with pytest.raises(ThresholdError):
            subscribe(session, CHANNEL, "genetics", Options(threshold="top 0%"))


def test_subscriptions_are_per_target_and_can_end(db):
    seed(db, [0.5])
    make_sub(db, "top 1%")
    other = Target("slack", team_id="T2", channel_id="C1")
    with db.session() as session:
        subscribe(session, other, "genetics", Options(threshold="min 5%", schedule="weekly", weekday="fri"))
        assert [describe(s) for s in subscriptions_for(session, CHANNEL)] == [
            "Genetics: top 1%, daily at 08:00 UTC, up to 20"
        ]
        assert "weekly on Friday" in describe(subscriptions_for(session, other)[0])
        assert len(unsubscribe(session, CHANNEL)) == 1
        assert subscriptions_for(session, CHANNEL) == []
        assert len(subscriptions_for(session, other)) == 1


class RecordingDeliverer:
    kind = "slack"

    def __init__(self, fail: bool = False):
        self.calls: list[list[int]] = []
        self.fail = fail

    def run(self, subscription_ids, now, dry_run, claims=None):
        self.calls.append(subscription_ids)
        if self.fail:
            raise RuntimeError("boom")
        return []


def test_run_due_digests_picks_due_subscriptions_and_survives_a_failing_deliverer(db):
    seed(db, [0.5])
    sub = make_sub(db, "top 1%")
    broken, ok = RecordingDeliverer(fail=True), RecordingDeliverer()
    ok.kind = "slack"
    outcomes = run_due_digests(db, [broken, ok], NOW)  # not due until tomorrow 08:00
    assert broken.calls == [] and outcomes == []
    outcomes = run_due_digests(db, [broken, ok], NOW + timedelta(days=1))
    assert broken.calls == [[sub]] and ok.calls == [[sub]] and outcomes[0].error == "boom"
    assert run_due_digests(db, [ok], NOW, force=True) == [] and ok.calls[-1] == [sub]
    with db.session() as session:
        assert session.scalar(select(func.count(Delivery.id))) == 0
        assert session.scalar(select(func.count(Digest.id))) == 0


def test_window_uses_posted_dates(db):
    seed(db, [0.5])
    sub = make_sub(db, "top 100%")
    with db.session() as session:
        s = session.get(Subscription, sub)
        later = plan_digest(session, None, s, NOW + timedelta(days=200))
    assert later.window_count == 0 and later.day == date(2026, 11, 20)


# -- one sender at a time ----------------------------------------------------------------


def test_a_claim_is_taken_by_one_sender_renewed_released_and_taken_over_when_it_expires(db):
    seed(db, [0.5])
    sub = make_sub(db, "top 1%")
    first, second = Claims(db, timedelta(seconds=60)), Claims(db, timedelta(seconds=60))
    assert first.owner != second.owner
    assert first.take(sub, None) and not second.take(sub, None)
    first.renew(sub)
    first.release(sub)
    assert second.take(sub, None) and not first.take(sub, None)
    with db.session() as session:  # the second sender dies: its lease runs out
        session.execute(update(Subscription).values(claim_expires_at=utcnow() - timedelta(seconds=1)))
    assert first.take(sub, None)
    with pytest.raises(ClaimLost):
        second.renew(sub)  # the dead sender, back from a long pause, must not go on
    second.release(sub)  # and cannot release what is no longer its own
    assert not second.take(sub, None)


def test_a_claim_for_a_due_run_needs_the_subscription_still_due(db):
    """A sender that listed a digest as due, but another finished it meanwhile (moving it to
    its next run), gets no claim: the digest is not sent twice, even empty."""
    seed(db, [0.5])
    sub = make_sub(db, "top 1%")  # next run: tomorrow 08:00
    claims = Claims(db)
    assert not claims.take(sub, NOW)
    assert claims.take(sub, NOW + timedelta(days=1))
    with db.session() as session:
        session.get(Subscription, sub).status = "paused"
    claims.release(sub)
    assert not claims.take(sub, None)  # only active subscriptions are sent


def test_run_due_digests_reports_a_claimed_subscription_busy_and_leaves_it(db):
    seed(db, [0.5])
    sub = make_sub(db, "top 1%")
    other = Claims(db)
    assert other.take(sub, None)
    ok = RecordingDeliverer()
    [outcome] = run_due_digests(db, [ok], NOW, force=True)
    assert outcome.busy and outcome.target == "#C1 (T1)" and outcome.profile == "Genetics" and ok.calls == []
    other.release(sub)
    assert run_due_digests(db, [ok], NOW, force=True) == [] and ok.calls == [[sub]]
    with db.session() as session:
        assert session.get(Subscription, sub).claimed_by is None  # released after the run


def _store_vectors(db, key: str, vectors: dict[str, np.ndarray]) -> None:
    with db.session() as session:
        for content_hash, vector in vectors.items():
            unit = (vector / np.linalg.norm(vector)).astype(np.float32)
            session.merge(Embedding(model=key, content_hash=content_hash, dim=len(unit), vector=unit.tobytes()))


def _add_copy(db, of: int, identifier: str, server: str) -> None:
    """Another preprint with the stored text of preprint `of` (nearly the same vector) and its score."""
    with db.session() as session:
        original = session.scalar(select(Preprint).where(Preprint.identifier == f"10.1101/{of:06d}"))
        score = session.scalar(select(Score).where(Score.preprint_id == original.id))
        copy = Preprint(
            server=server,
            identifier=identifier,
            title=f"Copy of {original.title}",
            abstract=original.abstract,
            content_hash=f"copy-{identifier}",
            posted=original.posted,
            url=f"https://y/{identifier}",
            first_seen_at=original.first_seen_at,
        )
        session.add(copy)
        session.flush()
        session.add(
            Score(preprint_id=copy.id, profile_id=score.profile_id, run_id=score.run_id, score=score.score - 0.001)
        )


def test_copies_of_one_text_are_one_item_with_their_other_ids_and_are_not_sent_again(db, scoring_ctx):
    rng = np.random.default_rng(3)
    seed(db, [0.20, 0.30, 0.40, 0.50])  # four distinct preprints, best first: 3, 2, 1, 0
    texts = {f"h{i}": rng.standard_normal(384) for i in range(4)}
    texts |= {f"r{i}": rng.standard_normal(384) for i in range(5)}
    _add_copy(db, 3, "10.1101/000003v-cross", "medrxiv")
    _add_copy(db, 3, "2605.00001", "arxiv")
    texts |= {"copy-10.1101/000003v-cross": texts["h3"] + 0.01 * rng.standard_normal(384)}
    texts |= {"copy-2605.00001": texts["h3"] + 0.01 * rng.standard_normal(384)}
    _store_vectors(db, scoring_ctx.vectors, texts)
    sub_id = make_sub(db, "min 10%", max_items=3)

    with db.session() as session:
        first = plan_digest(session, scoring_ctx, session.get(Subscription, sub_id), NOW)
    assert [i.identifier for i in first.items] == ["10.1101/000003", "10.1101/000002", "10.1101/000001"]
    assert [(c.server, c.identifier) for c in first.items[0].also] == [
        ("medrxiv", "10.1101/000003v-cross"),
        ("arxiv", "2605.00001"),
    ]
    assert all(not i.also for i in first.items[1:])  # the copies took no room: three texts, three items

    record_delivery(db, sub_id, first.preprint_ids[0], None, 0.5)
    _add_copy(db, 3, "10.1101/000003-late", "biorxiv")  # the same text again, after it went out
    _store_vectors(db, scoring_ctx.vectors, {"copy-10.1101/000003-late": texts["h3"]})
    with db.session() as session:
        later = plan_digest(session, scoring_ctx, session.get(Subscription, sub_id), NOW)
    shown = [i.identifier for i in later.items]
    assert "10.1101/000003-late" not in shown and "2605.00001" not in shown
    assert shown == ["10.1101/000002", "10.1101/000001", "10.1101/000000"]


def test_a_digest_item_names_the_other_ids_of_its_text_in_slack_and_email(db, scoring_ctx):
    rng = np.random.default_rng(4)
    seed(db, [0.30, 0.50])
    _add_copy(db, 1, "2605.00002", "arxiv")
    texts = {f"h{i}": rng.standard_normal(384) for i in range(2)} | {
        f"r{i}": rng.standard_normal(384) for i in range(5)
    }
    _store_vectors(db, scoring_ctx.vectors, texts | {"copy-2605.00002": texts["h1"]})
    sub_id = make_sub(db, "min 10%")
    with db.session() as session:
        digest = plan_digest(session, scoring_ctx, session.get(Subscription, sub_id), NOW)
    settings = mail_settings("sqlite://", "smtp://127.0.0.1:1")

    item = blocks.message("digest_item", item=digest.items[0], preprint_id=1, vote="1:1", links=WebLinks(settings))
    slack = json.dumps(item["blocks"])
    assert "Also posted as <https://y/2605.00002|2605.00002> (arxiv)" in slack
    email = build_digest_message(settings, "ada@example.org", [Section(sub_id, digest, "Genetics", "https://u")], NOW)
    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "Also posted as 2605.00002 (arXiv)" in text
    assert 'Also posted as <a href="https://y/2605.00002"' in html
    assert text.count("2605.00002") == 1  # one item, not two


def test_a_subscription_narrowed_to_keywords_and_categories_gets_only_those(db):
    seed(db, [0.20, 0.30, 0.40, 0.50, 0.60])
    texts = [
        ("CRISPR screens in yeast", "genetics"),
        ("A gene drive for malaria mosquitoes", "Ecology"),
        ("CRISPR in crop plants", "plant biology"),  # a keyword, but not a category asked for
        ("Gene expression in the liver", "genetics"),  # the category, but only one word of "gene drive"
        ("Soil microbes", "ecology"),
    ]
    with db.session() as session:
        for i, (title, category) in enumerate(texts):
            row = session.scalar(select(Preprint).where(Preprint.identifier == f"10.1101/{i:06d}"))
            row.title, row.category = title, category
    narrowing = Narrowing.of(["crispr", " gene  drive ", "CRISPR"], ["genetics", "ecology"])
    sub_id = make_sub(db, "min 10%", narrowing=narrowing)

    digest = plan(db, sub_id)
    assert [i.title for i in digest.items] == ["A gene drive for malaria mosquitoes", "CRISPR screens in yeast"]
    assert digest.narrowed == 'mentioning crispr or "gene drive", in genetics or ecology'
    with db.session() as session:
        assert describe(session.get(Subscription, sub_id)).endswith(
            'up to 20, mentioning crispr or "gene drive", in genetics or ecology'
        )
    # The percentile is still among every preprint of the profile's window, narrowed or not.
    assert [round(i.top_share, 2) for i in digest.items] == [0.8, 1.0]  # 4th and 5th of 5
