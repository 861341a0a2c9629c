"""Snapshots and splits on a real generated world: cohort rows, labels, no leakage; the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import models_synthetic as synth
import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from doudi.io import write_world
from doudi.labels import build_labels, cohort
from doudi.world import generate_world
from features import feature_names
from models.config import TrainConfig, load_config
from models.dataset import (
    Splits,
    build_splits,
    check_no_leakage,
    data_fingerprint,
    describe_splits,
    snapshot,
    snapshot_count,
)
from models.evaluate import month_index
from models.train import evaluate_models, fit_models

HMAC_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def world():
    return generate_world(400, 36, 11)


@pytest.fixture(scope="module")
def splits(world) -> Splits:
    return build_splits(world, load_config())


def test_snapshot_is_the_cohort_with_its_labels(world):
    as_of = pd.Timestamp("2024-03-01")
    frame = snapshot(world, as_of, horizon_months=6)
    members = cohort(world, as_of)
    assert sorted(frame["household_id"]) == sorted(members.astype(str))
    assert frame["household_id"].is_unique
    assert set(feature_names()) <= set(frame.columns)
    assert frame["as_of"].dtype == "datetime64[ns]" and (frame["as_of"] == as_of).all()
    labels = build_labels(world, as_of, horizon_months=6)
    expected = labels["label"].reindex(pd.Index(frame["household_id"])).to_numpy()
    np.testing.assert_array_equal(frame["label"].to_numpy(), expected)
    assert frame.loc[frame["label"] == 1, "event_month"].notna().all()
    assert frame.loc[frame["label"] == 0, "event_month"].isna().all()
    unlabelled = snapshot(world, as_of, horizon_months=6, labelled=False)
    assert "label" not in unlabelled and len(unlabelled) == len(frame)


def test_splits_never_leak(splits: Splits):
    horizon = pd.DateOffset(months=splits.horizon_months)
    held_out = min(splits.validation["as_of"].min(), splits.calibration["as_of"].min())
    # Every training label window ends on or before the first validation / calibration as-of ...
    assert (splits.train["as_of"] + horizon <= held_out).all()
    # ... and so does every training event.
    events = splits.train.loc[splits.train["label"] == 1, "event_month"]
    assert (month_index(events) < month_index(pd.Series([held_out]))[0]).all()
    test_start = splits.test["as_of"].min()
    for frame in (splits.validation, splits.calibration):
        assert (frame["as_of"] + horizon <= test_start).all()
        events = frame.loc[frame["label"] == 1, "event_month"]
        assert (month_index(events) < month_index(pd.Series([test_start]))[0]).all()
    assert (splits.lead["as_of"] >= test_start).all() and "label" not in splits.lead


def test_leaking_splits_are_refused(splits: Splits):
    late = splits.train.assign(as_of=pd.Timestamp("2024-08-01"))
    tampered = Splits(late, splits.validation, splits.calibration, splits.test, splits.lead, 6)
    with pytest.raises(ValueError, match="leak"):
        check_no_leakage(tampered)


def test_describe_splits(splits: Splits):
    table = describe_splits(splits).set_index("split")
    config = load_config()
    assert list(table.index) == ["train", "validation", "calibration", "test", "lead"]
    assert table.loc["train", "snapshots"] == 6 and table.loc["lead", "snapshots"] == 6
    assert table.loc["train", "label_windows_end"] == "2024-12-01"
    assert table.loc["test", "rows"] == len(splits.test)
    assert table.loc["test", "positives"] == splits.test["label"].sum()
    assert snapshot_count(config) == 6 + 1 + 1 + 6  # the test as-of is built once for both uses


def test_fingerprint_ignores_row_order_but_not_values(world):
    print_ = data_fingerprint(world)
    shuffled = {name: frame.sample(frac=1.0, random_state=1) for name, frame in world.items()}
    assert data_fingerprint(shuffled) == print_
    changed = dict(world)
    income = world["income"].copy()
    income.loc[income.index[0], "amount"] += 1.0
    changed["income"] = income
    assert data_fingerprint(changed) != print_


def test_paired_lead_time_against_rules():
    config = load_config()
    data = synth.splits(config, n=1200, seed=8)
    models = fit_models(data, config, synth.feature_info())
    metrics, by_county = evaluate_models(models, data, config)
    assert metrics["rules"]["lead_gain_vs_rules_months"] == 0.0
    assert metrics["rules"]["earlier_than_rules_share"] == 0.0
    assert np.isfinite(metrics["lightgbm"]["lead_gain_vs_rules_months"])
    assert set(by_county["lightgbm"]) == set(synth.COUNTIES)
    counts = sum(c["positives"] for c in by_county["lightgbm"].values())
    assert counts == metrics["lightgbm"]["positives"]


def _small_config(path: Path) -> Path:
    data = load_config().model_dump(mode="json")
    data["lightgbm"].update(n_estimators=40, num_threads=1)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    TrainConfig.model_validate(data)
    return path


@pytest.mark.slow
def test_cli_train_end_to_end(world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from doudi.cli import app

    write_world(world, tmp_path / "world")
    monkeypatch.setenv("DOUDI_ID_HMAC_KEY", HMAC_KEY)
    monkeypatch.setenv("DOUDI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["train", str(tmp_path / "world"), "--config",
                                      str(_small_config(tmp_path / "c.yaml")), "--report-json", str(report)])
    assert result.exit_code == 0, result.output
    assert "Splits" in result.output and "precision_at_5pct" in result.output
    assert "version 1" in result.output
    data = json.loads(report.read_text(encoding="utf-8"))
    assert set(data["models"]) == {"rules", "logistic", "lightgbm"}
    names = {"roc_auc", "pr_auc", "precision_at_1pct", "precision_at_5pct", "precision_at_10pct",
             "recall_at_5pct", "brier", "ece", "lead_time_median_months", "caught_before_event_share"}
    for metrics in data["models"].values():
        assert names <= set(metrics)
    assert data["model_version"] == "1" and data["aliases"] == ["challenger", "champion"]
    assert (tmp_path / "data" / "mlflow.db").exists()  # the default store under the data folder


def test_cli_train_rejects_a_bad_config(tmp_path: Path):
    from doudi.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text("horizon_months: 6\nlearning_rate: 0.1\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--config", str(bad)])
    assert result.exit_code == 1
    assert "learning_rate" in result.output and "Traceback" not in result.output
