"""The other side of the wire: a fake Slack Web API on 127.0.0.1, and a Slack that sends
signed requests to our app.

    with FakeSlack() as slack:
        slack.add_team("T1", "xoxb-t1")
        settings = load_settings(SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN="xoxb-t1", ...)
        ...
        slack.fail("chat.postMessage", status=429, retry_after=1)   # next call is rate limited
        slack.set_channel("C9", "archived")                          # posts answer is_archived
        slack.add_user("T1", "U1", "ada@example.org")                # users.info knows U1's address

It answers like Slack: HTTP 200 with `{"ok": false, "error": ...}` for API errors,
HTTP 429 with Retry-After for rate limits, `invalid_blocks` for blocks Slack would
refuse (more than 50, section text over 3,000 characters...). Every call is recorded.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.loopback import LoopbackServer, Request

METHODS = (
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "conversations.open",
    "conversations.replies",
    "views.publish",
    "oauth.v2.access",
    "users.info",
    "apps.connections.open",
)
BLOCK_TYPES = {"section", "divider", "header", "context", "actions", "image", "input", "rich_text", "file", "video"}
PING_MARKERS = ("<!channel>", "<!here>", "<!everyone>", "<!subteam")


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    token: str | None
    at: float


@dataclass
class Failure:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    hang: float = 0.0


@dataclass
class Team:
    team_id: str
    name: str
    bot_user_id: str
    revoked: bool = False


@dataclass
class ResponseUrl:
    path: str
    payloads: list[dict] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    delay: float = 0.0


class FakeSlack:
    def __init__(self, client_id: str = "111.222", client_secret: str = "oauth-secret") -> None:
        self.server = LoopbackServer()
        self.lock = threading.RLock()
        self.calls: list[Call] = []
        self.messages: list[dict] = []
        self.views: list[dict] = []
        self.teams: dict[str, Team] = {}  # token -> team
        self.channels: dict[str, str] = {}  # channel id -> ok | archived | missing | not_in_channel
        self.users: dict[tuple[str, str], str | None] = {}  # (team id, user id) -> profile email
        self.failures: dict[str, deque[Failure]] = defaultdict(deque)
        self.hooks: dict[str, Callable[[Call, dict], None]] = {}
        self.responses: dict[str, ResponseUrl] = {}
        self.oauth_codes: dict[str, tuple[str, str]] = {}  # code -> (team_id, token)
        self.client_id, self.client_secret = client_id, client_secret
        self.socket_url: str | None = None  # what apps.connections.open hands out (tests.fake_socket_mode)
        self.app_tokens: set[str] = set()
        self._ts = itertools.count(1)
        self._urls = itertools.count(1)
        for method in METHODS:
            self.server.route(f"/api/{method}", handler=self._handler(method))

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FakeSlack:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def api_url(self) -> str:
        return self.server.url + "/api/"

    # -- set-up ------------------------------------------------------------------------

    def add_team(self, team_id: str, token: str, name: str | None = None) -> Team:
        team = Team(team_id, name or team_id, f"UBOT{team_id}")
        with self.lock:
            self.teams[token] = team
        return team

    def revoke(self, token: str) -> None:
        with self.lock:
            self.teams[token].revoked = True

    def set_channel(self, channel: str, state: str) -> None:
        with self.lock:
            self.channels[channel] = state

    def add_user(self, team_id: str, user_id: str, email: str | None = None) -> None:
        """A member of a team; `email=None` answers users.info with no `profile.email` (as Slack does
        for an app without the users:read.email scope)."""
        with self.lock:
            self.users[(team_id, user_id)] = email

    def fail(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
        hang: float = 0.0,
    ) -> None:
        """The next `times` calls of `method` fail this way (status 429/5xx, or an API error)."""
        with self.lock:
            for _ in range(times):
                self.failures[method].append(Failure(status, error, retry_after, hang))

    def on(self, method: str, hook: Callable[[Call, dict], None] | None) -> None:
        """Run `hook(call, answer)` after a successful call was accepted, before answering."""
        with self.lock:
            if hook is None:
                self.hooks.pop(method, None)
            else:
                self.hooks[method] = hook

    def add_oauth_code(self, code: str, team_id: str, token: str) -> None:
        with self.lock:
            self.oauth_codes[code] = (team_id, token)

    def response_url(self, delay: float = 0.0) -> str:
        """A fresh response_url (as Slack puts in a slash command or an action)."""
        path = f"/respond/{next(self._urls)}"
        record = ResponseUrl(path, delay=delay)
        with self.lock:
            self.responses[path] = record

        def handler(request: Request):
            if record.delay:
                time.sleep(record.delay)
            with self.lock:
                record.payloads.append(request.json())
                record.times.append(time.monotonic())
            return 200, {"Content-Type": "text/plain"}, b"ok"

        self.server.route(path, handler=handler)
        return self.server.url + path

    def wait_response(self, url: str, count: int = 1, timeout: float = 30.0) -> list[dict]:
        path = url[len(self.server.url) :]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                payloads = list(self.responses[path].payloads)
            if len(payloads) >= count:
                return payloads
            time.sleep(0.01)
        raise AssertionError(f"no answer at {path} within {timeout}s")

    # -- reading what happened ---------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.method == method]

    def posted(self, channel: str | None = None) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if channel is None or m["channel"] == channel]

    def replies(self, parent_ts: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if m.get("thread_ts") == parent_ts]

    def pings(self) -> list[str]:
        """Mentions that would notify people (`<!channel>` and friends) in anything posted."""
        with self.lock:
            texts = [json.dumps(m.get("blocks") or []) + (m.get("text") or "") for m in self.messages]
            texts += [json.dumps(p) for r in self.responses.values() for p in r.payloads]
            texts += [json.dumps(v) for v in self.views]
        return [marker for text in texts for marker in PING_MARKERS if marker in text]

    # -- the API -----------------------------------------------------------------------

    def _handler(self, method: str):
        def handle(request: Request):
            args = _args(request)
            token = _token(request, args)
            call = Call(method, args, token, time.monotonic())
            with self.lock:
                self.calls.append(call)
                failure = self.failures[method].popleft() if self.failures[method] else None
            if failure is not None:
                if failure.hang:
                    time.sleep(failure.hang)
                if failure.status == 429:
                    headers = {"Retry-After": str(failure.retry_after or 1), "Content-Type": "application/json"}
                    return 429, headers, json.dumps({"ok": False, "error": "ratelimited"})
                if failure.status >= 500:
                    return failure.status, {"Content-Type": "text/plain"}, b"upstream error"
                return _json({"ok": False, "error": failure.error or "internal_error"})
            answer = getattr(self, "_" + method.replace(".", "_"))(call)
            hook = self.hooks.get(method)
            if hook is not None and answer.get("ok"):
                hook(call, answer)
            return _json(answer)

        return handle

    def _team(self, call: Call) -> Team | dict:
        team = self.teams.get(call.token or "")
        if call.token is None:
            return {"ok": False, "error": "not_authed"}
        if team is None:
            return {"ok": False, "error": "invalid_auth"}
        if team.revoked:
            return {"ok": False, "error": "token_revoked"}
        return team

    def _auth_test(self, call: Call) -> dict:
        team = self._team(call)
        if isinstance(team, dict):
            return team
        return {
            "ok": True,
            "url": f"https://{team.name.lower()}.slack.com/",
            "team": team.name,
            "user": "scout",
            "team_id": team.team_id,
            "user_id": team.bot_user_id,
            "bot_id": "B" + team.team_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, call: Call) -> dict:
        # Only an app-level token (xapp-) opens a Socket Mode connection; a bot token is refused.
        if call.token is None:
            return {"ok": False, "error": "not_authed"}
        if call.token not in self.app_tokens:
            wrong_kind = call.token.startswith("xoxb-")
            return {"ok": False, "error": "not_allowed_token_type" if wrong_kind else "invalid_auth"}
        return {"ok": True, "url": self.socket_url}

    def _channel_error(self, channel: str) -> str | None:
        if not channel:
            return "channel_not_found"
        state = self.channels.get(channel, "ok")
        return {"archived": "is_archived", "missing": "channel_not_found", "not_in_channel": "not_in_channel"}.get(
            state
        )

    def _chat_postMessage(self, call: Call) -> dict:  # noqa: N802 - Slack's method name
        team = self._team(call)
        if isinstance(team, dict):
            return team
        args = call.args
        channel = args.get("channel", "")
        if error := self._channel_error(channel):
            return {"ok": False, "error": error}
        blocks = _maybe_json(args.get("blocks"))
        text = args.get("text")
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if blocks is not None and (problems := validate_blocks(blocks, 50)):
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        with self.lock:
            ts = f"1700000000.{next(self._ts):06d}"
            message = {
                "ts": ts,
                "channel": channel,
                "team": team.team_id,
                "text": text or "",
                "blocks": blocks,
                "thread_ts": args.get("thread_ts"),
                "metadata": _maybe_json(args.get("metadata")),
                "unfurl_links": args.get("unfurl_links"),
                "user": team.bot_user_id,
            }
            self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": text or "", "ts": ts}}

    def _chat_update(self, call: Call) -> dict:
        team = self._team(call)
        if isinstance(team, dict):
            return team
        blocks = _maybe_json(call.args.get("blocks"))
        if blocks is not None and (problems := validate_blocks(blocks, 50)):
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        with self.lock:
            for message in self.messages:
                if message["channel"] == call.args.get("channel") and message["ts"] == call.args.get("ts"):
                    message["text"] = call.args.get("text", message["text"])
                    message["blocks"] = blocks if blocks is not None else message["blocks"]
                    return {"ok": True, "channel": message["channel"], "ts": message["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _chat_postEphemeral(self, call: Call) -> dict:  # noqa: N802 - Slack's method name
        team = self._team(call)
        return team if isinstance(team, dict) else {"ok": True, "message_ts": "1700000000.999999"}

    def _conversations_open(self, call: Call) -> dict:
        team = self._team(call)
        if isinstance(team, dict):
            return team
        users = str(call.args.get("users", ""))
        if not users:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": "D" + users.split(",")[0]}}

    def _conversations_replies(self, call: Call) -> dict:
        team = self._team(call)
        if isinstance(team, dict):
            return team
        channel, ts = call.args.get("channel", ""), call.args.get("ts", "")
        if error := self._channel_error(channel):
            return {"ok": False, "error": error}
        with_meta = str(call.args.get("include_all_metadata", "")).lower() in ("1", "true")
        with self.lock:
            thread = [
                m for m in self.messages if m["channel"] == channel and (m["ts"] == ts or m.get("thread_ts") == ts)
            ]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        out = []
        for m in thread:
            item = {"type": "message", "ts": m["ts"], "text": m["text"], "thread_ts": ts, "user": m["user"]}
            if with_meta and m.get("metadata"):
                item["metadata"] = m["metadata"]
            out.append(item)
        return {"ok": True, "messages": out, "has_more": False, "response_metadata": {"next_cursor": ""}}

    def _views_publish(self, call: Call) -> dict:
        team = self._team(call)
        if isinstance(team, dict):
            return team
        view = _maybe_json(call.args.get("view")) or {}
        if problems := validate_blocks(view.get("blocks") or [], 100):
            return {"ok": False, "error": "invalid_blocks", "errors": problems}
        with self.lock:
            self.views.append({"user_id": call.args.get("user_id"), "team": team.team_id, "view": view})
        return {"ok": True, "view": {"id": "V1", **view}}

    def _users_info(self, call: Call) -> dict:
        team = self._team(call)
        if isinstance(team, dict):
            return team
        user_id = str(call.args.get("user", ""))
        with self.lock:
            if (team.team_id, user_id) not in self.users:
                return {"ok": False, "error": "user_not_found"}
            email = self.users[(team.team_id, user_id)]
        profile = {"real_name": user_id, "display_name": user_id}
        if email is not None:
            profile["email"] = email
        return {"ok": True, "user": {"id": user_id, "team_id": team.team_id, "tz": "UTC", "profile": profile}}

    def _oauth_v2_access(self, call: Call) -> dict:
        client_id, secret = call.args.get("client_id"), call.args.get("client_secret")
        if (client_id, secret) != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id"}
        found = self.oauth_codes.pop(call.args.get("code", ""), None)
        if found is None:
            return {"ok": False, "error": "invalid_code"}
        team_id, token = found
        team = self.add_team(team_id, token)
        return {
            "ok": True,
            "app_id": "A0SCOUT",
            "authed_user": {"id": "U0INSTALLER"},
            "scope": "commands,chat:write,chat:write.public,im:write",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": team.bot_user_id,
            "team": {"id": team_id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }


def validate_blocks(blocks: Any, limit: int) -> list[str]:
    """What Slack would refuse about a list of blocks (empty when it would accept them)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            problems.append(f"unknown block type {kind!r} {where}")
            continue
        if kind == "section":
            text = block.get("text")
            if text is None and not block.get("fields"):
                problems.append(f"section needs text or fields {where}")
            if text is not None and not _text_ok(text, 3000):
                problems.append(f"must be less than 3001 characters {where}/text")
            for field_ in block.get("fields") or []:
                if not _text_ok(field_, 2000):
                    problems.append(f"must be less than 2001 characters {where}/fields")
            if "accessory" in block and not _element_ok(block["accessory"]):
                problems.append(f"invalid accessory {where}")
        elif kind == "header":
            text = block.get("text") or {}
            if text.get("type") != "plain_text" or not _text_ok(text, 150):
                problems.append(f"header text must be plain_text under 151 characters {where}")
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > 10 or not all(_text_ok(e, 3000) for e in elements):
                problems.append(f"invalid context elements {where}")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25 or not all(_element_ok(e) for e in elements):
                problems.append(f"invalid actions elements {where}")
    return problems


def _text_ok(obj: Any, limit: int) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in ("mrkdwn", "plain_text")
        and isinstance(obj.get("text"), str)
        and 0 < len(obj["text"]) <= limit
    )


def _element_ok(element: Any) -> bool:
    if not isinstance(element, dict) or element.get("type") != "button":
        return isinstance(element, dict) and "type" in element
    text = element.get("text") or {}
    return (
        text.get("type") == "plain_text"
        and _text_ok(text, 75)
        and len(str(element.get("value", ""))) <= 2000
        and len(str(element.get("action_id", ""))) <= 255
    )


def _args(request: Request) -> dict[str, Any]:
    args: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
    content_type = request.headers.get("content-type", "")
    if request.body:
        if "json" in content_type:
            args.update(request.json())
        else:
            args.update({k: v[-1] for k, v in parse_qs(request.body.decode("utf-8")).items()})
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        args.setdefault("client_id", client_id)
        args.setdefault("client_secret", secret)
    return args


def _token(request: Request, args: dict) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:]
    return args.get("token")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _json(data: dict):
    return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(data)


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


# -- our app, served for real -------------------------------------------------------------


@contextmanager
def serve(asgi_app) -> Any:
    """Serve an ASGI app with uvicorn on a free 127.0.0.1 port in a thread; yields its URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# -- a small catalog for tests --------------------------------------------------------------


def seed_catalog(db, profiles: list[str], preprints: list[dict], score) -> dict:
    """Profiles (5 synthetic reference papers each), preprints posted in the last days, and a
    stored score for every (profile, preprint) from `score(profile_index, preprint_index)`.

    Returns {"profiles": [ids], "preprints": [ids]}. No model: the scores are given, and every
    text gets a cached embedding (a fixed pseudo-random unit vector) so "why it matched" is
    computed without loading the model.
    """
    from datetime import date, timedelta

    import numpy as np

    from bot.config import BUNDLED_MODEL
    from bot.db import Embedding, Preprint, Profile, ReferencePaper, Score, ScoringRun
    from bot.profiles.catalog import normalise_name
    from scoring.embedder import vector_key
    from scoring.text import content_hash

    def embed(session, key: str) -> None:
        vector = np.random.default_rng(int(key[:8], 16)).standard_normal(384).astype(np.float32)
        vector /= np.linalg.norm(vector)
        session.merge(Embedding(model=vector_key(BUNDLED_MODEL), content_hash=key, dim=384, vector=vector.tobytes()))

    with db.session() as session:
        run = ScoringRun(
            fingerprint="test",
            model="test",
            profiles=len(profiles),
            reference_papers=0,
            background_ids=[],
            tau=1.0,
            temperature=1.0,
        )
        session.add(run)
        profile_rows = []
        for name in profiles:
            profile = Profile(name=name, name_key=normalise_name(name), source="test")
            profile.papers = [
                ReferencePaper(
                    title=f"{name} reference paper {i}",
                    abstract=f"What {name} published, part {i}.",
                    year=2020 + i,
                    content_hash=content_hash(f"{name} reference paper {i}", str(i)),
                )
                for i in range(5)
            ]
            session.add(profile)
            profile_rows.append(profile)
        preprint_rows = []
        for i, spec in enumerate(preprints):
            title = spec.get("title", f"Preprint number {i}")
            abstract = spec.get("abstract", f"An abstract about finding number {i}.")
            row = Preprint(
                server=spec.get("server", "biorxiv"),
                identifier=spec.get("identifier", f"10.1101/2026.01.{i:02d}.{100000 + i}"),
                doi=spec.get("doi", f"10.1101/2026.01.{i:02d}.{100000 + i}"),
                title=title,
                abstract=abstract,
                authors_json=json.dumps(spec.get("authors", ["Doe, J.", "Roe, R."])),
                category=spec.get("category", "neuroscience"),
                posted=date.today() - timedelta(days=spec.get("age", 1 + i % 20)),
                url=spec.get("url", f"https://www.biorxiv.org/content/10.1101/2026.01.{i:02d}.{100000 + i}v1"),
                content_hash=content_hash(title, abstract),
            )
            session.add(row)
            preprint_rows.append(row)
        session.flush()
        for key in {r.content_hash for p in profile_rows for r in p.papers} | {p.content_hash for p in preprint_rows}:
            embed(session, key)
        for p, profile in enumerate(profile_rows):
            for q, preprint in enumerate(preprint_rows):
                session.add(Score(preprint_id=preprint.id, profile_id=profile.id, run_id=run.id, score=score(p, q)))
        return {"profiles": [p.id for p in profile_rows], "preprints": [p.id for p in preprint_rows]}
