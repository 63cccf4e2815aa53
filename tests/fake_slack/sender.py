"""Slack's side of requests to our app: signed commands, clicks and events."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.fake_slack.web_api import FakeSlack

# -- Slack sending to our app -------------------------------------------------------------


class SlackSender:
    """Sends what Slack sends: slash commands and button clicks form-encoded, events as JSON,
    each signed with the signing secret (X-Slack-Signature, X-Slack-Request-Timestamp)."""

    def __init__(self, app_url: str, signing_secret: str, fake: FakeSlack) -> None:
        self.app_url = app_url.rstrip("/")
        self.secret = signing_secret
        self.fake = fake
        self.http = httpx.Client(timeout=30)

    def signed_headers(self, body: str, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret or self.secret).generate_signature(timestamp=ts, body=body)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}

    def post(self, body: str, content_type: str, **sign: Any) -> httpx.Response:
        headers = {"Content-Type": content_type, **self.signed_headers(body, **sign)}
        return self.http.post(self.app_url + "/slack/events", content=body.encode(), headers=headers)

    def command(
        self,
        text: str,
        *,
        team_id: str = "T1",
        channel_id: str = "C1",
        user_id: str = "U1",
        response_delay: float = 0.0,
        **sign: Any,
    ) -> tuple[httpx.Response, str]:
        """`/scout text`; returns (the ack, the response_url Slack gave)."""
        response_url = self.fake.response_url(delay=response_delay)
        form = {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": team_id.lower(),
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": "editor",
            "command": "/scout",
            "text": text,
            "api_app_id": "A0SCOUT",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
        return self.post(urlencode(form), "application/x-www-form-urlencoded", **sign), response_url

    def click(
        self, action_id: str, value: str, *, team_id: str = "T1", user_id: str = "U1", channel_id: str = "C1"
    ) -> tuple[httpx.Response, str]:
        response_url = self.fake.response_url()
        payload = {
            "type": "block_actions",
            "team": {"id": team_id, "domain": team_id.lower()},
            "user": {"id": user_id, "username": "editor", "team_id": team_id},
            "api_app_id": "A0SCOUT",
            "token": "deprecated-verification-token",
            "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": channel_id},
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
            "channel": {"id": channel_id, "name": "general"},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b1",
                    "value": value,
                    "type": "button",
                    "action_ts": str(time.time()),
                    "text": {"type": "plain_text", "text": "x"},
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded"), response_url

    def event(self, event: dict, *, team_id: str = "T1") -> httpx.Response:
        body = json.dumps(
            {
                "token": "deprecated-verification-token",
                "team_id": team_id,
                "api_app_id": "A0SCOUT",
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{time.monotonic_ns()}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": team_id, "user_id": f"UBOT{team_id}", "is_bot": True}],
            }
        )
        return self.post(body, "application/json")
