"""Triggers, the rule baseline, the logistic baseline and the LightGBM risk model on synthetic frames.

Includes the behavioural tests: raising a household's income drop or medical burden never lowers its
risk (the registry's monotone constraints at work), and shuffling household order changes no score.
"""

from __future__ import annotations

from pathlib import Path

import models_synthetic as synth
import numpy as np
import pandas as pd
import pytest

from doudi.policy import PolicyConfig, load_policy
from models.evaluate import expected_calibration_error, roc_auc
from models.logistic import LogisticBaseline
from models.risk_model import RiskModel, tier_thresholds
from models.rules import RuleBaseline
from models.triggers import RANKING_TRIGGERS, TRIGGER_NAMES, TRIGGERS, evaluate_triggers, trigger_features

PARAMS = {"objective": "binary", "verbosity": -1, "num_threads": 1, "learning_rate": 0.1, "num_leaves": 15,
          "min_data_in_leaf": 40, "seed": 3, "deterministic": True, "force_row_wise": True}


def _row(**values: float) -> dict:
    base = {"income_to_monitoring_line": 2.0, "income_to_edge_line": 2.0, "edge_family": 0.0,
            "income_drop_3m_vs_12m": 0.0, "medical_oop_to_local_income": 0.0, "lifted_out": 0.0,
            "disaster_loss_12m": 0.0,
            "disaster_loss_to_income": 0.0, "uninsured_job_loss_6m": 0.0, "cpi_yoy": 2.0, "food_cpi_yoy": 2.0,
            "county_code": "530102"}
    base.update(values)
    return base


# ------------------------------------------------------------------------------------------- triggers
def test_each_trigger_fires_exactly_at_its_threshold():
    frame = pd.DataFrame([
        _row(),
        _row(income_to_monitoring_line=0.75),
        _row(income_to_monitoring_line=1.0),  # on the line: not below
        _row(income_to_edge_line=0.5, income_drop_3m_vs_12m=0.3),  # fell by the share, under the line
        _row(medical_oop_to_local_income=1.0),  # equal to the share (not lifted out): not over
        _row(medical_oop_to_local_income=2.0),
        _row(disaster_loss_12m=5000.0, disaster_loss_to_income=0.5),  # >= trigger, >= share of income
        _row(uninsured_job_loss_6m=3.0),
        _row(cpi_yoy=3.5),
        _row(food_cpi_yoy=6.0),
        _row(income_to_monitoring_line=np.nan, medical_oop_to_local_income=np.nan),
    ])
    fired = evaluate_triggers(frame, load_policy())
    assert list(fired.columns) == [*TRIGGER_NAMES, "n_fired", "severity"]
    table = fired[list(TRIGGER_NAMES)].to_numpy()
    expected = np.zeros_like(table)
    for row, name in [(1, "below_monitoring_line"), (3, "below_edge_line"), (5, "medical_burden"),
                      (6, "disaster_loss"), (7, "uninsured_job_loss"), (8, "price_linkage"),
                      (9, "price_linkage")]:
        expected[row, TRIGGER_NAMES.index(name)] = True
    np.testing.assert_array_equal(table, expected)
    # Price linkage is shown but not counted.
    assert fired["n_fired"].tolist() == [0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0]
    # Severity: (1 - 0.75) below the line; 1 - 1/2 over the share; 1 - 5000/5000 at the loss; 3/(1+3).
    assert fired["severity"].tolist() == pytest.approx([0, 0.25, 0, 0.5, 0, 0.5, 0, 0.75, 0, 0, 0])


def test_severity_is_the_mean_of_fired_triggers_and_stays_below_one():
    frame = pd.DataFrame([_row(income_to_monitoring_line=0.0, income_to_edge_line=0.0,
                               income_drop_3m_vs_12m=1.0, uninsured_job_loss_6m=1.0)])
    fired = evaluate_triggers(frame)
    assert fired.loc[0, "n_fired"] == 3
    assert fired.loc[0, "severity"] < 1.0
    assert fired.loc[0, "severity"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_policy_overrides_apply_per_county():
    base = load_policy().model_dump()
    policy = PolicyConfig.model_validate({**base, "overrides": {"530104": {"disaster_loss_trigger": 1000}}})
    frame = pd.DataFrame([_row(disaster_loss_12m=2000.0, disaster_loss_to_income=0.6),
                          _row(disaster_loss_12m=2000.0, disaster_loss_to_income=0.6, county_code="530104")])
    assert evaluate_triggers(frame, policy)["disaster_loss"].tolist() == [False, True]


def test_missing_trigger_feature_is_named():
    with pytest.raises(KeyError, match="disaster_loss_12m"):
        evaluate_triggers(pd.DataFrame([_row()]).drop(columns="disaster_loss_12m"))


def test_trigger_texts_state_the_thresholds():
    rules = load_policy().defaults
    texts = {t.name: (t.text(rules, "zh"), t.text(rules, "en")) for t in TRIGGERS}
    assert "50%" in texts["medical_burden"][0] and "50%" in texts["medical_burden"][1]
    assert "5,000" in texts["disaster_loss"][0]
    assert "1.5" in texts["below_edge_line"][1]
    assert "3.5" in texts["price_linkage"][0] and "6" in texts["price_linkage"][1]
    assert set(trigger_features()) >= {"income_to_monitoring_line", "cpi_yoy", "food_cpi_yoy"}
    assert "price_linkage" not in RANKING_TRIGGERS


# --------------------------------------------------------------------------------------- rule baseline
def test_rule_baseline_interface_and_ranking():
    X, y = synth.features(3000, 1)
    model = RuleBaseline()
    assert model.fit(X, y) is model
    score = model.score(X)
    fired = model.triggers(X)
    np.testing.assert_allclose(score, fired["n_fired"] + fired["severity"])
    # More fired triggers always outrank fewer.
    assert (score[fired["n_fired"] == 2] > score[fired["n_fired"] == 1].max()).all()
    proba = model.predict_proba(X)
    assert proba.shape == (len(X),) and ((proba >= 0) & (proba <= 1)).all()
    order = np.argsort(score)
    assert (np.diff(proba[order]) >= -1e-12).all()  # the probability map never reverses the ranking
    assert roc_auc(y, score) > 0.6


def test_rule_baseline_must_be_fitted():
    X, _ = synth.features(10, 1)
    with pytest.raises(RuntimeError, match="fit"):
        RuleBaseline().predict_proba(X)


# ----------------------------------------------------------------------------------- logistic baseline
def test_logistic_baseline_learns_and_handles_unseen_values():
    X, y = synth.features(4000, 2)
    model = LogisticBaseline(synth.FEATURES, synth.CATEGORICAL)
    assert model.fit(X, y) is model
    X_test, y_test = synth.features(3000, 3)
    assert roc_auc(y_test, model.score(X_test)) > 0.75
    odd = X_test.head(3).copy()
    odd["county_code"] = pd.array(["999999", None, "530102"], dtype="string")
    odd["income_drop_3m_vs_12m"] = np.nan
    proba = model.predict_proba(odd)
    assert np.isfinite(proba).all() and ((proba > 0) & (proba < 1)).all()


# ------------------------------------------------------------------------------------------ risk model
@pytest.fixture(scope="module")
def fitted() -> RiskModel:
    X, y = synth.features(8000, 10)
    Xv, yv = synth.features(3000, 11)
    Xc, yc = synth.features(4000, 12)
    return RiskModel(synth.FEATURES, synth.CATEGORICAL, monotone=synth.MONOTONE, params=PARAMS,
                     num_boost_round=300, early_stopping_rounds=20).fit(
        X, y, X_valid=Xv, y_valid=yv, X_calib=Xc, y_calib=yc)


def test_risk_model_learns_and_is_calibrated(fitted: RiskModel):
    X, y = synth.features(8000, 13)
    proba = fitted.predict_proba(X)
    assert roc_auc(y, proba) > 0.75
    assert expected_calibration_error(y, proba) < 0.03
    assert 0 < fitted.best_iteration_ < 300  # early stopping worked
    assert fitted.calibrator_["method"] == "platt"


def test_contributions_add_up_to_the_margin(fitted: RiskModel):
    X, _ = synth.features(50, 14)
    contributions = fitted.contributions(X)
    assert list(contributions.columns) == [*synth.FEATURES, "base_value"]
    np.testing.assert_allclose(contributions.sum(axis=1), fitted.raw_score(X), rtol=1e-9, atol=1e-9)


def test_small_and_large_batches_agree(fitted: RiskModel):
    X, _ = synth.features(1500, 15)  # above the single-thread batch size
    np.testing.assert_allclose(fitted.predict_proba(X)[:10], fitted.predict_proba(X.head(10)))


def test_save_and_load_round_trip(fitted: RiskModel, tmp_path: Path):
    X, _ = synth.features(500, 16)
    loaded = RiskModel.load(fitted.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(loaded.tier(loaded.predict_proba(X)), fitted.tier(fitted.predict_proba(X)))
    assert loaded.categories_ == fitted.categories_ and loaded.features == fitted.features


def test_unseen_category_and_missing_values_score(fitted: RiskModel):
    X, _ = synth.features(3, 17)
    X["county_code"] = pd.array(["999999", None, "530102"], dtype="string")
    X["medical_oop_share_12m"] = np.nan
    assert np.isfinite(fitted.predict_proba(X)).all()
    with pytest.raises(KeyError, match="cpi_yoy"):
        fitted.predict_proba(X.drop(columns="cpi_yoy"))


@pytest.mark.parametrize("feature", ["income_drop_3m_vs_12m", "medical_oop_share_12m", "medical_oop_12m",
                                     "medical_oop_3m", "serious_illness"])
def test_raising_income_drop_or_medical_burden_never_lowers_risk(fitted: RiskModel, feature: str):
    X, _ = synth.features(300, 18)
    grid = np.linspace(float(np.nanmin(X[feature])), float(np.nanmax(X[feature])) * 1.5 + 1, 12)
    scores = np.column_stack([fitted.predict_proba(X.assign(**{feature: value})) for value in grid])
    assert (np.diff(scores, axis=1) >= -1e-12).all()
    if feature in ("income_drop_3m_vs_12m", "medical_oop_share_12m"):  # drive the synthetic label
        assert (scores[:, -1] > scores[:, 0]).any()


def test_falling_income_never_lowers_risk(fitted: RiskModel):
    X, _ = synth.features(300, 19)
    scores = np.column_stack([fitted.predict_proba(X.assign(income_to_monitoring_line=v))
                              for v in np.linspace(3.0, 0.1, 10)])
    assert (np.diff(scores, axis=1) >= -1e-12).all()


def test_shuffling_household_order_changes_no_score(fitted: RiskModel):
    X, y = synth.features(1200, 20)
    X.index = pd.Index([f"H{i}" for i in range(len(X))], name="household_id")
    shuffled = X.sample(frac=1.0, random_state=5)
    logistic = LogisticBaseline(synth.FEATURES, synth.CATEGORICAL).fit(X, y)
    for model in (fitted, RuleBaseline().fit(X, y), logistic):
        before = pd.Series(model.predict_proba(X), index=X.index)
        after = pd.Series(model.predict_proba(shuffled), index=shuffled.index)
        pd.testing.assert_series_equal(before, after.reindex(X.index))


def test_training_is_deterministic():
    X, y = synth.features(3000, 21)
    Xv, yv = synth.features(1000, 22)
    a = RiskModel(synth.FEATURES, synth.CATEGORICAL, monotone=synth.MONOTONE, params=PARAMS,
                  num_boost_round=50).fit(X, y, X_valid=Xv, y_valid=yv, X_calib=Xv, y_calib=yv)
    b = RiskModel(synth.FEATURES, synth.CATEGORICAL, monotone=synth.MONOTONE, params=PARAMS,
                  num_boost_round=50).fit(X.iloc[::-1], y[::-1], X_valid=Xv, y_valid=yv,
                                          X_calib=Xv, y_calib=yv)
    np.testing.assert_allclose(a.predict_proba(Xv), b.predict_proba(Xv), rtol=1e-6)


def test_isotonic_calibration(fitted: RiskModel):
    X, y = synth.features(4000, 23)
    model = RiskModel(synth.FEATURES, synth.CATEGORICAL, monotone=synth.MONOTONE, params=PARAMS,
                      num_boost_round=40, calibration="isotonic").fit(X, y, X_calib=X, y_calib=y)
    proba = model.predict_proba(X)
    assert model.calibrator_["method"] == "isotonic"
    assert ((proba >= 0) & (proba <= 1)).all()
    assert expected_calibration_error(y, proba) < 0.01  # isotonic is exact on its own fitting rows


def test_bad_declarations_are_rejected():
    X, y = synth.features(200, 24)
    with pytest.raises(ValueError, match="monotone"):
        RiskModel(synth.FEATURES, synth.CATEGORICAL, monotone={"county_code": 1}).fit(X, y)
    with pytest.raises(ValueError, match="single class"):
        RiskModel(synth.FEATURES, synth.CATEGORICAL, params=PARAMS, num_boost_round=5).fit(
            X, y, X_calib=X, y_calib=np.zeros(len(X)))


def test_tier_thresholds_by_hand():
    y = np.array([1, 1, 0, 1, 0, 0, 0, 1, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    # Precision of the top 1..10: 1, 1, .67, .75, .6, .5, .43, .5, .44, .4
    cuts = tier_thresholds(y, p, {"red": 0.75, "orange": 0.5, "yellow": 0.4, "never": 1.01})
    assert cuts == {"red": 0.6, "orange": 0.2, "yellow": 0.05, "never": None}
    # Ties are cut as a whole: the two 0.7 rows come in together.
    assert tier_thresholds([1, 1, 0, 0], [0.9, 0.7, 0.7, 0.1], {"t": 0.9}) == {"t": 0.9}


def test_tiers_are_nested(fitted: RiskModel):
    cuts = [fitted.tiers_[t] for t in ("red", "orange", "yellow")]
    present = [c for c in cuts if c is not None]
    assert present == sorted(present, reverse=True)
    X, _ = synth.features(2000, 25)
    proba = fitted.predict_proba(X)
    tiers = fitted.tier(proba)
    assert set(tiers) <= {"red", "orange", "yellow", "none"}
    if fitted.tiers_["red"] is not None:
        assert (tiers[proba >= fitted.tiers_["red"]] == "red").all()
