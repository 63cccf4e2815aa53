"""A polite GET for public APIs: a minimum interval between requests per service, retries with
backoff on 429 / 5xx / timeouts (honouring Retry-After), and one clear error when it gives up.

Each service gets its own `PoliteHTTP` (own base URL, own interval), all sharing one injected
`httpx.Client` (whose User-Agent carries the contact mailto). `sleep` and `clock` are injectable
so tests run without waiting and can see what would have been waited.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from bot.ingest.deadline import cutoff_after
from scoring.errors import ScoutError

MAX_BODY = 50 * 1024 * 1024


class SourceError(ScoutError):
    """An API answered with an error, or could not be reached after retries; the message is for humans."""


class _Transient(Exception):
    """A failure worth retrying (429, 5xx, timeout, connection error)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class PoliteHTTP:
    client: httpx.Client
    base_url: str
    service: str
    min_interval: float = 1.0
    retries: int = 4
    backoff: float = 2.0
    max_wait: float = 300.0
    # Seconds one `get` may take in all, retries and waits included (None: no bound).
    deadline: float | None = None
    # A `clock()` time no call may run past: one bound for several calls (`scout match`
    # asks bioRxiv, then medRxiv, within one SCOUT_MATCH_DEADLINE).
    ends_at: float | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    requests_made: int = 0
    _last: float | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}"

    def get(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        accept: str = "application/json",
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """GET base_url/path; returns a response whose status is in `ok`, else raises SourceError."""
        url = self.url(path)
        started = self.clock()
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=lambda state: self._wait_within(state, started),
            retry=retry_if_exception_type(_Transient),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(url, params, accept, ok, self._remaining(started))
        except _OutOfTime as exc:
            raise SourceError(f"{self.service}: {exc.last} (gave up within the {self.deadline:g} s deadline)") from None
        except _Transient as exc:
            tries = self.retries + 1
            raise SourceError(f"{self.service}: {exc} (gave up after {tries} attempt{'s' * (tries > 1)})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        response = self.get(path, params, **kw)
        try:
            return json.loads(response.content)
        except ValueError:
            kind = response.headers.get("content-type", "unknown type")
            raise SourceError(f"{self.service}: {response.url} did not answer JSON ({kind})") from None

    # -- internals -------------------------------------------------------------------

    def _remaining(self, started: float) -> float | None:
        now = self.clock()
        bounds = [self.deadline - (now - started)] if self.deadline is not None else []
        bounds += [self.ends_at - now] if self.ends_at is not None else []
        return min(bounds) if bounds else None

    def _once(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        accept: str,
        ok: tuple[int, ...],
        remaining: float | None = None,
    ) -> httpx.Response:
        self._pace()
        self.requests_made += 1
        # Within a deadline each read may take at most what is left of it, and the request is
        # cut when none is left (a server trickling its answer keeps every read in time).
        timeout = self.client.timeout if remaining is None else _shrink(self.client.timeout, remaining)
        with cutoff_after(None if remaining is None else max(remaining, 0.1)) as cutoff:
            try:
                response = self.client.get(
                    url,
                    params=params,
                    headers={"Accept": accept} | cutoff.headers,
                    timeout=timeout,
                    extensions=cutoff.extensions,
                )
            except httpx.TimeoutException:
                raise _Transient(f"timed out fetching {url}") from None
            except httpx.TransportError as exc:
                if cutoff.passed:
                    raise _OutOfTime(f"no complete answer from {url} in time") from None
                raise _Transient(f"could not reach {url}: {exc or type(exc).__name__}") from None
            except httpx.InvalidURL as exc:
                raise SourceError(f"{self.service}: bad URL {url}: {exc}") from None
            if cutoff.passed:  # the cut can look like the end of a body sent without a length
                raise _OutOfTime(f"no complete answer from {url} in time")
        status = response.status_code
        if status in ok:
            if len(response.content) > MAX_BODY:
                raise SourceError(f"{self.service}: response too large from {url}")
            return response
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise _Transient(f"HTTP {status} from {response.url}", retry_after)
        raise SourceError(f"{self.service}: HTTP {status} from {response.url}{_detail(response)}")

    def _pace(self) -> None:
        with self._lock:
            now = self.clock()
            if self._last is not None and self.min_interval > 0:
                wait = self._last + self.min_interval - now
                if wait > 0:
                    self.sleep(wait)
                    now = self.clock()
            self._last = now

    def _wait_within(self, state: RetryCallState, started: float) -> float:
        """The backoff, unless waiting it would pass the deadline: then give up now."""
        wait = self._wait(state)
        remaining = self._remaining(started)
        if remaining is not None and wait >= remaining:
            exc = state.outcome.exception() if state.outcome else None
            raise _OutOfTime(str(exc) if exc else "no answer")
        return wait

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_wait)
        return min(self.backoff * 2 ** (state.attempt_number - 1), self.max_wait)


class _OutOfTime(Exception):
    def __init__(self, last: str) -> None:
        super().__init__(last)
        self.last = last


def _shrink(timeout: httpx.Timeout, remaining: float) -> httpx.Timeout:
    left = max(remaining, 0.1)
    return httpx.Timeout(
        connect=min(timeout.connect or left, left),
        read=min(timeout.read or left, left),
        write=min(timeout.write or left, left),
        pool=min(timeout.pool or left, left),
    )


def _detail(response: httpx.Response) -> str:
    """A short reason from an error body (Crossref and OpenAlex explain bad filters in JSON)."""
    text = response.text.strip()[:2000]
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = data.get("message") or data.get("error")
        if isinstance(message, list) and message and isinstance(message[0], dict):
            message = message[0].get("message")
        if isinstance(message, str) and message:
            text = message
        elif data.get("error") or data.get("message"):
            text = str(data.get("message") or data.get("error"))
    text = " ".join(text.split())
    if not text or text.lstrip().startswith("<"):
        return ""
    return f": {text[:197] + '...' if len(text) > 200 else text}"
