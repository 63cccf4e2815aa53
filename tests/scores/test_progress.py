"""Off a terminal, a long step logs a line now and then, not one per item (a refit's steps
are checked in test_scores.py)."""

from __future__ import annotations

import logging

from bot.scores.progress import logged_steps


def test_a_logged_step_says_how_far_it_is_every_so_often_and_when_done(caplog):
    now = [0.0]
    step = logged_steps(every=30.0, clock=lambda: now[0])("scoring", 1000)
    with caplog.at_level(logging.INFO, logger="bot.scores.progress"):
        for _ in range(100):  # 10 items a second for 100 s
            now[0] += 1.0
            step(10)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "scoring: 300/1000 (30%), 30 s",
        "scoring: 600/1000 (60%), 60 s",
        "scoring: 900/1000 (90%), 90 s",
        "scoring: 1000/1000 (100%), 100 s",
    ]
