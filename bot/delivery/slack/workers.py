"""The app's own threads for Slack work, and the one way answers go back (response_url).

Bolt's listeners only parse and ack; whatever is slow (the model, the database, Slack's
response_url, a preprint API) runs here. The pool is bounded twice: a fixed number of
threads, and a fixed number of jobs allowed to wait for one. When both are taken,
`submit` says no at once, so the listener can tell the user "busy" in its ack instead of
queueing work nobody will see answered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)


class WorkPool:
    """`workers` threads; at most `queue` more jobs waiting for one."""

    def __init__(self, workers: int, queue: int, name: str = "slack-work") -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(workers + queue)

    def submit(self, job: Callable[[], None], what: str) -> bool:
        """Run `job` on a worker; False (nothing queued) when the pool and its queue are full."""
        if not self._slots.acquire(blocking=False):
            log.warning("Slack work pool full: refused %s", what)
            return False
        try:
            future = self._executor.submit(_logged, job, what)
        except RuntimeError:  # shutting down
            self._slots.release()
            return False
        future.add_done_callback(self._release)
        return True

    def _release(self, _future: Future) -> None:
        self._slots.release()

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)


def _logged(job: Callable[[], None], what: str) -> None:
    try:
        job()
    except Exception:  # a worker thread has no caller to raise to
        log.exception("%s failed", what)


def respond(response_url: str, message: dict, timeout: float) -> bool:
    """Send one answer to a response_url, waiting at most about `timeout` seconds for it.

    Never retried: a response_url that timed out may have posted the message already, and
    a second copy is worse than a logged failure. False when it did not go through.
    """
    client = WebhookClient(url=response_url, timeout=timeout, retry_handlers=[])  # type: ignore[arg-type]
    try:
        response = client.send_dict(message)
    except OSError as exc:  # URLError, TimeoutError, ConnectionResetError
        log.warning("answer to the response_url not delivered: %s", exc)
        return False
    if response.status_code != 200:
        log.warning("the response_url refused the answer: HTTP %s %s", response.status_code, response.body[:200])
        return False
    return True
