"""A real `scout serve` process on 127.0.0.1, sent `/scout` commands as Slack sends them
(signed, concurrently), answering at the fake Slack's response_urls: no command's ack
waits on another command's work, however slow the model or the response_url."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from bot.db import Database
from bot.profiles.catalog import read_papers
from tests.delivery.slack.test_slack_app import add_real_profiles
from tests.fake_slack import FakeSlack, SlackSender
from tests.loopback import free_port
from tests.paths import FIXTURES, ROOT

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLOW_RESPONSE_URL = 2.0  # seconds each slow command's response_url takes to answer


@contextmanager
def scout_serve(db: Database, slack: FakeSlack, log: Path, **extra: str) -> Iterator[str]:
    """`scout serve` in its own process; yields its URL once /healthz answers."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": db.url,
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": "xoxb-t1",
        "SLACK_SIGNING_SECRET": SECRET,
        "HF_HUB_OFFLINE": "1",
        **extra,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "scout serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def text_to_match() -> str:
    paper = read_papers(FIXTURES / "profiles" / "plos-computational-biology.jsonl").papers[0]
    return f"{paper.title}. {paper.abstract}"[:1500]


def test_slow_commands_never_hold_up_another_commands_ack(db: Database, scoring_ctx, tmp_path):
    """Six `match <text>` on a cold server (the model still loading) whose response_urls are
    slow, then `help` and `profiles`: every ack within Slack's 3 s, every answer delivered."""
    add_real_profiles(db, scoring_ctx)
    text = text_to_match()
    with FakeSlack() as slack:
        slack.add_team("T1", "xoxb-t1")
        with scout_serve(db, slack, tmp_path / "serve.log", SLACK_TIMEOUT="10") as url:
            sender = SlackSender(url, SECRET, slack)

            def timed(command: str, delay: float = 0.0):
                started = time.monotonic()
                ack, response_url = sender.command(command, response_delay=delay)
                return command, ack, time.monotonic() - started, response_url

            with ThreadPoolExecutor(8) as pool:
                slow = [pool.submit(timed, f"match {text}", SLOW_RESPONSE_URL) for _ in range(6)]
                time.sleep(0.3)  # the slow ones are in: now the cheap ones
                cheap = [pool.submit(timed, "help"), pool.submit(timed, "profiles")]
                results = [f.result() for f in slow + cheap]
            acks = [(command.split()[0], ack.status_code, round(took, 3)) for command, ack, took, _ in results]
            print("acks (command, status, seconds):", acks, "max", max(t for *_, t in acks))
            assert all(status == 200 for _, status, _ in acks), acks
            assert max(t for *_, t in acks) < 3.0, acks

            help_ack = results[6][1].json()
            assert help_ack["response_type"] == "ephemeral" and "/scout rank PROFILE" in help_ack["text"] + str(
                help_ack.get("blocks")
            )
            for *_, response_url in results[:6]:
                [reply] = slack.wait_response(response_url, timeout=90)
                assert "PLOS Computational Biology" in str(reply["blocks"]), reply
            [profiles] = slack.wait_response(results[7][3], timeout=90)
            assert "eLife" in str(profiles["blocks"])
        log = (tmp_path / "serve.log").read_text()
        assert "on thread model-preload" in log  # loaded from the start, not by the first match
        assert "Traceback" not in log, log[-3000:]
