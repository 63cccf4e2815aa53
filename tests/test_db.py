"""Schema and settings: migrations run on start, twice harmlessly; SQLite runs in WAL."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from bot.config import SettingsError, load_settings
from bot.db import MIGRATIONS, Database, migrate


def test_migrations_create_the_schema_and_are_idempotent(db):
    migrate(db.engine)
    tables = set(inspect(db.engine).get_table_names())
    assert {
        "feeds",
        "preprints",
        "profiles",
        "reference_papers",
        "embeddings",
        "scores",
        "scoring_runs",
        "alembic_version",
    } <= tables
    with db.engine.connect() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    versions = sorted(p.name[:4] for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
    assert head == versions[-1]


def test_sqlite_uses_wal_and_foreign_keys(tmp_path):
    # The folder must exist: creating a missing one would hide a typo in DATABASE_URL.
    database = Database(f"sqlite:///{tmp_path / 'scout.db'}")
    with database.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    database.dispose()


def test_settings_defaults_and_normalised_urls():
    settings = load_settings()
    assert settings.database_url.startswith("sqlite:///")
    assert settings.model == "bundled:all-MiniLM-L6-v2"
    heroku = load_settings(DATABASE_URL="postgres://u:p@h/db").database_url
    assert heroku == "postgresql+psycopg://u:p@h/db"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x"),
        ("SCOUT_HTTP_TIMEOUT", "0"),
        ("SCOUT_WINDOW_DAYS", "many"),
    ],
)
def test_invalid_settings_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings(**{name: value})
