"""Subscription thresholds: "top 1%", "min 5%", "lift 100" (docs/scores.md).

Parsed once from what a user typed (Slack, CLI), stored as (kind, value), and
applied to window statistics; pure so every surface agrees on what passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scoring.errors import InputError

KINDS = ("top", "min", "lift")
DEFAULT = "top 1%"
USAGE = '"top 1%" (share of the window), "min 5%" (match score) or "lift 100" (times the average)'

_PATTERN = re.compile(r"^\s*(?P<kind>top|min|lift)\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>%|x)?\s*$", re.IGNORECASE)


class ThresholdError(InputError):
    """What the user typed is not a threshold; the message shows what is."""


@dataclass(frozen=True)
class Threshold:
    kind: str  # "top" | "min" | "lift"
    value: float  # top/min: a fraction (0.01 for 1%); lift: a multiple

    def passes(self, score: float, top_share: float, lift: float) -> bool:
        if self.kind == "top":
            return top_share <= self.value + 1e-12
        if self.kind == "min":
            return score >= self.value
        return lift >= self.value

    def describe(self) -> str:
        if self.kind == "lift":
            return f"lift {self.value:g}x"
        return f"{self.kind} {100 * self.value:g}%"

    def headline(self) -> str:
        """Phrase for a digest header: 'in the top 1%', 'above 5% match', '100x the average or more'."""
        if self.kind == "top":
            return f"in the top {100 * self.value:g}%"
        if self.kind == "min":
            return f"with a match score of {100 * self.value:g}% or more"
        return f"at {self.value:g}x the average or more"


def parse_threshold(text: str | None) -> Threshold:
    if text is None or not text.strip():
        text = DEFAULT
    match = _PATTERN.match(text)
    if not match:
        raise ThresholdError(f"{text!r} is not a threshold; use {USAGE}")
    kind, value, unit = match["kind"].lower(), float(match["value"]), match["unit"]
    if kind == "lift":
        if unit == "%":
            raise ThresholdError(f"lift is a multiple, not a percentage: try 'lift {value:g}'")
        if value <= 1:
            raise ThresholdError("a lift threshold must be above 1 (1 is the average preprint)")
        return Threshold("lift", value)
    if unit == "x":
        raise ThresholdError(f"{kind} is a percentage: try '{kind} {value:g}%'")
    if not 0 < value <= 100:
        raise ThresholdError(f"{kind} must be between 0% and 100%, not {value:g}%")
    return Threshold(kind, value / 100)
