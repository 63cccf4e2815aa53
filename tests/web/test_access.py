"""SCOUT_WEB_ACCESS: public pages, secret links per profile (shown by `scout profiles show`), or none."""

from __future__ import annotations

import json
import re

import pytest

from bot.config import SettingsError
from bot.db import Database
from tests.fake_slack import seed_catalog
from tests.web.test_pages import PROFILES, client, preprints, score_of

SECRET = "a-long-random-secret-for-the-links"


def secret_link(scout, name: str) -> str:
    shown = json.loads(scout("profiles", "show", name, "--json").stdout)
    return shown["web_page"]


def test_token_access_opens_a_profile_only_with_its_own_link(db: Database, scout):
    seed_catalog(db, PROFILES, preprints(30), score_of)
    scout.env.update(SCOUT_WEB_ACCESS="token", SCOUT_SECRET_KEY=SECRET, SCOUT_BASE_URL="https://scout.example.org")
    link = secret_link(scout, "PLOS Genetics")
    other = secret_link(scout, "Neural Networks")
    assert link.startswith("https://scout.example.org/profiles/plos-genetics?key=")
    assert (
        "web page: https://scout.example.org/profiles/plos-genetics?key="
        in scout("profiles", "show", "PLOS Genetics").stdout
    )
    web = client(db, SCOUT_WEB_ACCESS="token", SCOUT_SECRET_KEY=SECRET)
    path = link.removeprefix("https://scout.example.org")
    key = path.split("?key=")[1]
    page = web.get(path)
    assert page.status_code == 200 and "PLOS Genetics" in page.text
    # every link on the page keeps the key; none leads to a page that names other profiles
    links = [unescape_amp(h) for h in re.findall(r'href="(/[^"]*)"', page.text) if h != "/static/scout.css"]
    assert links and all(f"key={key}" in h for h in links if h.startswith("/profiles/")), links
    assert not [h for h in links if h.startswith("/preprints/")]
    assert web.get(links[-1]).status_code == 200
    for refused in [
        "/profiles/plos-genetics",
        "/profiles/plos-genetics?key=" + other.split("?key=")[1],
        "/profiles/plos-genetics.atom",
        "/profiles/plos-genetics.json",
        "/profiles/plos-genetics/papers",
        "/profiles/plos-genetic?key=" + key,
    ]:
        response = web.get(refused)
        assert response.status_code == 404, refused
        assert "Neural Networks" not in response.text and "Did you mean" not in response.text
    assert web.get(f"/profiles/plos-genetics.json?key={key}").status_code == 200
    assert web.get(f"/profiles/plos-genetics.atom?key={key}&min=5%25").status_code == 200
    assert web.get("/").status_code == 404
    assert web.get("/preprints/10.1101/2026.01.01.100001").status_code == 404


def unescape_amp(href: str) -> str:
    return href.replace("&amp;", "&")


def test_token_access_needs_the_secret_key(db: Database):
    with pytest.raises(SettingsError, match="SCOUT_SECRET_KEY"):
        client(db, SCOUT_WEB_ACCESS="token")


def test_access_off_serves_no_pages_and_public_shows_the_plain_link(db: Database, scout):
    seed_catalog(db, PROFILES, preprints(3), score_of)
    web = client(db, SCOUT_WEB_ACCESS="off")
    for path in (
        "/",
        "/profiles/plos-genetics",
        "/profiles/plos-genetics.atom",
        "/preprints/10.1101/2026.01.01.100001",
    ):
        assert web.get(path).status_code == 404, path
    assert web.get("/healthz").status_code == 200
    scout.env.update(SCOUT_WEB_ACCESS="off")
    assert secret_link(scout, "PLOS Genetics") is None
    scout.env.update(SCOUT_WEB_ACCESS="public")
    assert secret_link(scout, "PLOS Genetics") == "/profiles/plos-genetics"


# -- a Slack workspace's own profile -------------------------------------------------------


def give_to_workspace(scout, name: str, team: str = "T1") -> None:
    scout("profiles", "workspace", name, team)


def test_a_workspaces_profile_is_left_out_of_every_public_page(db: Database, scout):
    seed_catalog(db, PROFILES, preprints(30), score_of)
    give_to_workspace(scout, "PLOS Genetics")
    web = client(db, SCOUT_SECRET_KEY=SECRET)
    public = {
        "/": "Neural Networks",
        "/?days=30": "Neural Networks",
        "/search?q=genetics": "No profile",
        "/search?q=plos": "No profile",
        "/search?q=synaptic": "Synaptic plasticity study",
        "/preprints/10.1101/2026.01.01.100001": "Neural Networks",
        "/feed?p=neural-networks": "Neural Networks",
        "/feed.atom?p=neural-networks&top=50%25": "Neural Networks",
    }
    for path, shown in public.items():
        page = web.get(path)
        assert page.status_code == 200 and shown in page.text, path
        assert "PLOS Genetics" not in page.text and "plos-genetics" not in page.text, path
    for path in ("/feed?p=plos-genetics", "/feed?p=neural-networks&p=plos-genetics", "/feed.atom?p=plos-genetics"):
        page = web.get(path)
        assert page.status_code == 404 and "PLOS Genetics" not in page.text, path


def test_the_preprint_page_counts_a_workspaces_profile_as_published_elsewhere(db: Database, scout):
    seed_catalog(db, PROFILES, preprints(5), score_of)
    path = "/preprints/10.1101/2026.01.01.100001"
    before = client(db).get(path).text
    give_to_workspace(scout, "PLOS Genetics")
    after = client(db).get(path).text

    def elsewhere(html: str) -> float:
        return float(re.search(r"published elsewhere[^%]*?([\d.]+)%", html, re.S | re.I).group(1))

    assert "PLOS Genetics" in before and "PLOS Genetics" not in after
    assert elsewhere(after) == pytest.approx(elsewhere(before) + 100 * score_of(1, 1), abs=0.06)


def test_a_workspaces_profile_opens_only_with_its_secret_link_whatever_the_access(db: Database, scout):
    seed_catalog(db, PROFILES, preprints(30), score_of)
    scout.env.update(SCOUT_SECRET_KEY=SECRET)
    give_to_workspace(scout, "PLOS Genetics")
    link = secret_link(scout, "PLOS Genetics")
    assert link.startswith("/profiles/plos-genetics?key=")
    assert secret_link(scout, "Neural Networks") == "/profiles/neural-networks"  # shared: public as before
    key = link.split("?key=")[1]
    web = client(db, SCOUT_SECRET_KEY=SECRET)
    unknown = {}
    for suffix in ("", ".atom", ".json", "/papers"):
        for query in ("", "?key=not-the-key"):
            page = web.get(f"/profiles/plos-genetics{suffix}{query}")
            assert page.status_code == 404 and "PLOS Genetics" not in page.text, suffix + query
            unknown[suffix + query] = page.text
        assert web.get(f"/profiles/plos-genetics{suffix}?key={key}").status_code == 200, suffix
    page = web.get(link)
    assert "PLOS Genetics" in page.text
    links = [unescape_amp(h) for h in re.findall(r'href="(/profiles/[^"]*)"', page.text)]
    assert links and all(f"key={key}" in h for h in links), links
    assert re.findall(r'href="/preprints/', page.text)  # public preprint pages: linked as before
    assert json.loads(web.get(f"/profiles/plos-genetics.json?key={key}").text)["profile"] == "PLOS Genetics"
    assert client(db, SCOUT_WEB_ACCESS="token", SCOUT_SECRET_KEY=SECRET).get(link).status_code == 200
    assert client(db, SCOUT_WEB_ACCESS="off", SCOUT_SECRET_KEY=SECRET).get(link).status_code == 404
    # Without its key the page is answered as a slug that names nothing.
    scout("profiles", "remove", "PLOS Genetics")
    assert web.get("/profiles/plos-genetics").text == unknown[""]


def test_without_a_secret_key_a_workspaces_profile_has_no_page_and_no_link(db: Database, scout):
    seed_catalog(db, PROFILES, preprints(3), score_of)
    give_to_workspace(scout, "PLOS Genetics")
    assert "no web link: SCOUT_SECRET_KEY is not set" in scout("profiles", "show", "PLOS Genetics").stderr
    web = client(db)
    assert web.get("/profiles/plos-genetics?key=anything").status_code == 404
    assert web.get("/profiles/neural-networks").status_code == 200
