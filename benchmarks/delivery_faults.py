"""Exactly once under each delivery fault: per fault, the matches due, the posts or sends
tried, and how many matches arrived once, twice or never.

    .venv/bin/python benchmarks/delivery_faults.py [--matches 20] [--addresses 5]
        [--database-url postgresql://postgres@127.0.0.1:5432/DB] [--only TEXT]

Each fault gets a fresh database (a SQLite file, or with --database-url a schema of its own
in that PostgreSQL database) holding the test suite's catalog (tests/fake_slack/catalog.py:
stored scores and cached vectors, so no model loads), and the test suite's far side: the
fake Slack Web API (tests/fake_slack) or the SMTP servers (tests/smtp_server.py). A Slack
fault has one channel following a profile with --matches matches due (two channels for two
senders); an email fault has --addresses addresses with --matches each. The fault is
injected, then `scout digests run --force` runs as its own process, as the clock or an
operator runs it, and again as the next run would once the fault has passed (a killed
sender's claim expired, the mail server's backoff over).

Then the matches are counted from what the far side holds, not from our ledger: Slack's
thread replies by the preprint id in their metadata, and the SMTP server's messages by
each preprint's DOI in the text part. "tried" counts chat.postMessage calls Slack received,
or RCPT commands (plus connections to a silent server) the mail server received. The
ledger (the deliveries table) is then compared with what arrived. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from bot.config import load_settings  # noqa: E402
from bot.db import Database, Delivery, Digest, Preprint, Subscription  # noqa: E402
from bot.delivery.subscriptions import Options, Target, subscribe  # noqa: E402
from tests.fake_slack import FakeSlack, seed_catalog  # noqa: E402
from tests.smtp_server import SilentServer, SmtpServer  # noqa: E402

PROFILES = ["Neural Networks", "PLOS Genetics"]
CHANNELS = ["C1", "C2"]
LEASE = 2.0  # seconds: SCOUT_DIGEST_LEASE_SECONDS, how long a killed sender's claim holds
COLUMNS = (
    "fault",
    "matches due",
    "posts/sends tried",
    "delivered once",
    "duplicated",
    "lost",
    "ledger",
    "subscription state after",
)


def score_of(profile: int, preprint: int) -> float:
    """Every preprint above the 50% threshold for both profiles, each score distinct."""
    return round(0.95 - 0.009 * preprint - 0.001 * profile, 4)


# -- one fault's world ---------------------------------------------------------------------


@dataclass
class World:
    """A fresh database, the far side, and `scout` processes pointed at both."""

    db: Database
    env: dict[str, str]
    matches: int
    subs: list[int] = field(default_factory=list)
    preprints: list[int] = field(default_factory=list)
    dois: dict[int, str] = field(default_factory=dict)
    exits: list[int] = field(default_factory=list)  # of the runs that ended by themselves

    def start(self, **env: str) -> subprocess.Popen:
        """`scout digests run --force` in its own process, with `env` on top of the world's."""
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "digests", "run", "--force"],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait(self, process: subprocess.Popen) -> None:
        process.communicate(timeout=300)
        self.exits.append(process.returncode)

    def run(self, **env: str) -> None:
        self.wait(self.start(**env))

    def ledger(self) -> set[tuple[int, int]]:
        with self.db.session() as session:
            return {(d.subscription_id, d.preprint_id) for d in session.scalars(select(Delivery))}

    def states(self) -> str:
        """Each subscription's status (with its reason) and its digests' statuses, summed up."""
        with self.db.session() as session:
            seen: Counter[str] = Counter()
            for sid in self.subs:
                sub = session.get(Subscription, sid)
                digests = sorted(session.scalars(select(Digest.status).where(Digest.subscription_id == sid)))
                state = sub.status + (f" ({sub.status_reason})" if sub.status_reason else "")
                seen[f"{state}; digests {', '.join(digests) or 'none'}"] += 1
        states = "; ".join(f"{n} x {s}" if len(self.subs) > 1 else s for s, n in seen.items())
        return f"{states}; runs exited {', '.join(map(str, self.exits))}"


def clean_environment() -> dict[str, str]:
    """This process's environment without a developer's own settings (as the tests do)."""
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCOUT_", "SLACK_")) and k not in ("DATABASE_URL", "SMTP_URL")
    }
    # The catalog's cached vectors are PyTorch fp32's; any other backend would load a model.
    return {**kept, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "SCOUT_BACKEND": "torch"}


@contextmanager
def fresh_database(base_url: str | None) -> Iterator[str]:
    """A SQLite file in a temporary folder, or a throwaway schema in `base_url`'s database."""
    if base_url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'scout.db'}"
        return
    ensure_database(base_url)
    engine = create_engine(load_settings(DATABASE_URL=base_url).database_url)
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


def ensure_database(url: str) -> None:
    """Create --database-url's database if it is not there (its server's `postgres` database
    does the asking)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres", query="")), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def seeded(url: str, matches: int, env: dict[str, str]) -> Iterator[World]:
    """A World on the catalog: two profiles, `matches` preprints above the threshold for each."""
    db = Database(load_settings(DATABASE_URL=url).database_url)
    try:
        specs = [{"title": f"Cortical dynamics preprint {i}", "abstract": f"About area {i}."} for i in range(matches)]
        ids = seed_catalog(db, PROFILES, specs, score_of)
        with db.session() as session:
            dois = {pid: doi for pid, doi in session.execute(select(Preprint.id, Preprint.doi))}
        yield World(db, {**env, "DATABASE_URL": url}, matches, preprints=ids["preprints"], dois=dois)
    finally:
        db.dispose()  # before the schema is dropped


def follow(world: World, target: Target, profile: str = PROFILES[0]) -> None:
    with world.db.session() as session:
        sub, _ = subscribe(session, target, profile, Options("min 50%", max_items=world.matches), created_by="U1")
        world.subs.append(sub.id)


# -- Slack ---------------------------------------------------------------------------------


def count_slack(world: World, fake: FakeSlack) -> dict[str, object]:
    """What the fake Slack holds, per subscription's channel, against the ledger."""
    channels = {sid: CHANNELS[i] for i, sid in enumerate(world.subs)}
    copies: Counter[tuple[int, int]] = Counter()
    parents = 0
    for sid, channel in channels.items():
        for message in fake.posted(channel):
            meta = (message.get("metadata") or {}).get("event_payload") or {}
            if not message.get("thread_ts"):
                parents += 1
            elif meta.get("subscription_id") == sid:
                copies[(sid, int(meta["preprint_id"]))] += 1
    tried = sum(1 for c in fake.calls_to("chat.postMessage") if c.args.get("channel") in channels.values())
    extra = f" (+{parents - len(channels)} parent message)" if parents > len(channels) else ""
    return tally(world, copies, tried, extra)


def tally(world: World, copies: Counter, tried: int, note: str = "") -> dict[str, object]:
    due = [(sid, pid) for sid in world.subs for pid in world.preprints]
    received = {key for key, n in copies.items() if n}
    ledger = world.ledger()
    if ledger == received:
        agrees = "agrees"
    else:
        agrees = f"{len(ledger - received)} recorded, not received; {len(received - ledger)} received, not recorded"
    return {
        "matches due": len(due),
        "posts/sends tried": tried,
        "delivered once": sum(1 for key in due if copies[key] == 1),
        "duplicated": f"{sum(max(copies[key] - 1, 0) for key in due)}{note}",
        "lost": sum(1 for key in due if copies[key] == 0),
        "ledger": agrees,
        "subscription state after": world.states(),
    }


def on_post(fake: FakeSlack, hook: Callable[[int, dict, dict], None]) -> None:
    """Call hook(n, args, answer) after the n-th post Slack accepted (1-based)."""
    count = iter(range(1, 10**6))
    fake.on("chat.postMessage", lambda call, answer: hook(next(count), call.args, answer))


def kill_when(world: World, fake: FakeSlack, reached: Callable[[int, dict], bool]) -> None:
    """Run a sender in its own process and SIGKILL it once Slack has accepted the post that
    `reached(n, args)` picks, before the sender hears back."""
    hit, release = threading.Event(), threading.Event()

    def hook(n: int, args: dict, answer: dict) -> None:
        if not hit.is_set() and reached(n, args):
            hit.set()
            release.wait(120)

    on_post(fake, hook)
    sender = world.start(SLACK_TIMEOUT="120")
    try:
        if not hit.wait(300):
            raise RuntimeError(f"the sender never reached the post: {sender.communicate()[0]}")
        sender.send_signal(signal.SIGKILL)
        sender.wait(30)
    finally:
        fake.on("chat.postMessage", None)
        release.set()
        if sender.poll() is None:
            sender.kill()


def two_senders_held(world: World, fake: FakeSlack) -> None:
    """The first sender is held inside its first post until the second has finished."""
    held, release = threading.Event(), threading.Event()

    def hold(n: int, args: dict, answer: dict) -> None:
        if n == 1:
            held.set()
            release.wait(120)

    on_post(fake, hold)
    patient = {"SLACK_TIMEOUT": "120", "SCOUT_DIGEST_LEASE_SECONDS": "300"}
    first = world.start(**patient)
    try:
        if not held.wait(300):
            raise RuntimeError(f"the first sender never posted: {first.communicate()[0]}")
        world.run(**patient)
    finally:
        release.set()
        fake.on("chat.postMessage", None)
        world.wait(first)


def two_senders_apart(world: World, fake: FakeSlack) -> None:
    """Two senders started half a second apart, each pacing its posts 0.1 s apart."""
    slow = {"SLACK_POST_INTERVAL": "0.1"}
    first = world.start(**slow)
    time.sleep(0.5)
    second = world.start(**slow)
    for sender in (first, second):
        world.wait(sender)


def fail_after(fake: FakeSlack, posts: int, **failure) -> None:
    """Once `posts` posts went through, the next one fails as `failure` says."""
    on_post(fake, lambda n, args, answer: fake.fail("chat.postMessage", **failure) if n == posts else None)


def accepted_then(status: int, hang: float = 0.0) -> Callable[[World, FakeSlack], None]:
    def fault(world: World, fake: FakeSlack) -> None:
        fail_after(fake, 2, after=True, status=status, hang=hang)  # the parent and one reply go well
        world.run()

    return fault


def kill_during_parent(unreadable: bool = False) -> Callable[[World, FakeSlack], None]:
    def fault(world: World, fake: FakeSlack) -> None:
        if unreadable:  # a public channel the app posts to without being a member
            for method in ("conversations.history", "conversations.replies"):
                fake.fail(method, error="not_in_channel", times=100)
        kill_when(world, fake, lambda n, args: not args.get("thread_ts"))
        time.sleep(LEASE + 0.2)  # the dead sender's claim runs out
        world.run()

    return fault


def kill_mid_thread(world: World, fake: FakeSlack) -> None:
    kill_when(world, fake, lambda n, args: n == 1 + world.matches // 2)
    time.sleep(LEASE + 0.2)
    world.run()


def unreadable_thread(world: World, fake: FakeSlack) -> None:
    """A reply fails beyond its retries (Slack did not post it); the resumed digest cannot
    read its thread back (not_in_channel)."""
    fail_after(fake, 3, status=500, times=4)
    world.run()
    fake.on("chat.postMessage", None)
    fake.fail("conversations.replies", error="not_in_channel", times=100)
    world.run()


def unreadable_thread_lost_answer(world: World, fake: FakeSlack) -> None:
    """Slack posts a reply and answers 500, in a thread the app cannot read back."""
    fake.fail("conversations.replies", error="not_in_channel", times=100)
    fail_after(fake, 2, after=True, status=500)
    world.run()


def server_errors_outlasting_retries(world: World, fake: FakeSlack) -> None:
    fail_after(fake, 3, status=500, times=4)  # refused, not posted: 1 + 3 retries
    world.run()
    fake.on("chat.postMessage", None)
    world.run()


def rate_limited(world: World, fake: FakeSlack) -> None:
    """Every fifth post is answered 429 with Retry-After: 1 (and not posted)."""
    on_post(
        fake, lambda n, args, answer: fake.fail("chat.postMessage", status=429, retry_after=1) if n % 5 == 0 else None
    )
    world.run()


SLACK_FAULTS: list[tuple[str, Callable[[World, FakeSlack], None], int]] = [
    ("Slack: two senders at once, the first held in its first post until the second ends", two_senders_held, 2),
    ("Slack: two senders started 0.5 s apart", two_senders_apart, 2),
    ("Slack: post accepted, then answered 500", accepted_then(500), 1),
    ("Slack: post accepted, then no answer within SLACK_TIMEOUT", accepted_then(503, hang=1.5), 1),
    ("Slack: sender killed during the parent post", kill_during_parent(), 1),
    ("Slack: sender killed mid-thread", kill_mid_thread, 1),
    ("Slack: 500s beyond the retries, then the next run", server_errors_outlasting_retries, 1),
    ("Slack: 429 on every fifth post", rate_limited, 1),
    ("Slack: not_in_channel on the read-back of a resumed thread", unreadable_thread, 1),
    (
        "Slack: not_in_channel on the read-back, after a post accepted then answered 500",
        unreadable_thread_lost_answer,
        1,
    ),
    ("Slack: sender killed during the parent post, in a channel it cannot read", kill_during_parent(True), 1),
]


def slack_row(name: str, fault, channels: int, args, env: dict[str, str]) -> dict[str, object]:
    with fresh_database(args.database_url) as url, FakeSlack() as fake:
        fake.add_team("T1", "xoxb-t1")
        slack = {**fake.sender_env("xoxb-t1"), "SCOUT_DIGEST_LEASE_SECONDS": f"{LEASE:g}"}
        with seeded(url, args.matches, {**env, **slack}) as world:
            for i in range(channels):
                follow(world, Target("slack", "T1", CHANNELS[i]), PROFILES[i])
            fault(world, fake)
            return {"fault": name, **count_slack(world, fake)}


# -- email ---------------------------------------------------------------------------------


def mail_env(smtp_url: str) -> dict[str, str]:
    return {
        "SMTP_URL": smtp_url,
        "SCOUT_MAIL_FROM": "Preprint Scout <scout@example.org>",
        "SCOUT_BASE_URL": "https://scout.example.org",
        "SCOUT_SECRET_KEY": "benchmark-secret-key-0123456789",
        "SCOUT_SMTP_TIMEOUT": "1",
    }


def count_mail(world: World, servers: list[SmtpServer], silent: SilentServer | None = None) -> dict[str, object]:
    """What the SMTP servers received, per address and preprint DOI, against the ledger."""
    by_address = {}
    with world.db.session() as session:
        for sid in world.subs:
            by_address[session.get(Subscription, sid).email] = sid
    copies: Counter[tuple[int, int]] = Counter()
    seen_ids: Counter[str] = Counter()
    for server in servers:
        for received in server.messages:
            body = received.message.get_body(("plain",)).get_content()
            seen_ids[received.message["Message-ID"]] += 1
            for address in received.rcpt_tos:
                for pid in world.preprints:
                    copies[(by_address[address], pid)] += world.dois[pid] in body
    tried = sum(len(s.rcpt_attempts) for s in servers) + (silent.connections if silent else 0)
    resent = sum(n - 1 for n in seen_ids.values())
    note = f" ({resent} message resent with its Message-ID)" if resent else ""
    return tally(world, copies, tried, note)


@contextmanager
def mail_world(url: str, args, env: dict[str, str], smtp_url: str) -> Iterator[World]:
    with seeded(url, args.matches, {**env, **mail_env(smtp_url)}) as world:
        for i in range(args.addresses):
            follow(world, Target("email", email=f"reader{i}@example.org"))
        yield world


def silent_then_back(args, env, url) -> dict[str, object]:
    with SilentServer() as silent, SmtpServer() as smtp, mail_world(url, args, env, silent.url) as world:
        world.run()
        world.run(SMTP_URL=smtp.url)
        return count_mail(world, [smtp], silent)


def smtp_fault(setup: Callable[[SmtpServer], None], heal: Callable[[SmtpServer], None]):
    """The server answers as `setup` says for a run, then as `heal` says for the next."""

    def fault(args, env, url) -> dict[str, object]:
        with SmtpServer() as smtp, mail_world(url, args, env, smtp.url) as world:
            setup(smtp)
            world.run()
            heal(smtp)
            world.run()
            return count_mail(world, [smtp])

    return fault


def two_mail_senders(args, env, url) -> dict[str, object]:
    """The first sender's first message is held unanswered until the second sender has ended."""
    with SmtpServer() as smtp, mail_world(url, args, env, smtp.url) as world:
        smtp.hold_answers(messages=1)
        patient = {"SCOUT_SMTP_TIMEOUT": "120", "SCOUT_DIGEST_LEASE_SECONDS": "300"}
        first = world.start(**patient)
        try:
            deadline = time.monotonic() + 300
            while not smtp.rcpt_attempts and time.monotonic() < deadline:
                time.sleep(0.05)
            world.run(**patient)
        finally:
            smtp.release()
            world.wait(first)
        return count_mail(world, [smtp])


MAIL_FAULTS = [
    ("email: two senders at once, the first held mid-message until the second ends", two_mail_senders),
    ("email: a server that accepts and never answers, then the next run", silent_then_back),
    (
        "email: 421 at DATA, then the next run",
        smtp_fault(lambda s: s.answer_data("421 4.3.2 Service shutting down"), lambda s: s.answer_data(None)),
    ),
    (
        "email: 451 at DATA, then the next run",
        smtp_fault(lambda s: s.answer_data("451 4.3.0 Try again later"), lambda s: s.answer_data(None)),
    ),
    (
        "email: 250 after the client's timeout, then the resend",
        smtp_fault(lambda s: s.answer_late(2.5), lambda s: s.answer_late(0)),
    ),
    (
        "email: 552 at DATA (message refused), then the next run",
        smtp_fault(lambda s: s.answer_data("552 5.3.4 Message size exceeds fixed limit"), lambda s: None),
    ),
]


def mail_row(name: str, fault, args, env: dict[str, str]) -> dict[str, object]:
    with fresh_database(args.database_url) as url:
        return {"fault": name, **fault(args, env, url)}


# -- the table -----------------------------------------------------------------------------


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "| --- | " + " | ".join("---:" for _ in COLUMNS[1:-2]) + " | --- | --- |",
    ]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=20, help="matches due per subscription (at most 50)")
    parser.add_argument("--addresses", type=int, default=5, help="addresses in each email fault")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database (default: SQLite files)")
    parser.add_argument("--only", default="", help="run only the faults whose name contains this")
    args = parser.parse_args()
    env = clean_environment()
    rows = []
    started = time.monotonic()
    for name, fault, channels in SLACK_FAULTS:
        if args.only.lower() in name.lower():
            rows.append(slack_row(name, fault, channels, args, env))
            print(f"{time.monotonic() - started:6.0f} s  {name}", file=sys.stderr)
    for name, fault in MAIL_FAULTS:
        if args.only.lower() in name.lower():
            rows.append(mail_row(name, fault, args, env))
            print(f"{time.monotonic() - started:6.0f} s  {name}", file=sys.stderr)
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"{database}, {args.matches} matches per subscription, {args.addresses} addresses per email fault\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
