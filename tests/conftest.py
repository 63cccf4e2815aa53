"""Shared fixtures: the real bundled model (once per session) and a database per test,
on SQLite always and on PostgreSQL when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bot.config import BUNDLED_MODEL  # noqa: E402
from bot.db import Database  # noqa: E402
from bot.scores.update import ScoringContext  # noqa: E402
from scoring.embedder import Embedder, load_embedder  # noqa: E402
from tests.cli import Scout  # noqa: E402
from tests.loopback import LoopbackServer  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
PG_URL = os.environ.get("TEST_DATABASE_URL")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set"),
    ),
]


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch):
    """A developer's own settings (a production DATABASE_URL, a real Slack token) never
    reach a test: each test sets what it needs."""
    for name in list(os.environ):
        if name.startswith(("SCOUT_", "SLACK_")) or name in ("DATABASE_URL", "SMTP_URL"):
            monkeypatch.delenv(name)
    # Every test shares the one session model, PyTorch fp32 (its processes too: they inherit
    # this); tests/scoring/test_backends.py loads the others.
    monkeypatch.setenv("SCOUT_BACKEND", "torch")


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A loopback HTTP server playing the far side (a feed, an API) for one test."""
    with LoopbackServer() as running:
        yield running


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return load_embedder(BUNDLED_MODEL)


@pytest.fixture
def scoring_ctx(embedder: Embedder) -> ScoringContext:
    return ScoringContext(BUNDLED_MODEL, lambda: embedder, background_size=2000)


def _pg_schema_url(base: str, schema: str) -> str:
    url = base.replace("postgresql://", "postgresql+psycopg://", 1)
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, or a throwaway PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'scout.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(PG_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def scout(database_url: str) -> Scout:
    """`scout ...` in-process on this test's database; a test adds to `scout.env` what else
    its commands need (a feed server's URL, an SMTP server)."""
    return Scout({"DATABASE_URL": database_url})
