"""One settings object, read from the environment (and a `.env` file)."""

from __future__ import annotations

import os
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scoring.errors import ScoutError
from scoring.text import one_line

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
USER_AGENT = "PreprintScout/0.1 (+https://github.com/preprint-scout/preprint-scout)"


class SettingsError(ScoutError):
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
    backend: Literal["auto", "torch", "torch-bf16", "openvino"] = Field(
        default="auto",
        validation_alias="SCOUT_BACKEND",
        description="How the model runs: auto (the fastest this machine has that keeps ranking quality), "
        "torch (fp32), torch-bf16 (CPUs with native bf16) or openvino.",
    )
    model_cache: Path | None = Field(
        default=None,
        validation_alias="SCOUT_MODEL_CACHE",
        description="Folder for models converted locally (OpenVINO); $XDG_CACHE_HOME/preprint-scout when unset.",
    )
    http_timeout: float = Field(default=20.0, gt=0, validation_alias="SCOUT_HTTP_TIMEOUT")
    # Bad input never costs good data (bot/ingest/feeds.py, bot/ingest/polling.py): overall deadlines, so a
    # slow peer holds one feed or one command for a bounded time, never everything.
    feed_deadline: float = Field(
        default=60.0,
        gt=0,
        validation_alias="SCOUT_FEED_DEADLINE",
        description="Seconds one feed fetch may take in all (SCOUT_HTTP_TIMEOUT is per read).",
    )
    poll_workers: int = Field(
        default=4,
        ge=1,
        le=32,
        validation_alias="SCOUT_POLL_WORKERS",
        description="Feeds fetched at once during a poll, so one slow feed never holds the others.",
    )
    api_deadline: float = Field(
        default=120.0,
        gt=0,
        validation_alias="SCOUT_API_DEADLINE",
        description="Seconds one API call may take in all, retries and waits included.",
    )
    match_deadline: float = Field(
        default=20.0,
        gt=0,
        validation_alias="SCOUT_MATCH_DEADLINE",
        description="Seconds `scout match` may spend fetching a preprint that is not stored yet.",
    )
    db_connect_timeout: int = Field(
        default=10,
        ge=2,
        le=600,
        validation_alias="SCOUT_DB_CONNECT_TIMEOUT",
        description="Seconds to wait for PostgreSQL to answer a new connection before giving up.",
    )
    contact_email: str = Field(default="", validation_alias="SCOUT_CONTACT_EMAIL")
    biorxiv_rss_url: str = Field(default="https://connect.biorxiv.org", validation_alias="SCOUT_BIORXIV_RSS_URL")
    medrxiv_rss_url: str = Field(default="https://connect.medrxiv.org", validation_alias="SCOUT_MEDRXIV_RSS_URL")
    arxiv_rss_url: str = Field(default="https://rss.arxiv.org", validation_alias="SCOUT_ARXIV_RSS_URL")
    # APIs for backfill, profiles and on-demand matches (bot/ingest). The intervals are the
    # minimum seconds between two requests to one service: what each service asks for
    # (arXiv: one request every 3 s; OpenAlex: at most 10/s; Crossref's polite pool allows
    # more than we use; bioRxiv documents none, so we stay gentle). Tests set them to 0.
    biorxiv_api_url: str = Field(default="https://api.biorxiv.org", validation_alias="SCOUT_BIORXIV_API_URL")
    crossref_url: str = Field(default="https://api.crossref.org", validation_alias="SCOUT_CROSSREF_URL")
    openalex_url: str = Field(default="https://api.openalex.org", validation_alias="SCOUT_OPENALEX_URL")
    arxiv_api_url: str = Field(default="https://export.arxiv.org", validation_alias="SCOUT_ARXIV_API_URL")
    biorxiv_api_interval: float = Field(default=1.0, ge=0, validation_alias="SCOUT_BIORXIV_API_INTERVAL")
    crossref_interval: float = Field(default=0.2, ge=0, validation_alias="SCOUT_CROSSREF_INTERVAL")
    openalex_interval: float = Field(default=0.1, ge=0, validation_alias="SCOUT_OPENALEX_INTERVAL")
    arxiv_api_interval: float = Field(default=3.0, ge=0, validation_alias="SCOUT_ARXIV_API_INTERVAL")
    api_retries: int = Field(default=4, ge=0, le=10, validation_alias="SCOUT_API_RETRIES")
    api_backoff: float = Field(default=2.0, ge=0, validation_alias="SCOUT_API_BACKOFF")
    window_days: int = Field(default=90, ge=1, le=3650, validation_alias="SCOUT_WINDOW_DAYS")
    background_size: int = Field(default=2000, ge=0, validation_alias="SCOUT_BACKGROUND_SIZE")
    templates_dir: str | None = Field(default=None, validation_alias="SCOUT_TEMPLATES_DIR")
    # The clock (`scout scheduler`).
    poll_minutes: int = Field(default=30, ge=1, le=1440, validation_alias="SCOUT_POLL_MINUTES")
    digest_check_seconds: int = Field(default=60, ge=1, le=3600, validation_alias="SCOUT_DIGEST_CHECK_SECONDS")
    clock_lease_seconds: int = Field(default=45, ge=3, le=600, validation_alias="SCOUT_CLOCK_LEASE_SECONDS")
    retention_days: int = Field(default=365, ge=30, validation_alias="SCOUT_RETENTION_DAYS")
    # How long a sender's claim on a digest lasts without renewal (it renews before every
    # message). A sender killed mid-digest blocks that digest this long, then the next run
    # takes it over and resumes the thread.
    digest_lease_seconds: int = Field(default=300, ge=1, le=3600, validation_alias="SCOUT_DIGEST_LEASE_SECONDS")
    # Slack (docs/slack.md). Secrets are SecretStr: they never show up in a repr or a log line.
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default="https://slack.com/api/", validation_alias="SLACK_API_URL")
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_CLIENT_SECRET")
    slack_scopes: str = Field(
        default="commands,chat:write,chat:write.public,im:write,channels:history,groups:history,"
        "users:read,users:read.email",
        validation_alias="SLACK_SCOPES",
    )
    slack_timeout: float = Field(
        default=10.0,
        gt=0,
        validation_alias="SLACK_TIMEOUT",
        description="Seconds to wait on one Slack call, and on one answer sent to a command's response_url "
        "(an answer that times out is logged, never sent twice).",
    )
    # Seconds between two posts to one channel (Slack allows about one message a second).
    slack_post_interval: float = Field(default=1.0, ge=0, validation_alias="SLACK_POST_INTERVAL")
    # Base of the exponential backoff (seconds) when Slack answers 5xx or times out.
    slack_retry_backoff: float = Field(default=0.5, ge=0, validation_alias="SLACK_RETRY_BACKOFF")
    # `/scout` work (the model, the database, answering at Slack's response_url) runs on the
    # app's own threads, never on the path that acks Slack within its 3 s.
    slack_workers: int = Field(
        default=8,
        ge=1,
        le=64,
        validation_alias="SCOUT_SLACK_WORKERS",
        description="Threads answering /scout commands, buttons and App Home in `scout serve` and `scout socket`.",
    )
    slack_queue: int = Field(
        default=32,
        ge=0,
        le=10000,
        validation_alias="SCOUT_SLACK_QUEUE",
        description="Commands allowed to wait for a free thread; beyond that the user is told at once that "
        "the app is busy and to try again in a minute.",
    )
    # Email (bot/delivery/email). SecretStr keeps the SMTP password and the signing key out of
    # reprs and logs; `smtp_display` is the printable form of SMTP_URL.
    smtp_url: SecretStr = Field(
        default=SecretStr(""),
        validation_alias="SMTP_URL",
        description="smtp://user:pass@host:587 (STARTTLS when offered) or smtps://... (implicit TLS).",
    )
    smtp_timeout: float | None = Field(
        default=None,
        gt=0,
        validation_alias="SCOUT_SMTP_TIMEOUT",
        description="Seconds to wait for the mail server at each step (connect, greeting, each reply); "
        "SCOUT_HTTP_TIMEOUT when unset. A server that fails to answer costs one such wait per run: "
        "the rest of that run's addresses are retried later without a new attempt.",
    )
    mail_from: str = Field(default="", validation_alias="SCOUT_MAIL_FROM")
    base_url: str = Field(default="", validation_alias="SCOUT_BASE_URL")
    secret_key: SecretStr = Field(default=SecretStr(""), validation_alias="SCOUT_SECRET_KEY")
    # The web pages (bot/web): who may see a profile's ranking.
    web_access: Literal["public", "token", "off"] = Field(
        default="public",
        validation_alias="SCOUT_WEB_ACCESS",
        description="public: anyone; token: a secret link per profile (scout profiles show); off: no pages.",
    )

    @field_validator("templates_dir")
    @classmethod
    def _templates_folder(cls, value: str | None) -> str | None:
        if value and not Path(value).is_dir():
            raise ValueError(f"{value!r} is not a folder")
        return value or None

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

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().strip()
        if raw and not raw.startswith(("smtp://", "smtps://")):
            raise ValueError("must be an smtp:// or smtps:// URL, e.g. smtp://user:pass@host:587")
        return SecretStr(raw)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be the public http(s):// URL of the web process")
        return value

    @property
    def smtp_display(self) -> str:
        """SMTP_URL with the password hidden, for messages and logs."""
        return display_url(self.smtp_url.get_secret_value())

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_slash(cls, value: str) -> str:
        # slack_sdk joins method names onto the base URL: it must end with a slash.
        return value if value.endswith("/") else value + "/"

    @property
    def model_cache_dir(self) -> Path:
        if self.model_cache is not None:
            return self.model_cache.expanduser()
        return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "preprint-scout"

    @property
    def digest_lease(self) -> timedelta:
        return timedelta(seconds=self.digest_lease_seconds)

    @property
    def slack_multi_workspace(self) -> bool:
        return bool(self.slack_client_id and self.slack_client_secret)

    @property
    def slack_configured(self) -> bool:
        """True when digests can be sent: a bot token, or OAuth installs in the database."""
        return bool(self.slack_bot_token) or self.slack_multi_workspace

    @cached_property
    def user_agent(self) -> str:
        if self.contact_email:
            return f"{USER_AGENT[:-1]}; mailto:{self.contact_email})"
        return USER_AGENT


def display_url(url: str) -> str:
    """A URL fit to print: a password in it (https://user:secret@host/) becomes ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return one_line(url)
    if parts.password is None:
        return one_line(url)
    host = parts.netloc.rsplit("@", 1)[1]
    return one_line(parts._replace(netloc=f"{parts.username}:***@{host}").geturl())


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
