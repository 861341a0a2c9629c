"""Recommended assistance: hand-computed cases, one household per rule, on a tiny hand-made world.

T = 2025-07-01. Income of a month is recorded on the 1st of the next month, so June's income is not yet
known at T, and a month counts as complete 2 months after it ends (the income table's reporting lag): the
"last 3 known complete months" are February-April 2025. The dibao standard is 700 yuan/person/month
(edge line 1.5 x 700 = 1,050; 特困 standard 1.3 x 700 = 910), employment-cost deduction 300 yuan per
working member and month.
"""

from __future__ import annotations

import pandas as pd
import pytest
from factories import make_world, month_range, random_world, standard_rows

import features
from doudi.policy import load_policy
from serving.assistance import RULES, _year_before, household_facts, recommend, recommend_for

T = pd.Timestamp("2025-07-01")
MONTHS = month_range("2024-07", 11)  # 2024-07 .. 2025-05


def _wages(household: str, person: str, amount: float, source: str = "wage") -> list[dict]:
    return [{"household_id": household, "person_id": person, "month": m, "source": source, "amount": amount}
            for m in MONTHS]


def _member(household: str, person: str, **values) -> dict:
    return {"household_id": household, "person_id": person, **values}


@pytest.fixture(scope="module")
def advice():
    households = [{"household_id": h} for h in
                  ("DIBAO", "EDGE", "TEKUN", "SINGLE", "SHOCK", "SICK", "ONDIBAO", "HOUSE", "RICH")]
    members = [
        _member("DIBAO", "D1"), _member("DIBAO", "D2"), _member("DIBAO", "D3", birth_date="2012-03-01",
                                                                 relation="child", in_school=True),
        _member("EDGE", "E1"), _member("EDGE", "E2"), _member("EDGE", "E3"),
        _member("TEKUN", "K1", birth_date="1950-01-01", labour_capacity="none"),
        _member("SINGLE", "S1"), _member("SINGLE", "S2", disability_grade=1, labour_capacity="none"),
        _member("SHOCK", "X1"),
        _member("SICK", "M1"), _member("SICK", "M2"),
        _member("ONDIBAO", "O1"), _member("ONDIBAO", "O2", birth_date="2014-01-01", in_school=True),
        _member("HOUSE", "H1"),
        _member("RICH", "R1"),
    ]
    income = (_wages("DIBAO", "D1", 1500) + _wages("EDGE", "E1", 3300)
              + _wages("TEKUN", "K1", 500, source="pension") + _wages("SINGLE", "S1", 2300)
              + _wages("SHOCK", "X1", 5000) + _wages("SICK", "M1", 2500) + _wages("ONDIBAO", "O1", 600)
              + _wages("HOUSE", "H1", 6000) + _wages("RICH", "R1", 9000))
    world = make_world(
        households=households, members=members, income=income,
        standards=standard_rows(month_range("2024-07", 13), dibao_standard=700.0),
        employment_events=[
            {"household_id": "SHOCK", "person_id": "X1", "event_date": "2025-05-10", "event_type": "job_loss",
             "unemployment_insured": False}],
        disasters=[{"disaster_id": "F1", "start_date": "2025-04-01"}],
        disaster_losses=[
            {"disaster_id": "F1", "household_id": "SHOCK", "assessed_date": "2025-04-20", "amount": 8000.0},
            {"disaster_id": "F1", "household_id": "HOUSE", "assessed_date": "2025-04-20", "amount": 3000.0,
             "housing_damage": "collapsed"}],
        medical_claims=[
            {"household_id": "SICK", "person_id": "M2", "discharge_date": "2025-03-10",
             "serious_illness": True, "inpatient": True, "diagnosis_group": "cancer",
             "insurance_paid": 30000.0, "out_of_pocket": 20000.0}],
        assistance=[{"household_id": "ONDIBAO", "programme": "dibao", "start_date": "2024-01-01",
                     "amount": 500.0}],
        assets=[{"household_id": "EDGE", "reported_date": "2025-01-10", "deposits": 5000.0}],
    )
    frame = features.build_features(world, T)
    facts = household_facts(world, T, frame, load_policy())
    return world, frame, facts, recommend(facts)


def _programmes(advice, household: str) -> list[str]:
    return [r["programme"] for r in advice[3][household]]


def _one(advice, household: str, programme: str) -> dict:
    (found,) = [r for r in advice[3][household] if r["programme"] == programme]
    return found


def test_dibao_by_difference_after_the_employment_cost_deduction(advice):
    rec = _one(advice, "DIBAO", "dibao")
    # (1,500 - 300 x 1 working member) / 3 = 400 < 700; (700 - 400) x 3 = 900 yuan a month
    assert rec["figures"]["per_capita_income"] == 500.0
    assert rec["figures"]["working_members"] == 1
    assert rec["figures"]["per_capita_income_after_deduction"] == 400.0
    assert rec["monthly_amount"] == 900.0
    assert "900" in rec["zh"] and "700" in rec["rule_zh"] and "400" in rec["rule_en"]
    assert "家庭存款尚未核对" in rec["rule_zh"]  # no asset check on record
    assert _programmes(advice, "DIBAO") == ["dibao", "education"]  # the child in school


def test_edge_family_between_the_standard_and_the_edge_line(advice):
    # (3,300 - 300) / 3 = 1,000: not below 700, below 1,050; deposits 5,000 < 24 x 700 x 3
    rec = _one(advice, "EDGE", "edge")
    assert rec["figures"]["per_capita_income_after_deduction"] == 1000.0
    assert rec["figures"]["edge_line"] == 1050.0
    assert rec["figures"]["temporary_months"] == 3
    assert _programmes(advice, "EDGE") == ["edge"]


def test_tekun_for_an_old_person_without_labour_capacity_or_supporter(advice):
    rec = _one(advice, "TEKUN", "tekun")
    # pension 500 < 1.3 x 700 = 910; one person supported at 910 a month; no dibao on top
    assert rec["figures"]["tekun_standard"] == 910.0
    assert rec["monthly_amount"] == 910.0 and rec["person_ids"] == ["K1"]
    assert _programmes(advice, "TEKUN") == ["tekun"]


def test_single_person_enrolment_of_a_severely_disabled_member(advice):
    # (2,300 - 300) / 2 = 1,000: no household dibao, but below the edge line; S2 has disability grade 1
    rec = _one(advice, "SINGLE", "single_person")
    assert rec["person_ids"] == ["S2"] and rec["monthly_amount"] == 700.0
    assert "dibao" not in _programmes(advice, "SINGLE")


def test_temporary_assistance_for_disaster_loss_and_uninsured_job_loss(advice):
    rec = _one(advice, "SHOCK", "temporary")
    assert rec["figures"]["disaster_loss_12m"] == 8000.0 and rec["figures"]["uninsured_job_loss_6m"] == 1
    assert "8,000" in rec["rule_zh"] and "未参加失业保险" in rec["rule_zh"]


def test_medical_assistance_for_a_serious_illness(advice):
    rec = _one(advice, "SICK", "medical")
    assert rec["figures"]["medical_oop_12m"] == 20000.0 and rec["figures"]["serious_illness"] is True
    # 20,000 of out-of-pocket against 12 x 2,500 = 30,000 of income: 67 %
    assert rec["figures"]["medical_oop_share_12m"] == pytest.approx(20000 / 30000, abs=1e-4)
    # M2 is seriously ill and the family (2,500 - 300) / 2 = 1,100 is above the edge line 1,050
    assert "single_person" not in _programmes(advice, "SICK")


def test_medical_assistance_weighs_spending_against_the_households_own_income():
    # 6,000 out of pocket (no serious illness) against 12 x 2,500 = 30,000 of income: 20 %.
    world = make_world(households=[{"household_id": "A"}], members=[_member("A", "A1")],
                       income=_wages("A", "A1", 2500),
                       standards=standard_rows(month_range("2024-07", 13), dibao_standard=700.0),
                       medical_claims=[{"household_id": "A", "person_id": "A1",
                                        "discharge_date": "2025-03-10", "serious_illness": False,
                                        "out_of_pocket": 6000.0}])
    frame = features.build_features(world, T)
    base = load_policy()
    assert "medical" not in [r["programme"] for r in recommend_for(world, T, frame, base)["A"]]
    lower = base.model_copy(update={"defaults": base.defaults.model_copy(
        update={"medical_assistance_share": 0.15, "medical_trigger_share": 0.9})})
    (rec,) = [r for r in recommend_for(world, T, frame, lower)["A"] if r["programme"] == "medical"]
    assert rec["figures"]["medical_assistance_share"] == 0.15


def test_nothing_the_household_already_receives_and_education_for_assisted_families(advice):
    assert _programmes(advice, "ONDIBAO") == ["education"]


def test_housing_assistance_after_a_collapse_and_nothing_for_the_well_off(advice):
    assert _programmes(advice, "HOUSE") == ["housing"]
    assert _one(advice, "HOUSE", "housing")["figures"] == {"housing_damage": "collapsed"}
    assert _programmes(advice, "RICH") == []


def test_policy_overrides_apply_by_region():
    from doudi.policy import PolicyConfig

    base = load_policy()
    policy = PolicyConfig(defaults=base.defaults, overrides={"530102": {"employment_cost_deduction": 600}})
    world = make_world(households=[{"household_id": "A"}],
                       members=[_member("A", "A1"), _member("A", "A2"), _member("A", "A3")],
                       income=_wages("A", "A1", 1500),
                       standards=standard_rows(month_range("2024-07", 13), dibao_standard=700.0))
    frame = features.build_features(world, T)
    rec = recommend_for(world, T, frame, policy)["A"][0]
    # (1,500 - 600) / 3 = 300; (700 - 300) x 3 = 1,200
    assert rec["figures"]["employment_cost_deduction"] == 600.0 and rec["monthly_amount"] == 1200.0


def test_wages_of_a_month_not_yet_complete_do_not_count_a_working_member():
    # N2 started work in May 2025: known at T, but May is not complete, so neither the income figure nor
    # the deduction counts N2. (1,500 - 300 x 1) / 3 = 400, not (1,500 - 300 x 2) / 3 = 300.
    world = make_world(households=[{"household_id": "N"}],
                       members=[_member("N", "N1"), _member("N", "N2"), _member("N", "N3")],
                       income=_wages("N", "N1", 1500) + [
                           {"household_id": "N", "person_id": "N2", "month": "2025-05", "source": "wage",
                            "amount": 800}],
                       standards=standard_rows(month_range("2024-07", 13), dibao_standard=700.0))
    frame = features.build_features(world, T)
    (rec,) = recommend_for(world, T, frame, load_policy())["N"]
    assert rec["figures"]["per_capita_income"] == 500.0
    assert rec["figures"]["working_members"] == 1
    assert rec["figures"]["per_capita_income_after_deduction"] == 400.0


def test_subset_gives_the_same_advice(advice):
    world, frame, _, full = advice
    subset = recommend_for(world, T, frame.loc[["SICK", "DIBAO"]], load_policy())
    assert subset.to_dict() == full.loc[["SICK", "DIBAO"]].to_dict()


@pytest.fixture(scope="module")
def random_advice():
    world = random_world(80, 30, 11)
    frame = features.build_features(world, T)
    return world, frame, recommend_for(world, T, frame, load_policy())


def test_random_world_exercises_every_rule(random_advice):
    fired = {r["programme"] for recs in random_advice[2] for r in recs}
    assert fired == set(RULES)


def test_each_household_is_advised_alike_alone_among_the_world_or_in_its_own_world(random_advice):
    # The API advises one household in a world of its own records; the batch advises the alerted ones
    # among everyone. Both must give what advising the whole world gives, figures and order included.
    world, frame, full = random_advice
    policy = load_policy()
    for household in frame.index:
        alone = recommend_for(world, T, frame.loc[[household]], policy)
        own = {name: table.loc[table["household_id"].astype(str) == household] if "household_id" in table
               else table for name, table in world.items()}
        in_own_world = recommend_for(own, T, frame.loc[[household]], policy)
        assert alone.to_dict() == in_own_world.to_dict() == {household: full[household]}, household


def test_advice_follows_the_order_of_the_rows_given(random_advice):
    world, frame, full = random_advice
    order = frame.index[::-3]
    advice = recommend_for(world, T, frame.loc[order], load_policy())
    assert list(advice.index) == list(order)
    assert advice.to_list() == full.loc[order].to_list()


def test_households_not_in_the_world_or_given_twice_are_refused(advice):
    world, frame, _, _ = advice
    with pytest.raises(ValueError, match="twice"):
        recommend_for(world, T, frame.loc[["DIBAO", "DIBAO"]], load_policy())
    stranger = frame.loc[["DIBAO"]].rename(index={"DIBAO": "NOBODY"})
    with pytest.raises(KeyError, match="NOBODY"):
        recommend_for(world, T, stranger, load_policy())


@pytest.mark.parametrize("day", ["2025-07-01", "2024-02-29", "2024-03-31", "2025-12-31", "2025-03-01 13:30"])
def test_the_12_month_window_starts_where_a_calendar_offset_puts_it(day):
    as_of = pd.Timestamp(day)
    assert _year_before(as_of) == (as_of - pd.DateOffset(months=12)).to_datetime64()
