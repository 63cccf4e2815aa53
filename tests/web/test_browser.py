"""The pages in a real headless browser (Debian's chromium and chromium-driver, driven by
Selenium) against `scout serve` run as its own process on 127.0.0.1, on a catalog built as a
user builds one: a bioRxiv feed polled from a loopback server, profiles from real papers,
scored by the real model.

It opens the index, searches, opens a profile page, expands an abstract, follows a link
to a preprint page, checks the order and the figures against `scout rank --json`, checks
that no request left 127.0.0.1, and saves screenshots of each page at phone and desktop
widths in build/screenshots/ (docs/web.md).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from scoring.window import format_score, format_top
from tests.loopback import LoopbackServer, free_port, wait_for
from tests.paths import FIXTURES, ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "build" / "screenshots"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
PROFILES = {
    "eLife": FIXTURES / "profiles" / "elife.jsonl",
    "PLOS Computational Biology": FIXTURES / "profiles" / "plos-computational-biology.jsonl",
    "Genome Biology and Evolution": FIXTURES / "profiles" / "genome-biology-and-evolution.jsonl",
}


def recent_feed(name: str) -> bytes:
    """A fixture feed moved in time so that its newest preprint was posted
    yesterday: the default window holds them all whatever day the test runs."""
    body = (FIXTURES / "feeds" / name).read_text(encoding="utf-8")
    tag = r"(<dc:date>|<prism:publicationDate>)(\d{4}-\d\d-\d\d)"
    newest = max(date.fromisoformat(d) for _, d in re.findall(tag, body))
    shift = date.today() - timedelta(days=1) - newest
    return re.sub(tag, lambda m: m[1] + (date.fromisoformat(m[2]) + shift).isoformat(), body).encode()


@pytest.fixture
def catalog(scout, embedder) -> Iterator[dict]:
    """A polled and scored catalog; yields `scout rank --json` of the profile the test opens."""
    with LoopbackServer() as feeds:
        for server, subject, fixture in [
            ("biorxiv", "neuroscience", "biorxiv_neuroscience.rdf"),
            ("medrxiv", "epidemiology", "medrxiv_epidemiology.rdf"),
        ]:
            rss = recent_feed(fixture)
            feeds.route(f"/{server}_xml.php", body=rss, headers={"Content-Type": "application/rss+xml"})
            scout.env[f"SCOUT_{server.upper()}_RSS_URL"] = feeds.url
            scout("feeds", "add", f"{server}:{subject}")
        for name, path in PROFILES.items():
            scout("profiles", "add", name, "--papers", str(path), "--no-score")
        scout("poll")
        yield json.loads(scout("rank", "eLife", "--json").stdout)


@pytest.fixture
def served(database_url: str, catalog, tmp_path: Path) -> Iterator[str]:
    """`scout serve` on a free port of 127.0.0.1, as a deployment runs it."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(healthy, 60, "scout serve to answer /healthz")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def browser() -> Iterator:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are missing: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"):
        options.add_argument(flag)
    # Chromium's own background traffic (updates, safe browsing) would not be the page's.
    options.add_argument("--disable-background-networking")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.execute_cdp_cmd("Network.enable", {})
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def screenshot(driver, name: str) -> None:
    """The whole page and its first screen at phone and desktop widths, light; the desktop also dark."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for label, metrics, scheme in (
        ("phone", PHONE, "light"),
        ("desktop", DESKTOP, "light"),
        ("desktop-dark", DESKTOP, "dark"),
    ):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )
        driver.execute_script("window.scrollTo(0, 0)")
        for suffix, whole in (("", True), ("-first-screen", False)):
            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": whole})
            (SCREENSHOTS / f"{name}-{label}{suffix}.png").write_bytes(base64.b64decode(shot["data"]))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_an_editor_browses_from_the_index_to_a_preprint(served: str, catalog: dict, browser):
    items = catalog["items"]
    assert len(items) >= 6

    browser.get(served + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "table.profiles tbody tr")
    assert [r.find_element(By.CSS_SELECTOR, "th").text for r in rows] == sorted(PROFILES, key=str.casefold)
    screenshot(browser, "index")

    # search by a word of a title: the preprint is among the results
    word = max(re.findall(r"[A-Za-z]{6,}", items[0]["title"]), key=len)
    box = browser.find_element(By.ID, "q")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=q]").text
    box.send_keys(word)
    box.submit()
    wait_for(lambda: "/search" in browser.current_url, 10, "the search page")
    found = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "ol.results .paper-title")]
    assert items[0]["title"] in found
    screenshot(browser, "search")

    browser.get(served + "/")
    browser.find_element(By.LINK_TEXT, "eLife").click()
    wait_for(lambda: browser.current_url.endswith("/profiles/elife"), 10, "the profile page")
    header = browser.find_element(By.ID, "header").text
    assert header.startswith(
        "Preprints posted in the last 90 days, ranked by how well they match eLife's content profile"
    )
    cards = browser.find_elements(By.CSS_SELECTOR, "li.card")
    assert len(cards) == len(items)
    for card, item in zip(cards, items, strict=True):
        assert card.find_element(By.CSS_SELECTOR, "h2").text == f"{item['rank']}. {item['title']}"
        figures = card.find_element(By.CSS_SELECTOR, ".figures").text
        assert figures.startswith(f"{format_top(item['top_share'])} · match {format_score(item['score'])} · ")
        assert [li.text.rsplit(" ", 1)[0] for li in card.find_elements(By.CSS_SELECTOR, ".why li")] == [
            f"{r['title']} ({r['year']})" if r["year"] else r["title"] for r in item["why"]
        ]

    # the abstract is behind a toggle that works without script
    first = cards[0]
    abstract = first.find_element(By.CSS_SELECTOR, "details p")
    assert not abstract.is_displayed()
    first.find_element(By.CSS_SELECTOR, "summary").click()
    assert abstract.is_displayed() and abstract.text == items[0]["abstract"]
    screenshot(browser, "profile")

    first.find_element(By.CSS_SELECTOR, "a.fit").click()
    wait_for(lambda: "/preprints/" in browser.current_url, 10, "the preprint page")
    assert browser.find_element(By.TAG_NAME, "h1").text == items[0]["title"]
    rows = browser.find_elements(By.CSS_SELECTOR, "table.matches tbody tr")
    names = [r.find_element(By.CSS_SELECTOR, "th").text for r in rows]
    assert "eLife" in names and names[-1] == "Published elsewhere"
    elife = rows[names.index("eLife")].find_elements(By.CSS_SELECTOR, "td")
    assert elife[0].text.strip() == format_score(items[0]["score"])
    assert browser.find_element(By.ID, "set-50").text.startswith("50%:")
    screenshot(browser, "preprint")

    origin = served + "/"
    strays = [u for u in requested_urls(browser) if not u.startswith((origin, "data:"))]
    assert strays == []
