"""Email: digests, confirmation mail and subscriptions by address, sent over SMTP.

One message per address per due run groups every profile that address follows:
multipart/alternative with the plain text first and HTML second, both rendered from
`templates/email/`. Each message carries a visible unsubscribe link per profile and the
RFC 8058 one-click headers, signed per recipient and list (bot/tokens.py).

Delivery follows DESIGN.md's reliability rules: the ledger (bot.delivery.digests) is written only
after the SMTP server accepted the message, in one transaction with the digest rows, so
a run that dies resumes without sending twice; a recipient the server refuses (5xx) pauses
that address's subscriptions; a server that is down or answers 4xx fails the digest and the
subscription is retried on a later run with exponential backoff.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import unquote, urlencode, urlsplit

from sqlalchemy import select

from bot.config import Settings, SettingsError
from bot.db import Database, Delivery, Digest, Subscription, utcnow
from bot.delivery.digests import DigestOutcome, DigestPlan, open_digest, plan_digest, schedule_next
from bot.render import render
from bot.scores.update import ScoringContext
from bot.delivery.subscriptions import Options, Target, describe, subscribe, subscriptions_for
from bot.tokens import CONFIRM, MAX_AGE, UNSUBSCRIBE, TokenError, make_token, read_token
from scoring.thresholds import KINDS

log = logging.getLogger(__name__)

KIND = "email"
DEFAULT_NAME = "Preprint Scout"
RETRY_BASE = timedelta(minutes=5)
RETRY_MAX = timedelta(hours=6)
HEADER_POLICY = policy.SMTP.clone(max_line_length=998)
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


class MailError(Exception):
    """Mail could not be sent; the message says why and what to do."""


class TemporaryMailError(MailError):
    """Worth retrying later: the server is down, timed out, or answered 4xx.

    `server_down` is True when the server could not be talked to at all, so the rest of
    the run is not worth trying either.
    """

    def __init__(self, message: str, server_down: bool = False) -> None:
        super().__init__(message)
        self.server_down = server_down


class RecipientRefused(MailError):
    """The server refused this recipient for good (a 5xx reply)."""

    def __init__(self, code: int, reply: str) -> None:
        super().__init__(f"the mail server refused the address: {code} {reply}".strip())
        self.code = code


# -- settings and addresses --------------------------------------------------------------


def require_email_settings(settings: Settings) -> None:
    """Email needs SMTP_URL, SCOUT_MAIL_FROM, SCOUT_BASE_URL and SCOUT_SECRET_KEY; say which are missing."""
    from bot.tokens import secret_key

    missing = [
        name
        for name, value in (
            ("SMTP_URL", settings.smtp_url.get_secret_value()),
            ("SCOUT_MAIL_FROM", settings.mail_from),
            ("SCOUT_BASE_URL", settings.base_url),
        )
        if not value
    ]
    if missing:
        raise SettingsError(
            f"email is not set up: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
            "(SMTP_URL=smtp://user:pass@host:587, SCOUT_MAIL_FROM=scout@example.org, "
            "SCOUT_BASE_URL=https://scout.example.org; see README, Email)"
        )
    secret_key(settings)
    if not _ADDRESS.match(parseaddr(settings.mail_from)[1]):
        raise SettingsError(f"SCOUT_MAIL_FROM is not an email address: {settings.mail_from!r}")


def normalise_address(text: str) -> str:
    """One plain address, lower-cased; ValueError with an example otherwise."""
    raw = (text or "").strip()
    # "Name <addr>" or a bare address; parseaddr is too lenient ("a b@x.org" -> "ab@x.org").
    match = re.fullmatch(r"[^<>]*<([^<>]+)>|([^<>]+)", raw)
    addr = (match.group(1) or match.group(2)).strip().lower() if match else ""
    if any(ord(c) < 32 for c in raw) or not _ADDRESS.fullmatch(addr):
        raise ValueError(f"{raw!r} is not an email address; give one plain address, e.g. editor@example.org")
    return addr


def sender(settings: Settings) -> tuple[str, str]:
    """(From header, envelope sender): a stable From, with a display name."""
    name, addr = parseaddr(settings.mail_from)
    display = f"{name or DEFAULT_NAME} <{addr}>"
    return display, addr


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1]


# -- SMTP --------------------------------------------------------------------------------


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
    """

    def __init__(self, server: SmtpServer, timeout: float, helo: str | None = None) -> None:
        self.server = server
        self.timeout = timeout
        self.helo = helo
        self._conn: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
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
        """Hand one message to the server; returns when it accepted it, raises otherwise."""
        if self._conn is None:
            self._conn = self._connect()
        try:
            self._conn.send_message(message, from_addr=envelope_from, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (0, b""))
            raise self._reply_error(code, reply, f"the mail server deferred {recipient}") from None
        except smtplib.SMTPSenderRefused as exc:
            self.close()
            raise TemporaryMailError(
                f"the mail server refused the sender {envelope_from} (SCOUT_MAIL_FROM): "
                f"{exc.smtp_code} {_text(exc.smtp_error)}",
                server_down=True,
            ) from None
        except smtplib.SMTPDataError as exc:
            raise self._reply_error(exc.smtp_code, exc.smtp_error, "the mail server deferred the message") from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise TemporaryMailError(
                f"lost the mail server {self.server.display}: {_describe(exc)}", server_down=True
            ) from None

    def _reply_error(self, code: int, reply: bytes | str, what: str) -> MailError:
        # 421 means the server is closing the session (smtplib already closed it): the
        # service is unavailable, so reconnect next time and let the rest of the run wait.
        closing = code == 421 or self._conn is None or self._conn.sock is None
        if closing:
            self.close()
        if 500 <= code < 600:
            return RecipientRefused(code, _text(reply))
        return TemporaryMailError(f"{what}: {code} {_text(reply)}", server_down=code == 421)


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return str(exc) or type(exc).__name__


def smtp_client(settings: Settings) -> SmtpClient:
    server = SmtpServer.from_url(settings.smtp_url.get_secret_value())
    return SmtpClient(server, timeout=settings.http_timeout, helo=_domain(sender(settings)[1]))


# -- messages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One profile in a digest email."""

    subscription_id: int
    plan: DigestPlan
    description: str  # "PLOS Genetics: top 1%, daily at 08:00 UTC, up to 20"
    unsubscribe_url: str


def link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.base_url}{path}?{urlencode({'token': token})}"


def unsubscribe_url(settings: Settings, email: str, subscription_ids: list[int]) -> str:
    return link(settings, "/email/unsubscribe", make_token(settings, UNSUBSCRIBE, email, subscription_ids))


def digest_subject(sections: list[Section]) -> str:
    total = sum(len(s.plan.items) for s in sections)
    if total == 0:
        return f"Preprint Scout: no new matches for {_join([s.plan.profile for s in sections])}"
    named = [f"{s.plan.profile} ({len(s.plan.items)})" if len(sections) > 1 else s.plan.profile for s in sections]
    return f"Preprint Scout: {total} new match{'es' if total != 1 else ''} for {_join(named)}"


def _join(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _message(
    settings: Settings, to: str, subject: str, text: str, html: str, now: datetime, message_id: str | None = None
) -> EmailMessage:
    from_header, from_addr = sender(settings)
    # RFC 5322 allows 998-character lines; at 78 Python folds a long Subject right after the colon.
    msg = EmailMessage(policy=HEADER_POLICY)
    msg["From"] = from_header
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id or make_msgid(domain=_domain(from_addr))
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    # quoted-printable: 7-bit safe for any relay (no 8BITMIME needed), still readable raw.
    msg.set_content(text + "\n", cte="quoted-printable")
    msg.add_alternative(html + "\n", subtype="html", cte="quoted-printable")
    return msg


def build_digest_message(
    settings: Settings, email: str, sections: list[Section], now: datetime, message_id: str | None = None
) -> EmailMessage:
    ids = [s.subscription_id for s in sections]
    all_url = unsubscribe_url(settings, email, ids)
    subject = digest_subject(sections)
    context = {
        "subject": subject,
        "email": email,
        "sections": sections,
        "total": sum(len(s.plan.items) for s in sections),
        "unsubscribe_url": all_url,
        "base_url": settings.base_url,
    }
    text = render("email/digest.txt.j2", **context)
    html = render("email/digest.html.j2", **context)
    msg = _message(settings, email, subject, text, html, now, message_id)
    # RFC 8058 one-click: a POST to this URL unsubscribes the recipient from this list.
    msg["List-Unsubscribe"] = f"<{all_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Id"] = f"Preprint Scout digest <digest.{_domain(sender(settings)[1])}>"
    return msg


def build_confirm_message(settings: Settings, sub: Subscription, now: datetime) -> EmailMessage:
    token = make_token(settings, CONFIRM, sub.email, [sub.id])
    context = {
        "email": sub.email,
        "profile": sub.profile.name,
        "description": describe(sub),
        "confirm_url": link(settings, "/email/confirm", token),
        "valid_days": MAX_AGE[CONFIRM].days,
        "base_url": settings.base_url,
    }
    subject = f"Confirm your Preprint Scout digest for {sub.profile.name}"
    text = render("email/confirm.txt.j2", **context)
    html = render("email/confirm.html.j2", **context)
    return _message(settings, sub.email, subject, text, html, now)


# -- digests -----------------------------------------------------------------------------


@dataclass
class _Group:
    email: str
    subs: list[Subscription] = field(default_factory=list)


@dataclass(frozen=True)
class _Batch:
    """One address's message, ready to send."""

    email: str
    sections: list[Section]
    digest_ids: dict[int, int]
    message_id: str

    def outcomes(self, sent: bool) -> list[DigestOutcome]:
        return [
            DigestOutcome(
                s.subscription_id,
                self.email,
                s.plan.profile,
                sent=len(s.plan.items) if sent else 0,
                planned=len(s.plan.items),
            )
            for s in self.sections
        ]


class EmailDeliverer:
    """Sends due email digests: one message per address, grouping every profile it follows."""

    kind = KIND

    def __init__(self, settings: Settings, db: Database, ctx: ScoringContext | None = None) -> None:
        require_email_settings(settings)
        self.settings = settings
        self.db = db
        self.ctx = ctx

    def run(self, subscription_ids: list[int], now: datetime, dry_run: bool) -> list[DigestOutcome]:
        with self.db.session() as session:
            subs = list(
                session.scalars(
                    select(Subscription)
                    .where(Subscription.id.in_(subscription_ids), Subscription.kind == KIND)
                    .order_by(Subscription.id)
                )
            )
            groups: dict[str, _Group] = {}
            for sub in subs:
                groups.setdefault(sub.email.lower(), _Group(sub.email.lower())).subs.append(sub)
            addresses = list(groups)
        outcomes: list[DigestOutcome] = []
        down: str | None = None  # once the server is unreachable, the rest of the run waits too
        with smtp_client(self.settings) as client:
            for email in addresses:
                ids = [s.id for s in groups[email].subs]
                try:
                    skipped, batch = self._prepare(email, ids, now, dry_run)
                except Exception as exc:  # a bad row must not stop the other addresses
                    log.exception("email digest for subscriptions %s failed", ids)
                    outcomes.extend(self._failed(ids, f"{type(exc).__name__}: {exc}", now, paused=False))
                    continue
                outcomes.extend(skipped)
                if batch is None:
                    continue
                if dry_run:
                    outcomes.extend(batch.outcomes(sent=False))
                    continue
                attempted = [s.subscription_id for s in batch.sections]
                try:
                    if down is not None:
                        raise TemporaryMailError(down, server_down=True)
                    self._send(client, batch, now)
                    outcomes.extend(batch.outcomes(sent=True))
                except TemporaryMailError as exc:
                    down = str(exc) if exc.server_down else down
                    outcomes.extend(self._failed(attempted, str(exc), now, paused=False))
                except RecipientRefused as exc:
                    outcomes.extend(self._failed(ids, str(exc), now, paused=True))
                except Exception as exc:
                    log.exception("email digest for subscriptions %s failed", attempted)
                    outcomes.extend(self._failed(attempted, f"{type(exc).__name__}: {exc}", now, paused=False))
        return outcomes

    def _prepare(
        self, email: str, ids: list[int], now: datetime, dry_run: bool
    ) -> tuple[list[DigestOutcome], _Batch | None]:
        """Plan each subscription of one address; move the empty ones on; open digests for the rest."""
        with self.db.session() as session:
            subs = [session.get(Subscription, i) for i in ids]
            subs = [s for s in subs if s is not None and s.status == "active"]
            plans = [(s, plan_digest(session, self.ctx, s, now, self.settings.window_days)) for s in subs]
            wanted = [(s, p) for s, p in plans if p.items or s.send_empty]
            skipped = [s for s, p in plans if not (p.items or s.send_empty)]
            outcomes = [DigestOutcome(s.id, email, s.profile.name, skipped=True) for s in skipped]
            if not dry_run:
                for s in skipped:  # nothing to say: on to the next scheduled run
                    s.last_run_at = now
                    schedule_next(s, now)
            if not wanted:
                return outcomes, None
            sections = [Section(s.id, p, describe(s), unsubscribe_url(self.settings, email, [s.id])) for s, p in wanted]
            if dry_run:
                return outcomes, _Batch(email, sections, {}, "")
            digests = {s.id: open_digest(session, s) for s, _ in wanted}
            # A digest left open by a run that died keeps its Message-ID, so a resend can be recognised.
            message_id = next((d.message_id for d in digests.values() if d.message_id), None)
            message_id = message_id or make_msgid(domain=_domain(sender(self.settings)[1]))
            for d in digests.values():
                d.message_id = message_id
            session.flush()
            return outcomes, _Batch(email, sections, {sid: d.id for sid, d in digests.items()}, message_id)

    def _send(self, client: SmtpClient, batch: _Batch, now: datetime) -> None:
        message = build_digest_message(self.settings, batch.email, batch.sections, now, batch.message_id)
        client.send(message, sender(self.settings)[1], batch.email)
        self._record_sent(batch.sections, batch.digest_ids, now)

    def _record_sent(self, sections: list[Section], digest_ids: dict[int, int], now: datetime) -> None:
        """The server accepted the message: ledger rows, digests and schedules in one transaction."""
        with self.db.session() as session:
            for section in sections:
                sid = section.subscription_id
                done = set(
                    session.scalars(
                        select(Delivery.preprint_id).where(
                            Delivery.subscription_id == sid, Delivery.preprint_id.in_(section.plan.preprint_ids)
                        )
                    )
                )
                new = 0
                for pid, item in zip(section.plan.preprint_ids, section.plan.items, strict=True):
                    if pid not in done:
                        session.add(
                            Delivery(subscription_id=sid, preprint_id=pid, digest_id=digest_ids[sid], score=item.score)
                        )
                        new += 1
                digest = session.get(Digest, digest_ids[sid])
                digest.items += new
                digest.status, digest.error, digest.finished_at = "done", None, utcnow()
                sub = session.get(Subscription, sid)
                sub.last_run_at = now
                schedule_next(sub, now)

    def _failed(self, ids: list[int], error: str, now: datetime, paused: bool) -> list[DigestOutcome]:
        """Mark the address's digests failed; pause (refused) or back off (temporary)."""
        outcomes = []
        with self.db.session() as session:
            for sid in ids:
                sub = session.get(Subscription, sid)
                if sub is None or sub.status != "active":
                    continue
                digest = open_digest(session, sub)
                digest.status, digest.error, digest.finished_at = "failed", error, utcnow()
                if paused:
                    sub.status, sub.status_reason = "paused", error
                else:
                    sub.next_run_at = now + retry_delay(session, sid)
                outcomes.append(DigestOutcome(sid, sub.email, sub.profile.name, error=error, paused=paused))
        return outcomes


def retry_delay(session, subscription_id: int) -> timedelta:
    """Exponential backoff over the failed digests since the last one that went out."""
    statuses = session.scalars(
        select(Digest.status).where(Digest.subscription_id == subscription_id).order_by(Digest.id.desc()).limit(12)
    )
    failures = 0
    for status in statuses:
        if status != "failed":
            break
        failures += 1
    return min(RETRY_BASE * 2 ** max(failures - 1, 0), RETRY_MAX)


def make_email_deliverer(settings: Settings, db: Database, ctx: ScoringContext | None = None) -> EmailDeliverer | None:
    """The email deliverer, or None when SMTP_URL is not set (email is optional)."""
    if not settings.smtp_url.get_secret_value():
        return None
    return EmailDeliverer(settings, db, ctx)


# -- subscriptions by address ------------------------------------------------------------


@dataclass(frozen=True)
class EmailSubscription:
    subscription_id: int
    email: str
    profile: str
    description: str
    status: str  # "active" | "pending"
    created: bool
    confirmation_sent: bool

    @property
    def message(self) -> str:
        if self.status == "pending":
            return (
                f"confirmation sent to {self.email}: the digest ({self.description}) starts once the link in it "
                f"is clicked (valid {MAX_AGE[CONFIRM].days} days)"
            )
        return f"{self.email} {'now follows' if self.created else 'follows'} {self.description}"


def subscribe_email(
    db: Database,
    settings: Settings,
    address: str,
    profile: str,
    options: Options,
    *,
    created_by: str = "cli",
    verified: bool = False,
    now: datetime | None = None,
) -> EmailSubscription:
    """Follow a profile by email. An address typed by a person (verified=False) gets a
    confirmation email and nothing else until the signed link in it is followed."""
    require_email_settings(settings)
    now = now or utcnow()
    email = normalise_address(address)
    with db.session() as session:
        sub, created = subscribe(
            session,
            Target(KIND, email=email),
            profile,
            options,
            created_by=created_by,
            status="active" if verified else "pending",
            now=now,
        )
        if verified and sub.status == "pending":
            sub.status = "active"
        if sub.status == "active" and sub.confirmed_at is None:
            sub.confirmed_at = now
        result = dict(
            subscription_id=sub.id, email=email, profile=sub.profile.name, description=describe(sub), status=sub.status
        )
        message = build_confirm_message(settings, sub, now) if sub.status == "pending" else None
    sent = False
    if message is not None:
        with smtp_client(settings) as client:
            try:
                client.send(message, sender(settings)[1], email)
            except MailError as exc:
                raise MailError(
                    f"could not send the confirmation email to {email}: {exc}. The subscription waits, unconfirmed; "
                    "run the same command again to resend it"
                ) from None
        sent = True
    return EmailSubscription(**result, created=created, confirmation_sent=sent)


def subscribe_email_from_slack(
    db: Database,
    settings: Settings,
    *,
    email: str,
    text: str,
    user_id: str = "",
    team_id: str = "",
    now: datetime | None = None,
) -> str:
    """`/scout email PROFILE [daily|weekly] [threshold]` for a Slack user, to their own address.

    `email` is the user's `profile.email` from users.info: Slack verified it, so there is no
    confirmation round trip. Returns the reply for Slack; raises SettingsError, ProfileError,
    ThresholdError, ScheduleError or ValueError with a message to show as is.
    """
    if not email:
        raise ValueError(
            "your Slack profile has no email address Scout can read (the app needs the users:read.email scope)"
        )
    profile, schedule, threshold = parse_email_command(text)
    result = subscribe_email(
        db,
        settings,
        email,
        profile,
        Options(threshold=threshold, schedule=schedule),
        created_by=f"slack:{team_id}:{user_id}" if team_id else f"slack:{user_id}",
        verified=True,
        now=now,
    )
    return f"Email digest for {result.email}: {result.description}. Every email has a one-click unsubscribe link."


EMAIL_USAGE = "usage: /scout email PROFILE [daily|weekly] [threshold], e.g. /scout email PLOS Genetics weekly top 5%"
_TRAILING_THRESHOLD = re.compile(rf"\s+((?:{'|'.join(KINDS)})\s*\d+(?:\.\d+)?\s*[%x]?)\s*$", re.IGNORECASE)
_TRAILING_SCHEDULE = re.compile(r"\s+(hourly|daily|weekly)\s*$", re.IGNORECASE)


def parse_email_command(text: str) -> tuple[str, str, str | None]:
    """'PLOS Genetics weekly top 5%' -> ('PLOS Genetics', 'weekly', 'top 5%'); schedule and
    threshold are optional and may come in either order after the profile name."""
    rest = " " + " ".join((text or "").split())
    schedule, threshold = "daily", None
    for _ in range(2):
        if threshold is None and (m := _TRAILING_THRESHOLD.search(rest)):
            threshold, rest = m.group(1), rest[: m.start()]
        elif m := _TRAILING_SCHEDULE.search(rest):
            schedule, rest = m.group(1).lower(), rest[: m.start()]
    profile = rest.strip()
    if not profile:
        raise ValueError(EMAIL_USAGE)
    return profile, schedule, threshold


def email_subscriptions(session, address: str | None = None) -> list[Subscription]:
    """Email subscriptions (all, or one address's), not counting ended ones."""
    if address is not None:
        return subscriptions_for(session, Target(KIND, email=normalise_address(address)))
    query = select(Subscription).where(Subscription.kind == KIND, Subscription.status != "unsubscribed")
    return list(session.scalars(query.order_by(Subscription.email, Subscription.id)))


# -- links: confirm and unsubscribe ------------------------------------------------------


@dataclass(frozen=True)
class LinkResult:
    email: str
    profiles: list[str]
    state: str  # confirm: confirmed | already | ended; unsubscribe: ask | done | already


def _token_subs(session, settings: Settings, purpose: str, token: str | None) -> tuple[str, list[Subscription]]:
    data = read_token(settings, purpose, token)
    subs = [session.get(Subscription, i) for i in data.subscription_ids]
    subs = [s for s in subs if s is not None and s.kind == KIND and s.email.lower() == data.email]
    if not subs:
        raise TokenError("this link points to a subscription that no longer exists")
    return data.email, subs


def confirm_by_token(db: Database, settings: Settings, token: str | None, now: datetime | None = None) -> LinkResult:
    now = now or utcnow()
    with db.session() as session:
        email, subs = _token_subs(session, settings, CONFIRM, token)
        states = set()
        for sub in subs:
            if sub.status == "pending":
                sub.status, sub.status_reason, sub.confirmed_at = "active", None, now
                schedule_next(sub, now)
                states.add("confirmed")
            else:
                states.add("already" if sub.status == "active" else "ended")
        state = "confirmed" if "confirmed" in states else ("already" if "already" in states else "ended")
        return LinkResult(email, [s.profile.name for s in subs], state)


def unsubscribe_by_token(db: Database, settings: Settings, token: str | None, *, apply: bool) -> LinkResult:
    """What a one-click link covers (apply=False, for the GET page) or end it (apply=True, POST)."""
    with db.session() as session:
        email, subs = _token_subs(session, settings, UNSUBSCRIBE, token)
        live = [s for s in subs if s.status != "unsubscribed"]
        if apply:
            for sub in live:
                sub.status, sub.status_reason = "unsubscribed", "one-click unsubscribe"
        state = ("done" if apply else "ask") if live else "already"
        return LinkResult(email, [s.profile.name for s in subs], state)
