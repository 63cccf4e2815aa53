"""Window statistics: percentile, average and lift of match scores (DESIGN "Score semantics")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowStats:
    count: int
    average: float

    def lift(self, score: float) -> float:
        return score / self.average if self.average > 0 else 0.0


def window_stats(scores: np.ndarray) -> WindowStats:
    scores = np.asarray(scores, dtype=np.float64)
    return WindowStats(count=len(scores), average=float(scores.mean()) if len(scores) else 0.0)


def top_share(window_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """For each score, the share of the window whose score is at least as high (0..1].

    "Top 0.1%" for the best of a thousand; ties share the worse rank, so a window
    where every score is equal puts every preprint in the top 100%.
    """
    ordered = np.sort(np.asarray(window_scores, dtype=np.float64))
    n = len(ordered)
    if n == 0:
        return np.ones(len(np.atleast_1d(scores)))
    below = np.searchsorted(ordered, np.asarray(scores, dtype=np.float64), side="left")
    return (n - below) / n


def top_shares_of_best(best: list[float], count: int, reaching_last: int) -> list[float]:
    """`top_share` of the window's best scores (best first) without the rest of the
    window: every score at least as high as one shown is shown, except ties with the
    last, whose number (`reaching_last`, scores >= the last shown) the caller counts.
    The same numbers as `top_share(window, best)`."""
    # Ties sit side by side (best first): walking back from the end, one pass finds each
    # score's last tie (a scan per score made a deep page of 20,000 take seconds).
    n = len(best)
    shares = [0.0] * n
    last_tie = n - 1
    for i in range(n - 1, -1, -1):
        if i < n - 1 and best[i] != best[i + 1]:
            last_tie = i
        shares[i] = (reaching_last if last_tie == n - 1 else last_tie + 1) / count
    return shares


def format_top(share: float) -> str:
    """'Top 0.1%', 'Top 12%': enough digits to tell the leaders apart, no more."""
    pct = 100.0 * share
    if pct >= 10:
        text = f"{pct:.0f}"
    elif pct >= 1:
        text = f"{pct:.1f}".rstrip("0").rstrip(".")
    else:
        text = f"{pct:.2g}"
    return f"Top {text}%"


def format_score(score: float) -> str:
    """Match score as a percentage: one decimal from 1% up ("2.0%"), two significant digits below."""
    pct = 100.0 * score
    if pct >= 1:
        return f"{pct:.1f}%"
    if pct >= 0.01:
        return f"{pct:.2g}%"
    return "<0.01%" if pct > 0 else "0%"


def format_lift(lift: float) -> str:
    if lift >= 10:
        return f"{lift:,.0f}x"
    return f"{lift:.1f}x"
