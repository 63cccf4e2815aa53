"""Issue 15: bad input never costs good data. Each hostile input from the issue, on SQLite and
PostgreSQL: a bad item is skipped with a warning naming it, never the feed; every mistake gets
one clear line, never a traceback; slow peers hold one thing for a bounded time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.config import load_settings
from bot.db import ClockLease, Feed, Preprint
from bot.ingest.feeds import parse_feed
from bot.ingest.polling import add_feed, poll_all, poll_lease
from tests.cli import Scout
from tests.hostile import RSS_HEADERS, Item, good_item, rss, silent_server, text, trickle_server
from tests.loopback import free_port
from tests.paths import FIXTURES, ROOT
from tests.smtp_server import SmtpServer

MAX_IDENTIFIER = 500  # the preprints.identifier column
PAPERS = FIXTURES / "profiles" / "elife.jsonl"
ABSTRACT = (
    "Cortical circuits in mice: we recorded neurons in the visual cortex during a foraging task and found "
    "that synaptic plasticity tracks reward."
)


@pytest.fixture
def settings(server, monkeypatch):
    monkeypatch.setenv("SCOUT_BIORXIV_RSS_URL", server.url)
    monkeypatch.setenv("SCOUT_ARXIV_RSS_URL", server.url)
    return load_settings(http_timeout=5, feed_deadline=3)


def count(db) -> int:
    with db.session() as session:
        return session.scalar(select(func.count(Preprint.id)))


def poll_feed(db, settings, server, body: bytes, path: str = "/feed.rss"):
    server.route(path, body=body, headers=RSS_HEADERS)
    with db.session() as session:
        add_feed(session, server.url + path, settings)
    return poll_all(db, settings)


@pytest.fixture
def scout(scout, server, embedder):
    for name in ("SCOUT_BIORXIV_RSS_URL", "SCOUT_ARXIV_RSS_URL", "SCOUT_BIORXIV_API_URL", "SCOUT_ARXIV_API_URL"):
        scout.env[name] = server.url
    scout.env["SCOUT_FEED_DEADLINE"] = "5"
    return scout


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# -- 1. PostgreSQL drops whole feeds -------------------------------------------------------


def test_long_links_guids_and_nul_cost_only_themselves(db, server, settings):
    tracking = "https://example.org/paper/7?" + "&".join(f"utm_{i}=campaign-{i:04d}" for i in range(60))
    assert len(tracking) > 500
    items = [good_item(n) for n in range(3)] + [
        Item(title="Tracking-laden link", description="An abstract.", link=text(tracking)),
        Item(title="Long guid", description="An abstract.", guid="urn:x:" + "g" * 700),
        Item(title="A NUL&#0; in the title", description="Abs&#0;tract.", guid="urn:nul&#0;:1"),
        Item(title="A NUL in the link", description="An abstract.", link="https://example.org/a&#0;b"),
    ]
    report = poll_feed(db, settings, server, rss(items))
    assert report.feeds[0].ok, report.feeds[0].error
    assert report.new == 7 and count(db) == 7
    with db.session() as session:
        rows = list(session.scalars(select(Preprint)))
        feed = session.scalars(select(Feed)).one()
    assert all(len(r.identifier) <= MAX_IDENTIFIER and "\x00" not in r.identifier + r.title + r.url for r in rows)
    assert any(r.url == tracking for r in rows)  # the link itself is kept whole
    assert feed.last_error is None and feed.consecutive_failures == 0
    # The same feed again stores nothing twice (the shortened identifiers are stable).
    assert poll_all(db, settings).new == 0 and count(db) == 7


def test_names_and_urls_have_the_same_bounds_on_both_databases(scout, server, tmp_path):
    long_name = "N" * 400
    result = scout("profiles", "add", long_name, "--papers", str(PAPERS), "--no-score", code=2)
    assert error_lines(result) == ["error: profile name too long (400 characters; the limit is 200)"]
    result = scout("feeds", "add", "biorxiv:neuroscience", "--name", long_name, code=2)
    assert error_lines(result) == ["error: feed name too long (400 characters; the limit is 200)"]
    long_url = server.url + "/" + "p" * (2000 - len(server.url) - 1)
    assert len(long_url) == 2000
    scout("feeds", "add", long_url)  # its derived name is cut to fit; the 404 is a warning
    feeds = json.loads(scout("feeds", "--json").stdout)
    assert feeds[0]["url"] == long_url and len(feeds[0]["name"]) <= 200
    result = scout("feeds", "add", long_url + "x", code=2)
    assert error_lines(result) == ["error: feed URL too long (2,001 characters; the limit is 2,000)"]


# -- 2. Square brackets are not terminal markup ---------------------------------------------


@pytest.mark.parametrize("name", ["[/]", "Journal [beta]", "[b]x[/b] [link=a]y"])
def test_names_with_square_brackets_list_rank_show_and_remove(scout, server, name):
    server.route("/biorxiv_xml.php", body=(FIXTURES / "feeds" / "biorxiv_neuroscience.rdf").read_bytes())
    scout("feeds", "add", "biorxiv:neuroscience", "--name", name)
    scout("profiles", "add", name, "--papers", str(PAPERS), "--no-score")
    scout("poll")
    assert name in scout("profiles").stdout
    listed = scout("feeds").stdout  # a narrow column may wrap the name, word by word
    assert all(word in listed for word in name.split())
    assert name in scout("rank", name).stdout
    assert name in scout("profiles", "show", name).stdout
    assert name in scout("status").stdout
    assert f"removed profile {name}" in scout("profiles", "remove", name).stdout
    assert "no profiles yet" in scout("profiles").stdout


def _mail_env(smtp: SmtpServer) -> dict[str, str]:
    return {
        "SMTP_URL": smtp.url,
        "SCOUT_MAIL_FROM": "scout@example.org",
        "SCOUT_BASE_URL": "https://scout.example.org",
        "SCOUT_SECRET_KEY": "test-secret-key-0123456789abcdef",
    }


@pytest.mark.parametrize("name", ["[/]", "Journal [beta]"])
def test_email_commands_show_a_name_with_square_brackets(scout, name):
    with SmtpServer() as smtp:
        scout.env |= _mail_env(smtp)
        scout("profiles", "add", name, "--papers", str(PAPERS), "--no-score")
        subscribed = scout("email", "subscribe", "ada@example.org", name).stdout
        assert f"the digest ({name}: top 1%" in subscribed
        assert f"{name}: top 1%" in scout("email", "list").stdout
        assert scout("email", "unsubscribe", "ada@example.org").stdout.strip() == (
            f"unsubscribed ada@example.org from {name}"
        )


# -- 3. Control characters never reach the terminal -----------------------------------------


def test_escape_sequences_in_a_feed_never_reach_the_terminal(scout, server):
    evil = Item(
        title="Retitle&#27;]0;pwned&#7; the &#27;[2Jterminal &#x202E;gnp.exe",
        description="Cortical circuits &#27;[31mand&#27;[0m synapses in mice.",
        link="https://example.org/evil",
        pub_date=datetime.now(UTC).strftime("%a, %d %b %Y 10:00:00 GMT"),
    )
    server.route("/rss/cs.LG", body=rss([evil], title="Feed &#27;]0;x&#7; &#x202E;title"), headers=RSS_HEADERS)
    added = scout("feeds", "add", "arxiv:cs.LG").stdout
    assert "it says: Feed ]0;x title; 1 items now" in added
    assert not any(c in added for c in "\x1b\x07\u202e")
    scout("profiles", "add", "Neuro", "--papers", str(PAPERS), "--no-score")
    scout("poll")
    shown = scout("rank", "neuro", "--abstracts").stdout
    assert "Retitle]0;pwned the [2Jterminal gnp.exe" in shown
    assert not any(c in shown for c in "\x1b\x07\u202e")


# -- 4. Stalls -----------------------------------------------------------------------------


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_trickling_feed_is_cut_at_the_deadline_and_holds_no_other(db, server, settings, headers_too):
    body = rss([good_item(n) for n in range(3)])
    server.route("/good.rss", body=body, headers=RSS_HEADERS)
    with trickle_server(body, interval=0.2, headers_too=headers_too) as slow:
        with db.session() as session:
            add_feed(session, slow + "/slow.rss", settings)
            add_feed(session, server.url + "/good.rss", settings)
        started = time.monotonic()
        report = poll_all(db, settings.model_copy(update={"feed_deadline": 1.5}))
        took = time.monotonic() - started
    slow_result, good_result = report.feeds
    assert not slow_result.ok and "took longer than 1.5s" in slow_result.error
    assert good_result.ok and good_result.new == 3
    assert took < 6  # the body would take ~60 s to trickle through


def test_a_database_that_accepts_and_never_answers_fails_in_bounded_time():
    with silent_server() as port:
        scout = Scout({"DATABASE_URL": f"postgresql://scout@127.0.0.1:{port}/scout", "SCOUT_DB_CONNECT_TIMEOUT": "2"})
        started = time.monotonic()
        result = scout("status", code=2)
        took = time.monotonic() - started
    assert took < 15
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: cannot open DATABASE_URL"), lines
    assert "timeout" in lines[0].lower()


@contextmanager
def _unreachable_api(kind: str) -> Iterator[str]:
    """An API nobody listens at, one that never answers, or one that answers a byte every
    0.2 s (its body, or its headers too): a whole answer would take about 20 s."""
    if kind == "refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    if kind == "silent":
        with silent_server() as port:
            yield f"http://127.0.0.1:{port}"
        return
    with trickle_server(b'{"collection": []}' * 5, interval=0.2, headers_too=kind == "trickled headers") as url:
        yield url


@pytest.mark.parametrize("kind", ["refused", "silent", "trickled body", "trickled headers"])
def test_match_with_the_api_unreachable_ends_at_its_deadline(scout, kind):
    with _unreachable_api(kind) as api:
        scout.env["SCOUT_BIORXIV_API_URL"] = api
        scout.env["SCOUT_MATCH_DEADLINE"] = "2"
        scout.env["SCOUT_HTTP_TIMEOUT"] = "30"
        scout.env["SCOUT_API_BACKOFF"] = "2"
        started = time.monotonic()
        result = scout("match", "10.1101/2026.01.01.123456", code=2)
        took = time.monotonic() - started
    assert took < 10
    last = error_lines(result)[-1]
    assert last.startswith("error: no stored preprint with id 10.1101/2026.01.01.123456, and fetching it failed")
    assert "gave up within the 2 s deadline" in last


def test_match_asks_both_servers_within_one_deadline(scout, server):
    """bioRxiv answers "not here" slowly: medRxiv gets what is left of the one deadline, not
    a deadline of its own (which made `scout match` take up to twice what it announced)."""
    doi = "10.1101/2026.01.01.123456"
    for name in ("biorxiv", "medrxiv"):
        server.route(f"/details/{name}/{doi}", body='{"collection": []}', delay=1.5)
    scout.env["SCOUT_BIORXIV_API_URL"] = server.url
    scout.env["SCOUT_MATCH_DEADLINE"] = "2"
    result = scout("match", doi, code=2)
    last = error_lines(result)[-1]
    assert "gave up within the 2 s deadline" in last  # the second ask was cut, not answered


# -- 5. Tracebacks for user mistakes --------------------------------------------------------


def test_user_mistakes_get_one_line(scout, tmp_path):
    scout("profiles", "add", "Neuro", "--papers", str(PAPERS), "--no-score")
    result = scout("profiles", "add", "X", "--papers", str(tmp_path), code=2)
    assert error_lines(result) == [f"error: {tmp_path} is a folder, not a file: give the JSONL or CSV file of papers"]
    result = scout("rank", "neuro", "--days", "1000000", code=2)
    assert "--days" in result.output and "3650" in result.output
    result = scout("rank", "neuro", "--until", "0001-01-01", code=2)
    assert error_lines(result) == [
        "error: --until 0001-01-01 is before any preprint server existed (earliest 1990-01-01)"
    ]
    result = scout("rank", "neuro", "--until", "1990-02-01", "--days", "3650", code=2)
    assert error_lines(result)[-1].startswith("error: --days 3650 before --until 1990-02-01 starts before")
    result = scout("match", "--text", "cortex", "--until", "0001-01-01", code=2)
    assert len(error_lines(result)) == 1


def test_a_read_only_database_gets_one_line(scout, database_url, server):
    server.route("/feed.rss", body=rss([good_item(1)]), headers=RSS_HEADERS)
    scout("profiles", "add", "Neuro", "--papers", str(PAPERS), "--no-score")
    scout("feeds", "add", server.url + "/feed.rss")
    with SmtpServer() as smtp:
        scout.env |= _mail_env(smtp)
        scout("email", "subscribe", "ada@example.org", "neuro")
    if database_url.startswith("sqlite"):
        read_only = database_url.replace("sqlite:///", "sqlite:///file:") + "?mode=ro&uri=true"
    else:
        read_only = database_url + "%20-cdefault_transaction_read_only%3Don"
    scout.env["DATABASE_URL"] = read_only
    for command in (
        ("profiles", "add", "Other", "--papers", str(PAPERS), "--no-score"),
        ("profiles", "remove", "neuro"),  # refused at the commit: never "removed" first
        ("feeds", "remove", "1"),
        ("email", "unsubscribe", "ada@example.org"),
        ("poll", "--no-score"),
    ):
        result = scout(*command, code=1)
        lines = error_lines(result)
        assert len(lines) == 1 and lines[0].startswith("error: database error"), (command, lines)
        assert "read-only" in lines[0] or "readonly" in lines[0]
        assert not result.stdout.strip(), (command, result.stdout)


def _scout_process(database_url: str, feed_base: str, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCOUT_", "SLACK_"))}
    env |= {"DATABASE_URL": database_url, "SCOUT_FEED_DEADLINE": "20", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_polls_at_once_one_skips_with_one_line(database_url, server, settings, db):
    # A slow answer keeps the first poll busy while the second starts.
    for n in range(3):
        # Overlapping items: both polls would insert the same preprints.
        server.route(f"/feed{n}.rss", body=rss([good_item(i + n) for i in range(5)]), headers=RSS_HEADERS, delay=2)
        with db.session() as session:
            add_feed(session, f"{server.url}/feed{n}.rss", settings)
    first = _scout_process(database_url, server.url, "poll", "--no-score")
    time.sleep(1.0)
    second = _scout_process(database_url, server.url, "poll", "--no-score")
    outputs = [p.communicate(timeout=60) for p in (first, second)]
    codes = [p.returncode for p in (first, second)]
    assert codes == [0, 0], outputs
    for _out, errors in outputs:
        assert "Traceback" not in errors and "IntegrityError" not in errors, errors
    skipped = [errors for _out, errors in outputs if "another poll is running" in errors]
    assert len(skipped) == 1 and len(skipped[0].strip().splitlines()) == 1, outputs
    with db.session() as session:
        feeds = list(session.scalars(select(Feed)))
    assert all(f.last_error is None and f.consecutive_failures == 0 for f in feeds)
    assert count(db) == 7


def test_a_poll_says_each_failed_feed_and_refused_item_once(database_url, server, settings, db):
    """As `scout` runs from a shell (its log lines on stderr too): the report's line is the
    only one, not a log line repeating it."""
    _refuse_titled(db, "Refused once")
    items = [good_item(1), Item(title="Refused once", description="An abstract.", link="https://example.org/r")]
    server.route("/feed.rss", body=rss(items), headers=RSS_HEADERS)
    with db.session() as session:
        add_feed(session, server.url + "/feed.rss", settings)
        add_feed(session, server.url + "/missing.rss", settings)
    run = _scout_process(database_url, server.url, "poll", "--no-score")
    _out, errors = run.communicate(timeout=60)
    assert run.returncode == 0, errors
    lines = errors.strip().splitlines()
    assert [line for line in lines if "missing.rss" in line] == [
        f"failed 127.0.0.1/missing.rss: HTTP 404 from {server.url}/missing.rss"
    ]
    refused = [line for line in lines if "Refused once" in line]
    assert len(refused) == 1 and refused[0].startswith('   warning: skipped "Refused once"'), lines


def test_a_poll_skips_while_another_holds_the_lease_and_takes_an_expired_one(db, server, settings):
    server.route("/feed.rss", body=rss([good_item(1)]), headers=RSS_HEADERS)
    with db.session() as session:
        add_feed(session, server.url + "/feed.rss", settings)
    with poll_lease(db, settings) as held:
        assert held.other is None
        skipped = poll_all(db, settings)
        assert skipped.feeds == [] and skipped.skipped_for.startswith(held.mine.rsplit(":", 1)[0])
    assert poll_all(db, settings).new == 1  # released at the end of the block
    with db.session() as session:  # a crashed poller's lease, long expired
        session.add(ClockLease(name="poll", holder="gone:1:x", expires_at=datetime(2020, 1, 1, tzinfo=UTC)))
    assert poll_all(db, settings).skipped_for is None


# -- 6. Silent or wrong --------------------------------------------------------------------


def test_items_without_link_or_guid_are_stored(db, server, settings):
    items = [Item(title=f"Linkless preprint {n}", description="An abstract with no link.") for n in range(4)]
    report = poll_feed(db, settings, server, rss(items))
    assert report.new == 4 and not report.feeds[0].warnings
    assert poll_all(db, settings).new == 0  # the same items next time are the same rows


def test_feeds_add_checks_subjects_and_fetches_once(scout, server):
    result = scout("feeds", "add", "biorxiv:neurosience", code=2)
    assert error_lines(result) == ["error: biorxiv has no subject 'neurosience'; did you mean neuroscience?"]
    result = scout("feeds", "add", "arxiv:cs.XX", code=2)
    assert "arXiv has no category 'cs.XX'" in result.output
    assert "arXiv cs.LG+stat.ML" in scout("feeds", "add", "arxiv:CS.lg+stat.ml").stdout
    server.route("/biorxiv_xml.php", body=(FIXTURES / "feeds" / "biorxiv_neuroscience.rdf").read_bytes())
    added = scout("feeds", "add", "biorxiv:neuroscience").stdout
    assert "it says: bioRxiv Subject Collection: Neuroscience; 4 items now" in added and "items now" in added
    result = scout("feeds", "add", server.url + "/missing.xml")
    assert f"fetching it now failed: HTTP 404 from {server.url}/missing.xml" in result.stderr


def test_passwords_in_feed_urls_are_never_printed(scout, server):
    secret_url = server.url.replace("http://", "http://reader:s3cret-pw@") + "/private.rss"
    shown = scout("feeds", "add", secret_url)
    scout("poll", "--no-score", code=1)
    everything = shown.output + scout("poll", "--no-score", code=1).output
    everything += scout("status").output + scout("feeds").output + scout("feeds", "--json").output
    assert "s3cret-pw" not in everything and "reader:***@" in everything


def test_a_sqlite_url_in_a_missing_folder_is_refused(tmp_path):
    missing = tmp_path / "nonexistent" / "dir"
    result = Scout({"DATABASE_URL": f"sqlite:///{missing}/scout.db"})("status", code=2)
    assert error_lines(result) == [
        f"error: cannot open DATABASE_URL (sqlite:///{missing}/scout.db): folder {missing} does not exist "
        "(create it, or fix DATABASE_URL)"
    ]
    assert not missing.exists()


def test_junk_rows_never_become_reference_papers(scout, tmp_path):
    papers = tmp_path / "papers.jsonl"
    good = PAPERS.read_text().splitlines()
    junk = [json.dumps({"title": 5, "abstract": ["a", "list"]}), json.dumps({"title": "T", "abstract": {"x": 1}})]
    papers.write_text("\n".join(junk + good) + "\n")
    result = scout("profiles", "add", "Neuro", "--papers", str(papers), "--no-score")
    assert "skipped row 1: title is not text" in result.stderr
    assert "skipped row 2: abstract is not text" in result.stderr
    shown = json.loads(scout("profiles", "show", "neuro", "--json").stdout)
    assert len(shown["papers"]) == len(good)


def test_future_and_unreadable_dates_are_reported(db, server, settings):
    items = [
        Item(
            title="From the future", description="Abstract.", link="https://example.org/f", pub_date="Fri, 01 Jan 2099"
        ),
        Item(title="Dated nonsense", description="Abstract.", link="https://example.org/n", pub_date="last Tuesday"),
    ]
    report = poll_feed(db, settings, server, rss(items))
    warnings = report.feeds[0].warnings
    assert any('"From the future"' in w and "2099-01-01 is in the future" in w for w in warnings), warnings
    assert any('"Dated nonsense"' in w and "unreadable date 'last Tuesday'" in w for w in warnings), warnings
    with db.session() as session:
        posted = set(session.scalars(select(Preprint.posted)))
    assert posted == {date.today()}


def test_feed_urls_differing_only_in_case_of_scheme_and_host_are_one_feed(db, settings):
    with db.session() as session:
        first = add_feed(session, "HTTP://Example.ORG/feed.xml", settings)
        second = add_feed(session, "http://example.org/feed.xml", settings)
        assert first.id == second.id and first.url == "http://example.org/feed.xml"
        third = add_feed(session, "http://example.org/Feed.xml", settings)  # paths are case-sensitive
        assert third.id != first.id


def test_window_days_setting_and_header_for_a_past_window(scout, server):
    server.route("/biorxiv_xml.php", body=(FIXTURES / "feeds" / "biorxiv_neuroscience.rdf").read_bytes())
    scout("feeds", "add", "biorxiv:neuroscience")
    scout("profiles", "add", "Neuro", "--papers", str(PAPERS), "--no-score")
    scout("poll")
    scout.env["SCOUT_WINDOW_DAYS"] = "400"
    assert json.loads(scout("rank", "neuro", "--json").stdout)["days"] == 400
    assert f"in the 400 days to {date.today().isoformat()}" in scout("rank", "neuro").stdout
    header = scout("rank", "neuro", "--until", "2026-01-31").stdout
    assert "in the 400 days to 2026-01-31" in header and "in the last" not in header
    assert "top % (400 days)" in scout("match", "--text", ABSTRACT).stdout


def test_feeds_add_name_renames_an_existing_feed(scout, server):
    server.route("/biorxiv_xml.php", body=(FIXTURES / "feeds" / "biorxiv_neuroscience.rdf").read_bytes())
    scout("feeds", "add", "biorxiv:neuroscience")
    assert "Neuro desk" in scout("feeds", "add", "biorxiv:neuroscience", "--name", "Neuro desk").stdout
    feeds = json.loads(scout("feeds", "--json").stdout)
    assert [f["name"] for f in feeds] == ["Neuro desk"]


def test_malformed_xml_that_still_gives_items_is_flagged(db, server, settings):
    body = rss([good_item(n) for n in range(3)]).replace(b"</channel></rss>", b"<item><title>cut off")
    report = poll_feed(db, settings, server, body)
    assert report.feeds[0].ok and report.new == 3
    assert report.feeds[0].warnings[0].startswith("feed parsed despite errors")
    with db.session() as session:
        feed = session.scalars(select(Feed)).one()
    assert feed.last_error is None and feed.last_warning.startswith("feed parsed despite errors")


def test_feeds_and_status_show_a_feed_with_warnings(scout, server):
    body = rss([good_item(n) for n in range(3)]).replace(b"</channel></rss>", b"<item><title>cut off")
    server.route("/feed.rss", body=body, headers=RSS_HEADERS)
    scout("feeds", "add", server.url + "/feed.rss")
    scout("poll", "--no-score")
    feeds = json.loads(scout("feeds", "--json").stdout)
    assert feeds[0]["healthy"] and feeds[0]["last_warning"].startswith("feed parsed despite errors")
    shown = scout("status").stdout  # a narrow column may wrap the words
    assert "ok," in shown and "warnings" in shown
    status = json.loads(scout("status", "--json").stdout)
    assert status["feeds"][0]["last_warning"].startswith("feed parsed despite errors")
    # Times read the same from both databases (SQLite hands them back without their zone).
    for polled in (feeds[0]["last_success_at"], status["feeds"][0]["last_polled_at"], status["last_poll"]):
        assert datetime.fromisoformat(polled).utcoffset() == timedelta(0), polled
    assert feeds[0]["last_success_at"] in shown


def test_parse_feed_names_a_skipped_entry():
    parsed = parse_feed(rss([Item(link="https://example.org/empty"), good_item(1)]), "https://example.org/f")
    assert len(parsed.items) == 1 and parsed.warnings == ("skipped entry 1: no title or abstract",)


def _refuse_titled(db, title: str) -> None:
    """The database itself refuses rows with this title (a trigger): the far side failing."""
    with db.engine.begin() as conn:
        if db.url.startswith("sqlite"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse BEFORE INSERT ON preprints WHEN NEW.title = '{title}' "
                "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.title = '{title}' THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END "
                "$$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON preprints FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


def test_an_item_the_database_refused_comes_back_at_the_next_poll(db, server, settings):
    """A refused item is skipped with a warning, and the feed's ETag is not kept: a 304 at
    the next poll would never bring that item back."""
    _refuse_titled(db, "Refused once")
    items = [good_item(1), Item(title="Refused once", description="An abstract.", link="https://example.org/r")]
    server.route("/feed.rss", body=rss(items), headers=RSS_HEADERS, etag='"v1"')
    with db.session() as session:
        add_feed(session, server.url + "/feed.rss", settings)
    report = poll_all(db, settings)
    assert report.new == 1 and any("Refused once" in w and "refused" in w for w in report.feeds[0].warnings)
    with db.session() as session:
        assert session.scalars(select(Feed)).one().etag is None
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse" + ("" if db.url.startswith("sqlite") else " ON preprints"))
    assert poll_all(db, settings).new == 1 and count(db) == 2  # fetched whole again, stored now
    with db.session() as session:
        assert session.scalars(select(Feed)).one().etag == '"v1"'
