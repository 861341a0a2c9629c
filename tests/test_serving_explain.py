"""Explanations: TreeSHAP from the model itself, grouped by the registry, agree with shap to 1e-6."""

from __future__ import annotations

import numpy as np
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
    reference = shap.TreeExplainer(model.booster_).shap_values(model._matrix(rows[model.features]))
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
    for household, reasons in result.reasons.items():
        assert len(reasons) <= MAX_REASONS
        groups = result.groups.loc[household]
        positive = groups[groups > 0].sort_values(ascending=False)
        assert [r["group"] for r in reasons] == list(positive.index[:MAX_REASONS])
        for reason in reasons:
            assert reason["contribution"] == pytest.approx(groups[reason["group"]], abs=1e-6)
            assert features.REGISTRY[reason["feature"]].group == reason["group"]
            in_group = [f for f in result.contributions.columns
                        if features.REGISTRY[f].group == reason["group"]]
            assert reason["feature"] == result.contributions.loc[household, in_group].idxmax()
            value = rows.loc[household, reason["feature"]]
            assert reason["zh"] == features.reason_text(reason["feature"], value, "zh")
            assert reason["en"] == features.reason_text(reason["feature"], value, "en")


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
