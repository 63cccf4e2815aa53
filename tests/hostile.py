"""Pieces for hostile-input tests: an RSS 2.0 builder taking raw XML fragments, and loopback
peers that misbehave on the wire (a trickling HTTP server, a server that accepts and never answers)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from xml.sax.saxutils import escape

RSS_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8"}


@dataclass(frozen=True)
class Item:
    """One <item>; every field is a raw XML fragment (None leaves the element out)."""

    title: str | None = None
    description: str | None = None
    link: str | None = None
    guid: str | None = None
    pub_date: str | None = None


def good_item(n: int, day: str = "Mon, 04 May 2026 10:00:00 GMT") -> Item:
    return Item(
        title=f"Good preprint number {n} about cortical circuits",
        description=f"An ordinary abstract for item {n}: neurons, synapses and behaviour in mice.",
        link=f"https://example.org/papers/{n}",
        guid=f"https://example.org/papers/{n}",
        pub_date=day,
    )


def rss(items: list[Item], title: str = "Hostile test feed", encoding: str = "utf-8") -> bytes:
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>',
        '<rss version="2.0"><channel>',
        f"<title>{title}</title><link>https://example.org/</link><description>test</description>",
    ]
    for item in items:
        parts.append("<item>")
        for tag, value in (
            ("title", item.title),
            ("description", item.description),
            ("link", item.link),
            ("guid", item.guid),
            ("pubDate", item.pub_date),
        ):
            if value is not None:
                parts.append(f"<{tag}>{value}</{tag}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode(encoding, errors="xmlcharrefreplace")


def text(value: str) -> str:
    """Plain text as an XML fragment."""
    return escape(value)


@contextmanager
def _listening(handle: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """A port on 127.0.0.1 whose every accepted connection goes to `handle(conn, stop)` on a
    thread of its own; `stop` is set, and the listener closed, when the block ends."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn, stop), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never says a word (not a closed
    port: the client's connect succeeds and then it waits)."""

    def hold(conn: socket.socket, stop: threading.Event) -> None:
        with conn:
            stop.wait()

    with _listening(hold) as port:
        yield port


@contextmanager
def trickle_server(body: bytes, interval: float = 0.5, headers_too: bool = False) -> Iterator[str]:
    """An HTTP server that sends its headers at once (or, `headers_too`, a byte at a time too)
    and then the body one byte every `interval` seconds: each read gets data in time, so only
    an overall deadline stops it."""

    def serve(conn: socket.socket, stop: threading.Event) -> None:
        with conn:
            try:
                conn.recv(65536)
                head = (
                    "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                ).encode()
                if not headers_too:
                    conn.sendall(head)
                for byte in (head if headers_too else b"") + body:
                    if stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(interval)
            except OSError:
                return

    with _listening(serve) as port:
        yield f"http://127.0.0.1:{port}"
