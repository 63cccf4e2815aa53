"""Readers' votes: one per voter, profile and preprint, whichever surface it came from."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import select

from bot.db import Preprint, Profile, Vote
from bot.profiles.votes import FROM_CLI, FROM_EMAIL, Voter, record_vote, vote_counts
from tests.mail_data import seed

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _ids(db) -> tuple[int, int]:
    with db.session() as s:
        profile = s.scalar(select(Profile.id).where(Profile.name == "eLife"))
        return profile, s.scalar(select(Preprint.id).order_by(Preprint.id).limit(1))


def test_a_later_vote_replaces_the_voters_earlier_one_and_voters_add_up(db):
    seed(db, NOW)
    profile, preprint = _ids(db)
    ada, bob = Voter(FROM_EMAIL, "ada@example.org"), Voter(FROM_CLI, "bob")
    with db.session() as s:
        assert record_vote(s, profile, preprint, ada, True) is True
        assert record_vote(s, profile, preprint, ada, True) is False  # the same vote again changes nothing
        assert record_vote(s, profile, preprint, bob, True) is True
        assert vote_counts(s, profile).as_dict() == {"relevant": 2, "not_relevant": 0}
        assert record_vote(s, profile, preprint, ada, False) is True
        assert vote_counts(s, profile).as_dict() == {"relevant": 1, "not_relevant": 1}
        # The same user name from another surface is another voter.
        assert record_vote(s, profile, preprint, Voter(FROM_CLI, "ada@example.org"), False) is True
        assert vote_counts(s, profile).as_dict() == {"relevant": 1, "not_relevant": 2}


def test_two_clicks_at_once_by_one_voter_leave_one_vote(db):
    seed(db, NOW)
    profile, preprint = _ids(db)
    voter = Voter(FROM_EMAIL, "ada@example.org")
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def click(relevant: bool) -> None:
        try:
            start.wait(5)
            with db.session() as s:
                record_vote(s, profile, preprint, voter, relevant)
        except BaseException as exc:  # noqa: BLE001 - reported below, with the test's assertion
            errors.append(exc)

    threads = [threading.Thread(target=click, args=(flag,)) for flag in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with db.session() as s:
        rows = s.scalars(select(Vote).where(Vote.profile_id == profile)).all()
        assert len(rows) == 1 and rows[0].user_id == "ada@example.org"
