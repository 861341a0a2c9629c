"""What training logs for monitoring, end to end on an MLflow sqlite store: the reference snapshot (and a
drift report against it), the fairness table in the model card and as metrics, and `doudi promote`
refusing a challenger that adds a flagged group unless forced."""

from __future__ import annotations

import json
from types import SimpleNamespace

import models_synthetic as synth
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from doudi.settings import Settings, disable_telemetry
from models.config import TrainConfig, load_config
from models.train import train_on_splits
from monitoring.config import load_config as load_monitoring_config
from monitoring.jobs import run_drift
from monitoring.sources import SourceError, reference_from_model, resolve
from monitoring.training import reference_snapshot

NAME = "doudi-relapse-risk"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    disable_telemetry()
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("monitoring-training")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    data = load_config().model_dump(mode="json")
    data["lightgbm"].update(n_estimators=40, num_threads=1)
    config = TrainConfig.model_validate(data)
    splits = synth.splits(config, n=700, seed=5)
    first = train_on_splits(splits, config, synth.feature_info(), data_fingerprint="synthetic",
                            tracking_uri=uri)
    second = train_on_splits(splits, config, synth.feature_info(), data_fingerprint="synthetic",
                             tracking_uri=uri)
    settings = Settings(data_dir=root / "data", mlflow_tracking_uri=uri,
                        database_url=f"sqlite:///{root / 'doudi.db'}")
    return SimpleNamespace(root=root, uri=uri, client=MlflowClient(tracking_uri=uri, registry_uri=uri),
                           splits=splits, first=first, second=second, settings=settings)


@pytest.fixture()
def tracking(trained, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.uri)
    return trained


@pytest.mark.slow
def test_training_logs_the_reference_snapshot_and_the_fairness_audit(tracking):
    client, run_id = tracking.client, tracking.first.run_id
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"fairness.csv", "fairness.json", "reference"} <= artifacts
    card = client.download_artifacts(run_id, "model_card.md", str(tracking.root))
    text = open(card, encoding="utf-8").read()
    assert "## Fairness on the test period (LightGBM)" in text
    assert text.index("## Fairness") < text.index("## Limits")
    assert "| county | 530102 |" in text
    metrics = client.get_run(run_id).data.metrics
    flags = {k: v for k, v in metrics.items() if k.startswith("lightgbm.fairness.")}
    assert "lightgbm.fairness.flagged_groups" in flags
    expected = {"lightgbm.fairness.county_code.530104.flagged", "lightgbm.fairness.urban_rural.rural.flagged"}
    assert expected <= set(flags)
    # The second run re-scored the champion (v1) on its test data, fairness included.
    second = client.get_run(tracking.second.run_id).data.metrics
    assert any(k.startswith("champion.fairness.") for k in second)

    reference = reference_from_model(tracking.settings, "champion")
    model = tracking.first.models["lightgbm"]
    assert reference.model_version == "1" and "training snapshot 2024-01..2024-06" in reference.label
    assert list(reference.frame.columns) == [*model.features, "risk"]
    logged = reference_snapshot(model, tracking.splits.train)
    np.testing.assert_allclose(reference.frame["risk"].to_numpy(), logged["risk"].to_numpy())
    assert len(reference.frame) == len(tracking.splits.train)  # under max_rows: every training row
    with pytest.raises(SourceError, match="no version 'nine'"):
        resolve("model:nine", settings=tracking.settings)


@pytest.mark.slow
def test_drift_against_the_champion_snapshot_is_stored(tracking, tmp_path):
    current = tracking.splits.test.drop(columns=["label", "event_month", "reason", "as_of"]).copy()
    current["income_to_monitoring_line"] *= 0.6  # incomes fell 40 %
    path = tmp_path / "current.parquet"
    current.to_parquet(path)
    result, saved = run_drift("champion", str(path), settings=tracking.settings,
                              config=load_monitoring_config())
    assert result.reference.model_version == "1"
    assert result.current.model_version == "1"  # no risk in the file: the champion scored it
    drifted = set(result.features.index[result.features["drifted"]])
    assert {"income_to_monitoring_line"} <= drifted and result.score["drifted"] and result.flagged
    engine = sa.create_engine(tracking.settings.resolved_database_url())
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT kind, flagged, reference, current, model_version FROM "
                                         "monitoring_reports WHERE id = :i"), {"i": saved.report_id}).one()
    engine.dispose()
    assert row.kind == "drift" and row.flagged and row.model_version == "1"
    assert row.reference.startswith(f"{NAME} v1 training snapshot") and row.current == str(path)
    summary = json.loads(saved.json.read_text())["summary"]
    assert summary["score"]["current_mean"] > summary["score"]["reference_mean"]


@pytest.mark.slow
def test_promote_refuses_a_challenger_that_adds_a_flagged_group(tracking):
    from doudi.cli import app

    client = tracking.client
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "2"
    # Same data and config: the audit agrees, nothing new is flagged. Then the challenger's own audit is
    # made to flag a county its champion does not (as a worse model would): promotion must refuse.
    county = "fairness.county_code.530102.flagged"
    assert client.get_run(tracking.second.run_id).data.metrics[f"champion.{county}"] == 0.0
    client.log_metric(tracking.second.run_id, f"lightgbm.{county}", 1.0)
    runner = CliRunner()
    refused = runner.invoke(app, ["promote"])
    assert refused.exit_code == 1, refused.output
    assert "Not promoted" in refused.output and "county_code.530102" in refused.output
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"
    forced = runner.invoke(app, ["promote", "--force"])
    assert forced.exit_code == 0, forced.output
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "2"


def test_reference_snapshot_samples_with_a_seed():
    class Model:
        features = ["x"]

        def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
            return frame["x"].to_numpy() / 10

    frame = pd.DataFrame({"as_of": pd.Timestamp("2024-01-01"), "household_id": [f"H{i}" for i in range(10)],
                          "x": np.arange(10.0), "label": [0, 1] * 5, "other": 1})
    small = reference_snapshot(Model(), frame, max_rows=4, seed=3)
    assert len(small) == 4 and list(small.columns) == ["as_of", "household_id", "x", "label", "risk"]
    assert small.equals(reference_snapshot(Model(), frame, max_rows=4, seed=3))
    np.testing.assert_allclose(small["risk"], small["x"] / 10)
