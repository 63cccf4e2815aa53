"""The fake Slack Web API: teams, channels, messages, failures on demand, every call recorded."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fake_slack.blocks import PING_MARKERS, validate_blocks
from tests.loopback import LoopbackServer, Request, wait_for

METHODS = (
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "conversations.open",
    "conversations.replies",
    "conversations.history",
    "views.publish",
    "oauth.v2.access",
    "users.info",
    "apps.connections.open",
)


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
    after: bool = False  # the call takes effect first; only the answer fails (lost or wrong)


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
        self._last_ts = 0
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

    def sender_env(self, token: str = "xoxb-t1") -> dict[str, str]:
        """The environment a `scout` process needs to send through this fake with `token`: no
        pacing, a 1 s timeout and short backoffs, so faults cost a test little time."""
        return {
            "SLACK_API_URL": self.api_url,
            "SLACK_BOT_TOKEN": token,
            "SLACK_SIGNING_SECRET": "secret",
            "SLACK_POST_INTERVAL": "0",
            "SLACK_TIMEOUT": "1",
            "SLACK_RETRY_BACKOFF": "0.05",
        }

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
        after: bool = False,
    ) -> None:
        """The next `times` calls of `method` fail this way (status 429/5xx, or an API error).
        With `after=True` the call takes effect (a message is posted) and only its answer
        fails: the ambiguous case a sender must reconcile instead of sending again."""
        with self.lock:
            for _ in range(times):
                self.failures[method].append(Failure(status, error, retry_after, hang, after))

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

        def payloads() -> list[dict] | None:
            with self.lock:
                found = list(self.responses[path].payloads)
            return found if len(found) >= count else None

        return wait_for(payloads, timeout, f"an answer at {path}")

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
            if failure is not None and failure.after:
                answer = getattr(self, "_" + method.replace(".", "_"))(call)
                if (hook := self.hooks.get(method)) is not None and answer.get("ok"):
                    hook(call, answer)
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
            ts = self._next_ts()
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

    def _next_ts(self) -> str:
        """Like Slack's: the posting time in seconds with six decimals, unique and increasing
        (a sender may look for its own message by time, with `oldest`)."""
        micros = max(int(time.time() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

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

    def _conversations_history(self, call: Call) -> dict:
        team = self._team(call)
        if isinstance(team, dict):
            return team
        channel = call.args.get("channel", "")
        if error := self._channel_error(channel):
            return {"ok": False, "error": error}
        oldest = float(call.args.get("oldest") or 0)
        with_meta = str(call.args.get("include_all_metadata", "")).lower() in ("1", "true")
        with self.lock:
            top = [m for m in self.messages if m["channel"] == channel and not m.get("thread_ts")]
        out = []
        for m in reversed(top):  # newest first, as Slack answers
            if float(m["ts"]) < oldest:
                continue
            item = {"type": "message", "ts": m["ts"], "text": m["text"], "user": m["user"]}
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
