"""Slack Web API clients: one base URL (SLACK_API_URL), retries for errors that heal.

429 waits `Retry-After` (slack_sdk's RateLimitErrorRetryHandler); 5xx and timeouts
retry with exponential backoff; errors that will not heal are named in PERMANENT so
callers pause what depends on them instead of retrying.
"""

from __future__ import annotations

import random
from http.client import RemoteDisconnected
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.jitter import Jitter

from bot.config import Settings

# Errors that retrying cannot fix: pause the subscription and tell a human (docs/slack.md).
PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "channel_is_archived",
        "token_revoked",
        "account_inactive",
        "invalid_auth",
        "not_authed",
        "team_access_not_granted",
        "org_login_required",
        "ekm_access_denied",
        "missing_scope",
        # Workspace policy: posting here is not allowed, and retrying will not change that.
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
    }
)
RATE_LIMIT_RETRIES = 5
SERVER_RETRIES = 3
CONNECTION_RETRIES = 3


class ServerErrorsRetryHandler(RetryHandler):
    """Retry any 5xx (slack_sdk's own handler covers only 500 and 503)."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        return response is not None and 500 <= response.status_code < 600


class ScaledJitter(Jitter):
    """Random jitter in proportion to the backoff (slack_sdk's default adds up to a whole second)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def recalculate(self, duration: float) -> float:
        return duration + random.random() * self.scale


def retry_handlers(backoff: float = 0.5, *, rate_limits_only: bool = False) -> list[RetryHandler]:
    rate_limits = RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)
    if rate_limits_only:
        return [rate_limits]
    interval = BackoffRetryIntervalCalculator(backoff_factor=backoff, jitter=ScaledJitter(backoff))
    return [
        rate_limits,
        ServerErrorsRetryHandler(max_retry_count=SERVER_RETRIES, interval_calculator=interval),
        ConnectionErrorRetryHandler(
            max_retry_count=CONNECTION_RETRIES,
            interval_calculator=interval,
            # A read timeout surfaces as TimeoutError, not URLError.
            error_types=[URLError, ConnectionResetError, RemoteDisconnected, TimeoutError],
        ),
    ]


def make_client(settings: Settings, token: str | None = None, *, posting: bool = False) -> WebClient:
    """A WebClient on SLACK_API_URL with the retry handlers; `token` defaults to the bot token.

    `posting=True` retries only rate limits: after a 5xx or a timeout Slack may already
    have posted the message, so the caller looks for it before sending it again.
    """
    if token is None and settings.slack_bot_token is not None:
        token = settings.slack_bot_token.get_secret_value()
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=int(max(1, settings.slack_timeout)),
        retry_handlers=retry_handlers(settings.slack_retry_backoff, rate_limits_only=posting),
    )
