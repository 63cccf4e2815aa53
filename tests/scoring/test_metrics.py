"""Quality metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.metrics import (
    RankingRows,
    average_precision,
    calibration_error,
    expected_calibration_error,
    hit_rate_at_k,
    precision_at_k,
    ranking_quality,
    reciprocal_ranks,
    retrieval_quality,
    true_label_ranks,
)


def test_ranks_and_reciprocal_ranks_by_hand():
    probs = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    labels = np.array([0, 1, 0])
    higher, tied = true_label_ranks(probs, labels)
    assert higher.tolist() == [0, 1, 2] and tied.tolist() == [1, 1, 1]
    assert reciprocal_ranks(higher, tied) == pytest.approx([1.0, 0.5, 1 / 3])
    q = ranking_quality(probs, labels)
    assert q.acc_at_1 == pytest.approx(1 / 3)
    assert q.mrr == pytest.approx((1 + 0.5 + 1 / 3) / 3)
    assert q.acc_at_5 == q.acc_at_10 == 1.0


def test_ties_count_as_a_random_tie_break():
    # The true class ties with two others for first place: rank 1, 2 or 3.
    higher, tied = true_label_ranks(np.array([[0.2, 0.2, 0.2, 0.4]]), np.array([1]))
    assert (higher[0], tied[0]) == (1, 3)
    assert hit_rate_at_k(higher, tied, 2)[0] == pytest.approx(1 / 3)
    assert reciprocal_ranks(higher, tied)[0] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)


def test_ece_by_hand():
    # Two rows at confidence 0.9 (one right): |0.5 - 0.9| = 0.4 over the whole set.
    probs = np.array([[0.9, 0.1], [0.9, 0.1]])
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx(0.4)
    # Confidence 0.6 right + confidence 0.8 wrong fall in different bins: (0.4 + 0.8) / 2.
    assert calibration_error(np.array([0.6, 0.8]), np.array([True, False])) == pytest.approx(0.6)
    assert expected_calibration_error(np.eye(2), np.array([0, 1])) == 0.0


def test_average_precision_by_hand():
    # Relevant at ranks 1 and 3: (1/1 + 2/3) / 2.
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx(5 / 6)
    # All tied: one cut-off, precision = prevalence.
    assert average_precision(np.ones(4), np.array([1, 0, 0, 0])) == pytest.approx(0.25)
    assert np.isnan(average_precision(np.ones(3), np.zeros(3)))


def test_precision_at_k_by_hand():
    scores = np.arange(12, 0, -1).astype(float)
    relevant = np.zeros(12, bool)
    relevant[[0, 5, 11]] = True
    assert precision_at_k(scores, relevant, 10) == pytest.approx(0.2)
    # Ties across the cut: 2 of 3 slots taken at random from 4 items, 2 relevant.
    tie = np.array([3.0, 1, 1, 1, 1])
    assert precision_at_k(tie, np.array([0, 1, 1, 0, 0], bool), 3) == pytest.approx((0 + 2 * 0.5) / 3)
    # Fewer items than k: the list still has k slots.
    assert precision_at_k(np.array([1.0, 0.5]), np.array([True, True]), 10) == pytest.approx(0.2)


def test_retrieval_quality_uses_journals_with_two_or_more_papers():
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.7, 0.3]])
    labels = np.array([0, 0, 1, 0])
    summary, aps, _ = retrieval_quality(scores, labels)
    assert summary.journals == 1  # journal 1 has a single paper
    assert aps == [pytest.approx(1.0)]


def test_pooled_rows_match_one_batch():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=40)
    labels = rng.integers(0, 5, 40)
    pooled = RankingRows.empty()
    pooled.add(probs[:15], labels[:15])
    pooled.add(probs[15:], labels[15:])
    assert pooled.summary() == ranking_quality(probs, labels)


def test_by_profile_size_by_hand():
    # True journal ranks 1, 2, 4 and 12; their profiles have 1, 1, 5 and 40 papers.
    probs = np.array(
        [
            [0.50, 0.20, 0.10] + [0.02] * 10,
            [0.50, 0.20, 0.10] + [0.02] * 10,
            [0.40, 0.30, 0.20, 0.05] + [0.005] * 9,
        ]
    )
    rows = RankingRows.empty()
    rows.add(probs[:2], np.array([0, 1]), sizes=np.array([1, 1]))
    rows.add(probs[2:], np.array([3]), sizes=np.array([5]))
    twelfth = np.array([[0.9] + [0.01] * 10 + [0.0] * 2])
    twelfth[0, 11] = 0.005  # 11 journals above it
    rows.add(twelfth, np.array([11]), sizes=np.array([40]))
    buckets = {b.label: b for b in rows.by_size()}
    assert list(buckets) == ["1", "2-3", "4-9", "10-29", "30+"]
    assert buckets["1"].n == 2 and buckets["1"].mrr == pytest.approx((1 + 1 / 2) / 2) and buckets["1"].acc_at_10 == 1
    assert buckets["4-9"].mrr == pytest.approx(1 / 4)
    assert buckets["30+"].mrr == pytest.approx(1 / 12) and buckets["30+"].acc_at_10 == 0
    assert buckets["2-3"].n == 0 and np.isnan(buckets["2-3"].mrr)
