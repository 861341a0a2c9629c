"""Cohort and labels (doudi/labels.py) on a tiny hand-built world, numbers worked out by hand.

Every household has one member unless said otherwise, so per-capita income is household income. The
monitoring line is 8,000 yuan/person/year in every month (factories default). T = 2024-03-01: the
cohort judges the 12 months 2023-01 .. 2023-12 (ending at 2023-12, the latest income month complete at
T) from records known before T; the label window is 2024-03 .. 2024-08 (dates 2024-03-01 <= d <
2024-09-01).
"""

from __future__ import annotations

import pandas as pd
import pytest
from factories import make_world, month_range, standard_rows

from doudi.labels import REASONS, build_labels, cohort, cohort_frame, hardship_events, hardship_summary

T = pd.Timestamp("2024-03-01")
MONTHS = month_range("2023-01", 24)  # 2023-01 .. 2024-12


def monthly(household: str, amount: float, months: list[str], **extra: object) -> list[dict]:
    return [{"household_id": household, "month": m, "amount": amount, **extra} for m in months]


def before(month: str) -> list[str]:
    return [m for m in MONTHS if m < month]


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    homes = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L"]
    income = []
    # A: 1,000 a month until 2024-02, nothing after. Trailing 12 months: 2024-06 -> 8,000 (not below),
    # 2024-07 -> 7,000 < 8,000: event 2024-07.
    income += monthly("A", 1000, before("2024-03"))
    # B: a two-month gap (2024-03, 2024-04) then back: the lowest trailing sum is 10,000: label 0.
    income += monthly("B", 1000, [m for m in MONTHS if m not in ("2024-03", "2024-04")])
    # C (on dibao at T), D (late-recorded dibao begun before T), E (temporary aid), H (特困), J
    # (registered after T): 1,000 a month throughout.
    for home in ("C", "D", "E", "H", "J"):
        income += monthly(home, 1000, MONTHS)
    # F: 500 a month: 6,000 < 8,000 already in the known data: not in the cohort.
    income += monthly("F", 500, MONTHS)
    # G: 1,000 a month, but a medical bill of 5,000 out of pocket discharged 2024-02-20 and recorded
    # only after T: the cohort does not see it (12,000, in), the truth at 2024-03 is 12,000 - 5,000.
    income += monthly("G", 1000, MONTHS)
    # I: like A, and dibao starting 2024-07-01, the month its income falls below: income_below_line wins.
    income += monthly("I", 1000, before("2024-03"))
    # K: two members, 1,400 a month = 8,400 per person; a baby born 2024-04-15 makes three:
    # 16,800 / 3 = 5,600 < 8,000 from 2024-04.
    income += monthly("K", 1400, MONTHS)
    # L: 1,000 a month, but every month from 2024-03 recorded in 2025: late records still count.
    income += monthly("L", 1000, before("2024-03"))
    income += monthly("L", 1000, [m for m in MONTHS if m >= "2024-03"], recorded_at="2025-06-01")
    members = [{"household_id": h, "person_id": f"{h}-1"} for h in homes]
    members += [{"household_id": "K", "person_id": "K-2", "relation": "spouse", "sex": "F"},
                {"household_id": "K", "person_id": "K-3", "relation": "child", "birth_date": "2024-04-15",
                 "recorded_at": "2024-06-01"}]
    assistance = [
        {"household_id": "C", "programme": "dibao", "start_date": "2023-06-01", "recorded_at": "2023-06-10"},
        {"household_id": "D", "programme": "dibao", "start_date": "2024-01-01", "recorded_at": "2024-04-15"},
        {"household_id": "E", "programme": "temporary", "start_date": "2024-05-10",
         "end_date": "2024-05-10", "amount": 2000.0, "recorded_at": "2024-09-01"},
        {"household_id": "H", "person_id": "H-1", "programme": "tekun", "start_date": "2024-06-01"},
        {"household_id": "I", "programme": "dibao", "start_date": "2024-07-01"},
        # After the window (2024-09-01 is not before T + 6 months): does not count.
        {"household_id": "B", "programme": "temporary", "start_date": "2024-09-01",
         "end_date": "2024-09-01"},
    ]
    claims = [{"household_id": "G", "person_id": "G-1", "discharge_date": "2024-02-20",
               "out_of_pocket": 5000.0, "recorded_at": "2024-03-20"}]
    households = [{"household_id": h, "registered_at": "2024-05-01" if h == "J" else "2020-01-01"}
                  for h in homes]
    return make_world(households=households, members=members, income=income, assistance=assistance,
                      medical_claims=claims, standards=standard_rows(months=MONTHS))


def test_cohort_uses_only_what_is_known_before_t(world: dict[str, pd.DataFrame]) -> None:
    frame = cohort_frame(world, T)
    # C is on dibao at T; F is below the line in the known data; J is not registered yet.
    assert list(cohort(world, T)) == ["A", "B", "D", "E", "G", "H", "I", "K", "L"]
    assert frame.loc["C", "on_dibao_or_tekun"] and not frame.loc["C", "in_cohort"]
    assert frame.loc["F", "below_line"] and frame.loc["F", "income_pc_12m_net"] == pytest.approx(6000)
    assert not frame.loc["J", "registered"]
    # G's bill is recorded after T: the cohort sees 12 x 1,000. K: 2 members known at T -> 16,800 / 2.
    assert frame.loc["G", "income_pc_12m_net"] == pytest.approx(12000)
    assert frame.loc["K", "income_pc_12m_net"] == pytest.approx(8400)
    # D's dibao began before T but was recorded after it: not known, so D stays in the cohort.
    assert frame.loc["D", "in_cohort"]


def test_cohort_judges_only_complete_income_months() -> None:
    # 700 a month = 8,400 a year >= 8,000. At T, January's income (two months back) is partly recorded:
    # counting it as a known month would make the year 7,700 and drop the household from the cohort.
    income = monthly("M", 700, before("2024-01"))
    income += [{"household_id": "M", "month": "2024-01", "amount": 700.0, "recorded_at": "2024-03-10"},
               {"household_id": "M", "month": "2024-02", "amount": 700.0, "recorded_at": "2024-03-10"}]
    world = make_world(households=[{"household_id": "M", "registered_at": "2020-01-01"}],
                       members=[{"household_id": "M", "person_id": "M-1"}], income=income,
                       standards=standard_rows(months=MONTHS))
    frame = cohort_frame(world, T)
    assert frame.loc["M", "income_pc_12m_net"] == pytest.approx(8400)
    assert list(cohort(world, T)) == ["M"]


def test_labels_by_hand(world: dict[str, pd.DataFrame]) -> None:
    labels = build_labels(world, T)
    assert list(labels.index) == list(cohort(world, T))
    assert labels.index.name == "household_id"
    assert labels["label"].dtype == "int64"
    expected = {
        "A": (1, "2024-07", "income_below_line"),
        "B": (0, None, None),  # recovers; its temporary aid on 2024-09-01 is after the window
        "D": (0, None, None),  # a dibao spell begun before T is not a new entry
        "E": (1, "2024-05", "temporary_assistance"),  # recorded after the window: ground truth counts it
        "G": (1, "2024-03", "income_below_line"),  # (12,000 - 5,000) at 2024-03 < 8,000
        "H": (1, "2024-06", "tekun"),
        "I": (1, "2024-07", "income_below_line"),  # dibao starts the same month: the income rule wins the tie
        "K": (1, "2024-04", "income_below_line"),  # the baby makes three
        "L": (0, None, None),  # late records are ground truth too: income never fell
    }
    got = {h: (int(r.label), None if pd.isna(r.event_month) else r.event_month,
               None if pd.isna(r.reason) else r.reason) for h, r in labels.iterrows()}
    assert got == expected
    assert set(labels["reason"].dropna()) <= set(REASONS)


def test_horizon_moves_the_window(world: dict[str, pd.DataFrame]) -> None:
    labels = build_labels(world, T, horizon_months=3)  # 2024-03 .. 2024-05
    assert labels.loc["A", "label"] == 0  # falls in 2024-07
    assert labels.loc["E", "event_month"] == "2024-05"
    assert labels.loc["H", "label"] == 0  # 特困 from 2024-06


def test_labels_ignore_row_order(world: dict[str, pd.DataFrame]) -> None:
    shuffled = {name: frame.sample(frac=1.0, random_state=3) for name, frame in world.items()}
    # The output follows the households table's order; the content does not depend on any order.
    pd.testing.assert_frame_equal(build_labels(shuffled, T).sort_index(), build_labels(world, T))


def test_short_history_is_annualised(world: dict[str, pd.DataFrame]) -> None:
    # At 2023-06-01 the cohort window ends 2023-04: only 2023-01 .. 2023-04 exist, scaled by 12 / 4.
    frame = cohort_frame(world, pd.Timestamp("2023-06-01"))
    assert frame.loc["B", "income_pc_12m_net"] == pytest.approx(12000)
    assert frame.loc["F", "income_pc_12m_net"] == pytest.approx(6000)


def test_labels_refuse_a_window_past_the_data(world: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ValueError, match="need income up to 2025-01"):
        build_labels(world, pd.Timestamp("2024-08-01"))
    with pytest.raises(ValueError, match="at least 1"):
        build_labels(world, T, horizon_months=0)


def test_hardship_events_count_households_per_county(world: dict[str, pd.DataFrame]) -> None:
    events = hardship_events(world)
    assert list(events.columns) == ["households", "fell_below_line", "entered_dibao_or_tekun",
                                    "temporary_assistance"]
    row = events.iloc[0]
    assert row["households"] == 12
    # Dibao or 特困 starting 2023-01 .. 2024-12: C, D, H, I. Temporary aid: E and B.
    assert row["entered_dibao_or_tekun"] == 4
    assert row["temporary_assistance"] == 2
    # From at/above to below the line after the first 12 months: A, I (income stops), G (the bill), K
    # (the baby); F was below from the start and never crosses.
    assert row["fell_below_line"] == 4


def test_hardship_summary_gives_cohort_and_base_rate_per_county(world: dict[str, pd.DataFrame]) -> None:
    summary = hardship_summary(world, [T])
    assert list(summary.columns) == ["as_of", "county_code", "cohort", "base_rate"]
    rows = summary.set_index("county_code")
    # One county in the hand-built world, plus the total: 9 in the cohort, 6 of them labelled 1.
    assert list(rows.index) == ["530102", "all"]
    assert rows.loc["all", "cohort"] == 9 and rows.loc["all", "base_rate"] == pytest.approx(6 / 9)
    assert rows.loc["530102", "base_rate"] == pytest.approx(6 / 9)
