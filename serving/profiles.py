"""De-identified household summaries for the pages, built from the world when a run is stored.

What a social worker sees of a family before visiting it, and no more:
  * adults: relation to the head, sex, age as a band (never the birth date), labour capacity, disability
    grade, and at most the last 4 characters of the ID number;
  * minors (under 18): only how many there are — no age, sex, schooling or health detail;
  * the village (code and name). The data contract carries no personal names, so there is none to mask;
    households are known by their pseudonymous ``household_id``.
The ID pseudonyms (HMAC, ``doudi.pseudonym``) of adults are kept apart in ``identities`` and shown only
through the audited reveal; the full ID number is never stored by doudi.

Only member records known before T (``recorded_at < T``) are used, as for features.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pandas.api.extensions import ExtensionDtype
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from doudi.frames import column_arrays, column_values, frame_of
from doudi.io import World
from doudi.memo import TableMemo
from serving.auth import Scope
from serving.orm import HouseholdProfile, utcnow
from serving.store import parameter_rows, text_list

MINOR_AGE = 18
AGE_BANDS = (18, 30, 45, 60, 70, 80)
"""Lower edges of the adult age bands: 18-29, 30-44, 45-59, 60-69, 70-79, 80+."""
ELDERLY_AGE = 60
ADULT_FIELDS = ("relation", "sex", "age_band", "labour_capacity", "disability_grade", "id_last4")
RELATION_ORDER = {"head": 0, "spouse": 1, "parent": 2, "child": 3, "sibling": 4, "grandchild": 5, "other": 6}
_BAND_EDGES = np.asarray(AGE_BANDS)
_BAND_LABELS = np.asarray(
    [f"{lo}-{hi - 1}" for lo, hi in zip(AGE_BANDS[:-1], AGE_BANDS[1:], strict=True)] + [f"{AGE_BANDS[-1]}+"],
    dtype=object,
)
_NAMES = TableMemo(kept=8)
"""Village names by code, per regions table: the API sees the same reference table on every call."""
_PROFILES = HouseholdProfile.metadata.tables[HouseholdProfile.__tablename__]
_COLUMNS = pd.Index(["village_code", "village_name", "summary", "identities"])
_MEMBER_COLUMNS = ("household_id", "recorded_at", "birth_date", "relation", "labour_capacity",
                   "disability_grade", "sex", "id_last4", "id_hash")


def _upsert(dialect: ModuleType) -> sa.Insert:
    """INSERT ... ON CONFLICT (household_id) DO UPDATE of every other column (SQLite and PostgreSQL)."""
    insert = dialect.insert(_PROFILES)
    return insert.on_conflict_do_update(
        index_elements=[_PROFILES.c.household_id],
        set_={column.name: insert.excluded[column.name] for column in _PROFILES.c if not column.primary_key},
    )


# One statement replaces a household's summary: a DELETE and an INSERT cost two round trips per call.
_UPSERT = {"sqlite": _upsert(sqlite), "postgresql": _upsert(postgresql)}


def age_band(age: np.ndarray) -> np.ndarray:
    """Adult ages as band labels (``"45-59"``, ``"80+"``); minors get ``"<18"``."""
    position = np.searchsorted(_BAND_EDGES, age, side="right") - 1
    return np.where(position < 0, "<18", _BAND_LABELS[np.clip(position, 0, None)]).astype(object)


def _objects(columns: dict[str, Any], name: str, rows: np.ndarray) -> np.ndarray:
    """Column values at ``rows`` as objects, None for missing (all None if the column is absent)."""
    if name not in columns:
        return np.full(len(rows), None, dtype=object)
    array = columns[name]
    if isinstance(array.dtype, ExtensionDtype):  # what a Series' to_numpy calls for such a column
        return array.to_numpy(dtype=object, na_value=None)[rows]
    return pd.Series(array, copy=False).to_numpy(dtype=object, na_value=None)[rows]


def _whole_years(birth: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    """Age in whole years at ``as_of`` (NaN for an unknown birth date): one less before the birthday."""
    missing = np.isnat(birth)
    safe = np.where(missing, np.datetime64("2000-01-01", "ns"), birth)
    years = safe.astype("datetime64[Y]").astype(np.int64) + 1970
    month = safe.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (safe.astype("datetime64[D]") - safe.astype("datetime64[M]")).astype(np.int64) + 1
    before_birthday = (month > as_of.month) | ((month == as_of.month) & (day > as_of.day))
    age = (as_of.year - years - before_birthday).astype(np.float64)
    age[missing] = np.nan
    return age


def _mapping(frame: pd.DataFrame, key: str, value: str) -> dict[Any, Any]:
    """``frame[key]`` -> ``frame[value]`` as a dict: a pandas index lookup costs more per call than the
    whole dict for the few rows of an API call, and about the same for a batch."""
    columns = column_arrays(frame, (key, value))
    return dict(zip(columns[key].tolist(), columns[value].tolist(), strict=True))


def _lookup(mapping: dict[Any, Any], wanted: list[Any]) -> list[Any]:
    """The value of each wanted key (None where absent or missing)."""
    return [None if (value := mapping.get(key)) is None or pd.isna(value) else value for key in wanted]


def household_profiles(
    world: World, as_of: pd.Timestamp, households: Sequence[str] | pd.Index
) -> pd.DataFrame:
    """Summaries of the given households at ``as_of``, built on plain arrays and lists: this runs inside
    every stored scoring, including single-household API calls.

    Returns:
        Frame indexed by household_id with columns village_code, village_name, summary (dict: size,
        adults (list of dicts with ``ADULT_FIELDS``), minors, elderly, no_labour, disabled) and identities
        (list of dicts: relation, age_band, id_hash, id_last4 — adults with a known ID only).
    """
    as_of = pd.Timestamp(as_of).normalize()
    ids = [str(h) for h in np.asarray(households, dtype=object).tolist()]  # iterating an Arrow index is slow
    n = len(ids)
    village = _lookup(_mapping(world["households"], "household_id", "village_code"), ids)
    regions = world.get("regions")
    names = [None] * n
    if regions is not None and "name" in regions:
        names = _lookup(_NAMES.get((regions,), (), lambda: _mapping(regions, "region_code", "name")), village)

    members = world["members"]
    member = column_arrays(members, _MEMBER_COLUMNS)
    position = {h: i for i, h in enumerate(ids)}
    owner = np.fromiter((position.get(h, -1) for h in member["household_id"].tolist()), dtype=np.intp,
                        count=len(members))
    keep = owner >= 0
    if "recorded_at" in member:
        recorded = column_values(member["recorded_at"], "datetime64[ns]")
        keep &= np.isnat(recorded) | (recorded < as_of.to_datetime64())
    rows = np.flatnonzero(keep)
    owner = owner[rows]
    age = _whole_years(column_values(member["birth_date"], "datetime64[ns]")[rows], as_of)
    relation = _objects(member, "relation", rows)
    labour = _objects(member, "labour_capacity", rows)
    grades = member["disability_grade"]
    grade_values = (column_values(grades, np.float64) if pd.api.types.is_numeric_dtype(grades.dtype) else
                    pd.to_numeric(pd.Series(grades, copy=False), errors="coerce").to_numpy(dtype=np.float64))
    grade = np.nan_to_num(grade_values[rows]).astype(np.int64)
    minor = ~(age >= MINOR_AGE)  # an unknown age counts as a minor: nothing is shown about that person
    counts = {
        "size": np.bincount(owner, minlength=n),
        "minors": np.bincount(owner, weights=minor, minlength=n),
        "elderly": np.bincount(owner, weights=age >= ELDERLY_AGE, minlength=n),
        "no_labour": np.bincount(owner, weights=(labour == "none") & ~minor, minlength=n),
        "disabled": np.bincount(owner, weights=grade > 0, minlength=n),
    }

    adults = np.flatnonzero(~minor)
    order = np.array([RELATION_ORDER.get(r, len(RELATION_ORDER)) for r in relation[adults]], dtype=np.int64)
    adults = adults[np.lexsort((-age[adults], order, owner[adults]))]
    fields = {
        "relation": relation,
        "sex": _objects(member, "sex", rows),
        "age_band": age_band(np.where(np.isnan(age), 0.0, age)),
        "labour_capacity": labour,
        "disability_grade": grade,
        "id_last4": _objects(member, "id_last4", rows),
    }
    id_hash = _objects(member, "id_hash", rows)
    adult_lists: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    identity_lists: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    columns = [fields[name][adults].tolist() for name in ADULT_FIELDS]
    for at, secret, *values in zip(owner[adults].tolist(), id_hash[adults], *columns, strict=True):
        # Formatting only: one JSON record per adult of the households a person will look at.
        record = dict(zip(ADULT_FIELDS, values, strict=True))
        adult_lists[at].append(record)
        if secret is not None:
            identity_lists[at].append(
                {
                    "relation": record["relation"],
                    "age_band": record["age_band"],
                    "id_hash": secret,
                    "id_last4": record["id_last4"],
                }
            )
    totals = {key: values.astype(np.int64).tolist() for key, values in counts.items()}
    # One block of objects with its labels given (doudi.frames.frame_of): inferring string dtypes, or
    # building the frame column by column, costs more than the rest for one household.
    table = np.empty((len(_COLUMNS), n), dtype=object)  # a row per column
    table[0] = village
    table[1] = names
    for i in range(n):  # element by element: numpy would read the lists as more dimensions
        table[2, i] = {**{key: totals[key][i] for key in totals}, "adults": adult_lists[i]}
        table[3, i] = identity_lists[i]
    return frame_of(table, pd.Index(ids, dtype=object, name="household_id"), _COLUMNS)


def save_profiles(session: Session, profiles: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Replace the stored summaries of these households (in the caller's transaction)."""
    if not len(profiles):
        return
    # A Core statement on the session's connection: cheaper per call than the ORM's execution path.
    connection = session.connection()
    ids = [str(i) for i in profiles.index.tolist()]
    # One read of the frame (one block of objects, as household_profiles builds it: no copy), then column
    # by column: reading each column from the frame costs more than writing the row.
    values = profiles.to_numpy(dtype=object)
    at = {name: i for i, name in enumerate(profiles.columns.tolist())}
    connection.execute(_UPSERT[connection.dialect.name], parameter_rows({
        "household_id": ids,
        "village_code": text_list(values[:, at["village_code"]].tolist()),
        "village_name": values[:, at["village_name"]].tolist(),
        "as_of": pd.Timestamp(as_of).date(),
        "summary": values[:, at["summary"]].tolist(),
        "identities": values[:, at["identities"]].tolist(),
        "updated_at": utcnow(),
    }, len(ids)))


def get_profile(session: Session, scope: Scope, household_id: str) -> HouseholdProfile | None:
    """The stored summary of a household in the caller's scope (None if none or outside it)."""
    return session.scalar(
        sa.select(HouseholdProfile).where(
            HouseholdProfile.household_id == household_id, scope.clause(HouseholdProfile.village_code)
        )
    )
