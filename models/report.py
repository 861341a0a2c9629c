"""Artifacts of a training run for people: plots (PNG, matplotlib Agg) and the model card (markdown)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from models.evaluate import calibration_bins

MODEL_LABELS = {
    "rules": "rule baseline", "logistic": "logistic regression", "lightgbm": "LightGBM (calibrated)",
}
CARD_METRICS = ("roc_auc", "pr_auc", "precision_at_1pct", "precision_at_5pct", "recall_at_5pct",
                "precision_at_10pct", "recall_at_10pct", "brier", "ece", "caught_before_event_share",
                "lead_time_median_months", "lead_time_median_caught_months", "warning_months_per_event",
                "lead_gain_vs_rules_months",
                "earlier_than_rules_share")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Precision-recall curves, one per model: ``curves[name] = (labels, ranking scores)``."""
    from sklearn.metrics import precision_recall_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    base = None
    for name, (y, score) in curves.items():
        precision, recall, _ = precision_recall_curve(y, np.nan_to_num(score, nan=-np.inf, neginf=-1e300))
        ax.plot(recall, precision, label=MODEL_LABELS.get(name, name))
        base = float(np.mean(y))
    if base is not None:
        ax.axhline(base, color="grey", linestyle=":", label=f"base rate {base:.1%}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall on the test period", xlim=(0, 1),
           ylim=(0, 1))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_calibration(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: Path, *, bins: int = 10
) -> Path:
    """Reliability diagram (equal-width bins): ``curves[name] = (labels, probabilities)``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    top = 0.05
    for name, (y, probability) in curves.items():
        table = calibration_bins(y, probability, bins=bins)
        table = table[table["count"] > 0]
        ax.plot(table["mean_predicted"], table["observed_rate"], marker="o",
                label=MODEL_LABELS.get(name, name))
        top = max(top, float(table["mean_predicted"].max()), float(table["observed_rate"].max()))
    limit = min(1.0, top * 1.1)
    ax.set(xlabel="mean predicted probability", ylabel="observed rate",
           title="Calibration on the test period", xlim=(0, limit), ylim=(0, limit))
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_importance(importance: pd.Series, path: Path, *, top: int = 20) -> Path:
    """Horizontal bar chart of LightGBM gain importance (top features)."""
    plt = _pyplot()
    shown = importance.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.2))
    ax.barh(shown.index, shown.to_numpy())
    ax.set(xlabel="total gain", title="LightGBM global importance")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _markdown_table(frame: pd.DataFrame, *, digits: int = 3) -> str:
    def cell(value: object) -> str:
        if pd.api.types.is_scalar(value) and pd.isna(value):
            return ""
        if isinstance(value, float | np.floating):
            return f"{value:.0f}" if float(value).is_integer() else f"{value:.{digits}f}"
        return str(value)

    header = "| " + " | ".join(str(c) for c in [frame.index.name or "", *frame.columns]) + " |"
    rule = "|" + "---|" * (len(frame.columns) + 1)
    rows = ["| " + " | ".join([str(i), *(cell(v) for v in row)]) + " |" for i, row in
            zip(frame.index, frame.itertuples(index=False), strict=True)]
    return "\n".join([header, rule, *rows])


def model_card(
    *,
    model_name: str,
    comparison: pd.DataFrame,
    by_county: pd.DataFrame,
    splits: pd.DataFrame,
    tiers: Mapping[str, float | None],
    tier_targets: Mapping[str, float],
    features: list[str],
    registry_version: str,
    config_hash: str,
    data_fingerprint: str,
    horizon_months: int,
    lead_time_k: float,
    fairness: str | None = None,
) -> str:
    """The model card: intended use, data, metrics, per-county results, fairness (a markdown section
    from ``monitoring.fairness.markdown``, when given), limits."""
    fairness_section = f"{fairness}\n\n" if fairness else ""
    shown = comparison[[c for c in CARD_METRICS if c in comparison]]
    county = by_county[[c for c in ("n", "positives", "base_rate", "roc_auc", "precision_at_5pct",
                                    "recall_at_5pct", "ece", "caught_before_event_share") if c in by_county]]
    tier_rows = "\n".join(
        f"| {name} | {tier_targets[name]:.0%} | {'never given' if cut is None else f'{cut:.3f}'} |"
        for name, cut in tiers.items()
    )
    return f"""# Model card: {model_name}

## Intended use
An early warning for the low-income dynamic monitoring platform: it ranks households that are not yet
below the monitoring line or on dibao/特困 by their risk of falling into hardship within the next
{horizon_months} months, so that township staff can choose whom to **verify at home first**. It is an aid
to a person who decides: a score is never a decision on eligibility, benefits or exit, and every warning
must be checked by a caseworker through the normal procedure (home verification, consent, data
comparison, village review, public notice, township and county approval).

## Data
- Input tables fingerprint `{data_fingerprint}`; training config hash `{config_hash}`.
- {len(features)} features from feature registry version `{registry_version}`; every feature at as-of T uses
  only records known (recorded) before T.
- Label (see `doudi/labels.py`): in one of the {horizon_months} months from T (T's month on) the
  household's per-capita net income (trailing 12 months, less out-of-pocket medical spending) falls
  below its local monitoring line, or it newly enters dibao/特困, or it receives temporary assistance.
- Splits by date (rolling origin; no training label window reaches the validation or calibration
  period, no validation/calibration window reaches the test period):

{_markdown_table(splits.set_index("split"), digits=4)}

## Metrics on the test period
Ranking metrics use each model's ranking score; ties are averaged exactly over random orders.
Brier and ECE (10 equal-width bins) use probabilities. Lead time: months between the first monthly list
(top {lead_time_k:.0%} of the cohort) that held a household and the month it fell into hardship.
`lead_time_median_months` is the median over all events, an event not listed before it happened counting
as no warning (blank: the median event got no warning); `lead_time_median_caught_months` is over caught
events only (selection-biased: catching imminent events lowers it); `caught_before_event_share` is the
share of all events caught; `warning_months_per_event` averages the lead over all events (0 when not
caught); `lead_gain_vs_rules_months` compares with the rule baseline on the events both caught.

{_markdown_table(shown)}

## Alert tiers
Chosen on the calibration period: the longest list whose precision reaches the target.

| tier | precision target | probability threshold |
|---|---|---|
{tier_rows}

## Results per county (LightGBM)
Each county's own top 5 % (verification capacity is local).

{_markdown_table(county)}

{fairness_section}## Limits
- Trained and tested on the data named above; performance on another region or year must be measured
  there before use, and re-checked as policy lines, prices and the economy move (monitor drift).
- The label is defined from administrative records; households whose hardship never reaches the records
  (no claim, no application) are invisible to it, and so to the model.
- Probabilities are calibrated on one period; a shift in the base rate makes them drift even when the
  ranking stays good.
- Fairness across groups (county, urban/rural, ethnic minority, disability, female- or elderly-headed
  households) must be audited before promotion; the false-negative rate matters most for an assistive
  programme.
- Explanations (TreeSHAP, log-odds) describe the model, not causes.
"""
