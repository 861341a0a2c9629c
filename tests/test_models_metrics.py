"""Hand-computed cases for every evaluation metric."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.evaluate import (
    brier,
    calibration_bins,
    capacity,
    expected_calibration_error,
    expected_hits_at_k,
    flag_top,
    k_label,
    lead_time_summary,
    lead_times,
    pr_auc,
    precision_recall_at_k,
    ranking_metrics,
    roc_auc,
)

Y = np.array([1, 0, 1, 0, 0, 1, 0, 0, 0, 0])
S = np.array([0.9, 0.8, 0.8, 0.8, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])


def test_capacity_rounds_half_up_and_keeps_at_least_one():
    assert capacity(150, 0.01) == 2  # 1.5 -> 2
    assert capacity(149, 0.01) == 1  # 1.49 -> 1
    assert capacity(10, 0.05) == 1  # 0.5 -> 1
    assert capacity(3, 0.01) == 1
    assert capacity(20_000, 0.05) == 1000
    assert k_label(0.05) == "5pct" and k_label(0.1) == "10pct" and k_label(0.025) == "2p5pct"


def test_hits_at_k_is_the_expectation_over_tie_orders():
    # The three scores 0.8 tie and hold one positive between them.
    assert expected_hits_at_k(Y, S, 1) == pytest.approx(1.0)
    assert expected_hits_at_k(Y, S, 2) == pytest.approx(1 + 1 / 3)
    assert expected_hits_at_k(Y, S, 3) == pytest.approx(1 + 2 / 3)
    assert expected_hits_at_k(Y, S, 4) == pytest.approx(2.0)
    assert expected_hits_at_k(Y, S, 6) == pytest.approx(3.0)


def test_hits_at_k_equals_brute_force_average_of_all_tie_orders():
    y = np.array([1, 0, 1, 1, 0, 0, 1])
    s = np.array([0.7, 0.5, 0.5, 0.5, 0.5, 0.2, 0.2])
    groups = [np.flatnonzero(s == v) for v in sorted(set(s), reverse=True)]
    orders = [np.concatenate(p) for p in itertools.product(*(itertools.permutations(g) for g in groups))]
    for k in range(1, len(y) + 1):
        brute = np.mean([y[order[:k]].sum() for order in orders])
        assert expected_hits_at_k(y, s, k) == pytest.approx(brute)
    # k = 6 takes one of the two 0.2 scores, one of which is positive.
    assert expected_hits_at_k(y, s, 6) == pytest.approx(3 + 0.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 4)), min_size=1, max_size=12), st.integers(1, 12))
def test_hits_at_k_matches_mean_over_random_orders(rows, k):
    y = np.array([r[0] for r in rows])
    s = np.array([r[1] for r in rows], dtype=float)
    k = min(k, len(y))
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(400):
        order = np.lexsort((rng.random(len(y)), -s))
        draws.append(y[order[:k]].sum())
    assert expected_hits_at_k(y, s, k) == pytest.approx(np.mean(draws), abs=0.25)
    assert 0 <= expected_hits_at_k(y, s, k) <= min(k, y.sum())


def test_precision_recall_at_k():
    precision, recall = precision_recall_at_k(Y, S, 0.2)  # k = 2
    assert precision == pytest.approx((4 / 3) / 2)
    assert recall == pytest.approx((4 / 3) / 3)
    assert np.isnan(precision_recall_at_k(np.zeros(5), np.arange(5.0), 0.2)[1])


def test_missing_scores_rank_last():
    y = np.array([1, 0, 0])
    assert expected_hits_at_k(y, np.array([np.nan, 0.2, 0.1]), 1) == 0
    assert expected_hits_at_k(y, np.array([np.nan, 0.2, 0.1]), 3) == 1


def test_roc_and_pr_auc_by_hand():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))
    # Precision 1 at recall 1/2, then 2/3 at recall 1.
    assert pr_auc([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert np.isnan(pr_auc([0, 0], [0.1, 0.2]))


def test_brier_and_ece_by_hand():
    assert brier([1, 0], [0.8, 0.3]) == pytest.approx((0.04 + 0.09) / 2)
    p = np.array([0.05, 0.15, 0.15, 0.95, 1.0])
    y = np.array([0, 1, 0, 1, 1])
    # bins: [0, .1): |0 - .05|, 1 row; [.1, .2): |.5 - .15|, 2 rows; [.9, 1]: |1 - .975|, 2 rows.
    expected = (0.05 * 1 + 0.35 * 2 + 0.025 * 2) / 5
    assert expected_calibration_error(y, p) == pytest.approx(expected)
    table = calibration_bins(y, p)
    assert table["count"].tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 0, 2]
    assert expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        expected_calibration_error([0, 1], [0.5, 1.5])


def test_labels_must_be_binary():
    with pytest.raises(ValueError, match="0 or 1"):
        brier([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="equal length"):
        roc_auc([0, 1], [0.1])


def test_ranking_metrics_names_and_values():
    out = ranking_metrics(Y, S, np.clip(S, 0, 1), k_values=(0.1, 0.2))
    assert out["precision_at_10pct"] == pytest.approx(1.0)
    assert out["recall_at_20pct"] == pytest.approx(4 / 9)
    assert out["n"] == 10 and out["positives"] == 3 and out["base_rate"] == pytest.approx(0.3)
    assert {"roc_auc", "pr_auc", "brier", "ece"} <= set(out)


def _lists() -> pd.DataFrame:
    months = pd.to_datetime(["2025-07-01"] * 4 + ["2025-08-01"] * 4 + ["2025-09-01"] * 4)
    return pd.DataFrame({
        "as_of": months,
        "household_id": list("abcd") * 3,
        "score": [4, 3, 2, 1, 1, 2, 3, 4, 1, 1, 1, 5],
    })


def test_flag_top_per_month_and_order_free():
    lists = _lists()
    flagged = flag_top(lists, 0.25)  # k = 1 of 4 each month
    assert lists.loc[flagged, "household_id"].tolist() == ["a", "d", "d"]
    shuffled = lists.sample(frac=1.0, random_state=3)
    assert flag_top(shuffled, 0.25).reindex(lists.index).equals(flagged)


def test_flag_top_breaks_ties_by_seeded_hash_reproducibly():
    lists = pd.DataFrame({"as_of": pd.Timestamp("2025-07-01"), "household_id": list("abcdefgh"),
                          "score": 1.0})
    first = flag_top(lists, 0.25, seed=1)
    assert first.sum() == 2
    assert flag_top(lists.iloc[::-1], 0.25, seed=1).reindex(lists.index).equals(first)
    picks = {tuple(flag_top(lists, 0.25, seed=s).to_numpy()) for s in range(10)}
    assert len(picks) > 1  # a different seed is a different (fair) order


def test_lead_times_by_hand():
    events = pd.DataFrame({"household_id": ["d", "a", "b", "c"],
                           "event_month": ["2025-09", "2025-07", "2025-08", "2025-07"]})
    leads = lead_times(events, _lists(), fraction=0.25)
    # d: first listed 2025-08 -> event 2025-09: 1 month. a: listed 2025-07, event 2025-07: 0 months.
    # b: never listed. c: never listed before its event.
    assert leads.loc["d", "lead_months"] == 1
    assert leads.loc["a", "lead_months"] == 0
    assert np.isnan(leads.loc["b", "lead_months"]) and pd.isna(leads.loc["b", "first_flagged"])
    summary = lead_time_summary(leads)
    assert np.isnan(summary.pop("lead_time_median_months"))  # half got no warning: so did the median event
    assert summary == {"events": 4.0, "caught_before_event_share": 0.5, "lead_time_median_caught_months": 0.5,
                       "lead_time_mean_caught_months": 0.5, "warning_months_per_event": 0.25}


def test_lead_time_median_over_all_events_ranks_no_warning_last():
    leads = pd.DataFrame({"lead_months": [3.0, 0.0, 2.0, np.nan, 5.0]})
    summary = lead_time_summary(leads)
    # All events, no warning lowest: [none, 0, 2, 3, 5] -> 2; caught only: [0, 2, 3, 5] -> 2.5.
    assert summary["lead_time_median_months"] == 2.0
    assert summary["lead_time_median_caught_months"] == 2.5
    assert summary["warning_months_per_event"] == pytest.approx(10 / 5)
    # A list that warns one event early and misses the rest has the larger caught-only median but no
    # all-events median.
    sparse = lead_time_summary(pd.DataFrame({"lead_months": [5.0, np.nan, np.nan]}))
    assert sparse["lead_time_median_caught_months"] == 5.0 and np.isnan(sparse["lead_time_median_months"])


def test_lead_times_ignore_lists_after_the_event():
    events = pd.DataFrame({"household_id": ["d"], "event_month": ["2025-07"]})
    leads = lead_times(events, _lists(), fraction=0.25)  # d is listed only from 2025-08
    assert np.isnan(leads.loc["d", "lead_months"])
    summary = lead_time_summary(leads)
    assert np.isnan(summary["lead_time_median_months"])
    assert np.isnan(summary["lead_time_median_caught_months"])
    assert summary["warning_months_per_event"] == 0.0
