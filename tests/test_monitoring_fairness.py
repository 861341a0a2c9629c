"""Fairness audit: a hand-computed confusion table and its flags, Wilson intervals, reference groups, small
groups, group membership from records known at T, the training audit, MLflow keys and the promotion check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import make_world

from models.registry import DEFAULT_CHECKS, Evidence
from monitoring.config import FairnessConfig
from monitoring.fairness import (
    attach_groups,
    audit,
    audit_metrics,
    flagged_groups,
    household_groups,
    markdown,
    no_new_flagged_group,
    training_audit,
    wilson_interval,
)

# (county, urban/rural, label, alerted), twelve households.
ROWS = [
    ("A", "rural", 1, True), ("A", "rural", 1, True), ("A", "rural", 1, False), ("A", "urban", 0, True),
    ("A", "urban", 0, False), ("A", "urban", 0, False), ("A", "rural", 0, False), ("A", "rural", 1, True),
    ("B", "urban", 1, False), ("B", "urban", 1, False), ("B", "rural", 1, True), ("B", "rural", 0, False),
]


def _frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["county_code", "urban_rural", "label", "alerted"])


def _config(**changes) -> FairnessConfig:
    """Tiny groups judged on the ratio alone (separation of the intervals is tested on its own)."""
    return FairnessConfig(attributes=("county_code", "urban_rural"),
                          **{"min_support": 1, "require_separation": False, **changes})


def test_confusion_table_and_rates_match_hand_count():
    table = audit(_frame(), config=_config())
    a, b = table.loc[("county_code", "A")], table.loc[("county_code", "B")]
    # County A: 8 households, 4 fell into hardship; alerted 4: 3 of them in hardship.
    assert (a["size"], a["positives"], a["negatives"], a["alerted"]) == (8, 4, 4, 4)
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (3, 1, 1, 3)
    assert (a["alert_rate"], a["precision"], a["fnr"], a["fpr"]) == (0.5, 0.75, 0.25, 0.25)
    # County B: 4 households, 3 in hardship, 1 alerted (in hardship).
    assert (b["tp"], b["fp"], b["fn"], b["tn"]) == (1, 0, 2, 1)
    assert b["alert_rate"] == 0.25 and b["precision"] == 1.0 and b["fpr"] == 0.0
    assert b["fnr"] == pytest.approx(2 / 3)
    # A is the largest county, so the reference; B misses hardship 2.67 times as often.
    assert a["reference"] and not b["reference"]
    assert a["fnr_ratio"] == 1.0 and b["fnr_ratio"] == pytest.approx((2 / 3) / 0.25)
    assert b["precision_ratio"] == pytest.approx(1 / 0.75)
    assert flagged_groups(table) == [("county_code", "B"), ("urban_rural", "urban")]
    assert "fnr 66.7% vs 25.0%" in b["why"] and "outside [0.8, 1.25]" in b["why"]
    # Urban/rural: rural 7 (positives 5, fn 1), urban 5 (positives 2, fn 2) -> FNR 0.2 vs 1.0, ratio 5.
    rural, urban = table.loc[("urban_rural", "rural")], table.loc[("urban_rural", "urban")]
    assert (rural["size"], rural["positives"], rural["fn"]) == (7, 5, 1) and rural["reference"]
    assert urban["fnr"] == 1.0 and urban["fnr_ratio"] == pytest.approx(5.0) and urban["flagged"]


def test_only_the_configured_metrics_flag():
    # Judged on FPR only: B's FPR (0 of 1) vs A's 0.25 is a ratio of 0; urban 1/3 vs rural 0/2 is infinite.
    table = audit(_frame(), config=_config(flag_metrics=("fpr",)))
    assert set(flagged_groups(table)) == {("county_code", "B"), ("urban_rural", "urban")}
    assert np.isinf(table.loc[("urban_rural", "urban"), "fpr_ratio"])
    inside = audit(_frame(), config=_config(band=(0.1, 10.0)))
    assert flagged_groups(inside) == []


def test_small_groups_show_size_and_interval_not_a_ratio():
    table = audit(_frame(), config=_config(min_support=4))
    b = table.loc[("county_code", "B")]
    assert b["small"] and not b["flagged"] and np.isnan(b["fnr_ratio"])  # 3 positives behind B's FNR
    assert b["fnr_low"] < b["fnr"] < b["fnr_high"]
    assert table.loc[("county_code", "A"), "fnr_ratio"] == 1.0  # A has exactly 4 positives
    text = markdown(table, config=_config(min_support=4))
    assert "n too small" in text and "small group" in text and "Flagged groups: none" in text


def test_flags_need_intervals_apart_when_required():
    # The hand count's county B (FNR 2 of 3) against A (1 of 4): ratio 2.67, intervals overlap.
    assert flagged_groups(audit(_frame(), config=_config(require_separation=True))) == []
    # 20 households in hardship per county: A misses 2 (10 % [2.8-30.1]), B misses 14 (70 % [48.1-85.5]).
    rows = ([("A", True)] * 18 + [("A", False)] * 2 + [("B", True)] * 6 + [("B", False)] * 14)
    frame = pd.DataFrame({"county_code": [c for c, _ in rows], "alerted": [a for _, a in rows], "label": 1})
    config = FairnessConfig(attributes=("county_code",), min_support=20,
                            reference_groups={"county_code": "A"})
    table = audit(frame, config=config)
    b = table.loc[("county_code", "B")]
    assert b["fnr_low"] == pytest.approx(0.4810, abs=1e-4)
    assert table.loc[("county_code", "A"), "fnr_high"] == pytest.approx(0.3010, abs=1e-4)
    assert b["fnr_ratio"] == pytest.approx(7.0) and b["flagged"]
    # Six more misses in A (8 of 20, 40 % [21.9-61.3]) and the intervals overlap: no longer a finding.
    closer = frame.copy()
    closer.loc[closer.index[:6], "alerted"] = False
    assert not audit(closer, config=config).loc[("county_code", "B"), "flagged"]


def test_reference_group_can_be_configured():
    table = audit(_frame(), config=_config(reference_groups={"urban_rural": "urban"}))
    assert table.loc[("urban_rural", "urban"), "reference"]
    assert table.loc[("urban_rural", "rural"), "fnr_ratio"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="reference group 'suburb'"):
        audit(_frame(), config=_config(reference_groups={"urban_rural": "suburb"}))


def test_missing_labels_leave_only_size_and_alert_rate():
    frame = _frame().assign(label=pd.array([pd.NA] * len(ROWS), dtype="Int64"))
    table = audit(frame, config=_config())
    assert table["precision"].isna().all() and table["fnr"].isna().all()
    assert table.loc[("county_code", "A"), "alert_rate"] == 0.5
    assert flagged_groups(table) == []


def test_wilson_interval_by_hand():
    # 1 of 4, 95 %: centre (p + z^2/2n) / (1 + z^2/n) = 0.37247, half-width 0.32689.
    low, high = wilson_interval(np.array([1, 0, 5]), np.array([4, 0, 5]))
    assert low[0] == pytest.approx(0.04559, abs=1e-5) and high[0] == pytest.approx(0.69936, abs=1e-5)
    assert np.isnan(low[1]) and np.isnan(high[1])
    assert high[2] == 1.0 and low[2] == pytest.approx(0.56552, abs=1e-5)


def test_group_membership_uses_records_known_at_t():
    as_of = pd.Timestamp("2024-07-01")
    world = make_world(
        households=[{"household_id": h} for h in ("H1", "H2", "H3", "H4")],
        members=[
            # H1: female head aged 70, a minority child -> female, elderly, minority.
            {"household_id": "H1", "relation": "head", "sex": "F", "birth_date": "1954-03-01"},
            {"household_id": "H1", "relation": "child", "ethnic_minority": True, "birth_date": "1990-01-01"},
            # H2: head turns 60 the day after T; a member disabled since 2020.
            {"household_id": "H2", "relation": "head", "birth_date": "1964-07-02"},
            {"household_id": "H2", "relation": "spouse", "disability_grade": 2,
             "disability_certified_at": "2020-05-01"},
            # H3: disability certified after T, a minority member only recorded after T.
            {"household_id": "H3", "relation": "head", "disability_grade": 1,
             "disability_certified_at": "2024-09-01"},
            {"household_id": "H3", "relation": "parent", "ethnic_minority": True,
             "recorded_at": "2024-08-01"},
            # H4: no head on record.
            {"household_id": "H4", "relation": "spouse", "sex": "F"},
        ],
    )
    groups = household_groups(world, as_of, elderly_age=60)
    h1 = groups.loc["H1", ["female_head", "elderly_head", "ethnic_minority", "disabled_member"]]
    assert h1.tolist() == ["yes", "yes", "yes", "no"]
    assert groups.loc["H2", ["elderly_head", "disabled_member"]].tolist() == ["no", "yes"]
    assert groups.loc["H3", ["ethnic_minority", "disabled_member"]].tolist() == ["no", "no"]
    assert groups.loc["H4", ["female_head", "elderly_head"]].tolist() == ["unknown", "unknown"]
    assert (groups["county_code"] == "530102").all() and (groups["urban_rural"] == "rural").all()
    later = household_groups(world, pd.Timestamp("2024-10-01"))
    assert later.loc["H3", ["ethnic_minority", "disabled_member"]].tolist() == ["yes", "yes"]
    assert later.loc["H2", "elderly_head"] == "yes"
    # attach_groups adds the attributes per as-of date.
    frame = pd.DataFrame({"as_of": [as_of, pd.Timestamp("2024-10-01")], "household_id": ["H3", "H3"]})
    attached = attach_groups(frame, world)
    assert attached["disabled_member"].tolist() == ["no", "yes"]


class _ByColumn:
    """A scorer whose score is one column (stands in for a model in the training audit)."""

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["s"].to_numpy(dtype=float)


def test_training_audit_alerts_the_top_of_each_list():
    # Two monthly lists of 10; alert_fraction 0.2 -> the top 2 of each list is alerted.
    rows = []
    for month in ("2025-01-01", "2025-02-01"):
        for i in range(10):
            rows.append({"as_of": pd.Timestamp(month), "household_id": f"H{i}", "s": float(i),
                         "county_code": "A" if i % 2 else "B", "label": int(i >= 7)})
    test = pd.DataFrame(rows)
    table = training_audit(_ByColumn(), test, config=FairnessConfig(attributes=("county_code",),
                                                                      alert_fraction=0.2, min_support=1))
    a, b = table.loc[("county_code", "A")], table.loc[("county_code", "B")]
    # Alerted: H9 (A) and H8 (B) each month. Positives H7, H9 (A) and H8 (B).
    assert (a["alerted"], a["tp"], a["fn"]) == (2, 2, 2)
    assert (b["alerted"], b["tp"], b["fn"]) == (2, 2, 0)


def test_mlflow_keys_and_promotion_check():
    table = audit(_frame(), config=_config())
    metrics = audit_metrics(table, prefix="lightgbm.")
    assert metrics["lightgbm.fairness.flagged_groups"] == 2.0
    assert metrics["lightgbm.fairness.county_code.B.flagged"] == 1.0
    assert metrics["lightgbm.fairness.county_code.A.flagged"] == 0.0
    challenger = {k.removeprefix("lightgbm."): v for k, v in metrics.items()} | {"precision_at_5pct": 0.3}
    registered = [check for check in DEFAULT_CHECKS if check.__name__ == "fairness_not_worse"]
    assert len(registered) == 1  # promotion runs it by default

    same = Evidence("2", "1", challenger, dict(challenger), "test")
    assert no_new_flagged_group(same).passed
    cleaner = {**challenger, "fairness.county_code.B.flagged": 0.0}
    worse = Evidence("2", "1", challenger, cleaner, "test")
    result = no_new_flagged_group(worse)
    assert not result.passed and "county_code.B" in result.reason
    assert registered[0](worse) == result
    better = Evidence("2", "1", cleaner, challenger, "test")
    assert no_new_flagged_group(better).passed
    old = Evidence("2", "1", challenger, {"precision_at_5pct": 0.3}, "test")  # champion never audited
    assert not no_new_flagged_group(old).passed and "no fairness audit" in no_new_flagged_group(old).reason
    spotless = {k: (0.0 if k.endswith(".flagged") else v) for k, v in challenger.items()}
    blind = Evidence("2", "1", spotless, None, "other test period")
    assert no_new_flagged_group(blind).passed
    assert not no_new_flagged_group(Evidence("2", "1", challenger, None, "other test period")).passed
