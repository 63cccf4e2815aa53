"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), recording what it accepted.

    with SmtpServer() as smtp:
        smtp.refuse("gone@example.org")              # 550 at RCPT for this address
        smtp.defer_all("421 4.3.2 Try again later")  # every RCPT answered 4xx
        ... deliver with SMTP_URL=smtp.url ...
        msg = smtp.messages[-1].message              # an email.message.EmailMessage

`closed_port_url()` is an SMTP_URL where nothing listens: a server that is down.
`SilentServer` accepts TCP connections and never says a word (a hung mail server).
`smtp.answer_data("552 5.3.4 Message too big")` answers DATA with that reply instead of
250; `smtp.answer_late(seconds)` takes the message and then waits before its 250 (a
client with a shorter timeout never hears that it was accepted); `smtp.hold_answers()` takes
messages and answers none until `smtp.release()` (`hold_answers(1)`: only the next one);
`smtp.drop_after_data()`
takes the message and closes the connection unanswered; `smtp.answer_quit_late(s)` delays
the answer to QUIT.
With `tls=make_tls(...)` (tests.certificates) the server speaks TLS: `starttls=True`
offers STARTTLS and requires it before AUTH or MAIL; `starttls=False` is implicit TLS
(`url` is then smtps://).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.certificates import Tls
from tests.loopback import free_port


def closed_port_url() -> str:
    """An smtp:// URL on loopback with nothing listening (connection refused)."""
    return f"smtp://127.0.0.1:{free_port()}"


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.content)


class _Handler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.refused: dict[str, str] = {}
        self.deferred: str | None = None
        self.rcpt_attempts: list[str] = []
        self.data_reply: str | None = None
        self.data_delay = 0.0
        self.quit_delay = 0.0
        self.drop_after_data = False
        self.held: threading.Event | None = None
        self.hold_left: int | None = None  # how many more messages to hold (None: all)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        with self.lock:
            self.rcpt_attempts.append(address)
            if self.deferred:
                return self.deferred
            reply = self.refused.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_QUIT(self, server, session, envelope):  # noqa: N802
        with self.lock:
            delay = self.quit_delay
        await asyncio.sleep(delay)
        return "221 Bye"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            reply, delay, drop, held = self.data_reply, self.data_delay, self.drop_after_data, self.held
            if held is not None and self.hold_left is not None:
                held = held if self.hold_left > 0 else None
                self.hold_left = max(self.hold_left - 1, 0)
            if reply is None:
                self.received.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
                )
        if drop:  # kept the message, then the connection goes before any answer
            server.transport.abort()
        await asyncio.sleep(delay)
        while held is not None and not held.is_set():  # the test says when the answer comes
            await asyncio.sleep(0.02)
        return reply or "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on a free loopback port; optional AUTH (user, password), over plain text
    unless `tls` is given."""

    def __init__(
        self,
        credentials: tuple[str, str] | None = None,
        tls: Tls | None = None,
        starttls: bool = True,
        smtputf8: bool = False,
    ) -> None:
        self.handler = _Handler()
        self.port = free_port()
        self.implicit_tls = tls is not None and not starttls
        kwargs: dict = {}
        if credentials:
            user, password = (c.encode() for c in credentials)

            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (user, password)
                return AuthResult(success=ok, handled=False)

            # aiosmtpd counts only STARTTLS as TLS for AUTH; over implicit TLS it must be told.
            kwargs = {
                "authenticator": authenticator,
                "auth_require_tls": tls is not None and starttls,
                "auth_required": True,
            }
        if tls is not None and starttls:
            kwargs.update(tls_context=tls.server_context(), require_starttls=True)
        elif tls is not None:
            kwargs.update(ssl_context=tls.server_context())
        self._controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=smtputf8, **kwargs
        )

    @property
    def url(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    @property
    def rcpt_attempts(self) -> list[str]:
        with self.handler.lock:
            return list(self.handler.rcpt_attempts)

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user here") -> None:
        with self.handler.lock:
            self.handler.refused[address.lower()] = reply

    def defer_all(self, reply: str | None = "421 4.3.2 Service not available, try again later") -> None:
        with self.handler.lock:
            self.handler.deferred = reply

    def answer_data(self, reply: str | None) -> None:
        """Answer every DATA with `reply` (e.g. a 552), keeping nothing; None: accept again."""
        with self.handler.lock:
            self.handler.data_reply = reply

    def answer_late(self, seconds: float) -> None:
        """Keep each message, then wait `seconds` before the 250 (0: answer at once)."""
        with self.handler.lock:
            self.handler.data_delay = seconds

    def hold_answers(self, messages: int | None = None) -> None:
        """Keep each message and answer nothing until `release()`: a sender held mid-message
        for as long as the test needs, however slow the machine. With `messages`, only the
        next that many are held; the ones after are answered at once."""
        with self.handler.lock:
            self.handler.held = threading.Event()
            self.handler.hold_left = messages

    def release(self) -> None:
        with self.handler.lock:
            if self.handler.held is not None:
                self.handler.held.set()

    def drop_after_data(self, drop: bool = True) -> None:
        """Keep each message, then close the connection without answering DATA."""
        with self.handler.lock:
            self.handler.drop_after_data = drop

    def answer_quit_late(self, seconds: float) -> None:
        """Wait `seconds` before answering QUIT (0: at once)."""
        with self.handler.lock:
            self.handler.quit_delay = seconds

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self.release()  # a held session must not keep the server from stopping
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers: no greeting, no reply.

    The kernel completes the handshake, so the client's connect succeeds and it waits for
    a greeting that never comes; `connections` counts how many it opened.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._held)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._held.append(conn)  # held open, never read from or written to

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
        with self._lock:
            for conn in self._held:
                conn.close()
