"""Database: SQLAlchemy 2 models, the engine, and migrations applied on start.

SQLite (WAL) by default, PostgreSQL when DATABASE_URL says so; the same code runs on
both, and `alembic` migrations (bot/migrations) are the only way the schema changes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from scoring.errors import ScoutError

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """A stored time with its zone: SQLite hands back naive datetimes; everything stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_polled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last successful poll's complaints (malformed XML that still gave items, skipped
    # entries): the feed works, but someone may want to look.
    last_warning: Mapped[str | None] = mapped_column(Text)
    items_seen: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Minutes between polls for this feed; None means the clock's default.
    poll_minutes: Mapped[int | None] = mapped_column(Integer)


class Preprint(Base):
    __tablename__ = "preprints"
    __table_args__ = (
        UniqueConstraint("server", "identifier", name="uq_preprint_server_identifier"),
        Index("ix_preprints_posted", "posted"),
        Index("ix_preprints_doi", "doi"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    server: Mapped[str] = mapped_column(String(100))
    identifier: Mapped[str] = mapped_column(String(500))
    version: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, default="")
    authors_json: Mapped[str] = mapped_column(Text, default="[]")
    category: Mapped[str | None] = mapped_column(String(200))
    posted: Mapped[date | None] = mapped_column(Date)
    # Text: tracking-laden links run to thousands of characters and need no bound.
    url: Mapped[str] = mapped_column(Text, default="")
    doi: Mapped[str | None] = mapped_column(String(300))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    feed_id: Mapped[int | None] = mapped_column(ForeignKey("feeds.id", ondelete="SET NULL"))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def authors(self) -> list[str]:
        return json.loads(self.authors_json or "[]")


class Profile(Base):
    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    name_key: Mapped[str] = mapped_column(String(300), unique=True)
    source: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The Slack workspace that owns it ("" = shared by every workspace and the public web);
    # who may see which is bot.profiles.catalog.Scope. "" rather than NULL, as on subscriptions.
    team_id: Mapped[str] = mapped_column(String(50), default="")

    papers: Mapped[list[ReferencePaper]] = relationship(
        back_populates="profile",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ReferencePaper.id",
    )


class ReferencePaper(Base):
    __tablename__ = "reference_papers"
    __table_args__ = (UniqueConstraint("profile_id", "content_hash", name="uq_reference_paper"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, default="")
    doi: Mapped[str | None] = mapped_column(String(300))
    year: Mapped[int | None] = mapped_column(Integer)
    journal: Mapped[str | None] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)

    profile: Mapped[Profile] = relationship(back_populates="papers")


class Embedding(Base):
    """Vectors cached per (model, content hash): a text is embedded once per model."""

    __tablename__ = "embeddings"

    model: Mapped[str] = mapped_column(String(500), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class ScoringRun(Base):
    """One fitted scoring model: which model, which catalog, how well calibrated.

    Stored scores carry the run that produced them, so a changed catalog or model
    is detected by comparing fingerprints, and rescoring is a query away.
    """

    __tablename__ = "scoring_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    profiles: Mapped[int] = mapped_column(Integer)
    reference_papers: Mapped[int] = mapped_column(Integer)
    background_ids: Mapped[list] = mapped_column(JSON, default=list)
    tau: Mapped[float] = mapped_column(Float)
    temperature: Mapped[float] = mapped_column(Float)
    ece: Mapped[float | None] = mapped_column(Float)
    heldout: Mapped[int] = mapped_column(Integer, default=0)
    # The fitted model's parameters (Scorer.to_bytes), so scores computed later from this
    # run match those computed when it was fitted.
    model_blob: Mapped[bytes | None] = mapped_column(LargeBinary)


class Score(Base):
    __tablename__ = "scores"
    # With the preprint id, a ranking reads a profile's window from the index alone.
    __table_args__ = (Index("ix_scores_profile_score", "profile_id", "score", "preprint_id"),)

    preprint_id: Mapped[int] = mapped_column(ForeignKey("preprints.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("scoring_runs.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)


class Subscription(Base):
    """A Slack channel or an email address following a profile, with a threshold and a schedule."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("kind", "team_id", "channel_id", "email", "profile_id", name="uq_subscription_target"),
        Index("ix_subscriptions_due", "status", "next_run_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "slack" | "email"
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    # Slack: workspace + channel. Email: the address. Unused fields are "" so the
    # unique constraint works the same on SQLite and PostgreSQL (NULLs never collide).
    team_id: Mapped[str] = mapped_column(String(50), default="")
    channel_id: Mapped[str] = mapped_column(String(50), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    created_by: Mapped[str] = mapped_column(String(100), default="")  # Slack user id, or "cli"
    threshold_kind: Mapped[str] = mapped_column(String(10), default="top")
    threshold_value: Mapped[float] = mapped_column(Float, default=0.01)
    max_items: Mapped[int] = mapped_column(Integer, default=20)
    send_empty: Mapped[bool] = mapped_column(default=False)
    schedule: Mapped[str] = mapped_column(String(10), default="daily")  # hourly | daily | weekly
    at_time: Mapped[str] = mapped_column(String(5), default="08:00")  # HH:MM in `timezone`
    weekday: Mapped[int] = mapped_column(Integer, default=0)  # weekly: 0 = Monday
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # active | pending (email awaiting confirmation) | paused (a dead channel) | unsubscribed
    status: Mapped[str] = mapped_column(String(20), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # One sender at a time (bot.delivery.digests.Claims): who holds the digest, and until when.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What the digest is narrowed to (bot.fulltext.Narrowing), as JSON lists; [] narrows nothing.
    keywords_json: Mapped[str] = mapped_column(Text, default="[]")
    categories_json: Mapped[str] = mapped_column(Text, default="[]")

    profile: Mapped[Profile] = relationship()


class Digest(Base):
    """One digest being sent: the Slack thread (parent ts) or the email, so a run that dies
    halfway resumes in the same thread."""

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | done | failed
    items: Mapped[int] = mapped_column(Integer, default=0)
    channel_id: Mapped[str | None] = mapped_column(String(50))
    parent_ts: Mapped[str | None] = mapped_column(String(50))
    message_id: Mapped[str | None] = mapped_column(String(300))
    # Set just before the parent message is sent: if its answer is lost (a kill, a 5xx, a
    # timeout), the next run looks for it in the channel's history from this moment.
    parent_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)


class Delivery(Base):
    """The ledger: written only after Slack or the SMTP server accepted the item, and unique
    per (subscription, preprint), so nothing is ever sent twice."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("subscription_id", "preprint_id", name="uq_delivery"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"))
    preprint_id: Mapped[int] = mapped_column(ForeignKey("preprints.id", ondelete="CASCADE"), index=True)
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id", ondelete="SET NULL"), index=True)
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    score: Mapped[float] = mapped_column(Float)
    message_ts: Mapped[str | None] = mapped_column(String(50))  # Slack reply ts


class Vote(Base):
    """Feedback on a delivered match ("relevant" / "not relevant"), per profile."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("profile_id", "preprint_id", "team_id", "user_id", name="uq_vote"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile_id: Mapped[int] = mapped_column(ForeignKey("profiles.id", ondelete="CASCADE"), index=True)
    preprint_id: Mapped[int] = mapped_column(ForeignKey("preprints.id", ondelete="CASCADE"))
    team_id: Mapped[str] = mapped_column(String(50), default="")
    user_id: Mapped[str] = mapped_column(String(100))
    relevant: Mapped[bool] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PagingCursor(Base):
    """Where a paged import (API backfill, profile build) stopped, so a crash at page 40 of
    160 resumes at 40. Keyed by what is being paged, e.g. "details/biorxiv/2026-01-01/2026-03-31"."""

    __tablename__ = "paging_cursors"

    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    done: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClockLease(Base):
    """Which clock process is active. On SQLite the lease itself is the lock (renewed by a
    heartbeat, taken over when it expires); on PostgreSQL an advisory lock decides and this
    row only tells `scout status` who holds it."""

    __tablename__ = "clock_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The active clock's jobs and their next run times (ISO), published with each heartbeat
    # so `scout status` can show them from any process.
    next_runs: Mapped[dict | None] = mapped_column(JSON)


# -- engine ------------------------------------------------------------------------------


class DatabaseUnavailable(ScoutError):
    """The database cannot be opened; the message says which setting to fix."""


def make_engine(url: str, connect_timeout: int = 10) -> Engine:
    if url.startswith("sqlite"):
        # sqlite:///path/scout.db, or sqlite:///file:path?mode=ro&uri=true
        path = url.split("///", 1)[-1].split("?", 1)[0].removeprefix("file:")
        if path and path != ":memory:" and not Path(path).parent.is_dir():
            # Creating it would hide a typo: the user would see an empty system, not their data.
            raise DatabaseUnavailable(f"folder {Path(path).parent} does not exist (create it, or fix DATABASE_URL)")
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # connect_timeout: a server that accepts and never answers must not hang every command.
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": connect_timeout}
    )


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the web process read while the clock writes; foreign keys make
    # cascades (profile removal) behave as on PostgreSQL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent, safe on every start)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """The engine and a session factory; one per process, passed to whoever needs it."""

    def __init__(self, url: str, *, run_migrations: bool = True, connect_timeout: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, connect_timeout)
        if run_migrations:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
