"""A short-lived cache of ranking windows for the web pages.

Reading a window is the one cost of a page that grows with the window (20,000 preprints:
about 200 ms on SQLite), and a reader paging through a ranking, or several readers of one
profile, ask for the same window again and again. Scores change at most once per poll, so
a page may show a window up to `ttl` seconds old. Each web process keeps its own (nothing
is shared but the database).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.orm import Session

from bot.scores.rankings import window_score_ids

TTL_SECONDS = 60.0
MAX_WINDOWS = 64


@dataclass
class WindowCache:
    ttl: float = TTL_SECONDS
    size: int = MAX_WINDOWS
    _entries: dict[tuple[int, date, date], tuple[float, list[tuple[int, float]]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, session: Session, profile_id: int, since: date, until: date) -> list[tuple[int, float]]:
        key = (profile_id, since, until)
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        rows = window_score_ids(session, profile_id, since, until)
        with self._lock:
            self._entries[key] = (now, rows)
            if len(self._entries) > self.size:  # the oldest reading goes first
                del self._entries[min(self._entries, key=lambda k: self._entries[k][0])]
        return rows
