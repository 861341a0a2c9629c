"""What training logs for monitoring: the drift reference snapshot and the test period's fairness audit.

Called by ``models.train`` (lazily, never on the request path):

* :func:`reference_snapshot` — a seeded sample of the training snapshots (features, label and the
  model's calibrated risk), logged as ``reference/snapshot.parquet`` with the run; ``doudi monitor
  drift --reference champion`` compares scoring runs against it.
* :func:`test_period_audit` — the fairness audit of a model on the test period (alerted = top
  ``alert_fraction`` of each monthly list); logged as ``fairness.csv`` and in the model card, and as
  ``<model>.fairness.<attribute>.<group>.flagged`` metrics that the promotion check compares.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from doudi.io import World
from monitoring.config import MonitoringConfig, load_config
from monitoring.fairness import attach_groups, audit_metrics, audit_records, markdown, training_audit

REFERENCE_ARTIFACT = "reference/snapshot.parquet"
FAIRNESS_ARTIFACT = "fairness.csv"


def reference_snapshot(model: Any, frame: pd.DataFrame, *, max_rows: int = 20000, seed: int = 7
                       ) -> pd.DataFrame:
    """A seeded sample of snapshot rows: ``as_of``, ``household_id``, the model's features, ``label`` (when
    present) and ``risk`` (the model's calibrated probability)."""
    rows = frame.sample(n=max_rows, random_state=seed).sort_index() if len(frame) > max_rows else frame
    columns = ["as_of", "household_id", *model.features, *(["label"] if "label" in rows else [])]
    out = rows[columns].reset_index(drop=True)
    out["risk"] = model.predict_proba(rows).astype("float64")
    return out


def with_audit_groups(splits: Any, world: World, *, config: MonitoringConfig | None = None) -> Any:
    """``splits`` with the fairness group columns (ethnic minority, disability, head of household)
    added to its test frame; other frames untouched."""
    from dataclasses import replace

    config = config or load_config()
    return replace(splits, test=attach_groups(splits.test, world, config=config.fairness))


def test_period_audit(model: Any, splits: Any, *, seed: int = 7, config: MonitoringConfig | None = None
                      ) -> pd.DataFrame:
    """The fairness table of ``model`` on ``splits.test``."""
    config = config or load_config()
    return training_audit(model, splits.test, config=config.fairness, seed=seed)


def test_period_metrics(model: Any, splits: Any, *, seed: int = 7, prefix: str = "",
                        config: MonitoringConfig | None = None) -> dict[str, float]:
    """The audit's MLflow metrics (``<prefix>fairness.<attribute>.<group>.flagged`` and the count)."""
    return audit_metrics(test_period_audit(model, splits, seed=seed, config=config), prefix=prefix)


def write_training_artifacts(model: Any, splits: Any, directory: Path, *, seed: int = 7,
                             config: MonitoringConfig | None = None) -> str:
    """Write the reference snapshot and the fairness table into ``directory``; return the model card's
    fairness section (markdown)."""
    config = config or load_config()
    path = directory / REFERENCE_ARTIFACT
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot = reference_snapshot(model, splits.train, max_rows=config.drift.max_rows, seed=config.drift.seed)
    snapshot.to_parquet(path, index=False)
    table = test_period_audit(model, splits, seed=seed, config=config)
    table.to_csv(directory / FAIRNESS_ARTIFACT)
    (directory / "fairness.json").write_text(
        json.dumps({"config": config.fairness.model_dump(mode="json"), "groups": audit_records(table)},
                   indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return markdown(table, config=config.fairness, title="Fairness on the test period (LightGBM)")
