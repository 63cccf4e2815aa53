"""The Slack side of Socket Mode: a WebSocket server on 127.0.0.1 that sends envelopes
(slash commands, events...) to a connected app and records the app's acknowledgements.

    with SocketModeServer() as ws, FakeSlack() as slack:
        slack.socket_url = ws.url                    # what apps.connections.open hands out
        ... start `scout socket` with SLACK_API_URL=slack.api_url ...
        ws.wait_connected()
        envelope_id = ws.send("slash_commands", {...the command's form fields...})
        ack = ws.wait_ack(envelope_id)               # {"envelope_id": ..., "payload": ...}

As Slack does, it greets each connection with a `hello`; an envelope is sent to the
newest connection.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import threading
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.loopback import wait_for

POLL = 0.05


class SocketModeServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outbox: queue.Queue[dict] = queue.Queue()
        self._ids = itertools.count(1)
        self.acks: dict[str, dict] = {}
        self.connections = 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.listen()
        self._server = serve(self._handle, sock=sock)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/?ticket=test"

    def __enter__(self) -> SocketModeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Queue one envelope for the app; returns its envelope_id."""
        envelope_id = f"env-{next(self._ids)}"
        self._outbox.put(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": True}
        )
        return envelope_id

    def wait_connected(self, timeout: float = 60.0) -> None:
        self._wait(lambda: self.connections > 0, timeout, "the app to connect")

    def wait_ack(self, envelope_id: str, timeout: float = 30.0) -> dict:
        self._wait(lambda: envelope_id in self.acks, timeout, f"the ack of {envelope_id}")
        with self._lock:
            return self.acks[envelope_id]

    def _wait(self, condition, timeout: float, what: str) -> None:
        def locked():
            with self._lock:
                return condition()

        wait_for(locked, timeout, what)

    def _handle(self, conn: ServerConnection) -> None:
        conn.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": "A0SCOUT"},
                    "debug_info": {"host": "fake-socket-mode"},
                }
            )
        )
        with self._lock:
            self.connections += 1
        try:
            while True:
                with contextlib.suppress(queue.Empty):
                    conn.send(json.dumps(self._outbox.get_nowait()))
                try:
                    message = json.loads(conn.recv(timeout=POLL))
                except TimeoutError:
                    continue
                if "envelope_id" in message:
                    with self._lock:
                        self.acks[message["envelope_id"]] = message
        except ConnectionClosed:
            return
