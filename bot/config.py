"""One settings object, read from the environment (and a `.env` file)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
USER_AGENT = "PreprintScout/0.1 (+https://github.com/preprint-scout/preprint-scout)"


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="sqlite:///scout.db",
        validation_alias="DATABASE_URL",
        description="SQLAlchemy URL; a SQLite file by default, postgresql://... at scale.",
    )
    model: str = Field(
        default=BUNDLED_MODEL,
        validation_alias="SCOUT_MODEL",
        description="sentence-transformers model name or path; the bundled MiniLM by default.",
    )
    http_timeout: float = Field(default=20.0, gt=0, validation_alias="SCOUT_HTTP_TIMEOUT")
    contact_email: str = Field(default="", validation_alias="SCOUT_CONTACT_EMAIL")
    biorxiv_rss_url: str = Field(default="https://connect.biorxiv.org", validation_alias="SCOUT_BIORXIV_RSS_URL")
    medrxiv_rss_url: str = Field(default="https://connect.medrxiv.org", validation_alias="SCOUT_MEDRXIV_RSS_URL")
    arxiv_rss_url: str = Field(default="https://rss.arxiv.org", validation_alias="SCOUT_ARXIV_RSS_URL")
    window_days: int = Field(default=90, ge=1, le=3650, validation_alias="SCOUT_WINDOW_DAYS")
    background_size: int = Field(default=2000, ge=0, validation_alias="SCOUT_BACKGROUND_SIZE")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql", "postgres://")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        if value.startswith("postgres://"):
            # Heroku-style URLs; SQLAlchemy only knows the long scheme.
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        return value

    @cached_property
    def user_agent(self) -> str:
        if self.contact_email:
            return f"{USER_AGENT[:-1]}; mailto:{self.contact_email})"
        return USER_AGENT


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value raises SettingsError naming it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            env = _env_name(field)
            problems.append(f"{env}: {err['msg']}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None


def _env_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    return str(alias) if alias else field.upper()


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    return None
