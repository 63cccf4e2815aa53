"""Readers' votes on delivered matches: one per person, profile and preprint, from any surface.

A vote comes from a Slack button, an email link or `scout vote`; the voter is named by where
it voted from (`team_id`: a Slack workspace, "email" or "cli") and who (`user_id`: a Slack
user, an address, a name). A later vote by the same voter replaces the earlier one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import Preprint, Vote
from scoring.feedback import Tally, tally

FROM_EMAIL = "email"
FROM_CLI = "cli"


@dataclass(frozen=True)
class Voter:
    team_id: str
    user_id: str


@dataclass(frozen=True)
class VoteCounts:
    relevant: int
    not_relevant: int

    def as_dict(self) -> dict[str, int]:
        return {"relevant": self.relevant, "not_relevant": self.not_relevant}


def record_vote(session: Session, profile_id: int, preprint_id: int, voter: Voter, relevant: bool) -> bool:
    """Store the vote, replacing this voter's earlier one; True when it changed anything.
    Two clicks at once by the same voter both land on one row (the unique key decides)."""
    key = (
        Vote.profile_id == profile_id,
        Vote.preprint_id == preprint_id,
        Vote.team_id == voter.team_id,
        Vote.user_id == voter.user_id,
    )
    earlier = session.scalar(select(Vote.relevant).where(*key))
    if earlier is None:
        try:
            with session.begin_nested():
                session.add(
                    Vote(
                        profile_id=profile_id,
                        preprint_id=preprint_id,
                        team_id=voter.team_id,
                        user_id=voter.user_id,
                        relevant=relevant,
                    )
                )
            return True
        except IntegrityError:  # the same voter's other click got there first: this one is the later
            pass
    elif earlier == relevant:
        return False
    session.execute(update(Vote).where(*key).values(relevant=relevant))
    return True


def vote_counts(session: Session, profile_id: int) -> VoteCounts:
    rows = dict(
        session.execute(
            select(Vote.relevant, func.count(Vote.id)).where(Vote.profile_id == profile_id).group_by(Vote.relevant)
        ).all()
    )
    return VoteCounts(rows.get(True, 0), rows.get(False, 0))


@dataclass(frozen=True)
class VoteChange:
    """What readers' votes made of one preprint for a profile's evidence (scoring.feedback)."""

    identifier: str
    title: str
    relevant: int
    not_relevant: int
    effect: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def vote_changes(session: Session, profile_id: int) -> list[VoteChange]:
    """Each voted preprint of a profile, in the order first voted on, and what it became."""
    rows = session.execute(
        select(Vote.preprint_id, Vote.relevant).where(Vote.profile_id == profile_id).order_by(Vote.id)
    ).all()
    tallies = tally((0, preprint_id, relevant) for preprint_id, relevant in rows)
    ids = [t.preprint for t in tallies]
    preprints = {p.id: p for p in session.scalars(select(Preprint).where(Preprint.id.in_(ids)))}
    return [
        VoteChange(
            preprints[t.preprint].identifier, preprints[t.preprint].title, t.relevant, t.not_relevant, _effect(t)
        )
        for t in tallies
        if t.preprint in preprints
    ]


def _effect(t: Tally) -> str:
    if t.is_reference:
        return "added to the papers" + (" (some votes against)" if t.not_relevant else "")
    if t.relevant:
        return "negative example (votes split)"
    return "negative example"
