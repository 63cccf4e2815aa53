"""The layout's rules: the functional core stays pure (scoring/ never imports bot/ and
does no I/O but loading the model), and templates/ is data."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.render import environment
from tests.paths import ROOT

SCORING = ROOT / "scoring"
# Modules that talk to the world: a network, a database, files, processes, the clock of a scheduler.
IO_MODULES = {
    "bot",
    "socket",
    "ssl",
    "http",
    "urllib",
    "httpx",
    "requests",
    "smtplib",
    "sqlalchemy",
    "sqlite3",
    "psycopg",
    "subprocess",
    "shutil",
    "tempfile",
    "slack_sdk",
    "slack_bolt",
    "feedparser",
    "apscheduler",
    "logging",
}
IO_CALLS = {"open", "print", "input"}


def imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def called_names(tree: ast.AST) -> set[str]:
    return {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}


def impurities(source: str) -> list[str]:
    """What in a module talks to the world. Loading the model (sentence-transformers finds
    its weights itself, scoring/embedder.py) is the one I/O scoring/ may do."""
    tree = ast.parse(source)
    found = [f"imports {m}" for m in sorted(imported_roots(tree) & IO_MODULES)]
    return found + [f"calls {c}()" for c in sorted(called_names(tree) & IO_CALLS)]


@pytest.mark.parametrize("module", sorted(SCORING.glob("*.py")), ids=lambda p: p.name)
def test_scoring_is_pure(module: Path):
    assert impurities(module.read_text()) == []


def test_the_purity_check_catches_a_bot_import_and_a_file_read():
    source = "from bot.db import Database\nimport numpy\n\ndef f():\n    return open('x').read()\n"
    assert impurities(source) == ["imports bot", "calls open()"]


def test_templates_are_data_and_every_one_compiles():
    """Presentation lives in templates/, which holds no Python: a user restyles a digest by
    editing a template, never by importing one."""
    assert not list((ROOT / "templates").rglob("*.py"))
    env = environment()
    names = env.list_templates()
    assert {"slack/digest_item.json.j2", "email/digest.html.j2", "cli/ranking_item.txt.j2"} <= set(names)
    for name in names:
        env.get_template(name)  # a syntax error fails here, not in a user's digest
