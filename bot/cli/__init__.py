"""`scout`: the command line. Each command is a thin shell over bot/ and scoring/; the
commands live by noun (feeds, profiles, rankings, delivery, processes), and --help lists
them in panels in the order of the pipeline."""

from __future__ import annotations

import logging

# Imported in the order of the pipeline, which is the order --help lists the panels in.
from bot.cli import delivery, feeds, processes, profiles, rankings  # noqa: F401, I001 - each registers its commands
from bot.cli.common import app

__all__ = ["app", "main"]


def main() -> None:  # pragma: no cover - console entry for `python -m bot.cli`
    logging.basicConfig(level=logging.WARNING)
    app()
