"""Explanations: TreeSHAP from the model itself, grouped by the registry, agree with shap to 1e-6."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import test_serving_fixtures as fx

import features
from serving.explain import MAX_REASONS, explain


@pytest.fixture(scope="module")
def explained():
    model = fx.risk_model()
    frame = fx.snapshots()[2]
    rows = frame.iloc[:60]
    return model, rows, explain(model, rows[model.features])


def test_contributions_agree_with_shap_tree_explainer(explained):
    import shap

    model, rows, result = explained
    reference = shap.TreeExplainer(model.booster_).shap_values(model.matrix(rows[model.features]))
    values = np.asarray(reference[1] if isinstance(reference, list) else reference)
    np.testing.assert_allclose(result.contributions.to_numpy(), values, atol=1e-6)
    expected = shap.TreeExplainer(model.booster_).expected_value
    np.testing.assert_allclose(result.base_value.to_numpy(), np.ravel(expected)[-1], atol=1e-6)


def test_base_value_plus_contributions_is_the_raw_score(explained):
    model, rows, result = explained
    np.testing.assert_allclose(result.raw_score.to_numpy(), model.raw_score(rows[model.features]), atol=1e-9)
    totals = result.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(result.groups.sum(axis=1).to_numpy(), totals, atol=1e-9)


def test_groups_follow_the_registry(explained):
    _, _, result = explained
    assert set(result.groups.columns) <= set(features.GROUPS)
    for feature in result.contributions.columns:
        group = features.REGISTRY[feature].group
        members = [f for f in result.contributions.columns if features.REGISTRY[f].group == group]
        np.testing.assert_allclose(result.groups[group], result.contributions[members].sum(axis=1), atol=1e-9)


def test_reasons_are_the_top_groups_pushing_risk_up_with_the_actual_value(explained):
    _, rows, result = explained
    assert any(result.reasons), "some rows must have reasons"
    statable = [f for f in result.contributions.columns if features.REGISTRY[f].reason]
    for household, reasons in result.reasons.items():
        assert len(reasons) <= MAX_REASONS
        groups = result.groups.loc[household]
        contributions = result.contributions.loc[household]
        expected = []
        for group in groups[groups > 0].sort_values(ascending=False).index:
            in_group = [f for f in statable if features.REGISTRY[f].group == group
                        and (features.REGISTRY[f].missing_is_gap or not pd.isna(rows.loc[household, f]))]
            if in_group and contributions[in_group].max() > 0:
                expected.append((group, contributions[in_group].idxmax()))
        assert [(r["group"], r["feature"]) for r in reasons] == expected[:MAX_REASONS]
        for reason in reasons:
            assert reason["contribution"] == pytest.approx(groups[reason["group"]], abs=1e-6)
            value = rows.loc[household, reason["feature"]]
            assert reason["zh"] == features.reason_text(reason["feature"], value, "zh")
            assert reason["en"] == features.reason_text(reason["feature"], value, "en")


class _Fixed:
    """A model whose contributions are given (log-odds per feature, then the base value)."""

    def __init__(self, contributions: dict[str, float]):
        self.features = list(contributions)
        self._row = [*contributions.values(), -3.0]

    def contributions(self, X, matrix=None):
        return pd.DataFrame([self._row], index=X.index, columns=[*self.features, "base_value"])


def test_where_a_household_lives_is_never_stated_as_a_reason():
    model = _Fixed({"county_code": 1.5, "urban_rural": 0.4, "cpi_yoy": 0.2, "income_drop_3m_vs_12m": 0.8,
                    "income_pc_12m": -0.1, "deposits_pc_to_dibao": 0.3, "disaster_loss_12m": -0.2})
    row = pd.DataFrame({"county_code": ["530102"], "urban_rural": ["rural"], "cpi_yoy": [4.1],
                        "income_drop_3m_vs_12m": [0.46], "income_pc_12m": [9000.0],
                        "deposits_pc_to_dibao": [np.nan], "disaster_loss_12m": [0.0]},
                       index=pd.Index(["h1"], name="household_id"))
    result = explain(model, row)
    reasons = result.reasons.iat[0]
    # The region group pushes most (2.1), but nothing about where a household lives is stated.
    assert [(r["group"], r["feature"]) for r in reasons] == [
        ("income", "income_drop_3m_vs_12m"), ("assets", "deposits_pc_to_dibao")]
    assert "530102" not in "".join(r["zh"] + r["en"] for r in reasons)
    assert result.groups.loc["h1", "region"] == pytest.approx(2.1)  # kept in the contributions
    assert reasons[1]["zh"].endswith("暂无记录，请入户核实")  # a gap is said to be checked, not hidden
    never = _Fixed({"months_since_job_loss": 0.9, "job_losses_12m": 0.2, "income_drop_3m_vs_12m": 0.1})
    stated = explain(never, pd.DataFrame({"months_since_job_loss": [np.nan], "job_losses_12m": [0.0],
                                          "income_drop_3m_vs_12m": [0.2]}, index=row.index)).reasons.iat[0]
    # No job loss on record is not "a record to check": the employment group speaks through its count.
    assert [r["feature"] for r in stated] == ["job_losses_12m", "income_drop_3m_vs_12m"]
    alone = _Fixed({"county_code": 1.5, "income_drop_3m_vs_12m": 0.8})
    only = explain(alone, row[["county_code", "income_drop_3m_vs_12m"]]).reasons.iat[0]
    assert [r["feature"] for r in only] == ["income_drop_3m_vs_12m"]


def test_stored_contributions_are_plain_json(explained):
    import json

    _, _, result = explained
    record = result.contribution_records()[0]
    assert set(record) == {"base_value", "raw_score", "groups", "features"}
    json.dumps(record, allow_nan=False)


def test_no_rows_no_work():
    model = fx.risk_model()
    empty = fx.snapshots()[0].iloc[:0]
    result = explain(model, empty[model.features])
    assert len(result.reasons) == 0 and result.groups.shape[0] == 0
