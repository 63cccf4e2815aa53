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
