"""Profiles owned by one Slack workspace: `scout profiles add --workspace`, `scout profiles
workspace`, what the list and `show` say, the look-ups that see only what a workspace may,
and the subscriptions that end when a profile changes hands. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.db import Database, Subscription
from bot.delivery.subscriptions import Options, Target, subscribe
from bot.profiles.catalog import (
    EVERY,
    SHARED,
    ProfileError,
    find_profile,
    paper_counts,
    workspace_scope,
)
from tests.paths import FIXTURES

PAPERS = str(FIXTURES / "profiles" / "elife.jsonl")


def owners(scout) -> dict[str, str | None]:
    return {row["name"]: row["workspace"] for row in json.loads(scout("profiles", "--json").stdout)}


def shown_owner(scout, name: str) -> str | None:
    return json.loads(scout("profiles", "show", name, "--json").stdout)["workspace"]


def test_the_cli_gives_a_profile_to_a_workspace_and_shares_it_again(scout):
    added = scout("profiles", "add", "PLOS Genetics", "--papers", PAPERS, "--workspace", "t0123abc", "--no-score")
    assert "workspace T0123ABC: only it sees the profile" in added.stdout
    assert "workspace" not in scout("profiles", "add", "eLife", "--papers", PAPERS, "--no-score").stdout
    assert owners(scout) == {"PLOS Genetics": "T0123ABC", "eLife": None}
    table = scout("profiles").stdout.splitlines()
    assert [line.split("│")[3].strip() for line in table if "PLOS Genetics" in line] == ["T0123ABC"]
    assert [line.split("│")[3].strip() for line in table if "eLife" in line] == ["shared"]
    assert "workspace: T0123ABC" in scout("profiles", "show", "plos genetics").stdout
    assert "workspace: shared" in scout("profiles", "show", "elife").stdout

    scout("profiles", "add", "PLOS Genetics", "--papers", PAPERS, "--replace", "--no-score")
    assert shown_owner(scout, "PLOS Genetics") == "T0123ABC"  # a rebuild keeps the owner
    moved = scout("profiles", "add", "PLOS Genetics", "--papers", PAPERS, "--replace", "--workspace", "T0999")
    assert "workspace T0999" in moved.stdout and shown_owner(scout, "PLOS Genetics") == "T0999"
    shared = scout("profiles", "workspace", "plos genetics", "--shared")
    assert "profile PLOS Genetics is shared by every workspace" in shared.stdout
    assert shown_owner(scout, "PLOS Genetics") is None
    given = scout("profiles", "workspace", "eLife", "T0123ABC")
    assert "profile eLife belongs to workspace T0123ABC" in given.stdout
    assert owners(scout) == {"PLOS Genetics": None, "eLife": "T0123ABC"}


def test_the_cli_refuses_what_is_no_workspace_id(scout):
    bad = scout("profiles", "add", "Neuro", "--papers", PAPERS, "--workspace", "#general", "--no-score", code=2)
    assert "'#general' is not a Slack workspace id" in bad.stderr
    assert "Neuro" not in owners(scout)
    scout("profiles", "add", "Neuro", "--papers", PAPERS, "--no-score")
    assert "give the workspace id" in scout("profiles", "workspace", "Neuro", code=2).stderr
    assert "not both" in scout("profiles", "workspace", "Neuro", "T1", "--shared", code=2).stderr
    assert "not a Slack workspace id" in scout("profiles", "workspace", "Neuro", "T 1", code=2).stderr
    assert owners(scout) == {"Neuro": None}


def add(scout, name: str, *workspace: str) -> None:
    args = ("--workspace", workspace[0]) if workspace else ()
    scout("profiles", "add", name, "--papers", PAPERS, *args, "--no-score")


def test_a_workspace_finds_the_shared_profiles_and_its_own_and_no_other(db: Database, scout):
    add(scout, "PLOS Genetics", "T1")
    add(scout, "PLOS ONE")
    add(scout, "Genetics Letters", "T2")
    with db.session() as session:
        names = {t: [p.name for p, _ in paper_counts(session, workspace_scope(t))] for t in ("T1", "T2", "T3")}
        assert names == {
            "T1": ["PLOS Genetics", "PLOS ONE"],
            "T2": ["Genetics Letters", "PLOS ONE"],
            "T3": ["PLOS ONE"],
        }
        assert [p.name for p, _ in paper_counts(session, SHARED)] == ["PLOS ONE"]
        assert len(paper_counts(session, EVERY)) == 3
        assert find_profile(session, "plos genetics", workspace_scope("T1")).name == "PLOS Genetics"
        with pytest.raises(ProfileError) as other:
            find_profile(session, "PLOS Genetics", workspace_scope("T2"))
    assert str(other.value) == "no profile named 'PLOS Genetics'. Did you mean: PLOS ONE, Genetics Letters?"
    # Said exactly as when the profile does not exist at all.
    scout("profiles", "remove", "PLOS Genetics")
    with db.session() as session, pytest.raises(ProfileError) as unknown:
        find_profile(session, "PLOS Genetics", workspace_scope("T2"))
    assert str(unknown.value) == str(other.value)


def test_giving_a_profile_to_a_workspace_ends_the_other_workspaces_subscriptions(db: Database, scout):
    add(scout, "PLOS Genetics")
    with db.session() as session:
        for target, created_by in (
            (Target("slack", team_id="T1", channel_id="C1"), "U1"),
            (Target("slack", team_id="T2", channel_id="C1"), "U2"),
            (Target("email", email="ada@example.org"), "slack:T1:U1"),
            (Target("email", email="bob@example.org"), "slack:T2:U2"),
            (Target("email", email="cy@example.org"), "cli"),
        ):
            subscribe(session, target, "PLOS Genetics", Options(), created_by=created_by)
    given = scout("profiles", "workspace", "PLOS Genetics", "T1")
    assert "ended the subscription of Slack workspace T2, channel C1: T1 owns the profile now" in given.stderr
    assert "ended the subscription of bob@example.org" in given.stderr
    assert given.stderr.count("ended") == 2
    with db.session() as session:
        states = {(s.team_id or s.email, s.status) for s in session.scalars(select(Subscription))}
        reasons = {s.status_reason for s in session.scalars(select(Subscription)) if s.status != "active"}
    assert states == {
        ("T1", "active"),
        ("T2", "unsubscribed"),
        ("ada@example.org", "active"),
        ("bob@example.org", "unsubscribed"),
        ("cy@example.org", "active"),  # the operator's own subscription stays
    }
    assert reasons == {"the profile now belongs to another workspace"}
    assert "ended" not in scout("profiles", "workspace", "PLOS Genetics", "--shared").stderr
