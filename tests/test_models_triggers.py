"""Trigger gates: the edge-line trigger skips known edge families, the disaster trigger weighs the loss
against income, the medical trigger uses the published yardstick per household group; missing values
never fire, texts state every threshold in force, regional overrides reach the gates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import features
from doudi.policy import PolicyConfig, load_policy
from models.triggers import TRIGGERS, Condition, Trigger, evaluate_triggers, trigger_features
from serving.service import fired_triggers

BY_NAME = {t.name: t for t in TRIGGERS}


def _row(**values: float | str) -> dict:
    """A household for which no trigger fires; keyword arguments change single features."""
    base = {"income_to_monitoring_line": 2.0, "income_to_edge_line": 2.0, "edge_family": 0.0,
            "income_drop_3m_vs_12m": 0.0,
            "medical_oop_to_local_income": 0.0, "lifted_out": 0.0, "disaster_loss_12m": 0.0,
            "disaster_loss_to_income": 0.0, "uninsured_job_loss_6m": 0.0, "cpi_yoy": 2.0,
            "food_cpi_yoy": 2.0, "county_code": "530102"}
    base.update(values)
    return base


def _fired(rows: list[dict], policy: PolicyConfig | None = None) -> pd.DataFrame:
    return evaluate_triggers(pd.DataFrame(rows), policy or load_policy())


def _with_override(county: str, **fields: float) -> PolicyConfig:
    base = load_policy().model_dump()
    return PolicyConfig.model_validate({**base, "overrides": {county: fields}})


def test_below_edge_line_fires_only_for_households_not_already_edge_families():
    fired = _fired([_row(income_to_edge_line=0.6, edge_family=1.0, income_drop_3m_vs_12m=0.5),
                    _row(income_to_edge_line=0.6, income_drop_3m_vs_12m=0.5)])
    assert fired["below_edge_line"].tolist() == [False, True]
    assert fired["n_fired"].tolist() == [0, 1]
    assert fired["severity"].tolist() == pytest.approx([0.0, 0.4])  # the gate never changes the level


def test_below_edge_line_needs_a_sharp_fall_not_a_long_low_income():
    share = load_policy().defaults.income_drop_trigger_share
    fired = _fired([
        _row(income_to_edge_line=0.6, income_drop_3m_vs_12m=0.0),  # low all year: enrolment, not news
        _row(income_to_edge_line=0.6, income_drop_3m_vs_12m=share),  # fell by the share: fires
        _row(income_to_edge_line=1.2, income_drop_3m_vs_12m=0.8),  # fell, but still above the line
        _row(income_to_edge_line=0.6, income_drop_3m_vs_12m=np.nan),  # no base to fall from
    ])
    assert fired["below_edge_line"].tolist() == [False, True, False, False]
    assert f"{share:.0%}" in BY_NAME["below_edge_line"].text(load_policy().defaults, "zh")


def test_disaster_loss_must_also_be_large_against_income():
    share = load_policy().defaults.disaster_loss_income_share
    fired = _fired([
        _row(disaster_loss_12m=20000.0, disaster_loss_to_income=share / 4),  # many yuan, a rich household
        _row(disaster_loss_12m=20000.0, disaster_loss_to_income=share),  # at the share: fires
        _row(disaster_loss_12m=4000.0, disaster_loss_to_income=2.0),  # under the yuan threshold
    ])
    assert fired["disaster_loss"].tolist() == [False, True, False]
    assert fired.loc[1, "severity"] == pytest.approx(1 - 5000 / 20000)


def test_medical_burden_uses_the_lifted_out_threshold_for_lifted_out_households():
    rules = load_policy().defaults
    between = (rules.medical_trigger_share + rules.medical_trigger_share_other) / 2
    fired = _fired([
        _row(medical_oop_to_local_income=between, lifted_out=1.0),
        _row(medical_oop_to_local_income=between, lifted_out=0.0),
        _row(medical_oop_to_local_income=rules.medical_trigger_share_other * 2, lifted_out=0.0),
    ])
    assert fired["medical_burden"].tolist() == [True, False, True]
    assert fired["severity"].tolist() == pytest.approx([1 - rules.medical_trigger_share / between, 0, 0.5])


@pytest.mark.parametrize(("row", "trigger"), [
    (_row(income_to_edge_line=0.5, edge_family=np.nan, income_drop_3m_vs_12m=0.5), "below_edge_line"),
    (_row(disaster_loss_12m=9000.0, disaster_loss_to_income=np.nan), "disaster_loss"),
    (_row(medical_oop_to_local_income=3.0, lifted_out=np.nan), "medical_burden"),
])
def test_a_gate_with_a_missing_value_does_not_fire(row: dict, trigger: str):
    open_gate = {"edge_family": 0.0, "disaster_loss_to_income": 1.0, "lifted_out": 0.0}
    filled = {k: (open_gate.get(k, v) if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
    fired = _fired([row, filled])
    assert fired[trigger].tolist() == [False, True]


def test_texts_state_the_gate_thresholds_in_force():
    rules = load_policy().defaults
    assert rules.disaster_loss_income_share == 0.5
    disaster, medical = BY_NAME["disaster_loss"], BY_NAME["medical_burden"]
    assert "50%" in disaster.text(rules, "zh") and "5,000" in disaster.text(rules, "zh")
    assert "50% of household annual income" in disaster.text(rules, "en")
    assert "100%" in medical.text(rules, "zh") and "50%" in medical.text(rules, "zh")
    assert "lifted out" in medical.text(rules, "en") and "100%" in medical.text(rules, "en")
    assert "且目前不是低保边缘家庭" in BY_NAME["below_edge_line"].text(rules, "zh")
    assert "not already an edge family" in BY_NAME["below_edge_line"].text(rules, "en")
    overridden = _with_override("530104", disaster_loss_income_share=0.25).for_region("530104001001")
    assert "25%" in disaster.text(overridden, "zh") and "25%" in disaster.text(overridden, "en")


def test_a_trigger_whose_text_omits_a_threshold_field_is_refused():
    gate = (Condition("disaster_loss_to_income", ">=", "disaster_loss_income_share"),)
    with pytest.raises(ValueError, match="en text does not state disaster_loss_income_share"):
        Trigger(name="x", conditions=(Condition("disaster_loss_12m", ">=", "disaster_loss_trigger"),),
                requires=gate, zh="{disaster_loss_trigger}{disaster_loss_income_share}",
                en="{disaster_loss_trigger}", source="test")
    with pytest.raises(ValueError, match="zh text does not state medical_trigger_share"):
        gated = Condition("medical_oop_to_local_income", ">", 1.0,
                          when=(Condition("lifted_out", ">=", "medical_trigger_share"),))
        Trigger(name="x", conditions=(gated,), zh="", en="{medical_trigger_share}", source="test")


def test_a_regional_override_changes_the_gate():
    policy = _with_override("530104", disaster_loss_income_share=0.1)
    frame = [_row(disaster_loss_12m=8000.0, disaster_loss_to_income=0.2),
             _row(disaster_loss_12m=8000.0, disaster_loss_to_income=0.2, county_code="530104"),
             _row(disaster_loss_12m=8000.0, disaster_loss_to_income=0.05, county_code="530104")]
    assert _fired(frame, policy)["disaster_loss"].tolist() == [False, True, False]


def test_gate_features_are_required_and_declared_in_the_registry():
    names = trigger_features()
    gates = {"edge_family", "lifted_out", "disaster_loss_to_income", "medical_oop_to_local_income"}
    assert gates <= set(names)
    assert set(names) <= set(features.REGISTRY)  # the serving frame always carries them
    with pytest.raises(KeyError, match="disaster_loss_to_income"):
        evaluate_triggers(pd.DataFrame([_row()]).drop(columns="disaster_loss_to_income"))


def test_fired_triggers_show_every_figure_the_rule_read():
    frame = pd.DataFrame([_row(income_to_edge_line=0.6, income_drop_3m_vs_12m=0.4, disaster_loss_12m=9000.0,
                               disaster_loss_to_income=0.7, medical_oop_to_local_income=0.8, lifted_out=1.0)],
                         index=pd.Index(["h1"], name="household_id"))
    policy = load_policy()
    shown = {t["name"]: t for t in fired_triggers(frame, evaluate_triggers(frame, policy), policy).iat[0]}
    assert set(shown) == {"below_edge_line", "disaster_loss", "medical_burden"}
    assert shown["below_edge_line"]["figures"] == {"income_to_edge_line": 0.6, "edge_family": 0.0,
                                                   "income_drop_3m_vs_12m": 0.4}
    assert shown["disaster_loss"]["figures"] == {"disaster_loss_12m": 9000.0, "disaster_loss_to_income": 0.7}
    assert shown["medical_burden"]["figures"] == {"medical_oop_to_local_income": 0.8, "lifted_out": 1.0}
    assert shown["disaster_loss"]["en"] == BY_NAME["disaster_loss"].text(policy.defaults, "en")
