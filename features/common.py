"""Per-household context shared by several feature families: members, size, standards, policy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from doudi.contract import URBAN_RURAL
from doudi.policy import PolicyRules, load_policy
from features.snapshot import Columns, Snapshot, distinct_codes

CHILD_AGE = 16
ELDERLY_AGE = 60
DAYS_PER_YEAR = 365.25


def members(snap: Snapshot) -> Columns:
    """Members known and born before T, with ``age`` (years at T)."""

    def compute() -> Columns:
        frame = snap.table("members")
        age = (snap.as_of.to_datetime64() - frame["birth_date"]) / np.timedelta64(1, "D")
        return frame.with_column("age", age / DAYS_PER_YEAR)

    return snap.cached("members", compute)


def household_size(snap: Snapshot) -> np.ndarray:
    """Members per household at T (0 when none is known)."""
    return snap.cached("household_size", lambda: snap.per_household(members(snap)["_h"]))


def per_capita(snap: Snapshot, values: np.ndarray) -> np.ndarray:
    """``values`` divided by household size; NaN where no member is known."""
    return ratio(values, household_size(snap))


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is missing or not positive."""
    # Divided by NaN where the denominator is not positive: NaN without a division by zero to silence
    # (np.errstate costs about as much as the division on a household's few values).
    return numerator / np.where(denominator > 0, denominator, np.nan)


def capped_share(numerator: np.ndarray, denominator: np.ndarray, cap: float) -> np.ndarray:
    """``numerator / denominator`` capped at ``cap``: 0 when nothing is spent, ``cap`` when spending
    meets zero income, NaN when the denominator is unknown."""
    share = ratio(numerator, denominator)
    share = np.where((denominator == 0) & (numerator > 0), cap, share)
    share = np.where(numerator == 0, 0.0, share)
    share = np.where(np.isnan(denominator), np.nan, share)
    return np.minimum(share, cap)


def villages(snap: Snapshot) -> tuple[np.ndarray, list[str]]:
    """Each household's village as a code into the distinct village codes (code -1 when missing).

    Village-level values (county, policy rules, disaster exposure) are worked out once per distinct
    village and then taken per household: cheap for one household and for a million.
    """
    return snap.cached("villages", lambda: distinct_codes(snap.table("households")["village_code"]))


def county_codes(snap: Snapshot) -> np.ndarray:
    """Each household's 6-digit county code (object array; None when the village code is missing)."""

    def compute() -> np.ndarray:
        codes, distinct = villages(snap)
        # Code -1 (no village) takes the trailing None.
        return np.array([*(village[:6] for village in distinct), None], dtype=object)[codes]

    return snap.cached("county_codes", compute)


@dataclass(frozen=True)
class Standards:
    """The standards row in force for each household at T (NaN where none is known)."""

    dibao_standard: np.ndarray
    monitoring_line: np.ndarray
    disposable_income_last_year: np.ndarray
    cpi_yoy: np.ndarray
    food_cpi_yoy: np.ndarray


def standards(snap: Snapshot) -> Standards:
    """Standards for the household's county and urban/rural, latest month known before T.

    The month of T when its row is already published (``recorded_at < T``) and has started, otherwise
    the latest earlier month.
    """

    def in_force() -> tuple[dict[tuple[str | None, int], int], dict[str, np.ndarray]]:
        table = snap.table("standards")
        latest = (table.frame().sort_values("month", kind="stable")
                  .drop_duplicates(["county_code", "urban_rural"], keep="last"))
        # (county code, urban/rural code) -> row; a missing county is None here as in county_codes.
        counties = [c if isinstance(c, str) else None for c in latest["county_code"].tolist()]
        keys = zip(counties, latest["urban_rural"].tolist(), strict=True)
        rows = {key: row for row, key in enumerate(keys)}
        fields = Standards.__dataclass_fields__
        return rows, {name: np.append(latest[name].to_numpy(np.float64, na_value=np.nan), np.nan)
                      for name in fields}

    def compute() -> Standards:
        rows, values = snap.regional("standards_in_force", ("standards",), in_force)
        homes = zip(county_codes(snap).tolist(), snap.table("households")["urban_rural"].tolist(),
                    strict=True)
        # -1 (no standard known) picks the trailing NaN.
        row = np.array([rows.get(home, -1) for home in homes], dtype=np.int64)
        return Standards(**{name: column[row] for name, column in values.items()})

    return snap.cached("standards", compute)


def policy_rules(snap: Snapshot) -> tuple[list[PolicyRules], np.ndarray]:
    """The distinct policy rules in force and, per household, the index of its rules.

    Rules come from ``doudi/policy.yaml`` (defaults and region-prefix overrides); they are looked up
    once per village, not per household.
    """

    def compute() -> tuple[list[PolicyRules], np.ndarray]:
        policy = snap.policy or load_policy()
        codes, distinct_villages = villages(snap)
        # A missing village code reads as "" (the defaults); code -1 takes the trailing "".
        rules_by_village = [policy.for_region(str(v)) for v in [*distinct_villages, ""]]
        distinct: list[PolicyRules] = []
        lookup = []
        for rules in rules_by_village:
            if rules not in distinct:
                distinct.append(rules)
            lookup.append(distinct.index(rules))
        return distinct, np.asarray(lookup, dtype=np.int64)[codes]

    return snap.cached("policy_rules", compute)


def policy_value(snap: Snapshot, name: str) -> np.ndarray:
    """A numeric policy parameter per household (e.g. ``edge_multiplier``)."""
    distinct, index = policy_rules(snap)
    return np.array([float(getattr(rules, name)) for rules in distinct])[index]


def urban_rural_labels(codes: np.ndarray) -> np.ndarray:
    """Urban/rural codes back to their contract labels (None when missing)."""
    labels = np.array([*URBAN_RURAL, None], dtype=object)
    return labels[np.where(codes >= 0, codes, len(URBAN_RURAL))]


def medical_oop(snap: Snapshot, months: int) -> np.ndarray:
    """Out-of-pocket medical spending per household over claims discharged in the last ``months`` months
    before T (yuan; 0 without claims)."""

    def compute() -> np.ndarray:
        table = snap.table("medical_claims")
        recent = table["discharge_date"] >= snap.months_ago(months)
        return snap.per_household(table["_h"][recent],
                                  table["out_of_pocket"].astype(np.float64)[recent])

    return snap.cached(f"medical_oop_{months}m", compute)
