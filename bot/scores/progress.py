"""Progress of long steps as log lines, for processes without a terminal (the clock, the
web app, a cron job): a step that runs for minutes says how far it is every so often."""

from __future__ import annotations

import logging
import threading
import time

from scoring.progress import Advance, Steps

LOG_EVERY = 30.0  # seconds between lines of one step

log = logging.getLogger(__name__)


def logged_steps(every: float = LOG_EVERY, clock=time.monotonic) -> Steps:
    """Steps that log `name: done/total (x%), elapsed` at most every `every` seconds, and
    once when done. Callbacks may be called from several threads (scoring runs blocks in
    parallel)."""

    def step(name: str, total: int) -> Advance:
        started = last = clock()
        done = 0
        lock = threading.Lock()

        def advance(n: int) -> None:
            nonlocal done, last
            with lock:
                done += n
                now = clock()
                if done < total and now - last < every:
                    return
                last = now
                log.info("%s: %d/%d (%.0f%%), %.0f s", name, done, total, 100 * done / total, now - started)

        return advance

    return step
