"""Hand-computed feature values on a tiny hand-built world (the arithmetic is in the comments).

As-of date T = 2024-07-01. Three households in county 530102 (H1 rural, H2 urban) and 530103 (H3):
  H1  head (b. 1960-07-15, partial labour capacity), spouse (b. 1975, full, grade-2 disability),
      child (b. 2010, in school, grade-3 disability certified only after T), a baby born after T.
      Farming 600 a month; wages 3000 a month (2400 in 2023-03..05) until a job loss in 2024-03.
  H2  one pensioner (b. 1954), 1500 a month with a gap in 2024-02; left dibao at the end of 2023.
  H3  a household with no records at all.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from factories import make_world, month_range, standard_rows

import features
from features import build_features, known_before, reason_text

T = pd.Timestamp("2024-07-01")
V1, V2, V3 = "530102001001", "530102002001", "530103001001"
DAYS = 365.25 / 12  # days per month used by "months since" features


def _income() -> list[dict]:
    rows = [{"household_id": "H1", "month": m, "source": "farming", "amount": 600.0}
            for m in month_range("2023-01", 17)]  # 2023-01 .. 2024-05
    for m in month_range("2023-02", 13):  # 2023-02 .. 2024-02
        wage = 2400.0 if m in ("2023-03", "2023-04", "2023-05") else 3000.0
        rows.append({"household_id": "H1", "person_id": "H1-head", "month": m, "amount": wage})
    # June wages arrive on T itself: not known before T.
    rows.append({"household_id": "H1", "person_id": "H1-head", "month": "2024-06", "amount": 9e5,
                 "recorded_at": "2024-07-01"})
    rows += [{"household_id": "H2", "person_id": "H2-p", "month": m, "source": "pension", "amount": 1500.0}
             for m in ("2023-11", "2023-12", "2024-01", "2024-03", "2024-04")]
    return rows


def tiny_world() -> dict[str, pd.DataFrame]:
    return make_world(
        households=[
            {"household_id": "H1", "village_code": V1, "urban_rural": "rural", "lifted_out_year": 2019},
            {"household_id": "H2", "village_code": V2, "urban_rural": "urban"},
            {"household_id": "H3", "village_code": V3, "urban_rural": "rural"},
        ],
        members=[
            {"person_id": "H1-head", "household_id": "H1", "birth_date": "1960-07-15",
             "labour_capacity": "partial"},
            {"person_id": "H1-sp", "household_id": "H1", "birth_date": "1975-01-01", "relation": "spouse",
             "disability_grade": 2, "disability_certified_at": "2020-01-01"},
            {"person_id": "H1-ch", "household_id": "H1", "birth_date": "2010-03-01", "relation": "child",
             "in_school": True, "labour_capacity": "none", "disability_grade": 3,
             "disability_certified_at": "2024-09-01"},
            {"person_id": "H1-baby", "household_id": "H1", "birth_date": "2024-08-01", "relation": "child",
             "labour_capacity": "none"},
            {"person_id": "H2-p", "household_id": "H2", "birth_date": "1954-01-01",
             "labour_capacity": "none"},
        ],
        standards=[
            *standard_rows(month_range("2024-01", 6)),  # rural: dibao 600, line 8000
            *standard_rows(["2024-07"], dibao_standard=700.0),  # starts at T: only visible later
            *standard_rows(month_range("2024-01", 7), urban_rural="urban", dibao_standard=800.0,
                           monitoring_line=10000.0, cpi_yoy=3.6, food_cpi_yoy=None),
        ],
        income=_income(),
        medical_claims=[
            {"household_id": "H1", "person_id": "H1-sp", "admission_date": "2024-05-01",
             "discharge_date": "2024-05-10", "diagnosis_group": "cancer", "serious_illness": True,
             "inpatient": True, "total_cost": 9000.0, "insurance_paid": 7000.0, "out_of_pocket": 2000.0,
             "recorded_at": "2024-05-20"},
            {"household_id": "H1", "person_id": "H1-head", "discharge_date": "2024-01-15",
             "out_of_pocket": 500.0, "recorded_at": "2024-01-20"},
            {"household_id": "H1", "person_id": "H1-head", "discharge_date": "2023-06-15",
             "out_of_pocket": 10000.0},  # older than 12 months
            {"household_id": "H1", "person_id": "H1-head", "discharge_date": "2024-06-20",
             "out_of_pocket": 99999.0, "recorded_at": "2024-07-05"},  # late
            {"household_id": "H1", "person_id": "H1-head", "admission_date": "2024-06-25",
             "discharge_date": "2024-07-03", "out_of_pocket": 99999.0, "recorded_at": "2024-06-26"},
        ],
        disasters=[
            {"disaster_id": "d1", "region_code": "530102000000", "start_date": "2024-03-10", "severity": 3},
            {"disaster_id": "d2", "region_code": "530102001000", "start_date": "2023-09-01", "severity": 4},
            {"disaster_id": "d3", "region_code": "530102001002", "start_date": "2024-05-01", "severity": 4},
            {"disaster_id": "d4", "region_code": "530102000000", "start_date": "2024-07-10", "severity": 4},
            {"disaster_id": "d5", "region_code": "530102000000", "start_date": "2024-06-01", "severity": 4,
             "recorded_at": "2024-07-02"},
        ],
        disaster_losses=[
            {"disaster_id": "d1", "household_id": "H1", "assessed_date": "2024-04-01", "amount": 6000.0,
             "housing_damage": "severe"},
            {"disaster_id": "d2", "household_id": "H1", "assessed_date": "2023-06-01", "amount": 3000.0,
             "housing_damage": "collapsed"},
        ],
        employment_events=[
            {"household_id": "H1", "person_id": "H1-head", "event_date": "2020-01-01",
             "event_type": "job_start"},
            {"household_id": "H1", "person_id": "H1-head", "event_date": "2024-03-01",
             "event_type": "job_loss", "unemployment_insured": False},
            {"household_id": "H1", "person_id": "H1-sp", "event_date": "2023-10-01", "event_type": "job_loss",
             "unemployment_insured": True},
            {"household_id": "H1", "person_id": "H1-sp", "event_date": "2024-02-01",
             "event_type": "job_start"},
            {"household_id": "H1", "person_id": "H1-sp", "event_date": "2024-02-01",
             "event_type": "migrant_out"},
            {"household_id": "H1", "person_id": "H1-sp", "event_date": "2024-05-01",
             "event_type": "migrant_return"},
            {"household_id": "H1", "person_id": "H1-head", "event_date": "2024-06-20",
             "event_type": "job_start", "recorded_at": "2024-07-03"},  # late
        ],
        assistance=[
            {"household_id": "H2", "programme": "dibao", "start_date": "2022-01-01", "end_date": "2023-12-31",
             "amount": 300.0},
            {"household_id": "H2", "programme": "edge", "start_date": "2024-01-01"},
            {"household_id": "H1", "programme": "edge", "start_date": "2023-01-01", "end_date": "2024-09-30"},
            {"household_id": "H1", "programme": "temporary", "start_date": "2024-02-01", "amount": 2000.0},
            {"household_id": "H1", "programme": "temporary", "start_date": "2023-05-01", "amount": 2000.0},
        ],
        assets=[
            {"household_id": "H1", "reported_date": "2023-03-01", "deposits": 12000.0, "vehicles": 1},
            {"household_id": "H1", "reported_date": "2024-03-01", "deposits": 3000.0, "vehicles": 0,
             "registered_business": True},
            {"household_id": "H1", "reported_date": "2024-06-15", "deposits": 0.0,
             "recorded_at": "2024-07-02"},  # late
        ],
    )


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    return tiny_world()


@pytest.fixture(scope="module")
def table(world) -> pd.DataFrame:
    return build_features(world, T)


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-12)


def test_shape_order_and_dtypes(table):
    assert list(table.index) == ["H1", "H2", "H3"]
    assert table.index.name == "household_id"
    assert list(table.columns) == features.feature_names()
    for name, spec in features.REGISTRY.items():
        expected = "string" if spec.kind == "categorical" else "float64"
        assert str(table[name].dtype) == expected, name


def test_income_levels_against_local_lines(table):
    h1 = table.loc["H1"]
    # Income is complete 2 months after the month ends (contract), so at T = 2024-07-01 the latest
    # complete month is 2024-04: H1's May farming row is known but May is not complete yet, and June's
    # wages are recorded on T. H1: L = 2024-04. Last 12 months 2023-05..2024-04: farming 12 x 600, wages
    # 2400 + 9 x 3000 = 36,600 a year, 3 members -> 12,200 per person; line 8,000.
    assert h1["income_pc_12m"] == approx(12200)
    assert h1["income_to_monitoring_line"] == approx(12200 / 8000)
    # Net of out-of-pocket medical spending over 12 months (2000 + 500, see test_medical): 34,100 / 3.
    assert h1["net_income_to_monitoring_line"] == approx((36600 - 2500) / 3 / 8000)
    # Last 3 months 2024-02..04: (3600 + 600 + 600) / 3 = 1600 a month / 3 persons; dibao 600 (June's
    # row: July's starts at T).
    assert h1["income_to_dibao_standard"] == approx(1600 / 3 / 600)
    assert h1["income_to_edge_line"] == approx(1600 / 3 / (1.5 * 600))
    h2 = table.loc["H2"]
    # H2: reported 2023-11..2024-04 (6 months), 2024-02 has no row = zero: 5 x 1500 over 6 months,
    # annualised 7,500 / 6 x 12 = 15,000 for one person; urban line 10,000.
    assert h2["income_pc_12m"] == approx(15000)
    assert h2["income_to_monitoring_line"] == approx(1.5)
    assert h2["net_income_to_monitoring_line"] == approx(1.5)  # no medical bills
    # Last 3 months 2024-02..04: (0 + 1500 + 1500) / 3 = 1000; urban dibao 800.
    assert h2["income_to_dibao_standard"] == approx(1000 / 800)
    assert math.isnan(table.loc["H3", "income_pc_12m"])
    assert math.isnan(table.loc["H3", "income_to_monitoring_line"])


def test_income_drops_volatility_mix_and_freshness(table):
    h1, h2, h3 = table.loc["H1"], table.loc["H2"], table.loc["H3"]
    # H1 last 3 months (L = 2024-04, see above) 1600 a month; the 12 before (2023-02..2024-01):
    # 3600 + 3 x (2400 + 600) + 8 x 3600 = 41,400 -> mean 3450.
    assert h1["income_drop_3m_vs_12m"] == approx(1 - 1600 / 3450)
    # Same months a year earlier (2023-02..04): 3600 + 3000 + 3000 -> 3200 a month.
    assert h1["income_drop_yoy_3m"] == approx(1 - 1600 / 3200)
    # Wages: (3000 + 0 + 0) / 3 = 1000 in the last 3 months, (3000 + 3 x 2400 + 8 x 3000) / 12 = 2850 before.
    assert h1["wage_drop_3m_vs_12m"] == approx(1 - 1000 / 2850)
    # Monthly incomes 3000, 9 x 3600, 2 x 600: mean 3050, variance (50^2 + 9 x 550^2 + 2 x 2450^2) / 12.
    assert h1["income_volatility_12m"] == approx(math.sqrt(14_730_000 / 12) / 3050)
    assert h1["zero_income_months_12m"] == 0
    assert h1["income_share_wage"] == approx(29400 / 36600)
    assert h1["income_share_farming"] == approx(7200 / 36600)
    assert h1["income_share_pension"] == 0
    # Calendar months 2024-04..06: April and May known (May incomplete, but on record), June not yet.
    assert h1["income_months_known_last_3"] == 2
    # L = 2024-04 is 2 months before June, the month before T's: up to date under the 2-month lag.
    assert h1["income_staleness_months"] == 2
    # H2: last 3 months mean 1000, before that only 2023-11..2024-01 are covered (mean 1500).
    assert h2["income_drop_3m_vs_12m"] == approx(1 - 1000 / 1500)
    assert h2["income_drop_yoy_3m"] == 0  # nothing on record a year earlier
    assert h2["wage_drop_3m_vs_12m"] == 0  # never had wages
    # Six covered months: 5 x 1500 and one 0 -> mean 1250, variance (5 x 250^2 + 1250^2) / 6.
    assert h2["income_volatility_12m"] == approx(math.sqrt((5 * 250**2 + 1250**2) / 6) / 1250)
    assert h2["zero_income_months_12m"] == 1
    assert h2["income_share_pension"] == 1
    assert h2["income_staleness_months"] == 2  # L = 2024-04 (no May row: no income in May)
    assert h2["income_months_known_last_3"] == 1
    # No income record at all: levels unknown, drops 0, freshness 0 months known.
    assert h3["income_drop_3m_vs_12m"] == 0
    assert math.isnan(h3["zero_income_months_12m"]) and math.isnan(h3["income_staleness_months"])
    assert h3["income_months_known_last_3"] == 0


def _steady_world(*extra: dict) -> dict[str, pd.DataFrame]:
    """One rural household of two with the same income every month of 2023-01..2024-06: wages 2000
    recorded on the 10th of the next month, farming 1000 from a survey recorded 50 days after the month
    ends (the slowest source), plus ``extra`` income rows."""
    income = []
    for month in month_range("2023-01", 18):
        ended = pd.Period(month, "M").end_time.normalize() + pd.Timedelta(days=1)
        income += [
            {"household_id": "S", "person_id": "S-a", "month": month, "amount": 2000.0,
             "recorded_at": (ended + pd.Timedelta(days=9)).strftime("%Y-%m-%d")},
            {"household_id": "S", "month": month, "source": "farming", "amount": 1000.0,
             "recorded_at": (ended + pd.Timedelta(days=50)).strftime("%Y-%m-%d")},
        ]
    return make_world(
        households=[{"household_id": "S", "village_code": V1, "urban_rural": "rural"}],
        members=[{"person_id": "S-a", "household_id": "S", "birth_date": "1980-01-01"},
                 {"person_id": "S-b", "household_id": "S", "birth_date": "1982-01-01", "relation": "spouse"}],
        standards=standard_rows(month_range("2024-01", 8)),  # rural: dibao 600
        income=[*income, *extra],
    )


def test_steady_income_with_a_partly_recorded_last_month_shows_no_drop():
    world = _steady_world()
    # At T = 2024-07-01 May's wages are on record but not its farming (recorded 2024-07-20): May is known
    # and partial. Read as complete it would be a drop of 1 - (3000 + 3000 + 2000) / 3 / 3000 = 11 %.
    known = known_before(world, T)["income"]
    may = known[known["month"] == "2024-05"]
    assert list(may["source"]) == ["wage"]
    got = build_features(world, T).loc["S"]
    for name in ("income_drop_3m_vs_12m", "income_drop_yoy_3m", "wage_drop_3m_vs_12m"):
        assert got[name] == 0, name
    # Levels of the complete months only: 3000 a month for 2 persons, 18,000 a year per person.
    assert got["income_to_dibao_standard"] == approx(1500 / 600)
    assert got["income_pc_12m"] == approx(18000)
    assert got["income_volatility_12m"] == 0
    assert got["income_months_known_last_3"] == 2  # April and May on record, June not yet
    assert got["income_staleness_months"] == 2  # L = 2024-04: up to date under the 2-month lag
    # A month later May is complete (its farming arrived 2024-07-20) and the windows move on to it.
    later = build_features(world, "2024-08-01").loc["S"]
    assert later["income_drop_3m_vs_12m"] == 0 and later["income_pc_12m"] == approx(18000)
    assert later["income_staleness_months"] == 2


def test_complete_months_do_not_leak_records_known_after_as_of():
    base = _steady_world()
    # Corrections of complete months (March, April) and a farm row for May, all recorded on or after T.
    late = _steady_world(
        {"household_id": "S", "month": "2024-03", "source": "business", "amount": 9e5,
         "recorded_at": "2024-07-01"},
        {"household_id": "S", "month": "2024-04", "source": "transfer", "amount": 9e5,
         "recorded_at": "2024-07-02"},
        {"household_id": "S", "month": "2024-05", "source": "property", "amount": 9e5,
         "recorded_at": "2024-07-01"},
    )
    for as_of in (T, pd.Timestamp("2024-06-15")):
        pd.testing.assert_frame_equal(build_features(late, as_of), build_features(base, as_of))
        pd.testing.assert_frame_equal(build_features(late, as_of), build_features(known_before(late, as_of),
                                                                                  as_of))
    # Once recorded they count: the rows do reach the income windows (so the comparison above can fail).
    after = build_features(late, "2024-08-01").loc["S"]
    assert after["income_pc_12m"] == approx((12 * 3000 + 3 * 9e5) / 2)


def test_medical(table):
    h1, h2, h3 = table.loc["H1"], table.loc["H2"], table.loc["H3"]
    # Known claims discharged in 2024-04-01..T: 2000; in 2023-07-01..T: 2000 + 500. The June claim is
    # recorded after T and the one discharged after T is not over yet.
    assert h1["medical_oop_3m"] == 2000
    assert h1["medical_oop_12m"] == 2500
    assert h1["medical_oop_share_12m"] == approx(2500 / 36600)
    assert h1["medical_oop_to_local_income"] == approx(2500 / 20000)
    assert h1["medical_oop_trend"] == approx(2000 / 3 - 500 / 9)
    assert h1["serious_illness"] == 1
    assert h1["inpatient_stays_12m"] == 1
    assert h1["medical_claim_months_12m"] == 2  # January and May 2024
    assert h2["medical_oop_12m"] == 0 and h2["medical_oop_share_12m"] == 0 and h2["serious_illness"] == 0
    assert math.isnan(h3["medical_oop_share_12m"])  # no income known: share unknown


def test_disasters_and_losses(table):
    h1, h2, h3 = table.loc["H1"], table.loc["H2"], table.loc["H3"]
    # H1's village lies in county 530102 (d1, severity 3) and township 530102001 (d2, severity 4);
    # d3 hit another village, d4 starts after T, d5 is recorded after T.
    assert h1["disaster_exposure_12m"] == 2
    assert h1["disaster_max_severity_12m"] == 4
    assert h1["months_since_disaster"] == approx(113 / DAYS)  # 2024-03-10 -> 2024-07-01 = 113 days
    assert h2["disaster_exposure_12m"] == 1 and h2["disaster_max_severity_12m"] == 3
    assert h3["disaster_exposure_12m"] == 0 and math.isnan(h3["months_since_disaster"])
    # Losses assessed since 2023-07-01: 6000, housing "severe" (level 2); the 2023-06 loss is older.
    assert h1["disaster_loss_12m"] == 6000
    assert h1["housing_damage_12m"] == 2
    assert h1["disaster_loss_to_income"] == approx(6000 / 36600)
    assert h2["disaster_loss_12m"] == 0 and h2["housing_damage_12m"] == 0


def test_household_composition(table):
    h1, h2, h3 = table.loc["H1"], table.loc["H2"], table.loc["H3"]
    # The baby is born after T; the child's disability is certified after T.
    assert h1["household_size"] == 3
    assert h1["dependant_share"] == approx(2 / 3)  # head 63.96 years and child 14 years
    assert h1["disabled_members"] == 1 and h1["severe_disabled_members"] == 1
    assert h1["children_in_school"] == 1
    assert h1["labour_members"] == 2
    assert h1["labour_share"] == approx((0.5 + 1.0) / 3)
    assert h1["head_age"] == approx((T - pd.Timestamp("1960-07-15")).days / 365.25)
    assert h1["elderly_living_alone"] == 0
    assert h2["elderly_living_alone"] == 1 and h2["dependant_share"] == 1
    assert h3["household_size"] == 0 and math.isnan(h3["dependant_share"]) and math.isnan(h3["head_age"])


def test_employment(table):
    h1 = table.loc["H1"]
    # Job losses since 2023-07-01: head 2024-03-01 (uninsured), spouse 2023-10-01 (insured, > 6 months).
    assert h1["job_losses_12m"] == 2
    assert h1["uninsured_job_loss_6m"] == 1
    assert h1["months_since_job_loss"] == approx(122 / DAYS)  # 2024-03-01 -> 2024-07-01
    assert h1["returned_migrants_6m"] == 1
    # Head's new job is recorded after T: only the spouse is in a job; the spouse came back home.
    assert h1["employed_members"] == 1
    assert h1["migrants_away"] == 0
    assert table.loc["H2", "job_losses_12m"] == 0 and math.isnan(table.loc["H2", "months_since_job_loss"])


def test_assistance(table):
    h1, h2, h3 = table.loc["H1"], table.loc["H2"], table.loc["H3"]
    # Lifted out in 2019: counted from 2020-01 to 2024-07 = 54 months.
    assert h1["lifted_out"] == 1 and h1["months_since_lifted"] == 54
    # H1's edge spell ends after T: it is still active at T and is no exit.
    assert h1["edge_family"] == 1 and math.isnan(h1["months_since_exit"])
    assert h1["temporary_aid_12m"] == 1  # 2024-02 payment; 2023-05 is older than 12 months
    assert h2["edge_family"] == 1 and h2["past_dibao_or_tekun"] == 1
    assert h2["months_since_exit"] == approx(183 / DAYS)  # 2023-12-31 -> 2024-07-01
    assert h2["lifted_out"] == 0 and math.isnan(h2["months_since_lifted"])
    assert h3["edge_family"] == 0 and h3["temporary_aid_12m"] == 0


def test_assets(table):
    h1, h2 = table.loc["H1"], table.loc["H2"]
    # Latest check known at T: 2024-03-01 (3000 yuan); the one before: 12000. The June check is late.
    assert h1["deposits_pc_to_dibao"] == approx(3000 / 3 / 600)
    assert h1["deposit_drop"] == approx(1 - 3000 / 12000)
    assert h1["vehicles"] == 0 and h1["registered_business"] == 1
    assert h1["assets_within_dibao_limit"] == 1  # 3000 < 24 x 600 x 3
    assert h1["assets_check_age_months"] == approx(122 / DAYS)
    assert math.isnan(h2["deposits_pc_to_dibao"]) and math.isnan(h2["vehicles"])
    assert h2["deposit_drop"] == 0 and math.isnan(h2["assets_within_dibao_limit"])


def test_region(table, world):
    assert list(table["county_code"]) == ["530102", "530102", "530103"]
    assert list(table["urban_rural"]) == ["rural", "urban", "rural"]
    assert table.loc["H1", "dibao_standard"] == 600 and table.loc["H2", "dibao_standard"] == 800
    assert table.loc["H2", "cpi_yoy"] == 3.6 and math.isnan(table.loc["H2", "food_cpi_yoy"])
    assert math.isnan(table.loc["H3", "dibao_standard"])  # no standards for county 530103
    # Mid-July the July standard (published in June) is in force.
    later = build_features(world, "2024-07-15", households=pd.Index(["H1"]))
    assert later.loc["H1", "dibao_standard"] == 700


def test_households_subset_keeps_the_given_order(world, table):
    subset = build_features(world, T, households=pd.Index(["H3", "H1"]))
    assert list(subset.index) == ["H3", "H1"]
    pd.testing.assert_frame_equal(subset, table.loc[["H3", "H1"]], check_index_type=False)
    with pytest.raises(KeyError, match="H9"):
        build_features(world, T, households=pd.Index(["H1", "H9"]))


def test_encoded_world_gives_the_same_features(world, table):
    encoded = features.encode_world(world)
    pd.testing.assert_frame_equal(build_features(encoded, T), table)


def test_known_before_cuts_contract_form(world):
    cut = known_before(world, T)
    assert not (cut["income"]["recorded_at"] >= T).any()
    assert set(cut["medical_claims"]["out_of_pocket"]) == {2000.0, 500.0, 10000.0}
    assert "2024-07" not in set(cut["standards"]["month"])
    assert "H1-baby" not in set(cut["members"]["person_id"])
    assert len(cut["households"]) == 3


def test_reason_text_states_values():
    assert reason_text("income_drop_3m_vs_12m", 0.45) == "近3个月人均收入较前12个月平均下降45%"
    assert reason_text("income_drop_3m_vs_12m", -0.2) == "近3个月人均收入较前12个月平均上升20%"
    assert reason_text("income_drop_3m_vs_12m", 0.45, lang="en") == (
        "Income in the last 3 months fell 45% below the average of the 12 months before")
    assert reason_text("medical_oop_share_12m", 0.62) == "近12个月自付医疗费用相当于家庭年收入的62%"
    assert reason_text("medical_oop_12m", 12345.4) == "近12个月家庭自付医疗费用12,345元"
    assert reason_text("serious_illness", 1.0) == "近12个月有家庭成员患大病（重特大疾病）就医"
    assert reason_text("serious_illness", 0.0) == "近12个月没有家庭成员大病就医记录"
    assert reason_text("urban_rural", "rural") == "户籍类型：农村户"
    assert reason_text("county_code", "530102", lang="en") == "Lives in the county with division code 530102"
    assert reason_text("income_pc_12m", np.nan) == "近12个月家庭人均收入：暂无记录，请入户核实"
    assert reason_text("income_pc_12m", None, lang="en") == (
        "Per-capita household income over 12 months: no record on file; check at the visit")
    with pytest.raises(ValueError):
        reason_text("income_pc_12m", 1.0, lang="fr")
    with pytest.raises(KeyError):
        reason_text("no_such_feature", 1.0)


def test_absent_tables_count_as_empty(world):
    minimal = {"households": world["households"], "members": world["members"]}
    got = build_features(minimal, T)
    assert got.loc["H1", "household_size"] == 3 and got.loc["H1", "medical_oop_12m"] == 0
    assert math.isnan(got.loc["H1", "income_pc_12m"]) and got.loc["H1", "income_drop_3m_vs_12m"] == 0
    assert got.loc["H1", "county_code"] == "530102"


def test_features_import_neither_models_nor_serving_nor_monitoring():
    import ast
    from pathlib import Path

    for path in Path(features.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("models", "serving", "monitoring"), (path.name, name)
