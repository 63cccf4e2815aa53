"""SMTP: one session per run over STARTTLS or implicit TLS, and what each answer means."""

from __future__ import annotations

import io
import ipaddress
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email import policy
from email.generator import BytesGenerator
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from bot.config import Settings, SettingsError
from bot.delivery.email.addresses import domain, sender
from scoring.errors import ScoutError
from scoring.text import one_line

HEADER_POLICY = policy.SMTP.clone(max_line_length=998)
# RFC 2045: quoted-printable lines are at most 76 characters; the body is encoded with this.
BODY_POLICY = policy.SMTP.clone(max_line_length=76)
# Waiting for the answer to QUIT gains nothing (the mail is in): never a full timeout, and
# once in a run a server left QUIT unanswered, no wait at all for the rest of the run.
QUIT_WAIT = 1.0


class MailError(ScoutError):
    """Mail could not be sent; the message says why and what to do."""


class TemporaryMailError(MailError):
    """Worth retrying later: the server is down, timed out, or answered 4xx.

    `server_down` is True when the server could not be talked to at all, so the rest of
    the run is not worth trying either. `maybe_sent` is True when the connection was lost
    after the message went out (no answer to DATA): the server may have taken it.
    """

    def __init__(self, message: str, server_down: bool = False, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.server_down = server_down
        self.maybe_sent = maybe_sent


class Undeliverable(MailError):
    """This address cannot get this mail from this server, for good: pause, do not retry."""


class RecipientRefused(Undeliverable):
    """The server refused this recipient for good (a 5xx reply to RCPT)."""

    def __init__(self, code: int, reply: str) -> None:
        super().__init__(f"the mail server refused the address: {code} {reply}".strip())
        self.code = code


class MessageRefused(Undeliverable):
    """The server refused the message itself for good (a 5xx reply to DATA, e.g. 552 too big)."""

    def __init__(self, code: int, reply: str) -> None:
        super().__init__(f"the mail server refused the message: {code} {reply}".strip())
        self.code = code


@dataclass(frozen=True)
class SmtpServer:
    implicit_tls: bool
    host: str
    port: int
    username: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SettingsError("SMTP_URL must look like smtp://user:pass@host:587 or smtps://user:pass@host:465")
        try:
            port = parts.port
        except ValueError:
            raise SettingsError("SMTP_URL has an invalid port") from None
        implicit = parts.scheme == "smtps"
        return cls(
            implicit_tls=implicit,
            host=parts.hostname,
            port=port or (465 if implicit else 587),
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )

    @property
    def display(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpClient:
    """One SMTP session, opened on first use and reused for the run; a context manager.

    STARTTLS (with certificate and host name verification) whenever the server offers it,
    implicit TLS for smtps://; a password is never sent in the clear except to loopback.
    A connection that failed (timeout, reset) is dropped without a QUIT: waiting for the
    answer of a server that already failed to answer would cost another timeout.
    """

    def __init__(self, server: SmtpServer, timeout: float, helo: str | None = None) -> None:
        self.server = server
        self.timeout = timeout
        self.helo = helo
        self.quit_wait = QUIT_WAIT
        self.quit_unanswered = False
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Say QUIT to a healthy server, waiting `quit_wait` at most for the answer; just
        close a broken connection."""
        conn, self._conn = self._conn, None
        if conn is None or conn.sock is None:
            return
        try:
            if self.quit_wait > 0:
                conn.sock.settimeout(min(self.timeout, self.quit_wait))
                conn.quit()
            else:
                conn.putcmd("quit")
        except (smtplib.SMTPException, OSError):
            self.quit_unanswered = True
        finally:
            conn.close()

    def _drop(self) -> None:
        """Close without a word: the server failed to answer or the session is broken."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connect(self) -> smtplib.SMTP:
        s = self.server
        context = ssl.create_default_context()
        try:
            if s.implicit_tls:
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, local_hostname=self.helo, context=context)
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=self.timeout, local_hostname=self.helo)
            try:
                conn.ehlo()
                if not s.implicit_tls:
                    if conn.has_extn("starttls"):
                        conn.starttls(context=context)
                        conn.ehlo()
                    elif s.username and not _loopback(s.host):
                        raise TemporaryMailError(
                            f"{s.display} offers no STARTTLS: refusing to send the SMTP password unencrypted "
                            "(use an smtps:// URL or a server with STARTTLS)",
                            server_down=True,
                        )
                if s.username:
                    conn.login(s.username, s.password)
            except BaseException:
                conn.close()
                raise
        except TemporaryMailError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise TemporaryMailError(
                f"SMTP login to {s.display} failed ({exc.smtp_code}); check the user and password in SMTP_URL",
                server_down=True,
            ) from None
        except ssl.SSLError as exc:
            raise TemporaryMailError(f"TLS with {s.display} failed: {exc}", server_down=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryMailError(
                f"cannot reach the mail server {s.display}: {_describe(exc)}", server_down=True
            ) from None
        return conn

    def send(self, message: EmailMessage, envelope_from: str, recipient: str) -> None:
        """Hand one message to the server; returns when it accepted it, raises otherwise:
        Undeliverable (for good: pause), TemporaryMailError (retry later)."""
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        international = not (envelope_from.isascii() and recipient.isascii())
        if international and not conn.has_extn("smtputf8"):
            raise Undeliverable(
                f"the address {recipient} has non-ASCII characters and the mail server {self.server.display} "
                "does not offer SMTPUTF8, which such an address needs; use an ASCII address or a server with SMTPUTF8"
            )
        payload = wire_bytes(message, utf8=international)
        options = ["SMTPUTF8", "BODY=8BITMIME"] if international else []
        try:
            code, reply = conn.mail(envelope_from, options)
            if code != 250:
                raise self._sender_error(code, reply, envelope_from)
            code, reply = conn.rcpt(recipient)
            if code not in (250, 251):
                raise self._reply_error(code, reply, RecipientRefused, f"the mail server deferred {recipient}")
        except MailError:
            self._reset()
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TemporaryMailError(
                f"lost the mail server {self.server.display}: {_describe(exc)}", server_down=True
            ) from None
        try:
            code, reply = conn.data(payload)
        except smtplib.SMTPDataError as exc:  # DATA itself refused: the message never went out
            code, reply = exc.smtp_code, exc.smtp_error
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TemporaryMailError(
                f"lost the mail server {self.server.display} before it answered the message "
                f"(it may have been accepted; a retry carries the same Message-ID): {_describe(exc)}",
                server_down=True,
                maybe_sent=True,
            ) from None
        if code != 250:
            self._reset()
            raise self._reply_error(code, reply, MessageRefused, "the mail server deferred the message")

    def _sender_error(self, code: int, reply: bytes | str, envelope_from: str) -> TemporaryMailError:
        # Every address would fail the same way: the rest of the run waits.
        if code == 421:
            self._drop()
        return TemporaryMailError(
            f"the mail server refused the sender {envelope_from} (SCOUT_MAIL_FROM): {code} {_text(reply)}",
            server_down=True,
        )

    def _reply_error(self, code: int, reply: bytes | str, refused: type[Undeliverable], what: str) -> MailError:
        # 421 means the server is closing the session: the service is unavailable, so
        # reconnect next time and let the rest of the run wait.
        if code == 421:
            self._drop()
        if 500 <= code < 600 and not (refused is RecipientRefused and _about_the_server(reply)):
            return refused(code, _text(reply))
        if 500 <= code < 600:
            # "5.7.1 Relay access denied" and other policy refusals say nothing about this
            # address: every address would meet it, so none is paused and the run waits.
            return TemporaryMailError(
                f"the mail server refused to relay to {what.rsplit(' ', 1)[-1]}: {code} {_text(reply)}; "
                "check SMTP_URL's credentials and the relay's policy",
                server_down=True,
            )
        return TemporaryMailError(f"{what}: {code} {_text(reply)}", server_down=code == 421)

    def _reset(self) -> None:
        """RSET after a refused transaction, so the session can carry the next address."""
        if self._conn is None:
            return
        try:
            self._conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()


def wire_bytes(message: EmailMessage, utf8: bool = False) -> bytes:
    """The message as sent: CRLF lines, UTF-8 headers only for an SMTPUTF8 transaction."""
    buffer = io.BytesIO()
    generator_policy = message.policy.clone(utf8=True) if utf8 else message.policy
    BytesGenerator(buffer, policy=generator_policy).flatten(message, linesep="\r\n")
    return buffer.getvalue()


def _about_the_server(reply: bytes | str) -> bool:
    """A 5xx at RCPT whose enhanced status (RFC 3463) is not about the address (X.1 addressing,
    X.2 mailbox, X.6 content such as SMTPUTF8) but about policy or the system: relaying
    denied, authentication needed. Without an enhanced status, the address is blamed."""
    parts = _text(reply).split(" ", 1)[0].split(".")
    return len(parts) == 3 and parts[0] == "5" and parts[1] in ("3", "4", "5", "7")


def _text(reply: bytes | str) -> str:
    """A server's reply as one line for a status reason or a terminal: no controls."""
    return one_line(reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return str(exc) or type(exc).__name__


def smtp_client(settings: Settings) -> SmtpClient:
    server = SmtpServer.from_url(settings.smtp_url.get_secret_value())
    timeout = settings.smtp_timeout or settings.http_timeout
    return SmtpClient(server, timeout=timeout, helo=domain(sender(settings)[1]))
