"""Rows for the email tests: two profiles, forty scored preprints, settings pointing at loopback.

Scores are written directly (no model), so the tests stay fast; the feed text includes
markup and Slack mentions to check escaping.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from bot.config import Settings, load_settings
from bot.db import Database, Preprint, Profile, ReferencePaper, Score, ScoringRun, Subscription
from bot.profiles.catalog import normalise_name
from bot.delivery.subscriptions import Options, Target, subscribe

SECRET = "test-secret-key-0123456789abcdef"
BASE_URL = "https://scout.example.org"
FROM = "scout@example.org"
NASTY_TITLE = "Gene <script>alert('x')</script> drives <!channel> & <b>bold</b> growth"
COUNT = 40


def mail_settings(database_url: str, smtp_url: str, base_url: str = BASE_URL, **extra: object) -> Settings:
    return load_settings(
        DATABASE_URL=database_url,
        SMTP_URL=smtp_url,
        SCOUT_MAIL_FROM=f"Preprint Scout <{FROM}>",
        SCOUT_BASE_URL=base_url,
        SCOUT_SECRET_KEY=SECRET,
        SCOUT_HTTP_TIMEOUT=5,
        **extra,
    )


def seed(db: Database, now: datetime) -> None:
    """'PLOS Genetics' (3 papers) and 'eLife' (2 papers), 40 preprints posted in the last 10 days."""
    with db.session() as s:
        run = ScoringRun(
            fingerprint="test",
            model="test",
            profiles=2,
            reference_papers=5,
            background_ids=[],
            tau=1.0,
            temperature=1.0,
        )
        s.add(run)
        profiles = {}
        for name, papers in (("PLOS Genetics", 3), ("eLife", 2)):
            p = Profile(name=name, name_key=normalise_name(name), source="test")
            p.papers = [
                ReferencePaper(
                    title=f"{name} paper {i}", abstract="Earlier work.", year=2020 + i, content_hash=f"{name}{i}"
                )
                for i in range(papers)
            ]
            s.add(p)
            profiles[name] = p
        s.flush()
        for i in range(COUNT):
            title = NASTY_TITLE if i == 0 else f"Preprint number {i} on chromatin and growth"
            authors = ["O'Brien, A.", "Li, B. <x@y>"] if i == 0 else [f"Author{j}, {chr(65 + j)}." for j in range(8)]
            pre = Preprint(
                server="biorxiv",
                identifier=f"10.1101/2026.01.{i:02d}.5000{i:02d}",
                version=1,
                title=title,
                abstract=("Abstract <i>with</i> markup & more. " if i == 0 else "We study growth. ") + "word " * 120,
                authors_json=json.dumps(authors),
                category="genetics",
                posted=(now - timedelta(days=i % 10)).date(),
                url=f"https://www.biorxiv.org/content/10.1101/2026.01.{i:02d}.5000{i:02d}v1",
                doi=f"10.1101/2026.01.{i:02d}.5000{i:02d}",
                content_hash=f"pre{i}",
                first_seen_at=now - timedelta(hours=1),
            )
            s.add(pre)
            s.flush()
            # PLOS Genetics likes low i, eLife likes high i.
            s.add(
                Score(preprint_id=pre.id, profile_id=profiles["PLOS Genetics"].id, run_id=run.id, score=0.4 / (i + 1))
            )
            s.add(Score(preprint_id=pre.id, profile_id=profiles["eLife"].id, run_id=run.id, score=0.3 / (COUNT - i)))


def follow(
    db: Database, email: str, profile: str, now: datetime, threshold: str = "top 10%", status: str = "active"
) -> int:
    """An email subscription straight in the database (as after confirmation)."""
    with db.session() as s:
        sub, _ = subscribe(
            s, Target("email", email=email), profile, Options(threshold=threshold), status=status, now=now
        )
        return sub.id


def subscription(db: Database, sub_id: int) -> Subscription:
    with db.session() as s:
        sub = s.get(Subscription, sub_id)
        s.expunge(sub)
        return sub
