"""How long steps report progress: the caller hands in `steps`, and each step asks it for
a callback with its name and size, then calls that callback with how much more is done.

A terminal shows a bar (bot.cli.common); a process without one logs a line now and then
(`bot.scores.progress.logged_steps`). `scoring/` only calls what it is given."""

from __future__ import annotations

from collections.abc import Callable

Advance = Callable[[int], None]  # n more items done
Steps = Callable[[str, int], Advance | None]  # (step name, total items) -> Advance, or None for silence


def begin_step(steps: Steps | None, name: str, total: int) -> Advance | None:
    return steps(name, total) if steps is not None and total > 0 else None
