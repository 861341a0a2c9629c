"""Drift: not flagged between two months of a stable world; flagged for a flood year and a broken income
feed; schema and contract problems; report files; the CLI on a stored scoring run rebuilt from a world."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from test_monitoring_api import save_run
from typer.testing import CliRunner

from doudi.io import Violation, write_world
from doudi.labels import build_labels, cohort
from doudi.world import generate_world
from features import REGISTRY, build_features, encode_world
from models.risk_model import RiskModel
from monitoring.config import DriftConfig, load_config
from monitoring.drift import (
    ContractCheck,
    DriftData,
    contract_check_world,
    drift_report,
    flag_reasons,
    save_drift,
)
from monitoring.scenarios import broken_income_feed, flood_year
from serving.db import make_engine, session_factory, upgrade

REFERENCE, CURRENT = pd.Timestamp("2024-03-01"), pd.Timestamp("2024-04-01")
NAMES = list(REGISTRY)
CATEGORICAL = [n for n in NAMES if REGISTRY[n].kind == "categorical"]


def _features(world, as_of: pd.Timestamp) -> pd.DataFrame:
    return build_features(encode_world(world), as_of, households=cohort(world, as_of))


@pytest.fixture(scope="module")
def lab():
    """A 30-month world, a small monotone LightGBM fitted on three earlier months, and the reference."""
    world = generate_world(1500, 30, seed=3)
    months = [pd.Timestamp(d) for d in ("2023-12-01", "2024-01-01", "2024-02-01")]
    train = pd.concat([_features(world, m).join(build_labels(world, m)["label"]) for m in months])
    monotone = {n: 0 if n in CATEGORICAL else REGISTRY[n].monotone for n in NAMES}
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 30, "seed": 7,
              "deterministic": True}
    model = RiskModel(NAMES, CATEGORICAL, monotone=monotone, params=params, num_boost_round=80)
    model.fit(train[NAMES], train["label"])

    def side(frame: pd.DataFrame, label: str, **kwargs) -> DriftData:
        return DriftData(frame.assign(risk=model.predict_proba(frame[NAMES])), label, **kwargs)

    reference = side(_features(world, REFERENCE), "reference month")
    return {"world": world, "model": model, "side": side, "reference": reference,
            "config": load_config().drift}


@pytest.fixture(scope="module")
def stable(lab):
    current = lab["side"](_features(lab["world"], CURRENT), "next month", as_of=CURRENT)
    return drift_report(lab["reference"], current, config=lab["config"])


@pytest.mark.slow
def test_two_months_of_a_stable_world_do_not_drift(stable, lab):
    assert not stable.flagged, stable.flags
    assert stable.drifted_share < lab["config"].drifted_share
    assert stable.score is not None and not stable.score["drifted"]
    assert abs(stable.score["current_mean"] - stable.score["reference_mean"]) < 0.02
    assert len(stable.features) == len(NAMES)
    assert set(stable.features["method"]) == {"wasserstein", "jensenshannon"}
    assert stable.features.loc["county_code", "method"] == "jensenshannon"
    assert (stable.groups()["strong_share"] < lab["config"].group_share).all()
    assert stable.features.loc["cpi_yoy", "calendar"] and not stable.features.loc["income_pc_12m", "calendar"]
    assert len(stable.counted) == len(NAMES) - len(lab["config"].calendar_features)


@pytest.mark.slow
def test_a_flood_year_is_detected(lab):
    flooded = flood_year(lab["world"], start_month="2023-07", seed=1)
    assert contract_check_world(flooded, "flooded").errors == 0  # the scenario still follows the contract
    current = lab["side"](_features(flooded, CURRENT), "flood year", as_of=CURRENT)
    result = drift_report(lab["reference"], current, config=lab["config"])
    assert result.flagged
    disaster = result.groups().loc["disaster"]
    assert disaster["strong_share"] >= lab["config"].group_share
    assert {"disaster_loss_12m", "housing_damage_12m", "disaster_max_severity_12m"} <= set(
        result.features.index[result.features["drifted"]])
    assert any("disaster features drifted strongly together" in flag for flag in result.flags)


@pytest.mark.slow
def test_a_broken_income_feed_is_detected(lab, tmp_path):
    broken = broken_income_feed(lab["world"], from_month="2024-01")  # wages stop arriving
    assert len(broken["income"]) < len(lab["world"]["income"])
    current = lab["side"](_features(broken, CURRENT), "wage feed broken", as_of=CURRENT)
    result = drift_report(lab["reference"], current, config=lab["config"])
    assert result.flagged
    drifted = set(result.features.index[result.features["drifted"]])
    assert {"income_staleness_months", "income_months_known_last_3", "wage_drop_3m_vs_12m"} <= drifted
    assert result.score["drifted"] and result.score["current_mean"] > 1.5 * result.score["reference_mean"]
    assert any(flag.startswith("score distribution shifted") for flag in result.flags)

    html, data = save_drift(result, tmp_path / "report")
    assert html.stat().st_size > 10_000 and "<html" in html.read_text(encoding="utf-8")[:2000].lower()
    payload = json.loads(data.read_text(encoding="utf-8"))
    assert payload["summary"]["flagged"] and payload["summary"]["drifted_features"] == result.n_drifted
    assert payload["summary"]["score"]["method"] == "psi"
    assert {row["name"] for row in payload["features"]} == set(NAMES)
    assert payload["evidently"]["metrics"]  # Evidently's own results ride along


def test_zero_amounts_are_a_broken_feed_too(lab):
    zero = broken_income_feed(lab["world"], from_month="2024-01", sources=None, fault="zero")
    assert len(zero["income"]) == len(lab["world"]["income"])
    assert (zero["income"].loc[zero["income"]["month"] >= "2024-01", "amount"] == 0).all()
    with pytest.raises(ValueError, match="unknown income sources"):
        broken_income_feed(lab["world"], from_month="2024-01", sources=("lottery",))


@pytest.mark.slow
def test_schema_missing_values_and_contract_flag(stable):
    contract = ContractCheck.from_violations("extract", [
        Violation("income", 3, "amount", "not a number", file="income.csv", rule="type")])
    broken = replace(stable, current=replace(stable.current, contract=contract), schema=[
        "feature income_pc_12m is absent from the current data"])
    broken.features = stable.features.assign(missing_increase=np.where(
        stable.features.index == "medical_oop_3m", 0.4, stable.features["missing_increase"]))
    flags = flag_reasons(broken)
    assert any(f.startswith("missing values rose in 1 feature(s): medical_oop_3m +40%") for f in flags)
    assert any("schema problem" in f for f in flags)
    contract_flag = "breaks the data contract: 1 error(s), e.g. income.csv row 3 column amount"
    assert any(contract_flag in f for f in flags)
    quiet = replace(broken, config=DriftConfig(flag_on_contract=False, missing_increase=0.5))
    assert not any("contract" in f or "missing" in f for f in flag_reasons(quiet))


def test_features_the_current_data_lacks_or_mistypes_are_reported(lab):
    reference = lab["reference"]
    current = reference.frame.drop(columns=["income_pc_12m"]).assign(urban_rural=1.0, vehicles="many")
    from monitoring.drift import _schema, feature_kinds

    problems, usable = _schema(current, feature_kinds(NAMES))
    assert "feature income_pc_12m is absent from the current data" in problems
    assert any(p.startswith("feature urban_rural should be categorical") for p in problems)
    assert any(p.startswith("feature vehicles should be numeric") for p in problems)
    assert len(usable) == len(NAMES) - 3
    with pytest.raises(ValueError, match="the reference has no column"):
        drift_report(reference, reference, config=lab["config"], features=["not_a_feature"])


@pytest.mark.slow
def test_cli_checks_a_stored_run_against_a_reference_file(lab, tmp_path, monkeypatch: pytest.MonkeyPatch):
    from doudi.cli import app

    broken = broken_income_feed(lab["world"], from_month="2024-01")
    write_world(broken, tmp_path / "world")
    reference_file = tmp_path / "reference.parquet"
    lab["reference"].frame.rename_axis("household_id").reset_index().to_parquet(reference_file)
    engine = make_engine(f"sqlite:///{tmp_path / 'doudi.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    scored = _features(broken, CURRENT)
    risk = dict(zip(scored.index.astype(str), lab["model"].predict_proba(scored[NAMES]), strict=True))
    run_id = save_run(sessions, "2024-04-01", risk, sorted(risk, key=risk.get)[-20:])
    monkeypatch.setenv("DOUDI_DATABASE_URL", f"sqlite:///{tmp_path / 'doudi.db'}")
    monkeypatch.setenv("DOUDI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOUDI_ID_HMAC_KEY", "monitoring-test-key-0123456789")
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "drift", "--reference", str(reference_file),
                                 "--current", f"run:{run_id}", "--world", str(tmp_path / "world"),
                                 "--fail-on-flag"])
    assert result.exit_code == 3, result.output
    assert "FLAGGED" in result.output and "score distribution shifted" in result.output
    with sessions() as session:
        row = session.execute(sa.text("SELECT run_id, flagged, html_path, json_path, summary FROM "
                                      "monitoring_reports WHERE kind = 'drift'")).one()
    assert row.run_id == run_id and row.flagged
    summary = row.summary if isinstance(row.summary, dict) else json.loads(row.summary)
    assert summary["contract"]["errors"] == 0 and summary["rows"]["current"] == len(risk)
    assert summary["current"]["run_id"] == run_id and summary["current"]["as_of"] == "2024-04-01"
    assert (tmp_path / "data" / "monitoring").is_dir() and row.html_path.endswith("drift.html")
    missing = runner.invoke(app, ["monitor", "drift", "--reference", str(reference_file),
                                  "--current", "run:99", "--world", str(tmp_path / "world")])
    assert missing.exit_code == 1 and "no scoring run 99" in missing.output
    no_world = runner.invoke(app, ["monitor", "drift", "--reference", str(reference_file),
                                   "--current", f"run:{run_id}"])
    assert no_world.exit_code == 1 and "--world" in no_world.output
    engine.dispose()
