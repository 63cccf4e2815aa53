"""`scout socket`, the real process, over Socket Mode: it opens the connection through the
Web API (apps.connections.open), receives a slash command on a WebSocket, acknowledges it
there, and answers at the command's response_url, as Slack's Socket Mode works.

Only Slack's side is fake: the Web API (tests.fake_slack) and the WebSocket
(tests.fake_socket_mode), both on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.db import Database
from tests.fake_slack import FakeSlack, seed_catalog
from tests.fake_socket_mode import SocketModeServer
from tests.loopback import free_port
from tests.paths import ROOT

PROFILES = ["Neural Networks", "PLOS Genetics"]
APP_TOKEN = "xapp-1-A0SCOUT-test"


def command(fake: FakeSlack, text: str) -> dict:
    """A slash command as Socket Mode delivers it: the same fields as the HTTP form."""
    return {
        "token": "deprecated-verification-token",
        "team_id": "T1",
        "team_domain": "t1",
        "channel_id": "C1",
        "channel_name": "general",
        "user_id": "U1",
        "user_name": "editor",
        "command": "/scout",
        "text": text,
        "api_app_id": "A0SCOUT",
        "is_enterprise_install": "false",
        "response_url": fake.response_url(),
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
    }


def socket_env(db: Database, fake: FakeSlack, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SCOUT_", "SMTP_"))}
    # One workspace and its bot token; Socket Mode needs no signing secret (nothing is signed).
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=db.url,
        SLACK_API_URL=fake.api_url,
        SLACK_BOT_TOKEN="xoxb-t1",
        SLACK_APP_TOKEN=APP_TOKEN,
        HF_HUB_OFFLINE="1",
    )
    env.update(extra)
    return env


def start(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "socket"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w")
    )


# Blank OAuth variables (a container passing through unset ones) once made Bolt switch
# on its own OAuth and refuse every command: one workspace must still just work.
BLANK_OAUTH = {"SLACK_CLIENT_ID": "", "SLACK_CLIENT_SECRET": ""}


@pytest.mark.parametrize(
    ("oauth_env", "stop_signal"),
    [({}, signal.SIGTERM), (BLANK_OAUTH, signal.SIGINT)],
    ids=["plain-sigterm", "blank-oauth-ctrl-c"],
)
def test_a_slash_command_over_socket_mode_is_acked_and_answered(db: Database, tmp_path, oauth_env, stop_signal):
    seed_catalog(
        db,
        PROFILES,
        [{"title": f"Preprint {i}", "abstract": f"About {i}."} for i in range(8)],
        lambda p, q: round(0.05 + (q * 7 + p * 3) % 23 / 100, 4),
    )
    log = tmp_path / "socket.log"
    with FakeSlack() as fake, SocketModeServer() as ws:
        fake.add_team("T1", "xoxb-t1")
        fake.app_tokens.add(APP_TOKEN)
        fake.socket_url = ws.url
        proc = start(socket_env(db, fake, **oauth_env), log)
        try:
            ws.wait_connected()
            [opened] = fake.calls_to("apps.connections.open")
            assert opened.token == APP_TOKEN  # the app-level token, not the bot token
            payload = command(fake, "rank PLOS Genetics top 3")
            ack = ws.wait_ack(ws.send("slash_commands", payload))
            assert not ack.get("payload")  # an empty ack: the answer follows at response_url
            [reply] = fake.wait_response(payload["response_url"])
            assert reply["response_type"] == "ephemeral"
            header = reply["blocks"][0]["text"]["text"]
            assert "PLOS Genetics" in header and "based on 5 papers" in header
            shown = [b for b in reply["blocks"] if b.get("accessory", {}).get("action_id") == "scout_abstract"]
            assert len(shown) == 3

            bad = command(fake, "rank No Such Journal")
            ws.wait_ack(ws.send("slash_commands", bad))
            [reply] = fake.wait_response(bad["response_url"])
            assert "No Such Journal" in json.dumps(reply) and "PLOS Genetics" in json.dumps(reply)
            proc.send_signal(stop_signal)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
        text = log.read_text()
        assert "connected to Slack over Socket Mode" in text and f"received {stop_signal.name}: stopping" in text
        assert "Traceback" not in text, text[-3000:]


def test_without_an_app_token_it_says_what_to_set(db: Database, tmp_path):
    with FakeSlack() as fake:
        env = socket_env(db, fake)
        env.pop("SLACK_APP_TOKEN")
        result = run_socket(env)
    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr and "connections:write" in result.stderr
    assert "Traceback" not in result.stderr


def run_socket(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "socket"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_bot_token_in_place_of_the_app_token_is_refused_before_connecting(db: Database):
    with FakeSlack() as fake:
        result = run_socket(socket_env(db, fake, SLACK_APP_TOKEN="xoxb-t1"))
        assert fake.calls_to("apps.connections.open") == []
    assert result.returncode == 2
    assert "app-level token (xapp-" in result.stderr and "connections:write" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_revoked_app_token_is_explained(db: Database):
    with FakeSlack() as fake:  # this Slack knows no app token: apps.connections.open says invalid_auth
        result = run_socket(socket_env(db, fake))
        assert len(fake.calls_to("apps.connections.open")) == 1
    assert result.returncode == 2
    assert "refused the Socket Mode connection (invalid_auth)" in result.stderr and "SLACK_APP_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr and "connected" not in result.stderr


def test_an_unreachable_slack_exits_with_status_1_for_a_supervisor(db: Database):
    with FakeSlack() as fake:
        env = socket_env(db, fake)
    env["SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there
    result = run_socket(env)
    assert result.returncode == 1
    assert "cannot reach Slack at http://127.0.0.1:" in result.stderr and "Traceback" not in result.stderr
