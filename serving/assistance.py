"""Recommended assistance (对应救助帮扶): which programmes a household probably qualifies for, and why.

Each rule reads the policy ratios (``doudi/policy.yaml``, per region), the local standards in force at
T and the household's records known before T, and states the figures it used, so that a social worker
can check it by hand. A person decides; these are pointers to the programmes to verify.

Income figures come from the features themselves (``dibao_standard``, and per-capita monthly income =
``income_to_dibao_standard`` x ``dibao_standard``, the mean of the last 3 known complete months), so a
recommendation never disagrees with the features and triggers shown beside it. The employment-cost
deduction counts the members with wages in those same 3 months.

Worked example (dibao by difference): a household of 3 whose monthly income over its last 3 known
complete months averaged 1,500 yuan, one member earning wages (employment-cost deduction 300
yuan/month), in a county whose dibao standard is 700 yuan/person/month: per-capita income after the
deduction is (1,500 - 300) / 3 = 400 yuan, below 700, so dibao is recommended with an estimated benefit
of (700 - 400) x 3 = 900 yuan a month.

Rules (thresholds from policy, lines from ``standards``; "income" is per-capita monthly income):
  * 特困 tekun: no member aged 18+ with full or partial labour capacity to support the family, and
    income below tekun_multiplier x dibao standard; covers the members without labour capacity and the
    minors under tekun_minor_age, at the basic living standard (multiplier x standard) each.
  * dibao: income after the employment-cost deduction below the dibao standard, deposits (when checked)
    under deposit_limit_months x standard x members; benefit by difference. Not when 特困 covers everyone.
  * 单人户 single-person dibao: not eligible as a household but below the edge line, with a member
    seriously ill (serious-illness claim in 12 months) or severely disabled (grade in
    serious_disability_grades): that member alone, at the dibao standard.
  * edge family: at or above the dibao standard, below edge_multiplier x standard, assets within limits.
  * temporary: assessed disaster loss >= disaster_loss_trigger (12 months), or an uninsured job loss
    (6 months).
  * medical: out-of-pocket spending in 12 months with a serious illness, or over medical_assistance_share
    of household income.
  * education: a member in school in a low-income family (below the edge line or already assisted).
  * housing: the house was severely damaged or collapsed in a disaster in the last 12 months.
Nothing is recommended that the household already receives (ongoing dibao, 特困 or edge status).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import no_default

from doudi.contract import TABLES
from doudi.frames import column_arrays, column_values
from doudi.io import World
from doudi.policy import PolicyConfig, PolicyRules

_POLICY_FIELDS = ("edge_multiplier", "tekun_multiplier", "tekun_minor_age", "employment_cost_deduction",
                  "disaster_loss_trigger", "medical_assistance_share", "deposit_limit_months",
                  "edge_assistance_temporary_months")
_FEATURES = ("serious_illness", "medical_oop_12m", "medical_oop_share_12m", "disaster_loss_12m",
             "uninsured_job_loss_6m")
_DAMAGE = {"none": 0, "minor": 1, "severe": 2, "collapsed": 3}
_HELD = ("dibao", "tekun", "edge")
_READ = {"members": ("labour_capacity", "disability_grade", "person_id", "in_school"),
         "medical_claims": ("serious_illness", "person_id"), "income": ("amount", "person_id", "source"),
         "assistance": ("programme",), "assets": ("deposits",), "disaster_losses": ("housing_damage",)}
"""The columns the rules read from each table, besides its dates and months (read for the cut)."""
ADULT_AGE = 18
DAYS_PER_YEAR = 365.25


def _take(values: Any, rows: np.ndarray) -> Any:
    """The array behind a column (``doudi.frames.column_arrays``) at positions ``rows``: numpy when
    numpy-backed, else an extension array."""
    if isinstance(values.dtype, np.dtype):
        return np.asarray(values)[rows]
    return values.take(rows)


class _Known:
    """The rows of one table that belong to the advised households and were known before T.

    On a one-household call the fixed cost of pandas objects dominates, so columns are read from the
    arrays behind them (no Series) as numpy: numpy-backed columns are indexed at the rows; extension
    arrays (text, nullable numbers) are converted whole when the table holds only the advised
    households, else taken at the rows first.
    """

    __slots__ = ("arrays", "rows", "household", "whole", "read")

    def __init__(self, arrays: dict[str, Any], rows: np.ndarray, household: np.ndarray, whole: bool,
                 read: dict[str, np.ndarray] | None = None):
        self.arrays = arrays
        """The arrays behind the table's columns that the rules read (``doudi.frames.column_arrays``)."""
        self.rows = rows
        """Positions of those rows in the table."""
        self.household = household
        """Position of each row's household in the advised ids."""
        self.whole = whole
        """Every row of the table belongs to the advised households."""
        self.read = {} if read is None else read
        """Dates and months already read at ``rows`` (those that decided what was known, among others)."""

    def _numpy(self, values: Any, dtype: Any = None, na_value: Any = no_default) -> np.ndarray:
        """``frame[column].to_numpy(dtype, na_value=na_value)`` at the rows, from the array behind the
        column."""
        kind = values.dtype
        if isinstance(kind, np.dtype) and kind.kind != "O":
            # Numbers, dates, booleans: missing already is NaN or NaT, so converting the rows taken is
            # the same as converting the column.
            taken = np.asarray(values)[self.rows]
            return taken if dtype is None else taken.astype(dtype, copy=False)
        if isinstance(values, np.ndarray):  # Python objects, converted as their Series would be
            values = pd.arrays.NumpyExtensionArray(values)
        if self.whole:
            return values.to_numpy(dtype, na_value=na_value)[self.rows]
        return values.take(self.rows).to_numpy(dtype, na_value=na_value)

    def text(self, column: str) -> np.ndarray:
        """Text to compare with (object array, missing -> None)."""
        return self._numpy(self.arrays[column], object, None)

    def labels(self, column: str) -> np.ndarray:
        """``astype(str)`` of the column (object array, missing -> NaN): ids as other tables give them."""
        values = self.arrays[column]
        if isinstance(values.dtype, pd.StringDtype):
            return self._numpy(values, object, np.nan)
        return pd.Series(self._numpy(values, object), copy=False).astype(str).to_numpy(dtype=object)

    def numbers(self, column: str) -> np.ndarray:
        """Numbers as float64 (missing or not a number -> NaN)."""
        values = self.arrays[column]
        kind = values.dtype
        # The numpy kinds ``is_numeric_dtype`` accepts (not dates or durations), without its dispatch.
        if kind.kind in "iufcb" if isinstance(kind, np.dtype) else pd.api.types.is_numeric_dtype(kind):
            return self._numpy(values, np.float64, np.nan)
        numbers = pd.to_numeric(pd.Series(self._numpy(values, object), copy=False), errors="coerce")
        return numbers.to_numpy(np.float64, na_value=np.nan)

    def dates(self, column: str) -> np.ndarray:
        """Dates as datetime64[ns] (missing -> NaT)."""
        if column not in self.read:
            self.read[column] = self._numpy(self.arrays[column], "datetime64[ns]")
        return self.read[column]

    def flags(self, column: str, *, missing: bool | None) -> np.ndarray:
        """Booleans; ``missing`` replaces missing values first (None: ``astype(bool)`` as it is)."""
        values = self.arrays[column]
        if values.dtype == bool:
            return self._numpy(values)
        series = pd.Series(self._numpy(values, object), copy=False)
        return (series if missing is None else series.fillna(missing)).astype(bool).to_numpy()

    def months(self, column: str) -> np.ndarray:
        """``YYYY-MM`` months as month indexes."""
        from features.snapshot import month_index

        if column not in self.read:
            values = self.arrays[column]
            self.read[column] = (month_index(values)[self.rows] if self.whole
                                 else month_index(values.take(self.rows)))
        return self.read[column]

    def where(self, mask: np.ndarray, *, whole: bool = False) -> _Known:
        """These rows where ``mask`` holds (read by taking them, however few, unless ``whole``)."""
        return _Known(self.arrays, self.rows[mask], self.household[mask], whole,
                      {name: values[mask] for name, values in self.read.items()})


def _known_rows(world: World, name: str, ids: pd.Index, position: dict[str, int], as_of: pd.Timestamp
                ) -> _Known | None:
    """The rows of table ``name`` that belong to the households ``ids`` and were known before ``as_of``
    (the rule of ``known_before``, ``features.snapshot.known_mask``); None when there are none.

    One positions look-up instead of a string ``isin`` over the table; the cut reads the date and month
    columns at the selected rows only, and keeps them for the rules (see ``_Known.read``).
    """
    from features.snapshot import Columns, known_mask, positions_in

    frame = world.get(name)
    if frame is None or not len(frame):
        return None
    household = positions_in(frame["household_id"], ids, position)
    # Only the columns read (the arrays of all 13 member columns took 29 us, of one 3 us).
    arrays = column_arrays(frame, (*_READ[name], *_timing_kinds(name)))
    whole = bool(household.min() >= 0)
    if whole:
        mine = _Known(arrays, np.arange(len(frame)), household, whole)
    else:
        rows = np.flatnonzero(household >= 0)
        mine = _Known(arrays, rows, household[rows], whole)
    keep = known_mask(TABLES[name], Columns(_Timing(mine, name), len(mine.rows)), as_of)
    if not keep.any():
        return None
    return mine if keep.all() else mine.where(keep, whole=whole)


@functools.cache
def _timing_kinds(name: str) -> dict[str, str]:
    """The date and month columns of a contract table, with their kind."""
    return {c.name: c.dtype for c in TABLES[name].columns if c.dtype in ("date", "month")}


class _Timing(dict[str, np.ndarray]):
    """The date and month columns of a table at the rows of a :class:`_Known`, for ``known_mask``: each
    is read (and kept in ``_Known.read``) when first asked for, as it reads two of them at most."""

    def __init__(self, rows: _Known, name: str):
        super().__init__()
        self._rows = rows
        self._kinds = _timing_kinds(name)

    def __contains__(self, name: object) -> bool:
        return name in self._kinds and name in self._rows.arrays

    def __missing__(self, name: str) -> np.ndarray:
        # Asked for after ``in``; a column that is not there raises KeyError when read.
        read = self._rows.months if self._kinds[name] == "month" else self._rows.dates
        self[name] = values = read(name)
        return values


def _floats(values: Any) -> np.ndarray:
    """A feature as float64 (missing -> NaN), from the array behind its column."""
    return column_values(values, np.float64)


def _isin(values: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``values`` found in ``candidates`` (object arrays of :meth:`_Known.labels`: missing is the one NaN
    object, so that missing matches missing as in ``pd.Series.isin``)."""
    found = set(candidates.tolist())
    return np.fromiter((value in found for value in values.tolist()), dtype=bool, count=len(values))


def _year_before(as_of: pd.Timestamp) -> np.datetime64:
    """``as_of - pd.DateOffset(months=12)`` (29 February -> 28 February) without the offset machinery."""
    try:
        return as_of.replace(year=as_of.year - 1).to_datetime64()
    except ValueError:
        return as_of.replace(year=as_of.year - 1, day=28).to_datetime64()


def _regional_rules(villages: Any, policy: PolicyConfig) -> tuple[np.ndarray, list[PolicyRules]]:
    """Code of each household's rules, and the rules of each distinct village (overrides by prefix;
    a missing village code gets the defaults)."""
    from features.snapshot import distinct_codes

    codes, uniques = distinct_codes(villages)
    regions = ["" if pd.isna(u) else str(u) for u in uniques]
    rules = [policy.for_region(region) for region in [*regions, ""]]
    return np.where(codes < 0, len(regions), codes), rules


def _persons(world: World, ids: pd.Index, position: dict[str, int], as_of: pd.Timestamp, *, rule: np.ndarray,
             grades: list[tuple[int, ...]], minor_age: np.ndarray, year_ago: np.datetime64) -> dict[str, Any]:
    """Per household: whether a member aged 18+ can work (supports the family), the students, and the
    members 特困 could support (no labour capacity, or minors) and those who could be enrolled alone
    (seriously ill or severely disabled)."""
    n = len(ids)
    out: dict[str, Any] = {"supported": np.zeros(n, dtype=bool), "students": np.zeros(n, dtype=np.int64)}
    members = _known_rows(world, "members", ids, position, as_of)
    if members is None:
        for kind in ("tekun", "single"):
            out[f"{kind}_persons"] = np.full(n, np.nan, dtype=object)
            out[f"n_{kind}"] = np.zeros(n, dtype=np.int64)
        return out
    h = members.household
    days = (as_of.to_datetime64() - members.dates("birth_date")) // np.timedelta64(1, "D")
    age = days.astype(np.float64) / DAYS_PER_YEAR
    labour = members.text("labour_capacity")
    grade = members.numbers("disability_grade")
    grade = np.where(np.isnan(grade), 0, grade).astype(int)
    # Serious disability grades per distinct set of grades in the rules (usually one for the whole call).
    distinct = list(dict.fromkeys(grades))
    grade_set = np.array([distinct.index(g) for g in grades], dtype=np.int64)[rule[h]]
    single = np.zeros(len(h), dtype=bool)
    for k, allowed in enumerate(distinct):
        here = grade_set == k
        single[here] = (grade[here, None] == np.array(allowed, dtype=grade.dtype)).any(axis=1)
    person = members.labels("person_id")
    claims = _known_rows(world, "medical_claims", ids, position, as_of)
    if claims is not None:
        serious = claims.flags("serious_illness", missing=None) & (claims.dates("discharge_date") >= year_ago)
        if serious.any():
            single |= _isin(person, claims.labels("person_id")[serious])

    supporter = ((labour == "full") | (labour == "partial")) & (age >= ADULT_AGE)
    out["supported"][h[supporter]] = True
    out["students"] = np.bincount(h[members.flags("in_school", missing=False)], minlength=n).astype(np.int64)
    for kind, chosen in (("tekun", (labour == "none") | (age < minor_age[h])), ("single", single)):
        out[f"{kind}_persons"], out[f"n_{kind}"] = _person_lists(h[chosen], person[chosen], n)
    return out


def _person_lists(household: np.ndarray, person: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The person ids of each household in record order (NaN when none), and their number."""
    groups: dict[int, list[Any]] = {}
    for i, one in zip(household.tolist(), person.tolist(), strict=True):
        groups.setdefault(i, []).append(one)
    lists = np.full(n, np.nan, dtype=object)
    for i, persons in groups.items():
        lists[i] = persons
    return lists, np.bincount(household, minlength=n).astype(np.int64)


def _gather(world: World, as_of: pd.Timestamp, features: pd.DataFrame, policy: PolicyConfig
            ) -> tuple[pd.Index, dict[str, Any]]:
    """The advised ids and the figures every rule reads, one array entry per id (see
    :func:`household_facts`)."""
    from features.snapshot import distinct_codes, positions_in, timestamp_month

    as_of = pd.Timestamp(as_of)
    ids = features.index.astype(str, copy=False).rename("household_id")
    n = len(ids)
    position = dict(zip(ids.tolist(), range(n), strict=True))
    if len(position) < n:
        raise ValueError(f"households given twice: {list(ids[ids.duplicated()][:5])}")
    homes = world["households"]
    found = positions_in(homes["household_id"], ids, position)
    home = np.full(n, -1, dtype=np.int64)
    hit = np.flatnonzero(found >= 0)
    home[found[hit]] = hit
    if (home < 0).any():
        raise KeyError(f"households not in the world: {list(ids[home < 0][:5])}")
    village = column_arrays(homes, ("village_code",))["village_code"]
    rule, rules = _regional_rules(_take(village, home), policy)
    year_ago = _year_before(as_of)

    read = column_arrays(features, ("dibao_standard", "income_to_dibao_standard", "income_staleness_months",
                                    "household_size", *_FEATURES))
    # From the features themselves (the same standard in force and the same 3-month income window):
    # per-capita monthly income = income_to_dibao_standard x dibao_standard.
    std = _floats(read["dibao_standard"])
    pc_income = _floats(read["income_to_dibao_standard"]) * std
    # The household's latest known complete income month L, from the staleness feature.
    last = timestamp_month(as_of) - 1 - _floats(read["income_staleness_months"])

    # Working members: distinct people with wage income in months L-2..L (the window of the income
    # features; wages of the partly recorded months after L are not in the income either); person ids come
    # from the contract-form records.
    working = np.zeros(n)
    income = _known_rows(world, "income", ids, position, as_of)
    if income is not None:
        # Numbers first, text for the few rows left (in batch, text to Python objects is the cost).
        month, last_known = income.months("month"), last[income.household]
        income = income.where((month >= last_known - 2) & (month <= last_known)
                              & (income.numbers("amount") > 0))
        person = income.text("person_id")
        wage = (income.text("source") == "wage") & ~pd.isna(person)
        if wage.any():
            code, distinct = distinct_codes(person[wage])
            pairs = np.unique(income.household[wage] * len(distinct) + code)
            working = np.bincount(pairs // len(distinct), minlength=n).astype(np.float64)

    policy_table = np.array([[float(getattr(r, f)) for f in _POLICY_FIELDS] for r in rules], dtype=np.float64)
    grades = [tuple(r.serious_disability_grades) for r in rules]
    grade_sets = np.empty(len(rules), dtype=object)  # tuples as objects, not a 2-d array
    for i, allowed in enumerate(grades):
        grade_sets[i] = allowed
    columns: dict[str, Any] = {
        "members": _floats(read["household_size"]),
        "dibao_standard": std,
        "pc_income": pc_income,
        "working": working,
        **{f: policy_table[rule, j] for j, f in enumerate(_POLICY_FIELDS)},
        "serious_grades": grade_sets[rule],
    }
    columns.update(_persons(world, ids, position, as_of, rule=rule, grades=grades,
                            minor_age=columns["tekun_minor_age"], year_ago=year_ago))

    for held in _HELD:
        columns[f"on_{held}"] = np.zeros(n, dtype=bool)
    aid = _known_rows(world, "assistance", ids, position, as_of)
    if aid is not None:
        end = aid.dates("end_date")
        ongoing = np.isnat(end) | (end >= as_of.to_datetime64())
        programme = aid.text("programme")
        for held in _HELD:
            columns[f"on_{held}"][aid.household[ongoing & (programme == held)]] = True

    columns["deposits"] = np.full(n, np.nan)
    assets = _known_rows(world, "assets", ids, position, as_of)
    if assets is not None:
        # The latest report of each household (the later row among reports of the same day); known rows
        # all have a date.
        h = assets.household
        order = np.lexsort((assets.dates("reported_date"), h))
        latest = order[np.append(h[order][1:] != h[order][:-1], True)]
        columns["deposits"][h[latest]] = assets.numbers("deposits")[latest]

    damage = np.zeros(n, dtype=np.int64)
    losses = _known_rows(world, "disaster_losses", ids, position, as_of)
    if losses is not None:
        recent = losses.dates("assessed_date") >= year_ago
        kind = losses.text("housing_damage")
        level = np.zeros(len(kind), dtype=np.int64)
        for name, value in _DAMAGE.items():
            level[kind == name] = value
        np.maximum.at(damage, losses.household[recent], level[recent])
    columns["housing_damage"] = np.array(list(_DAMAGE), dtype=object)[damage]

    for name in _FEATURES:
        columns[name] = _floats(read[name]) if name in read else np.full(n, np.nan)
    return ids, columns


def household_facts(world: World, as_of: pd.Timestamp, features: pd.DataFrame, policy: PolicyConfig
                    ) -> pd.DataFrame:
    """The figures every rule reads, one row per household of ``features`` (its index), as of T.

    Args:
        world: contract-form world.
        as_of: T; only records known before T count.
        features: ``build_features`` output for the households to advise (any subset of the world).
        policy: policy configuration.

    Raises:
        KeyError: a household of ``features`` is not in the world.
        ValueError: a household is given twice.
    """
    ids, columns = _gather(world, as_of, features, policy)
    return derive(columns, ids)


def derive(c: dict[str, Any], ids: pd.Index) -> pd.DataFrame:
    """The facts frame: the gathered columns, the derived figures and one boolean column per programme
    (vectorised over households)."""
    return pd.DataFrame(_derive(c), index=ids)


def _derive(c: dict[str, Any]) -> dict[str, Any]:
    """:func:`derive` as arrays (the columns of the facts frame)."""
    c = dict(c)
    n = np.asarray(c["members"], dtype=np.float64)
    std = np.asarray(c["dibao_standard"], dtype=np.float64)
    income = np.asarray(c["pc_income"], dtype=np.float64)
    known_income = (n > 0) & ~np.isnan(std) & ~np.isnan(income)
    with np.errstate(invalid="ignore", divide="ignore"):
        deduction = c["employment_cost_deduction"] * c["working"]
        after = np.maximum(income * n - deduction, 0) / n
    c["pc_income_after_deduction"] = after
    c["edge_line"] = edge_line = c["edge_multiplier"] * std
    c["tekun_standard"] = tekun_line = c["tekun_multiplier"] * std
    c["deposit_limit"] = limit = c["deposit_limit_months"] * std * n
    c["dibao_benefit"] = (std - after) * n

    deposits = np.asarray(c["deposits"], dtype=np.float64)
    assets_ok = np.isnan(deposits) | (deposits < limit)
    below_std = known_income & (after < std)
    below_edge = known_income & (after < edge_line)
    on_dibao, on_tekun, on_edge = (np.asarray(c[k], dtype=bool) for k in ("on_dibao", "on_tekun", "on_edge"))
    tekun = (known_income & ~np.asarray(c["supported"], dtype=bool) & (c["n_tekun"] > 0)
             & (income < tekun_line) & ~on_tekun)
    everyone_tekun = tekun & (c["n_tekun"] >= n)
    loss = np.asarray(c["disaster_loss_12m"], dtype=np.float64)
    jobs = np.asarray(c["uninsured_job_loss_6m"], dtype=np.float64)
    c["disaster_hit"] = ~np.isnan(loss) & (loss >= c["disaster_loss_trigger"])
    c["jobless"] = ~np.isnan(jobs) & (jobs > 0)
    share = np.asarray(c["medical_oop_share_12m"], dtype=np.float64)
    ill = np.asarray(c["serious_illness"], dtype=np.float64) > 0  # NaN compares false: as 0
    c["serious"] = ill

    c["tekun"] = tekun
    c["dibao"] = below_std & assets_ok & ~on_dibao & ~on_tekun & ~everyone_tekun
    c["single_person"] = ~below_std & below_edge & (c["n_single"] > 0) & ~on_dibao & ~on_tekun
    c["edge"] = ~below_std & below_edge & assets_ok & ~on_dibao & ~on_tekun & ~on_edge
    c["temporary"] = c["disaster_hit"] | c["jobless"]
    c["medical"] = (np.asarray(c["medical_oop_12m"], dtype=np.float64) > 0) & (
        ill | (share > c["medical_assistance_share"]))
    c["education"] = (c["students"] > 0) & (below_edge | on_dibao | on_tekun | on_edge)
    damage = np.asarray(c["housing_damage"], dtype=object)
    c["housing"] = (damage == "severe") | (damage == "collapsed")
    return c


def _yuan(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)


def _income_figures(r: Any) -> dict[str, Any]:
    return {"members": int(r.members), "dibao_standard": _yuan(r.dibao_standard),
            "per_capita_income": _yuan(r.pc_income), "working_members": int(r.working),
            "employment_cost_deduction": _yuan(r.employment_cost_deduction),
            "per_capita_income_after_deduction": _yuan(r.pc_income_after_deduction)}


def _tekun(r: Any) -> dict[str, Any]:
    return {
        "zh": "建议认定特困人员救助供养", "en": "Consider extreme-poverty support (特困)",
        "rule_zh": f"家中无18周岁以上有劳动能力的成员；人均月收入{r.pc_income:,.0f}元低于特困基本生活标准"
                   f"{r.tekun_standard:,.0f}元（低保标准{r.dibao_standard:,.0f}元的{r.tekun_multiplier:g}倍）；"
                   f"{r.n_tekun}人无劳动能力或未满{r.tekun_minor_age:.0f}周岁",
        "rule_en": f"No member aged 18+ able to work; per-capita income {r.pc_income:,.0f} yuan/month is "
                   f"below the basic living standard {r.tekun_standard:,.0f} "
                   f"({r.tekun_multiplier:g} x the dibao "
                   f"standard {r.dibao_standard:,.0f}); {r.n_tekun} member(s) without labour capacity or "
                   f"under {r.tekun_minor_age:.0f}",
        "figures": {**_income_figures(r), "tekun_multiplier": r.tekun_multiplier,
                    "tekun_standard": _yuan(r.tekun_standard), "persons": r.n_tekun},
        "monthly_amount": _yuan(r.tekun_standard * r.n_tekun), "person_ids": list(r.tekun_persons),
    }


def _dibao(r: Any) -> dict[str, Any]:
    unchecked = pd.isna(r.deposits)
    deducted_zh = (f"扣除{r.working:.0f}名就业成员的就业成本"
                   f"（每人每月{r.employment_cost_deduction:,.0f}元）后，"
                   if r.working else "家中无就业成员（不扣就业成本），")
    deducted_en = (f"After deducting employment costs for {r.working:.0f} working member(s) "
                   f"({r.employment_cost_deduction:,.0f} yuan/month each), per-capita income is "
                   if r.working
                   else "With no working member (no employment-cost deduction), per-capita income is ")
    return {
        "zh": f"建议纳入低保，按差额估算每月约{r.dibao_benefit:,.0f}元",
        "en": f"Consider dibao; estimated benefit by difference about {r.dibao_benefit:,.0f} yuan/month",
        "rule_zh": deducted_zh +
                   f"家庭人均月收入{r.pc_income_after_deduction:,.0f}元，低于低保标准{r.dibao_standard:,.0f}元；"
                   f"（{r.dibao_standard:,.0f} − {r.pc_income_after_deduction:,.0f}）× {r.members:.0f}人 = "
                   f"{r.dibao_benefit:,.0f}元/月" + ("；家庭存款尚未核对" if unchecked else ""),
        "rule_en": deducted_en +
                   f"{r.pc_income_after_deduction:,.0f} yuan/month, below the dibao standard "
                   f"{r.dibao_standard:,.0f}; "
                   f"({r.dibao_standard:,.0f} - {r.pc_income_after_deduction:,.0f}) x "
                   f"{r.members:.0f} = {r.dibao_benefit:,.0f} yuan/month"
                   + ("; deposits not yet checked" if unchecked else ""),
        "figures": {**_income_figures(r), "deposits": _yuan(r.deposits),
                    "deposit_limit": _yuan(r.deposit_limit)},
        "monthly_amount": _yuan(r.dibao_benefit), "person_ids": [],
    }


def _single_person(r: Any) -> dict[str, Any]:
    return {
        "zh": "建议将重病或重度残疾成员“单人户”纳入低保",
        "en": "Consider enrolling the seriously ill or severely disabled member(s) alone in dibao (单人户)",
        "rule_zh": f"家庭人均月收入{r.pc_income_after_deduction:,.0f}元"
                   f"不低于低保标准{r.dibao_standard:,.0f}元，"
                   f"但低于低保边缘标准{r.edge_line:,.0f}元；{r.n_single}名成员患重病或重度残疾",
        "rule_en": f"Per-capita income {r.pc_income_after_deduction:,.0f} yuan/month is not below the dibao "
                   f"standard {r.dibao_standard:,.0f} but below the edge line {r.edge_line:,.0f}; "
                   f"{r.n_single} member(s) seriously ill or severely disabled",
        "figures": {**_income_figures(r), "edge_line": _yuan(r.edge_line), "persons": r.n_single},
        "monthly_amount": _yuan(r.dibao_standard * r.n_single), "person_ids": list(r.single_persons),
    }


def _edge(r: Any) -> dict[str, Any]:
    return {
        "zh": "建议认定为低保边缘家庭，给予专项救助",
        "en": "Consider low-income edge-family status (专项救助)",
        "rule_zh": f"家庭人均月收入{r.pc_income_after_deduction:,.0f}元，"
                   f"不低于低保标准{r.dibao_standard:,.0f}元、"
                   f"低于低保边缘标准{r.edge_line:,.0f}元（{r.edge_multiplier:g}倍）；遇急难可给予最长"
                   f"{r.edge_assistance_temporary_months:.0f}个月临时救助",
        "rule_en": f"Per-capita income {r.pc_income_after_deduction:,.0f} yuan/month is not below the dibao "
                   f"standard {r.dibao_standard:,.0f} and below the edge line {r.edge_line:,.0f} "
                   f"({r.edge_multiplier:g} x); temporary assistance for up to "
                   f"{r.edge_assistance_temporary_months:.0f} months in an emergency",
        "figures": {**_income_figures(r), "edge_line": _yuan(r.edge_line),
                    "edge_multiplier": r.edge_multiplier,
                    "temporary_months": int(r.edge_assistance_temporary_months)},
        "monthly_amount": None, "person_ids": [],
    }


def _temporary(r: Any) -> dict[str, Any]:
    zh, en = [], []
    if r.disaster_hit:
        zh.append(f"近12个月灾害损失{r.disaster_loss_12m:,.0f}元，达到{r.disaster_loss_trigger:,.0f}元")
        en.append(f"disaster loss of {r.disaster_loss_12m:,.0f} yuan in 12 months (at least "
                  f"{r.disaster_loss_trigger:,.0f})")
    if r.jobless:
        zh.append(f"近6个月{r.uninsured_job_loss_6m:.0f}人次失业且未参加失业保险")
        en.append(f"{r.uninsured_job_loss_6m:.0f} job loss(es) without unemployment insurance in 6 months")
    return {
        "zh": "建议给予临时救助", "en": "Consider temporary assistance (临时救助)",
        "rule_zh": "；".join(zh), "rule_en": "; ".join(en).capitalize(),
        "figures": {"disaster_loss_12m": _yuan(r.disaster_loss_12m),
                    "disaster_loss_trigger": _yuan(r.disaster_loss_trigger),
                    "uninsured_job_loss_6m": None if pd.isna(r.uninsured_job_loss_6m)
                    else int(r.uninsured_job_loss_6m)},
        "monthly_amount": None, "person_ids": [],
    }


def _medical(r: Any) -> dict[str, Any]:
    share = "" if pd.isna(r.medical_oop_share_12m) else f"，占家庭收入{r.medical_oop_share_12m:.0%}"
    share_en = ("" if pd.isna(r.medical_oop_share_12m)
                else f", {r.medical_oop_share_12m:.0%} of household income")
    return {
        "zh": "建议给予医疗救助", "en": "Consider medical assistance (医疗救助)",
        "rule_zh": f"近12个月自付医疗费用{r.medical_oop_12m:,.0f}元{share}"
                   + ("；有成员患重特大疾病" if r.serious else ""),
        "rule_en": f"Out-of-pocket medical spending of {r.medical_oop_12m:,.0f} yuan in 12 months{share_en}"
                   + ("; a member has a serious illness" if r.serious else ""),
        "figures": {"medical_oop_12m": _yuan(r.medical_oop_12m),
                    "medical_oop_share_12m": None if pd.isna(r.medical_oop_share_12m)
                    else round(float(r.medical_oop_share_12m), 4),
                    "medical_assistance_share": r.medical_assistance_share,
                    "serious_illness": bool(r.serious)},
        "monthly_amount": None, "person_ids": [],
    }


def _education(r: Any) -> dict[str, Any]:
    return {
        "zh": "建议给予教育救助", "en": "Consider education assistance (教育救助)",
        "rule_zh": f"低收入家庭，有{r.students}名在校学生",
        "rule_en": f"Low-income family with {r.students} student(s)",
        "figures": {"students": int(r.students), "per_capita_income_after_deduction":
                    _yuan(r.pc_income_after_deduction), "edge_line": _yuan(r.edge_line)},
        "monthly_amount": None, "person_ids": [],
    }


def _housing(r: Any) -> dict[str, Any]:
    collapsed = r.housing_damage == "collapsed"
    return {
        "zh": "建议给予住房救助（危房改造或灾后重建）",
        "en": "Consider housing assistance (repair or rebuilding)",
        "rule_zh": "近12个月房屋因灾" + ("倒塌" if collapsed else "严重损坏"),
        "rule_en": "The house " + ("collapsed" if collapsed else "was severely damaged")
                   + " in a disaster in the last 12 months",
        "figures": {"housing_damage": r.housing_damage}, "monthly_amount": None, "person_ids": [],
    }


RULES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "tekun": _tekun, "dibao": _dibao, "single_person": _single_person, "edge": _edge, "temporary": _temporary,
    "medical": _medical, "education": _education, "housing": _housing,
}
"""Programme -> sentence and figures maker, in the order recommendations are listed."""


def recommend(facts: pd.DataFrame) -> pd.Series:
    """The recommended programmes of each household (a list of dicts with programme, zh, en, rule_zh,
    rule_en, figures, monthly_amount in yuan/month for monthly programmes, person_ids)."""
    return _recommend({name: facts[name].to_numpy() for name in facts.columns}, facts.index)


def _recommend(c: dict[str, Any], ids: pd.Index) -> pd.Series:
    """:func:`recommend` over the facts as arrays (one entry per id)."""
    fired = np.column_stack([np.asarray(c[programme], dtype=bool) for programme in RULES])
    out: list[list[dict[str, Any]]] = [[] for _ in range(len(ids))]
    qualifying = np.flatnonzero(fired.any(axis=1))
    if len(qualifying):
        # One plain record per qualifying household, with Python scalars as DataFrame.to_dict gives them:
        # the figures go to JSON as they are. Formatting only, for the qualifying rows.
        names = list(c)
        values = [np.asarray(c[name])[qualifying].tolist() for name in names]
        rows = [SimpleNamespace(**dict(zip(names, row, strict=True))) for row in zip(*values, strict=True)]
        # (household, programme) pairs in row-major order: each household's list follows RULES.
        makers = list(RULES.items())
        at, programme_at = np.nonzero(fired[qualifying])
        households = qualifying.tolist()
        for k, j in zip(at.tolist(), programme_at.tolist(), strict=True):
            programme, make = makers[j]
            out[households[k]].append({"programme": programme, **make(rows[k])})
    lists = np.empty(len(out), dtype=object)
    lists[:] = out  # one list per household (a Series from the lists themselves costs more per call)
    return pd.Series(lists, index=ids, name="recommendations", copy=False)


def recommend_for(world: World, as_of: pd.Timestamp, features: pd.DataFrame, policy: PolicyConfig
                  ) -> pd.Series:
    """:func:`recommend` of :func:`household_facts`: the recommendations for the rows of ``features``.

    The same as ``recommend(household_facts(...))`` without building the facts frame (this runs in every
    API call).
    """
    ids, columns = _gather(world, as_of, features, policy)
    return _recommend(_derive(columns), ids)
