"""Peak memory of a real `scout serve` sent one oversized, unsigned POST /slack/events.

    .venv/bin/python benchmarks/oversized_post.py [--megabytes 200] [--root PATH]

Starts `python -m bot.cli serve` from --root (default: this checkout; point it at an
exported older commit to compare) on a free 127.0.0.1 port with Slack configured and a
fresh SQLite database, waits for /healthz and for its memory to settle (the model
preloads in the background), then streams a body of --megabytes with a matching
Content-Length and no valid signature. Reports the server's VmHWM (peak resident memory,
from /proc/PID/status) before and after, the HTTP status, and how many bytes the server
took before answering. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHUNK = 1024 * 1024


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) // 1024
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settle(pid: int, seconds: float = 60.0) -> None:
    """Wait until resident memory stops growing (the background model load is done)."""
    deadline, last = time.monotonic() + seconds, -1
    while time.monotonic() < deadline:
        time.sleep(2)
        now = memory(pid)["VmRSS"]
        if now == last:
            return
        last = now


def send(port: int, megabytes: int) -> tuple[str, int, float]:
    """(status line, bytes sent before the server answered or closed, seconds)."""
    total = megabytes * CHUNK
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(
            (
                "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0=00\r\n"
                f"Content-Length: {total}\r\n\r\n"
            ).encode()
        )
        chunk = b"a" * CHUNK
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass  # the server answered and closed without reading the rest
        try:
            status = sock.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            status = f"(no answer: {exc})"
    return status, sent, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree to run `scout serve` from")
    args = parser.parse_args()
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="scout-oversized-")
    env = {
        **os.environ,
        "PYTHONPATH": str(args.root),
        "DATABASE_URL": f"sqlite:///{workdir}/scout.db",
        "SLACK_BOT_TOKEN": "xoxb-benchmark",
        "SLACK_SIGNING_SECRET": "benchmark-signing-secret",
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",  # never called: nothing is signed
        "HF_HUB_OFFLINE": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=args.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("scout serve did not start") from None
                time.sleep(0.2)
        settle(server.pid)
        before = memory(server.pid)
        status, sent, seconds = send(port, args.megabytes)
        time.sleep(1)
        after = memory(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"source: {args.root}")
    print(f"before the POST: VmRSS {before['VmRSS']} MB, VmHWM {before['VmHWM']} MB")
    print(f"answer: {status!r} after {seconds:.2f} s, {sent // CHUNK} of {args.megabytes} MB sent")
    print(f"after the POST:  VmRSS {after['VmRSS']} MB, VmHWM {after['VmHWM']} MB")


if __name__ == "__main__":
    main()
