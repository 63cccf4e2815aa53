"""A small HTTP server on 127.0.0.1 for tests: canned responses, recorded requests.

    with LoopbackServer() as server:
        server.route("/feed.rss", body=xml, headers={"Content-Type": "application/rss+xml"},
                     etag='"v1"')
        server.route("/api/chat.postMessage", handler=lambda req: (200, {}, b'{"ok": true}'))
        httpx.get(server.url + "/feed.rss")
        assert server.requests[-1].path == "/feed.rss"

A route registered with a query string ("/x?subject=a") matches only that query; one
without matches the path whatever the query. Unknown paths answer 404.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Response = tuple[int, dict[str, str], bytes | str]
Handler = Callable[["Request"], Response]


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on at the moment of asking (for a server a test
    starts itself, or for a "connection refused" address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "the condition") -> Any:
    """Poll `condition` until it returns something true and return that; after `timeout`
    seconds, an AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@contextmanager
def serve(asgi_app, port: int = 0) -> Iterator[str]:
    """Serve an ASGI app (ours) with uvicorn on 127.0.0.1 in a thread; yields its URL.
    `port` 0 takes a free one; give one when the app must know its own URL beforehand."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(asgi_app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 10, "uvicorn to start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string, as sent
    headers: dict[str, str]  # names lower-cased
    body: bytes = b""

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.path).query)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> dict[str, str]:
        """A form-encoded body (what slack_sdk sends) as single values."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class _Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None
    handler: Handler | None = None
    method: str | None = None


class LoopbackServer:
    """Threaded HTTP server on an ephemeral port; use as a context manager."""

    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        # A delayed handler must not hold up the test that already timed out on it.
        self._httpd.block_on_close = False
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def route(
        self,
        path: str,
        status: int = 200,
        body: bytes | str = b"",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        *,
        etag: str | None = None,
        handler: Handler | None = None,
        method: str | None = None,
    ) -> None:
        """Set (or replace) the response for a path; `handler` computes it per request.

        With an ETag (the `etag` argument or an ETag header) a request whose
        If-None-Match carries it gets 304 with no body.
        """
        headers = dict(headers or {})
        etag = etag or next((v for k, v in headers.items() if k.lower() == "etag"), None)
        if etag and not any(k.lower() == "etag" for k in headers):
            headers["ETag"] = etag
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self._lock:
            self._routes[path] = _Route(status, data, headers, delay, etag, handler, method.upper() if method else None)

    def requests_to(self, path: str) -> list[Request]:
        """Recorded requests for a path (query string ignored)."""
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def _find(self, method: str, raw_path: str) -> _Route | None:
        with self._lock:
            for key in (raw_path, urlsplit(raw_path).path):
                route = self._routes.get(key)
                if route and route.method in (None, method):
                    return route
        return None

    def _respond(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        route = self._find(request.method, request.path)
        if route is None:
            return 404, {"Content-Type": "text/plain"}, b"no route for " + request.path.encode()
        if route.delay:
            time.sleep(route.delay)
        if route.handler is not None:
            status, headers, body = route.handler(request)
            return status, dict(headers), body.encode("utf-8") if isinstance(body, str) else body
        sent = request.headers.get("if-none-match", "")
        if route.etag and route.etag in [tag.strip() for tag in sent.split(",")]:
            return 304, {"ETag": route.etag}, b""
        return route.status, dict(route.headers), route.body


def _make_handler(server: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            server.requests.append(request)
            status, headers, payload = server._respond(request)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if status != 304 and not any(k.lower() == "content-length" for k in headers):
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD" and status not in (204, 304):
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to tell it

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep pytest output clean

    return _Handler
