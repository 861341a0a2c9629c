"""Matured performance: how good were past scoring runs, now that their label windows have passed?

For a scoring run at as-of T with horizon H, the window (T, T + H] has *matured* once the newer world's
income records reach the window's last month plus ``maturity_lag_months`` (late records). Then:

* the label of every household the run scored comes from ``doudi.labels.build_labels`` on the newer
  world (records by the date they happened, including those that arrived after the run);
* verified case outcomes (home verification, issue 5) add what the records cannot show: a household
  whose hardship was confirmed at home counts as a positive even if no record says so;
* the run's ranking (stored risk) is judged with ``models.evaluate``: precision@k and recall@k at the
  configured capacities, PR-AUC, ROC-AUC, Brier, ECE and the reliability table; and the run's alerts
  by their hit rate (alerts whose household fell into hardship) and their **confirmed-hardship rate**
  (alerts verified at home as in hardship / alerts verified).

A run is flagged when a metric falls more than its configured margin below the model's own test-period
value (logged at training), or its ECE rises more than ``ece_margin`` above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from doudi.io import World
from models.evaluate import calibration_bins, k_label, ranking_metrics
from monitoring.config import PerformanceConfig
from monitoring.util import plain

ExpectedMetrics = Callable[[str, str], dict[str, float] | None]
"""``expected(model_name, model_version)``: the model's test-period metrics, or None when unknown."""


@dataclass
class RunPerformance:
    """The matured performance of one scoring run.

    Attributes:
        counts: scored, labelled (in the newer world's cohort at T), positives (by records or confirmed),
            confirmed_added (positives only a home verification shows), alerts, alerts_verified,
            alerts_confirmed.
        metrics: ``models.evaluate.ranking_metrics`` of the run's risk against the labels.
        reliability: equal-width reliability table (``models.evaluate.calibration_bins``).
        alert_label_rate: share of the run's (labelled) alerts that fell into hardship.
        alert_confirmed_rate: share of the run's verified alerts confirmed in hardship (NaN if none).
        expected: the model's test-period metrics the run is compared with (None when unknown).
        flags: why the run is flagged.
    """

    as_of: pd.Timestamp
    horizon_months: int
    counts: dict[str, int]
    metrics: dict[str, float]
    reliability: pd.DataFrame
    alert_label_rate: float
    alert_confirmed_rate: float
    run_id: int | None = None
    model_name: str | None = None
    model_version: str | None = None
    expected: dict[str, float] | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    def summary(self) -> dict[str, Any]:
        """JSON-ready headline numbers (stored in the report row)."""
        return plain({
            "run_id": self.run_id, "as_of": self.as_of.strftime("%Y-%m-%d"),
            "horizon_months": self.horizon_months,
            "model_name": self.model_name, "model_version": self.model_version, "counts": self.counts,
            "metrics": self.metrics, "alert_label_rate": self.alert_label_rate,
            "alert_confirmed_rate": self.alert_confirmed_rate, "expected": self.expected,
            "reliability": self.reliability.to_dict(orient="records"), "flags": self.flags,
        })


def last_data_month(world: World) -> pd.Period:
    """The latest month of the world's income records (the newer extract reaches this far)."""
    months = pd.PeriodIndex(world["income"]["month"].dropna().astype(str).unique(), freq="M")
    if not len(months):
        raise ValueError("the world has no income records: nothing has matured")
    return months.max()


def matured(as_of: pd.Timestamp, *, horizon_months: int, lag_months: int, last_month: pd.Period) -> bool:
    """Whether the window (T, T + H] of a run at ``as_of`` is over and its late records had time to arrive."""
    window_last = pd.Timestamp(as_of).to_period("M") + horizon_months - 1
    return window_last + lag_months <= last_month


def evaluate_run(
    scores: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    config: PerformanceConfig,
    horizon_months: int | None = None,
    outcomes: pd.DataFrame | None = None,
    expected: dict[str, float] | None = None,
    run_id: int | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
) -> RunPerformance:
    """Judge one run's stored scores against matured labels and verified outcomes.

    Args:
        scores: index household_id; ``risk`` (the run's calibrated risk) and ``alerted`` (bool).
        labels: index household_id; ``label`` (0/1) for the cohort at T in the newer world. Scored
            households without a label (no longer in that cohort) are left out and counted.
        as_of: the run's as-of date.
        config: k values, bins, margins.
        horizon_months: the label window (default ``config.horizon_months``).
        outcomes: index household_id; ``confirmed`` (1 hardship confirmed at home, 0 not, NA unknown).
        expected: the model's test-period metrics (for the drop flags).
    """
    horizon = horizon_months or config.horizon_months
    joined = scores[["risk", "alerted"]].join(labels[["label"]], how="inner")
    y_records = joined["label"].to_numpy(dtype=np.int64)
    confirmed = (outcomes["confirmed"] if outcomes is not None and "confirmed" in outcomes
                 else pd.Series(dtype="Int8")).reindex(joined.index)
    confirmed_yes = confirmed.eq(1).fillna(False).to_numpy(bool)
    y = np.maximum(y_records, confirmed_yes.astype(np.int64))
    risk = joined["risk"].to_numpy(dtype=np.float64)
    alerted = joined["alerted"].to_numpy(dtype=bool)
    if not len(joined):
        raise ValueError(f"run {run_id} at {pd.Timestamp(as_of).date()}: none of its households has a label")
    metrics = ranking_metrics(y, risk, risk, k_values=config.k_values, bins=config.bins)
    reliability = calibration_bins(y, risk, bins=config.bins)
    verified = alerted & confirmed.notna().to_numpy()
    counts = {
        "scored": len(scores), "labelled": len(joined), "unlabelled": len(scores) - len(joined),
        "positives": int(y.sum()), "confirmed_added": int((confirmed_yes & (y_records == 0)).sum()),
        "alerts": int(alerted.sum()), "alerts_verified": int(verified.sum()),
        "alerts_confirmed": int((verified & confirmed_yes).sum()),
    }
    result = RunPerformance(
        as_of=pd.Timestamp(as_of), horizon_months=horizon, counts=counts, metrics=metrics,
        reliability=reliability,
        alert_label_rate=float(y[alerted].mean()) if alerted.any() else float("nan"),
        alert_confirmed_rate=(counts["alerts_confirmed"] / counts["alerts_verified"]
                              if counts["alerts_verified"] else float("nan")),
        run_id=run_id, model_name=model_name, model_version=model_version, expected=expected,
    )
    result.flags = performance_flags(metrics, expected, config)
    return result


def performance_flags(metrics: dict[str, float], expected: dict[str, float] | None,
                      config: PerformanceConfig) -> list[str]:
    """Drops beyond the configured margins against the model's test-period metrics, in words."""
    if not expected:
        return []
    reasons = []
    for name, margin in config.drop_margins.items():
        now, then = metrics.get(name), expected.get(name)
        if now is None or then is None or not np.isfinite(now) or not np.isfinite(then):
            continue
        if now < then - margin:
            reasons.append(f"{name} fell to {now:.3f} from {then:.3f} at training (margin {margin})")
    now, then = metrics.get("ece"), expected.get("ece")
    if now is not None and then is not None and np.isfinite(now) and np.isfinite(then) \
            and now > then + config.ece_margin:
        reasons.append(f"ece rose to {now:.3f} from {then:.3f} at training (margin {config.ece_margin})")
    return reasons


def headline_metrics(config: PerformanceConfig) -> list[str]:
    """The metric names shown in the trend: precision and recall at each k, PR-AUC, ROC-AUC, ECE."""
    out = []
    for fraction in config.k_values:
        out += [f"precision_at_{k_label(fraction)}", f"recall_at_{k_label(fraction)}"]
    return [*out, "pr_auc", "roc_auc", "ece", "brier"]


def trend(history: pd.DataFrame, config: PerformanceConfig) -> pd.DataFrame:
    """Stored performance by run, oldest first, with the change of each headline metric since the
    previous run (``<metric>_change``)."""
    if history.empty:
        return history
    names = [*headline_metrics(config), "alert_label_rate", "alert_confirmed_rate"]
    shown = [c for c in names if c in history]
    out = history[["as_of", "model_version", "flagged", *shown]].sort_values("as_of", kind="stable").copy()
    for name in shown:
        out[f"{name}_change"] = pd.to_numeric(out[name], errors="coerce").diff()
    return out


def matured_performance(
    sessions: Any,
    world: World,
    *,
    config: PerformanceConfig,
    run_ids: list[int] | None = None,
    expected: ExpectedMetrics | None = None,
    horizon: Callable[[str, str], int | None] | None = None,
    extra_outcomes: pd.DataFrame | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[RunPerformance], pd.DataFrame]:
    """Evaluate every stored scoring run whose label window has matured in ``world``.

    Args:
        sessions: a SQLAlchemy session factory on the service database.
        world: the newer world (records that arrived since the runs).
        config: performance config.
        run_ids: only these runs (default: every run of the configured sources).
        expected: the model's test-period metrics per (name, version), for the drop flags.
        horizon: the model's label horizon per (name, version) (default ``config.horizon_months``).
        extra_outcomes: verified outcomes from a feedback export (``run_id``, ``household_id``,
            ``verification_outcome``/``close_reason`` or ``label``), added to those in the database.
        progress: called with a short description per run.

    Returns:
        The evaluated runs, and the runs not matured yet (run_id, as_of, matures_in, the month needed).
    """
    from doudi.labels import build_labels
    from monitoring import store

    last = last_data_month(world)
    results: list[RunPerformance] = []
    pending = []
    with sessions() as session:
        runs = store.scoring_runs(session, sources=config.sources, run_ids=run_ids)
        for run_id, run in runs.iterrows():
            name, version = str(run["model_name"]), str(run["model_version"])
            months = (horizon(name, version) if horizon else None) or config.horizon_months
            as_of = pd.Timestamp(run["as_of"])
            lag = config.maturity_lag_months
            if not matured(as_of, horizon_months=months, lag_months=lag, last_month=last):
                needed = as_of.to_period("M") + months - 1 + config.maturity_lag_months
                pending.append({"run_id": int(run_id), "as_of": as_of, "horizon_months": months,
                                "needs_data_through": str(needed), "data_through": str(last)})
                continue
            if progress is not None:
                progress(f"run {run_id} as of {as_of.date()}")
            scores = store.run_scores(session, int(run_id))
            outcomes = _merge_outcomes(store.case_outcomes(session, int(run_id)), extra_outcomes, int(run_id))
            labels = build_labels(world, as_of, horizon_months=months)
            results.append(evaluate_run(
                scores, labels, as_of=as_of, config=config, horizon_months=months, outcomes=outcomes,
                expected=expected(name, version) if expected else None, run_id=int(run_id), model_name=name,
                model_version=version,
            ))
    pending_frame = pd.DataFrame(pending, columns=["run_id", "as_of", "horizon_months", "needs_data_through",
                                                   "data_through"])
    return results, pending_frame


def _merge_outcomes(database: pd.DataFrame, extra: pd.DataFrame | None, run_id: int) -> pd.DataFrame:
    """Database outcomes, completed by a feedback export's rows of this run (the database wins)."""
    from monitoring.store import with_confirmed

    if extra is None or extra.empty:
        return database
    rows = extra[pd.to_numeric(extra["run_id"], errors="coerce") == run_id]
    if rows.empty:
        return database
    rows = rows.set_index(pd.Index(rows["household_id"].astype(str), name="household_id"))
    if "verification_outcome" in rows:
        rows = with_confirmed(rows[[c for c in ("verification_outcome", "close_reason") if c in rows]])
    else:
        rows = rows.assign(confirmed=pd.to_numeric(rows["label"], errors="coerce").astype("Int8"))
    rows = rows[~rows.index.duplicated(keep="last")]
    combined = pd.concat([database, rows.loc[rows.index.difference(database.index)]])
    return combined
