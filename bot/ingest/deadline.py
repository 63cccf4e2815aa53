"""An overall deadline for one HTTP request, headers and body alike.

httpx's timeouts are per read: a server that sends a byte a second, in its headers or its
body, keeps every read in time and holds the request for as long as it likes. A `Cutoff`
watches the sockets its request connects and shuts them down when the deadline passes, so
the read in progress fails at once, wherever it is. The request asks for a connection of
its own (Connection: close): a pooled one, connected by an earlier request, would not be
seen connecting and could not be cut.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any


class Cutoff:
    """Pass `headers` and `extensions` to the request. `passed` is set before any socket is
    shut, so a body that seems to end (no Content-Length, the peer "closing") is known cut."""

    def __init__(self, bounded: bool) -> None:
        self.headers = {"Connection": "close"} if bounded else {}
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.passed = False
        self.extensions = {"trace": self._trace}

    def cut(self) -> None:
        """The deadline has passed: end every read of the request now."""
        with self._lock:
            self.passed = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        # httpx's documented trace extension: each new connection's network stream.
        if event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            with self._lock:
                self._sockets.append(sock)
                passed = self.passed
            if passed:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with suppress(OSError):  # already closed: the request ended on its own
        sock.shutdown(socket.SHUT_RDWR)


@contextmanager
def cutoff_after(seconds: float | None) -> Iterator[Cutoff]:
    """A Cutoff that cuts its request `seconds` from now (never, for None)."""
    cutoff = Cutoff(bounded=bool(seconds))
    timer = threading.Timer(seconds, cutoff.cut) if seconds else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield cutoff
    finally:
        if timer is not None:
            timer.cancel()
