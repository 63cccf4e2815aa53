"""The one base of every error a user can act on.

`scout` shows a ScoutError's message as one line and exits; anything else is a bug and
shows its traceback. scoring/ holds it because bot/ builds on scoring/, never the reverse.
"""

from __future__ import annotations


class ScoutError(Exception):
    """A problem said for a person: a bad setting, an unknown profile, a feed that failed."""


class InputError(ScoutError, ValueError):
    """A value a person typed that cannot be used; the message says what would work."""
