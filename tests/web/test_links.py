"""Links to the pages from Slack and email: with SCOUT_BASE_URL the `/scout rank` answer,
Slack digests and email digests link to the profile page and each preprint page; without
it, nothing changes."""

from __future__ import annotations

import json
import re

from bot.config import load_settings
from bot.db import Database
from bot.delivery.digests import run_due_digests
from bot.delivery.email.delivery import EmailDeliverer
from bot.delivery.slack.answers import Where, answer
from bot.delivery.slack.commands import parse_command
from bot.profiles.catalog import find_profile
from bot.web.access import profile_key
from tests.cli import Scout
from tests.delivery.email.test_mail import LATER, NOW, parts, run, seed
from tests.delivery.slack.test_slack_digests import make_setup
from tests.delivery.slack.test_slack_digests import preprints as slack_preprints
from tests.fake_slack import FakeSlack, seed_catalog
from tests.mail_data import BASE_URL, SECRET, follow, mail_settings
from tests.smtp_server import SmtpServer
from tests.web.test_pages import PROFILES, client, lazy_ctx, preprints, score_of

WHERE = Where("T1", "C1", "U1")


def rank_answer(db: Database, **settings) -> str:
    values = {"DATABASE_URL": db.url, **settings}
    message, ok = answer(parse_command("rank PLOS Genetics top 3"), db, lazy_ctx(), load_settings(**values), WHERE)
    assert ok
    return json.dumps(message, ensure_ascii=False)


def test_scout_rank_links_to_the_pages_only_with_a_base_url(db: Database):
    seed_catalog(db, PROFILES, preprints(12), score_of)
    linked = rank_answer(db, SCOUT_BASE_URL=BASE_URL)
    assert f"<{BASE_URL}/profiles/plos-genetics|See all 12 ranked preprints>" in linked
    assert linked.count(f"<{BASE_URL}/preprints/10.1101/") == 3
    plain = rank_answer(db)
    assert "/profiles/" not in plain and "/preprints/" not in plain and "See all" not in plain
    assert "/preprints/" not in rank_answer(db, SCOUT_BASE_URL=BASE_URL, SCOUT_WEB_ACCESS="off")


def test_a_token_deployment_links_to_the_profile_with_its_key_and_to_no_preprint_page(db: Database):
    seed_catalog(db, PROFILES, preprints(5), score_of)
    linked = rank_answer(db, SCOUT_BASE_URL=BASE_URL, SCOUT_WEB_ACCESS="token", SCOUT_SECRET_KEY="k" * 32)
    assert f"<{BASE_URL}/profiles/plos-genetics?key=" in linked and "/preprints/" not in linked


def test_email_digests_link_to_the_profile_page_and_each_preprint_page(db: Database):
    seed(db, NOW)
    with SmtpServer() as smtp:
        follow(db, "ada@example.org", "PLOS Genetics", NOW, threshold="top 5%")
        run(db, mail_settings(db.url, smtp.url))
        _, text, html = parts(smtp.messages[0].message)
        follow(db, "bob@example.org", "PLOS Genetics", NOW, threshold="top 5%")
        settings = mail_settings(db.url, smtp.url, SCOUT_WEB_ACCESS="off")
        run_due_digests(db, [EmailDeliverer(settings, db)], now=LATER)
        _, off_text, off_html = parts(smtp.messages[1].message)
    assert f"See all 40 ranked preprints: {BASE_URL}/profiles/plos-genetics" in text
    assert f'<a href="{BASE_URL}/profiles/plos-genetics" style="color:#0969da;">See all 40 ranked preprints</a>' in html
    assert f"Every profile it fits: {BASE_URL}/preprints/10.1101/2026.01.00.500000" in text
    assert f'href="{BASE_URL}/preprints/10.1101/2026.01.01.500001"' in html
    assert "/profiles/" not in off_text + off_html and "/preprints/" not in off_text + off_html


def test_slack_digests_link_to_the_profile_page_and_each_preprint_page(db: Database):
    with FakeSlack() as fake:
        setup = make_setup(db, fake, slack_preprints())
        setup.subscribe()
        setup.env["SCOUT_BASE_URL"] = BASE_URL
        setup.run("--force")
        [parent] = [m for m in fake.posted("C1") if not m["thread_ts"]]
        replies = fake.replies(parent["ts"])
    assert f"<{BASE_URL}/profiles/neural-networks|See all 10 ranked preprints>" in json.dumps(parent["blocks"])
    assert replies and all(f"<{BASE_URL}/preprints/10.1101/" in json.dumps(r["blocks"]) for r in replies)


def test_slack_digests_without_a_base_url_have_no_page_links(db: Database):
    with FakeSlack() as fake:
        setup = make_setup(db, fake, slack_preprints())
        setup.subscribe()
        setup.run("--force")
        posted = json.dumps(fake.posted("C1"))
    assert "See all" not in posted and "/preprints/" not in posted and "/profiles/" not in posted


# -- a Slack workspace's own profile: its links carry its key -------------------------------


def own_profile(db: Database, name: str, team: str = "T1") -> None:
    Scout({"DATABASE_URL": db.url})("profiles", "workspace", name, team)


def test_scout_rank_links_to_a_workspaces_profile_with_its_key(db: Database):
    seed_catalog(db, PROFILES, preprints(12), score_of)
    own_profile(db, "PLOS Genetics")
    linked = rank_answer(db, SCOUT_BASE_URL=BASE_URL, SCOUT_SECRET_KEY=SECRET)
    path = re.search(rf"<{BASE_URL}(/profiles/plos-genetics\?key=[^|>]+)\|See all 12 ranked preprints>", linked)
    assert path and linked.count(f"<{BASE_URL}/preprints/10.1101/") == 3  # the preprint pages stay public
    web = client(db, SCOUT_SECRET_KEY=SECRET)
    assert web.get(path.group(1)).status_code == 200 and web.get("/profiles/plos-genetics").status_code == 404
    assert "See all" not in rank_answer(db, SCOUT_BASE_URL=BASE_URL)  # no secret key: no link at all


def test_email_digests_of_a_workspaces_profile_link_with_its_key(db: Database):
    seed(db, NOW)
    own_profile(db, "PLOS Genetics")
    with SmtpServer() as smtp:
        follow(db, "ada@example.org", "PLOS Genetics", NOW, threshold="top 5%")
        run(db, mail_settings(db.url, smtp.url))
        _, text, html = parts(smtp.messages[0].message)
    with db.session() as session:
        key = profile_key(mail_settings(db.url, smtp.url), find_profile(session, "PLOS Genetics").id)
    assert f"See all 40 ranked preprints: {BASE_URL}/profiles/plos-genetics?key={key}" in text
    assert f'href="{BASE_URL}/profiles/plos-genetics?key={key}"' in html


def test_slack_digests_of_a_workspaces_profile_link_with_its_key(db: Database):
    with FakeSlack() as fake:
        setup = make_setup(db, fake, slack_preprints())
        own_profile(db, "Neural Networks")
        setup.subscribe()
        setup.env.update(SCOUT_BASE_URL=BASE_URL, SCOUT_SECRET_KEY=SECRET)
        setup.run("--force")
        [parent] = [m for m in fake.posted("C1") if not m["thread_ts"]]
    key = profile_key(load_settings(SCOUT_SECRET_KEY=SECRET), setup.ids["profiles"][0])
    link = f"<{BASE_URL}/profiles/neural-networks?key={key}|See all 10 ranked preprints>"
    assert link in json.dumps(parent["blocks"])
