"""Evaluation on the test period: ranking at verification capacity, calibration, lead time, slices.

Conventions (documented because the numbers depend on them):
    * k for a fraction f of a cohort of n households is ``max(1, floor(f * n + 0.5))``.
    * Ties in precision@k / recall@k: the exact expectation under a uniformly random order among equal
      scores. Households strictly above the k-th score are all in the list; of the m households tied at
      the k-th score, r slots remain, so each is in with probability r / m and the expected number of
      positives taken from the tie is r * (positives among the m) / m. Missing scores rank last.
    * ROC-AUC counts a tied positive/negative pair as one half (Mann-Whitney); PR-AUC is average
      precision with tied scores forming one threshold (scikit-learn's definitions).
    * ECE: 10 equal-width probability bins on [0, 1] (the usual definition); the weighted mean of
      |observed rate - mean predicted probability| per bin.
    * Lead time: the monthly lists are cut at the top ``k`` by score with ties broken by a seeded hash of
      the household id (a fair, reproducible order). For each household that falls into hardship in
      month E, the first as-of T (month of T <= E) at which it was on the list; lead = E - month(T) in
      months (0 = flagged at the start of the month it fell). Households never listed before E are not
      caught: they got no warning, which ranks below every lead.
      ``lead_time_median_months`` is the median over ALL events (NaN when more than half of them got no
      warning: the median event was not warned). ``lead_time_median_caught_months`` and
      ``lead_time_mean_caught_months`` are over caught events only; they are selection-biased (a list
      that catches only the events it can see long before looks better than one that also catches the
      imminent ones), so read them with ``caught_before_event_share``. ``warning_months_per_event`` is
      the mean over all events with an uncaught event counting 0 months.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def k_label(fraction: float) -> str:
    """Metric suffix for a capacity fraction: 0.05 -> ``5pct``, 0.025 -> ``2p5pct``."""
    return f"{fraction * 100:g}".replace(".", "p") + "pct"


def capacity(n: int, fraction: float) -> int:
    """Number of households a capacity fraction of a cohort of ``n`` allows (at least 1, at most n)."""
    return int(min(n, max(1, np.floor(fraction * n + 0.5))))


def _clean(y: np.ndarray | pd.Series, score: np.ndarray | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    if y.shape != score.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {score.shape} must be 1-d and of equal length")
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, np.where(np.isnan(score), -np.inf, score)


def expected_hits_at_k(y: np.ndarray | pd.Series, score: np.ndarray | pd.Series, k: int) -> float:
    """Expected number of positives among the top ``k`` scores under random tie-breaking."""
    y, score = _clean(y, score)
    if not 0 < k <= len(y):
        raise ValueError(f"k={k} must be in 1..{len(y)}")
    boundary = np.partition(score, len(score) - k)[len(score) - k]
    above = score > boundary
    tied = score == boundary
    remaining = k - int(above.sum())
    return float(y[above].sum() + remaining * y[tied].sum() / tied.sum())


def precision_recall_at_k(
    y: np.ndarray | pd.Series, score: np.ndarray | pd.Series, fraction: float
) -> tuple[float, float]:
    """Precision and recall of the top ``fraction`` of the cohort (expected value under random ties).

    Recall is NaN when there is no positive.
    """
    y_arr = np.asarray(y, dtype=np.float64)
    k = capacity(len(y_arr), fraction)
    hits = expected_hits_at_k(y_arr, score, k)
    positives = y_arr.sum()
    return hits / k, (float(hits / positives) if positives > 0 else float("nan"))


def roc_auc(y: np.ndarray | pd.Series, score: np.ndarray | pd.Series) -> float:
    """ROC-AUC (ties count one half); NaN when only one class is present."""
    y, score = _clean(y, score)
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, np.nan_to_num(score, neginf=np.finfo(np.float64).min)))


def pr_auc(y: np.ndarray | pd.Series, score: np.ndarray | pd.Series) -> float:
    """Area under the precision-recall curve as average precision; NaN without positives."""
    y, score = _clean(y, score)
    if y.sum() == 0:
        return float("nan")
    return float(average_precision_score(y, np.nan_to_num(score, neginf=np.finfo(np.float64).min)))


def brier(y: np.ndarray | pd.Series, probability: np.ndarray | pd.Series) -> float:
    """Mean squared error of the probabilities."""
    y, p = _clean(y, probability)
    return float(np.mean((p - y) ** 2))


def calibration_bins(
    y: np.ndarray | pd.Series, probability: np.ndarray | pd.Series, *, bins: int = 10
) -> pd.DataFrame:
    """Equal-width reliability table: per bin the count, mean predicted probability and observed rate."""
    y, p = _clean(y, probability)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(index, weights=p, minlength=bins) / count
        rate = np.bincount(index, weights=y, minlength=bins) / count
    return pd.DataFrame({
        "lower": np.arange(bins) / bins, "upper": np.arange(1, bins + 1) / bins,
        "count": count, "mean_predicted": mean_p, "observed_rate": rate,
    })


def expected_calibration_error(
    y: np.ndarray | pd.Series, probability: np.ndarray | pd.Series, *, bins: int = 10
) -> float:
    """ECE over equal-width bins: sum over bins of (share of rows) x |observed rate - mean probability|."""
    table = calibration_bins(y, probability, bins=bins)
    filled = table[table["count"] > 0]
    weight = filled["count"] / filled["count"].sum()
    return float((weight * (filled["observed_rate"] - filled["mean_predicted"]).abs()).sum())


def ranking_metrics(
    y: np.ndarray | pd.Series,
    score: np.ndarray | pd.Series,
    probability: np.ndarray | pd.Series,
    *,
    k_values: Sequence[float] = (0.01, 0.05, 0.10),
    bins: int = 10,
) -> dict[str, float]:
    """All single-list metrics for one cohort.

    Args:
        y: 0/1 labels.
        score: the ranking score (higher = riskier); ties are averaged as documented above.
        probability: calibrated probabilities, for Brier and ECE.
        k_values: capacity fractions for precision@k and recall@k.
        bins: equal-width bins for ECE.
    """
    y_arr = np.asarray(y, dtype=np.float64)
    out: dict[str, float] = {
        "n": float(len(y_arr)),
        "positives": float(y_arr.sum()),
        "base_rate": float(y_arr.mean()) if len(y_arr) else float("nan"),
        "roc_auc": roc_auc(y_arr, score),
        "pr_auc": pr_auc(y_arr, score),
    }
    for fraction in k_values:
        precision, recall = precision_recall_at_k(y_arr, score, fraction)
        out[f"precision_at_{k_label(fraction)}"] = precision
        out[f"recall_at_{k_label(fraction)}"] = recall
    out["brier"] = brier(y_arr, probability)
    out["ece"] = expected_calibration_error(y_arr, probability, bins=bins)
    return out


def _tie_key(household_id: pd.Series, seed: int) -> np.ndarray:
    key = f"{seed:016d}"[-16:]
    return pd.util.hash_pandas_object(household_id.astype("string"), index=False, hash_key=key).to_numpy()


def flag_top(lists: pd.DataFrame, fraction: float, *, seed: int = 7) -> pd.Series:
    """Which rows are on the top-``fraction`` list of their as-of date.

    Args:
        lists: columns ``as_of``, ``household_id``, ``score`` (one row per household and as-of).
        fraction: capacity share of each as-of's cohort.
        seed: seed of the hash that orders equal scores.

    Returns:
        Boolean series aligned to ``lists``.
    """
    order = pd.DataFrame({
        "as_of": lists["as_of"].to_numpy(),
        "neg_score": -lists["score"].fillna(-np.inf).to_numpy(dtype=np.float64),
        "tie": _tie_key(lists["household_id"], seed),
    }, index=lists.index)
    order = order.sort_values(["as_of", "neg_score", "tie"], kind="stable")
    rank = order.groupby("as_of", sort=False).cumcount()
    size = order.groupby("as_of", sort=False)["tie"].transform("size")
    limit = np.minimum(size, np.maximum(1, np.floor(fraction * size + 0.5)))
    return (rank < limit).reindex(lists.index)


def month_index(values: pd.Series) -> pd.Series:
    """Months since year 0 for ``YYYY-MM`` strings or timestamps (so differences are month counts)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.year * 12 + values.dt.month - 1
    text = values.astype("string")
    return text.str.slice(0, 4).astype("Int64") * 12 + text.str.slice(5, 7).astype("Int64") - 1


def lead_times(
    events: pd.DataFrame, lists: pd.DataFrame, *, fraction: float = 0.05, seed: int = 7
) -> pd.DataFrame:
    """Months of warning each event got from the monthly lists.

    Args:
        events: one row per household that fell into hardship: ``household_id``, ``event_month`` (YYYY-MM).
        lists: monthly scores: ``as_of`` (first day of a month), ``household_id``, ``score``.
        fraction: list length as a share of each month's cohort.
        seed: tie-break seed.

    Returns:
        ``events`` indexed by household_id with ``first_flagged`` (as-of or NaT) and ``lead_months``
        (``event month - month of first_flagged``, NaN if not caught before the event).
    """
    flagged = lists.loc[flag_top(lists, fraction, seed=seed), ["as_of", "household_id"]]
    out = events[["household_id", "event_month"]].drop_duplicates("household_id").set_index("household_id")
    hits = flagged.merge(out, left_on="household_id", right_index=True, how="inner")
    hits = hits[month_index(hits["as_of"]).to_numpy() <= month_index(hits["event_month"]).to_numpy()]
    first = hits.groupby("household_id")["as_of"].min()
    out["first_flagged"] = first.reindex(out.index)
    event = month_index(out["event_month"]).astype("Float64")
    out["lead_months"] = (event - month_index(out["first_flagged"]).astype("Float64")).astype("float64")
    return out


def lead_time_summary(leads: pd.DataFrame) -> dict[str, float]:
    """Lead-time summary of :func:`lead_times` output (see the module docstring for each name)."""
    caught = leads["lead_months"].dropna().to_numpy(dtype=np.float64)
    events = len(leads)
    nan = float("nan")
    # Not caught = no warning, below every lead: the median over all events is finite only when the
    # median event was caught.
    ranked = np.concatenate([np.full(events - len(caught), -np.inf), np.sort(caught)])
    median_all = float(np.median(ranked)) if events else nan
    return {
        "events": float(events),
        "caught_before_event_share": float(len(caught) / events) if events else nan,
        "lead_time_median_months": median_all if np.isfinite(median_all) else nan,
        "lead_time_median_caught_months": float(np.median(caught)) if len(caught) else nan,
        "lead_time_mean_caught_months": float(caught.mean()) if len(caught) else nan,
        "warning_months_per_event": float(caught.sum() / events) if events else nan,
    }
