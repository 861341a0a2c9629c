"""MLflow end to end with a real sqlite tracking store: train -> registered version with aliases ->
pyfunc load in a fresh process gives the in-process scores; promote refuses a worse challenger and
``--force`` overrides; promotion evidence rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import models_synthetic as synth
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from doudi.settings import disable_telemetry
from models.config import TrainConfig, load_config
from models.dataset import FeatureInfo
from models.registry import CheckResult, Evidence, gather_evidence, promote
from models.train import load_registered, train_on_splits

NAME = "doudi-relapse-risk"
WEAK = ("cpi_yoy", "food_cpi_yoy", "household_size", "urban_rural")

FRESH_PROCESS = """
import sys
import mlflow
import pandas as pd
model = mlflow.pyfunc.load_model("models:/doudi-relapse-risk@champion")
frame = pd.read_parquet(sys.argv[1])
model.predict(frame).to_parquet(sys.argv[2])
print(type(model.unwrap_python_model()).__module__)
"""


def _alias_version(client, alias: str) -> str:
    return str(client.get_model_version_by_alias(NAME, alias).version)


def _config(**changes: object) -> TrainConfig:
    data = load_config().model_dump(mode="json")
    data["lightgbm"].update(n_estimators=60, num_threads=1)
    data.update(changes)
    return TrainConfig.model_validate(data)


def _info(names: tuple[str, ...]) -> FeatureInfo:
    full = synth.feature_info()
    return FeatureInfo(names, tuple(n for n in names if n in full.categorical),
                       {n: full.monotone[n] for n in names}, "synthetic")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """One tracking store with v1 (good, champion) and v2 (weak features, challenger)."""
    disable_telemetry()
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = _config()
    splits = synth.splits(config, n=900, seed=4)
    first = train_on_splits(splits, config, synth.feature_info(), data_fingerprint="synthetic-1",
                            tracking_uri=uri)
    weak_config = _config(features=list(WEAK))
    second = train_on_splits(splits, weak_config, _info(WEAK), data_fingerprint="synthetic-1",
                             tracking_uri=uri)
    return SimpleNamespace(root=root, uri=uri, client=MlflowClient(tracking_uri=uri, registry_uri=uri),
                           splits=splits, config=config, first=first, second=second)


@pytest.mark.slow
def test_first_version_is_champion_and_challenger(store):
    assert store.first.model_version == "1"
    assert store.first.aliases == ["challenger", "champion"]
    assert _alias_version(store.client, "champion") == "1"
    assert store.second.model_version == "2" and store.second.aliases == ["challenger"]
    assert _alias_version(store.client, "challenger") == "2"


@pytest.mark.slow
def test_run_logs_params_metrics_tags_and_artifacts(store):
    run = store.client.get_run(store.first.run_id)
    metrics, tags, params = run.data.metrics, run.data.tags, run.data.params
    for key in ("lightgbm.precision_at_5pct", "rules.precision_at_5pct", "logistic.recall_at_10pct",
                "lightgbm.ece", "lightgbm.brier", "lightgbm.roc_auc", "lightgbm.pr_auc",
                "rules.lead_time_median_months", "lightgbm.caught_before_event_share",
                "lightgbm.lead_gain_vs_rules_months", "lightgbm.warning_months_per_event",
                "lightgbm.county.530102.precision_at_5pct", "rules.county.530104.ece"):
        assert key in metrics, key
    logged = store.first.metrics["lightgbm"]["precision_at_5pct"]
    assert metrics["lightgbm.precision_at_5pct"] == pytest.approx(logged)
    assert tags["doudi.config_hash"] == store.config.config_hash()
    assert tags["doudi.data_fingerprint"] == "synthetic-1"
    assert tags["doudi.registry_version"] == "synthetic"
    assert tags["doudi.test_period"] == "2025-07-01"
    assert params["lightgbm.num_leaves"] == "31" and params["horizon_months"] == "6"
    files = {f.path for f in store.client.list_artifacts(run.info.run_id)}
    files |= {f.path for f in store.client.list_artifacts(run.info.run_id, "plots")}
    assert {"model_card.md", "splits.csv", "features.json", "comparison.csv", "metrics_by_county.csv",
            "plots/pr_curve.png", "plots/calibration_curve.png", "plots/importance.png"} <= files
    local = Path(store.client.download_artifacts(run.info.run_id, "model_card.md", str(store.root)))
    card = local.read_text(encoding="utf-8")
    assert "person who decides" in card and "530103" in card and "precision_at_5pct" in card
    features = json.loads(Path(store.client.download_artifacts(
        run.info.run_id, "features.json", str(store.root))).read_text(encoding="utf-8"))
    assert [f["name"] for f in features["features"]] == list(synth.FEATURES)


@pytest.mark.slow
def test_second_run_rescored_the_champion_on_its_test_data(store):
    run = store.client.get_run(store.second.run_id)
    assert run.data.tags["doudi.champion_compared_version"] == "1"
    champion = store.first.metrics["lightgbm"]
    assert run.data.metrics["champion.precision_at_5pct"] == pytest.approx(champion["precision_at_5pct"])
    assert run.data.metrics["champion.ece"] == pytest.approx(champion["ece"])


@pytest.mark.slow
def test_signature_declares_categoricals_as_strings(store):
    from mlflow.models import get_model_info

    info = get_model_info(f"models:/{NAME}/1")
    inputs = {spec["name"]: spec["type"] for spec in info.signature.inputs.to_dict()}
    assert inputs["county_code"] == "string" and inputs["urban_rural"] == "string"
    assert inputs["income_drop_3m_vs_12m"] == "double"
    assert [o["name"] for o in info.signature.outputs.to_dict()] == ["risk", "raw_score", "tier"]


@pytest.mark.slow
def test_champion_loads_in_a_fresh_process_with_the_same_scores(store, tmp_path: Path):
    from models import pyfunc

    model = store.first.models["lightgbm"]
    test = store.splits.test
    frame = pyfunc.input_frame(model, test).reset_index(drop=True)
    frame.loc[0, "county_code"] = None  # a missing category travels too
    source, target = tmp_path / "in.parquet", tmp_path / "out.parquet"
    frame.to_parquet(source)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store.uri, "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(source), str(target)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("models.pyfunc")
    fresh = pd.read_parquet(target)
    expected = pyfunc.score_frame(model, frame)
    np.testing.assert_allclose(fresh["risk"].to_numpy(), expected["risk"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(fresh["raw_score"].to_numpy(), expected["raw_score"].to_numpy(), rtol=1e-12)
    assert fresh["tier"].astype(str).tolist() == expected["tier"].tolist()
    # The native hot-path load of the same registered artifact agrees too.
    native = load_registered(f"models:/{NAME}@champion", tmp_path / "native")
    np.testing.assert_allclose(native.predict_proba(frame), expected["risk"].to_numpy(), rtol=1e-12)


@pytest.mark.slow
def test_promote_refuses_worse_challenger_then_force_overrides(store, monkeypatch: pytest.MonkeyPatch):
    from doudi.cli import app

    decision = promote(store.client, model_name=NAME)
    assert not decision.promoted
    assert decision.challenger_version == "2" and decision.champion_version == "1"
    failed = {c.name for c in decision.checks if not c.passed}
    assert "precision@5%" in failed
    assert "precision@5%" in decision.reason
    assert _alias_version(store.client, "champion") == "1"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    runner = CliRunner()
    refused = runner.invoke(app, ["promote"])
    assert refused.exit_code == 1, refused.output
    assert "Not promoted" in refused.output and "precision@5%" in refused.output
    assert _alias_version(store.client, "champion") == "1"
    forced = runner.invoke(app, ["promote", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "Promoted v2" in forced.output
    assert _alias_version(store.client, "champion") == "2"
    again = promote(store.client, model_name=NAME)
    assert not again.promoted and "already the champion" in again.reason


@pytest.mark.slow
def test_equal_challenger_is_promoted_and_extra_checks_plug_in(store):
    # Retrain exactly the champion's config on the same data: not worse, so it is promoted, unless a
    # plugged-in check (the later fairness audit) refuses.
    champion = _alias_version(store.client, "champion")  # v2 after the forced promotion, v1 if run alone
    config, info = (store.config, synth.feature_info()) if champion == "1" else (_config(features=list(WEAK)),
                                                                                  _info(WEAK))
    same = train_on_splits(store.splits, config, info, data_fingerprint="synthetic-1", tracking_uri=store.uri)
    assert same.champion_metrics is not None
    assert same.champion_metrics["precision_at_5pct"] == same.metrics["lightgbm"]["precision_at_5pct"]
    blocked = promote(store.client, model_name=NAME,
                      checks=[lambda e: CheckResult("fairness", False, "FNR ratio 0.7 for rural households")])
    assert not blocked.promoted and "fairness" in blocked.reason
    assert _alias_version(store.client, "champion") == champion
    decision = promote(store.client, model_name=NAME)
    assert decision.promoted and all(c.passed for c in decision.checks), decision
    assert _alias_version(store.client, "champion") == same.model_version != champion


def _fake_client(challenger_tags: dict, champion_tags: dict):
    runs = {
        "r2": SimpleNamespace(data=SimpleNamespace(
            metrics={"lightgbm.precision_at_5pct": 0.30, "lightgbm.ece": 0.010,
                     "lightgbm.county.1.ece": 0.5, "champion.precision_at_5pct": 0.2, "champion.ece": 0.02},
            tags=challenger_tags)),
        "r1": SimpleNamespace(data=SimpleNamespace(
            metrics={"lightgbm.precision_at_5pct": 0.35, "lightgbm.ece": 0.012}, tags=champion_tags)),
    }
    return SimpleNamespace(get_run=runs.__getitem__)


def test_evidence_prefers_the_rescored_champion():
    client = _fake_client({"doudi.champion_compared_version": "1"}, {})
    evidence = gather_evidence(client, NAME, SimpleNamespace(version="2", run_id="r2"),
                               SimpleNamespace(version="1", run_id="r1"))
    assert evidence.champion == {"precision_at_5pct": 0.2, "ece": 0.02}
    assert evidence.challenger == {"precision_at_5pct": 0.30, "ece": 0.010}
    assert "re-scored" in evidence.basis


def test_evidence_falls_back_to_logged_metrics_only_on_the_same_test_data():
    same = {"doudi.test_period": "2025-07-01", "doudi.data_fingerprint": "abc"}
    client = _fake_client(same, same)
    evidence = gather_evidence(client, NAME, SimpleNamespace(version="3", run_id="r2"),
                               SimpleNamespace(version="1", run_id="r1"))
    assert evidence.champion == {"precision_at_5pct": 0.35, "ece": 0.012}
    other = {"doudi.test_period": "2025-08-01", "doudi.data_fingerprint": "abc"}
    evidence = gather_evidence(_fake_client(same, other), NAME, SimpleNamespace(version="3", run_id="r2"),
                               SimpleNamespace(version="1", run_id="r1"))
    assert evidence.champion is None and "retrain" in evidence.basis


def test_checks_on_hand_made_evidence():
    from models.registry import calibration_not_worse, precision_not_worse

    evidence = Evidence("2", "1", {"precision_at_5pct": 0.30, "ece": 0.014},
                        {"precision_at_5pct": 0.30, "ece": 0.010}, "test")
    assert precision_not_worse(evidence).passed  # equal is not worse
    assert calibration_not_worse(evidence).passed  # within the 0.005 tolerance
    worse = Evidence("2", "1", {"precision_at_5pct": 0.29, "ece": 0.02},
                     {"precision_at_5pct": 0.30, "ece": 0.010}, "test")
    assert not precision_not_worse(worse).passed and not calibration_not_worse(worse).passed
    blind = Evidence("2", "1", {"precision_at_5pct": 0.5, "ece": 0.0}, None, "different test periods")
    assert not precision_not_worse(blind).passed and "not comparable" in precision_not_worse(blind).reason
