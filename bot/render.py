"""Jinja2 environment for everything a user reads: templates are data, not code.

`SCOUT_TEMPLATES_DIR` (optional) is searched before the bundled `templates/`, so a
deployment can restyle a digest or a ranking by copying one file and editing it.
"""

from __future__ import annotations

import os
import re
import textwrap
from functools import lru_cache
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from rich.markup import escape

from scoring.errors import ScoutError
from scoring.text import one_line
from scoring.window import format_lift, format_score, format_top

# Templates are data beside the code, not a package: Preprint Scout runs from its checkout
# (an editable install, as `make install` and the Procfile do).
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "templates"
TEMPLATES_ENV = "SCOUT_TEMPLATES_DIR"
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def environment(user_dir: str | None = None) -> Environment:
    """The template environment; without an explicit folder, SCOUT_TEMPLATES_DIR (validated
    at start by Settings) is read here so that every surface honours it without threading
    the settings through each renderer."""
    return _environment(user_dir or os.environ.get(TEMPLATES_ENV) or None)


@lru_cache(maxsize=4)
def _environment(user_dir: str | None) -> Environment:
    if not BUNDLED_DIR.is_dir():  # a wheel installed away from the checkout carries no templates
        raise ScoutError(f"no templates at {BUNDLED_DIR}: install Preprint Scout from its checkout (pip install -e .)")
    loaders = [FileSystemLoader(user_dir)] if user_dir else []
    loaders.append(FileSystemLoader(str(BUNDLED_DIR)))
    env = Environment(
        loader=ChoiceLoader(loaders),
        # "digest.html.j2" ends in ".j2": list the compound suffixes too, or HTML templates
        # would render unescaped.
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"), default_for_string=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters.update(
        score=format_score, top=format_top, lift=format_lift, term=terminal_text, shorten=shorten, xml=xml_text
    )
    _add_slack_filters(env)
    return env


def _add_slack_filters(env: Environment) -> None:
    # Imported here: the Slack module renders through this environment.
    from bot.delivery.slack.blocks import authors, escape, link

    env.filters.update(mrkdwn=escape, authors=authors)
    env.globals["slack_link"] = link


def terminal_text(value: object) -> str:
    """Text from data, fit for rich markup on a terminal: one line, no controls, no markup."""
    return escape(one_line(str(value)))


def xml_text(value: object) -> str:
    """Text fit for XML 1.0, which has no place for most control characters (a feed holding
    one would not parse at all)."""
    return _NOT_XML.sub("", str(value))


def shorten(value: str, width: int) -> str:
    """Cut at a word, with an ellipsis: "A serial multiplex immunogold labeling method for…"."""
    return textwrap.shorten(value, width, placeholder="…")


def render(name: str, user_dir: str | None = None, **context: object) -> str:
    return environment(user_dir).get_template(name).render(**context).strip()
