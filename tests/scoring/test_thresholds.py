from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.thresholds import Threshold, ThresholdError, parse_threshold


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("top 1%", "top", 0.01),
        ("TOP 0.5 %", "top", 0.005),
        ("min 5%", "min", 0.05),
        ("min 5", "min", 0.05),
        ("lift 100", "lift", 100),
        ("lift 20x", "lift", 20),
        ("", "top", 0.01),
        (None, "top", 0.01),
    ],
)
def test_parses_what_users_type(text, kind, value):
    assert parse_threshold(text) == Threshold(kind, pytest.approx(value))


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("top 0%", "between 0% and 100%"),
        ("min 150%", "between"),
        ("lift 50%", "multiple"),
        ("lift 1", "above 1"),
        ("top 5x", "percentage"),
        ("best 3", "top 1%"),
    ],
)
def test_bad_thresholds_say_what_would_work(text, hint):
    with pytest.raises(ThresholdError, match=hint):
        parse_threshold(text)


def test_passes_each_kind():
    assert parse_threshold("top 1%").passes(score=0.0, top_share=0.01, lift=0)
    assert not parse_threshold("top 1%").passes(score=0.9, top_share=0.02, lift=99)
    assert parse_threshold("min 5%").passes(score=0.05, top_share=1, lift=0)
    assert not parse_threshold("lift 100").passes(score=0.9, top_share=0.001, lift=99.9)
    assert parse_threshold("top 2.5%").describe() == "top 2.5%"
    assert parse_threshold("lift 100").headline() == "at 100x the average or more"


@given(st.text(max_size=30))
def test_never_raises_anything_but_threshold_error(text):
    try:
        parsed = parse_threshold(text)
    except ThresholdError as exc:
        assert "top 1%" in str(exc) or "%" in str(exc) or "lift" in str(exc)
    else:
        assert parsed.kind in ("top", "min", "lift") and parsed.value > 0
