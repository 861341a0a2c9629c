"""Small worlds in contract form for tests: hand-made rows with defaults, and a seeded random world.

Hand-made::

    world = make_world(
        households=[{"household_id": "H1"}],
        members=[{"household_id": "H1", "birth_date": "1970-05-01"}],
        income=[{"household_id": "H1", "month": "2024-01", "amount": 1000, "recorded_at": "2024-02-10"}],
        standards=standard_rows(months=["2024-01"]),
    )

Every table of the contract is present (empty with the right columns when not given) and typed by
``doudi.io.typed_table``, as ``doudi.validate.load_world`` would return it. Regions are derived from the
households' villages unless given. Omitted columns get the defaults in ``DEFAULTS``; ids are numbered;
``recorded_at`` defaults to when the record could first be known (the event date; for a monthly record
the first day of the next month; standards a month in advance).

Random: :func:`random_world` draws a world of any size with numpy only (no Python loop per household),
independent of ``doudi.world`` — for property tests and as a fallback for benchmarks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from doudi.contract import (
    DIAGNOSIS_GROUPS,
    DISASTER_TYPES,
    EMPLOYMENT_EVENTS,
    HOUSING_DAMAGE,
    INCOME_SOURCES,
    TABLES,
    URBAN_RURAL,
)
from doudi.io import World, finalize_dtypes, typed_table

VILLAGE = "530102001001"
COUNTY = VILLAGE[:6]

DEFAULTS: dict[str, dict[str, Any]] = {
    "regions": {"name": None, "urban_rural": "rural"},
    "standards": {"county_code": COUNTY, "urban_rural": "rural", "dibao_standard": 600.0,
                  "monitoring_line": 8000.0, "disposable_income_last_year": 20000.0,
                  "consumption_last_year": 15000.0, "cpi_yoy": 2.0, "food_cpi_yoy": 3.0},
    "households": {"village_code": VILLAGE, "urban_rural": "rural", "lifted_out_year": None,
                   "registered_at": None},
    "members": {"birth_date": "1980-01-01", "sex": "M", "ethnic_minority": False, "relation": "head",
                "disability_grade": 0, "disability_certified_at": None, "labour_capacity": "full",
                "in_school": False, "recorded_at": None},
    "income": {"person_id": None, "source": "wage"},
    "medical_claims": {"diagnosis_group": "other", "serious_illness": False, "inpatient": False,
                       "insurance_paid": 0.0, "assistance_paid": 0.0, "out_of_pocket": 0.0},
    "disasters": {"disaster_type": "flood", "severity": 2, "region_code": VILLAGE},
    "disaster_losses": {"crop_loss": 0.0, "housing_damage": "none", "amount": 0.0},
    "employment_events": {"unemployment_insured": None},
    "assistance": {"person_id": None, "end_date": None, "amount": 0.0},
    "assets": {"deposits": 0.0, "vehicles": 0, "houses": 1, "registered_business": False},
}
_IDS = {"medical_claims": "claim_id", "disasters": "disaster_id", "disaster_losses": "loss_id",
        "employment_events": "event_id", "assistance": "assistance_id", "members": "person_id"}


def _complete(name: str, row: Mapping[str, Any], number: int) -> dict[str, Any]:
    """One row with defaults, derived columns and a default recorded_at."""
    out = {**DEFAULTS.get(name, {}), **row}
    id_column = _IDS.get(name)
    if id_column and out.get(id_column) is None:
        prefix = f"{out['household_id']}-" if name == "members" else ""
        out[id_column] = f"{prefix}{id_column[0].upper()}{number}"
    if name == "medical_claims":
        out.setdefault("admission_date", out["discharge_date"])
        out.setdefault("total_cost", out["out_of_pocket"] + out["insurance_paid"] + out["assistance_paid"])
    if name == "disasters":
        out.setdefault("end_date", out["start_date"])
    table = TABLES[name]
    if table.known is not None and "recorded_at" not in out:
        event = out[table.event]
        if table.column(table.event).dtype == "month":
            start = pd.Timestamp(f"{event}-01")
            known = start - pd.DateOffset(months=1) if table.known_in_advance else start + pd.DateOffset(
                months=1)
        else:
            known = pd.Timestamp(event)
        out["recorded_at"] = known.strftime("%Y-%m-%d")
    return out


def make_table(name: str, rows: Iterable[Mapping[str, Any]] | pd.DataFrame | None = None) -> pd.DataFrame:
    """Table ``name`` in contract form from ``rows`` (dicts with the columns that matter), typed.

    Raises:
        ValueError: a value that the contract type cannot hold (the cell is named).
    """
    table = TABLES[name]
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict("records")
    records = [_complete(name, row, i + 1) for i, row in enumerate(rows or [])]
    raw = pd.DataFrame(records, columns=None if records else table.column_names, dtype=object)
    unknown = [c for c in raw.columns if c not in table.column_names]
    if unknown:
        raise ValueError(f"{name}: not contract columns {unknown}")
    typed, failures = typed_table(table, raw)
    if failures:
        row, column = failures[0]
        raise ValueError(f"{name} row {row + 1} column {column}: {raw.iloc[row][column]!r} is not a "
                         f"{table.column(column).dtype}")
    if typed.empty:
        # An empty object column would not type as a date or number: give every column its dtype.
        typed = _empty(name)
    return typed


def _empty(name: str) -> pd.DataFrame:
    table = TABLES[name]
    dtypes = {"str": "string", "month": "string", "date": "datetime64[ns]", "float": "float64",
              "int": "Int64", "bool": "boolean"}
    frame = pd.DataFrame({c.name: pd.Series(dtype=dtypes[c.dtype]) for c in table.columns})
    return finalize_dtypes(table, frame)


def make_world(**tables: Iterable[Mapping[str, Any]] | pd.DataFrame | None) -> World:
    """A world with every contract table; ``tables`` maps table name -> rows (see module docstring).

    Raises:
        KeyError: a name that is not a contract table.
    """
    unknown = [name for name in tables if name not in TABLES]
    if unknown:
        raise KeyError(f"not contract tables: {unknown}")
    world = {name: make_table(name, tables.get(name)) for name in TABLES}
    if tables.get("regions") is None and not world["households"].empty:
        homes = world["households"].drop_duplicates("village_code")
        world["regions"] = make_table("regions", [
            {"region_code": v, "urban_rural": u}
            for v, u in zip(homes["village_code"], homes["urban_rural"], strict=True)
        ])
    return world


def standard_rows(
    months: Iterable[str],
    *,
    county_code: str = COUNTY,
    urban_rural: str = "rural",
    **values: Any,
) -> list[dict[str, Any]]:
    """Standards rows for one county and urban/rural over ``months`` (other columns: DEFAULTS or values)."""
    return [{"county_code": county_code, "month": m, "urban_rural": urban_rural, **values} for m in months]


def month_range(start: str, count: int) -> list[str]:
    """``count`` consecutive ``YYYY-MM`` months from ``start``."""
    return [p.strftime("%Y-%m") for p in pd.period_range(start, periods=count, freq="M")]


# --- a seeded random world -------------------------------------------------------------------------

_COUNTIES = ("530102", "530103", "530521", "532301")


def _strings(codes: np.ndarray, labels: Iterable[str]) -> pd.Series:
    """Contract text column from integer codes into ``labels`` (fast for millions of rows)."""
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(labels))).astype("string")


def _dates(days: np.ndarray) -> pd.Series:
    return pd.Series(days.astype("datetime64[D]").astype("datetime64[ns]"))


def random_world(
    households: int,
    months: int,
    seed: int,
    *,
    start_month: str = "2023-01",
) -> World:
    """A seeded random world in contract form: every table, plausible values, reporting lags.

    Not a realistic simulation (that is ``doudi.world``): shocks are drawn independently, but every
    table, key and lag that the features read is exercised, and row counts scale like a real county's
    (about 2-3 income rows per household and month). Deterministic per seed.
    """
    rng = np.random.default_rng(seed)
    start = pd.Period(start_month, freq="M")
    month_labels = [str(start + i) for i in range(months)]
    month_start = np.array([(start + i).start_time.to_datetime64() for i in range(months + 1)],
                           dtype="datetime64[D]")
    epoch_end = month_start[-1]

    # Regions: per county 3 townships x 4 villages; codes end in 001.. (never all zeros).
    villages = np.array([f"{c}{t:03d}{v:03d}" for c in _COUNTIES for t in range(1, 4) for v in range(1, 5)])
    village_ur = np.where(rng.random(len(villages)) < 0.3, 0, 1)
    regions = pd.DataFrame({"region_code": _strings(np.arange(len(villages)), villages),
                            "name": pd.Series([None] * len(villages), dtype="string"),
                            "urban_rural": _strings(village_ur, URBAN_RURAL)})

    # Standards: per county, month and urban/rural; published a month ahead.
    n_std = len(_COUNTIES) * months * 2
    c_idx, m_idx, u_idx = np.unravel_index(np.arange(n_std), (len(_COUNTIES), months, 2))
    year_step = (m_idx // 12).astype(float)
    base = 550 + 80 * c_idx + 150 * (u_idx == 0)
    standards = pd.DataFrame({
        "county_code": _strings(c_idx, _COUNTIES),
        "month": _strings(m_idx, month_labels),
        "urban_rural": _strings(u_idx, URBAN_RURAL),
        "dibao_standard": (base * (1.05 ** year_step)).astype(float),
        "monitoring_line": 7000.0 + 500 * c_idx + 400 * year_step,
        "disposable_income_last_year": 18000.0 + 6000 * (u_idx == 0) + 800 * year_step,
        "consumption_last_year": 14000.0 + 4000 * (u_idx == 0) + 600 * year_step,
        "cpi_yoy": np.round(rng.normal(2.0, 1.2, n_std), 1),
        "food_cpi_yoy": np.round(rng.normal(3.0, 2.5, n_std), 1),
        "recorded_at": _dates(month_start[m_idx] - 31),
    })

    # Households and members.
    ids = np.array([f"H{i:07d}" for i in range(households)])
    h_village = rng.integers(0, len(villages), households)
    lifted = rng.random(households) < 0.3
    lifted_year = pd.array(np.where(lifted, rng.integers(2016, 2021, households), 0), dtype="Int64")
    lifted_year[~lifted] = pd.NA
    homes = pd.DataFrame({
        "household_id": _strings(np.arange(households), ids),
        "village_code": _strings(h_village, villages),
        "urban_rural": _strings(village_ur[h_village], URBAN_RURAL),
        "lifted_out_year": lifted_year,
        "registered_at": _dates(np.full(households, np.datetime64("2015-01-01", "D"))),
    })
    size = np.clip(rng.poisson(2.2, households) + 1, 1, 7)
    p_house = np.repeat(np.arange(households), size)
    rank = np.arange(len(p_house)) - np.repeat(np.cumsum(size) - size, size)
    n_people = len(p_house)
    # Relation codes into ("head", "spouse", "child", "parent").
    relation = np.select([rank == 0, rank == 1, rank <= 4], [0, 1, 2], default=3)
    age_years = np.select([relation <= 1, relation == 2],
                          [rng.integers(22, 85, n_people), rng.integers(0, 30, n_people)],
                          default=rng.integers(60, 95, n_people))
    birth = epoch_end - (age_years * 365.25 + rng.integers(0, 365, n_people)).astype(int)
    grade = np.where(rng.random(n_people) < 0.08, rng.integers(1, 5, n_people), 0)
    certified = birth + ((epoch_end - birth).astype(int) * rng.random(n_people)).astype(int)
    capacity = np.where((age_years < 16) | (age_years >= 75) | np.isin(grade, (1, 2)), 2,
                        np.where((age_years >= 60) | (grade > 0), 1, 0))
    person_ids = np.char.add(np.char.add(ids[p_house], "-"), rank.astype(str))
    certified_at = _dates(certified)
    certified_at[grade == 0] = pd.NaT
    members = pd.DataFrame({
        "person_id": pd.Series(person_ids, dtype="string"),
        "household_id": _strings(p_house, ids),
        "birth_date": _dates(birth),
        "sex": _strings(rng.integers(0, 2, n_people), ("M", "F")),
        "ethnic_minority": rng.random(n_people) < 0.15,
        "relation": _strings(relation, ("head", "spouse", "child", "parent")),
        "disability_grade": grade.astype(np.int64),
        "disability_certified_at": certified_at,
        "labour_capacity": _strings(capacity, ("full", "partial", "none")),
        "in_school": (age_years >= 6) & (age_years <= 22) & (rng.random(n_people) < 0.8),
        "recorded_at": _dates(np.maximum(birth, np.datetime64("2015-01-01", "D")) + 30),
    })

    # Employment: some working members lose their job (insured or not) or return from migrant work.
    worker = (capacity < 2) & (age_years >= 18) & (age_years < 65) & (rng.random(n_people) < 0.7)
    workers = np.flatnonzero(worker)
    loss_month = np.where(rng.random(len(workers)) < 0.25, rng.integers(0, months, len(workers)), months)
    lost = loss_month < months
    migrant = rng.random(len(workers)) < 0.3
    ev_person = np.concatenate([workers, workers[lost], workers[migrant], workers[migrant & lost]])
    ev_type = np.concatenate([np.zeros(len(workers), int), np.ones(lost.sum(), int),
                              np.full(migrant.sum(), 2), np.full((migrant & lost).sum(), 3)])
    ev_day = np.concatenate([
        month_start[0] - rng.integers(30, 2000, len(workers)),
        month_start[loss_month[lost]] + rng.integers(0, 28, lost.sum()),
        month_start[0] - rng.integers(30, 1000, migrant.sum()),
        month_start[loss_month[migrant & lost]] + rng.integers(0, 28, (migrant & lost).sum()),
    ])
    insured = pd.array(rng.random(len(ev_person)) < 0.4, dtype="boolean")
    insured[ev_type != 1] = pd.NA
    employment = pd.DataFrame({
        "event_id": pd.Series(np.char.add("E", np.arange(len(ev_person)).astype(str)), dtype="string"),
        "household_id": _strings(p_house[ev_person], ids),
        "person_id": pd.Series(person_ids[ev_person], dtype="string"),
        "event_date": _dates(ev_day),
        "event_type": _strings(ev_type, EMPLOYMENT_EVENTS),
        "unemployment_insured": insured,
        "recorded_at": _dates(ev_day + rng.integers(0, 60, len(ev_person))),
    })

    # Income: wages per working member until a job loss, household farming (rural), pensions, transfers.
    w_months = np.tile(np.arange(months), len(workers))
    w_person = np.repeat(workers, months)
    w_keep = w_months < np.repeat(loss_month, months)
    w_keep &= rng.random(len(w_keep)) > 0.03
    rural = village_ur[h_village] == 1
    farm_house = np.flatnonzero(rural & (rng.random(households) < 0.8))
    f_house = np.repeat(farm_house, months)
    f_months = np.tile(np.arange(months), len(farm_house))
    season = 1 + 0.8 * np.sin((f_months + start.month - 4) / 12 * 2 * np.pi)
    elderly = np.flatnonzero(age_years >= 60)
    transfer_house = np.flatnonzero(rng.random(households) < 0.2)
    i_house = np.concatenate([p_house[w_person[w_keep]], f_house, np.repeat(p_house[elderly], months),
                              np.repeat(transfer_house, months)])
    i_person = np.concatenate([w_person[w_keep], np.full(len(f_house), -1), np.repeat(elderly, months),
                               np.full(len(transfer_house) * months, -1)])
    i_month = np.concatenate([w_months[w_keep], f_months, np.tile(np.arange(months), len(elderly)),
                              np.tile(np.arange(months), len(transfer_house))])
    i_source = np.concatenate([np.zeros(w_keep.sum(), int), np.ones(len(f_house), int),
                               np.full(len(elderly) * months, 5), np.full(len(transfer_house) * months, 4)])
    level = np.exp(rng.normal(7.4, 0.5, households))
    i_amount = np.concatenate([
        level[p_house[w_person[w_keep]]] * rng.lognormal(0, 0.2, w_keep.sum()),
        0.6 * level[f_house] * season * rng.lognormal(0, 0.4, len(f_house)),
        np.full(len(elderly) * months, 180.0) * rng.lognormal(0, 0.05, len(elderly) * months),
        np.full(len(transfer_house) * months, 120.0),
    ]).round(2)
    i_lag = rng.integers(5, 70, len(i_house))
    income = pd.DataFrame({
        "household_id": _strings(i_house, ids),
        "person_id": pd.Series(np.where(i_person >= 0, person_ids[np.maximum(i_person, 0)], None),
                               dtype="string"),
        "month": _strings(i_month, month_labels),
        "source": _strings(i_source, INCOME_SOURCES),
        "amount": i_amount,
        "recorded_at": _dates(month_start[i_month + 1] + i_lag),
    })

    # Medical claims: about one visit per person a year; serious illness is rarer and costlier.
    n_claims = int(n_people * months / 12)
    c_person = rng.integers(0, n_people, n_claims)
    c_admit = month_start[0] + rng.integers(0, (epoch_end - month_start[0]).astype(int), n_claims)
    c_group = rng.integers(0, len(DIAGNOSIS_GROUPS), n_claims)
    serious = np.isin(np.array(DIAGNOSIS_GROUPS)[c_group], ("cancer", "stroke", "chronic_kidney", "mental"))
    inpatient = serious | (rng.random(n_claims) < 0.15)
    stay = np.where(inpatient, rng.integers(1, 20, n_claims), 0)
    total = np.round(np.where(inpatient, rng.lognormal(9, 0.8, n_claims), rng.lognormal(5, 0.7, n_claims)), 2)
    insurance = np.round(total * np.where(inpatient, 0.6, 0.3), 2)
    assistance_paid = np.round(total * np.where(lifted[p_house[c_person]], 0.1, 0.0), 2)
    claims = pd.DataFrame({
        "claim_id": pd.Series(np.char.add("C", np.arange(n_claims).astype(str)), dtype="string"),
        "household_id": _strings(p_house[c_person], ids),
        "person_id": pd.Series(person_ids[c_person], dtype="string"),
        "admission_date": _dates(c_admit),
        "discharge_date": _dates(c_admit + stay),
        "diagnosis_group": _strings(c_group, DIAGNOSIS_GROUPS),
        "serious_illness": serious,
        "inpatient": inpatient,
        "total_cost": total,
        "insurance_paid": insurance,
        "assistance_paid": assistance_paid,
        "out_of_pocket": np.round(total - insurance - assistance_paid, 2),
        "recorded_at": _dates(c_admit + stay + rng.integers(3, 45, n_claims)),
    })

    # Disasters: about one per county and quarter, coded at village, township or county level.
    n_dis = max(1, len(_COUNTIES) * months // 3)
    d_village = rng.integers(0, len(villages), n_dis)
    level_cut = rng.choice([12, 9, 6], n_dis, p=[0.4, 0.4, 0.2])
    d_region = np.array([v[:c] + "0" * (12 - c) for v, c in zip(villages[d_village], level_cut, strict=True)])
    d_start = month_start[0] + rng.integers(0, (epoch_end - month_start[0]).astype(int), n_dis)
    disasters = pd.DataFrame({
        "disaster_id": pd.Series(np.char.add("D", np.arange(n_dis).astype(str)), dtype="string"),
        "region_code": pd.Series(d_region, dtype="string"),
        "disaster_type": _strings(rng.integers(0, len(DISASTER_TYPES), n_dis), DISASTER_TYPES),
        "start_date": _dates(d_start),
        "end_date": _dates(d_start + rng.integers(0, 10, n_dis)),
        "severity": rng.integers(1, 5, n_dis).astype(np.int64),
        "recorded_at": _dates(d_start + rng.integers(0, 20, n_dis)),
    })

    # Losses: a share of the households in each disaster's area, assessed weeks later.
    hit = np.flatnonzero(rng.random(households) < min(1.0, 0.08 * months / 12))
    l_dis = rng.integers(0, n_dis, len(hit))
    l_date = d_start[l_dis] + rng.integers(5, 40, len(hit))
    crop = np.round(np.where(rural[hit], rng.lognormal(7.5, 1.0, len(hit)), 0.0), 2)
    damage = rng.choice(len(HOUSING_DAMAGE), len(hit), p=[0.7, 0.2, 0.08, 0.02])
    losses = pd.DataFrame({
        "loss_id": pd.Series(np.char.add("L", np.arange(len(hit)).astype(str)), dtype="string"),
        "disaster_id": _strings(l_dis, disasters["disaster_id"].to_numpy()),
        "household_id": _strings(hit, ids),
        "assessed_date": _dates(l_date),
        "crop_loss": crop,
        "housing_damage": _strings(damage, HOUSING_DAMAGE),
        "amount": np.round(crop + damage * 8000.0, 2),
        "recorded_at": _dates(l_date + rng.integers(0, 30, len(hit))),
    })

    # Assistance: dibao / edge spells (some ended), tekun, temporary payments.
    n_spell = households // 8 + 1
    s_house = rng.integers(0, households, n_spell)
    s_prog = rng.choice([0, 1, 2, 4, 5], n_spell, p=[0.45, 0.05, 0.3, 0.1, 0.1])
    s_start = month_start[0] - 365 + rng.integers(0, (epoch_end - month_start[0]).astype(int) + 365, n_spell)
    s_end = s_start + rng.integers(60, 900, n_spell)
    s_end_series = _dates(s_end)
    s_end_series[rng.random(n_spell) < 0.5] = pd.NaT
    n_temp = max(1, households * months // 240)
    t_house = rng.integers(0, households, n_temp)
    t_date = month_start[0] + rng.integers(0, (epoch_end - month_start[0]).astype(int), n_temp)
    assistance = pd.DataFrame({
        "assistance_id": pd.Series(np.char.add("A", np.arange(n_spell + n_temp).astype(str)), dtype="string"),
        "household_id": _strings(np.concatenate([s_house, t_house]), ids),
        "person_id": pd.Series([None] * (n_spell + n_temp), dtype="string"),
        "programme": _strings(np.concatenate([s_prog, np.full(n_temp, 3)]),
                              ("dibao", "tekun", "edge", "temporary", "medical", "education")),
        "start_date": _dates(np.concatenate([s_start, t_date])),
        "end_date": pd.concat([s_end_series, pd.Series(pd.NaT, index=range(n_temp), dtype="datetime64[ns]")],
                              ignore_index=True),
        "amount": np.round(np.concatenate([rng.uniform(100, 800, n_spell),
                                           rng.uniform(500, 3000, n_temp)]), 2),
        "recorded_at": _dates(np.concatenate([s_start, t_date]) + rng.integers(0, 45, n_spell + n_temp)),
    })

    # Assets: a yearly economic check for about a third of households.
    checked = np.flatnonzero(rng.random(households) < 0.35)
    years = max(1, months // 12)
    a_house = np.repeat(checked, years)
    a_date = (month_start[0] + np.tile(np.arange(years) * 365, len(checked))
              + rng.integers(0, 300, len(a_house)))
    assets = pd.DataFrame({
        "household_id": _strings(a_house, ids),
        "reported_date": _dates(a_date),
        "deposits": np.round(rng.lognormal(9, 1.3, len(a_house)), 2),
        "vehicles": rng.poisson(0.3, len(a_house)).astype(np.int64),
        "houses": (1 + rng.poisson(0.1, len(a_house))).astype(np.int64),
        "registered_business": rng.random(len(a_house)) < 0.05,
        "recorded_at": _dates(a_date + rng.integers(0, 30, len(a_house))),
    })

    return {"regions": regions, "standards": standards, "households": homes, "members": members,
            "income": income, "medical_claims": claims, "disasters": disasters, "disaster_losses": losses,
            "employment_events": employment, "assistance": assistance, "assets": assets}
