"""The documentation keeps up with the code: every setting is documented, the command
reference is what --help says, and every link in README.md and docs/ points somewhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import Settings
from tests.paths import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def setting_names() -> list[str]:
    return [str(field.validation_alias) for field in Settings.model_fields.values()]


def undocumented(page: str) -> list[str]:
    return [name for name in setting_names() if f"`{name}`" not in page]


def test_every_setting_is_documented():
    assert undocumented((ROOT / "docs" / "configuration.md").read_text()) == []


def test_the_settings_check_catches_a_setting_left_out():
    page = (ROOT / "docs" / "configuration.md").read_text().replace("`SCOUT_DIGEST_LEASE_SECONDS`", "")
    assert undocumented(page) == ["SCOUT_DIGEST_LEASE_SECONDS"]


def test_the_command_reference_is_what_help_says():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_docs.py"), "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr


def test_every_option_says_what_it_does():
    """An option without help text shows as an empty cell in docs/cli.md."""
    text = (ROOT / "docs" / "cli.md").read_text()
    empty = [line for line in text.splitlines() if re.match(r"^\| `-[^|]*\|\s*\|", line)]
    assert empty == []


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in HEADING.findall(text)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_points_somewhere(page: Path):
    broken = []
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}: no such heading")
    assert broken == []


def test_the_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200
