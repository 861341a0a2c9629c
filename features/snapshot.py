"""Point-in-time views of a world: what was *known* before an as-of date T.

Two forms of the same cut:

* :func:`known_before` returns a contract-form world with only the records known before T (for
  tests, notebooks and other modules).
* :class:`Snapshot` is what builders receive: the world encoded once for speed (household ids as
  integer positions, months as integers, categories as small codes; see :func:`encode_world`) and cut
  lazily, table by table, with the same rule (:func:`known_mask`).

The rule, read from ``doudi.contract.TABLES``: a record of a time-varying table is visible at T when
its ``known`` column (``recorded_at``) is before T *and* its ``event`` column is before T (a month's
event date is its first day). Members have no event column in the contract; a member is visible once
born (``birth_date < T``) and, when the member's ``recorded_at`` is given, once recorded.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from doudi.arrowtext import arrow_text, index_in
from doudi.contract import TABLES, Column, Table
from doudi.io import World
from doudi.memo import TableMemo
from doudi.policy import PolicyConfig

T = TypeVar("T")

# Members carry no event column in the contract, but a person not yet born at T is not a member at T.
_EVENT_FALLBACK = {"members": "birth_date"}
# Tables whose person_id is encoded as ``_p`` (a builder needs people within the table); elsewhere it is
# dropped, because coding millions of person ids costs seconds and nothing reads them.
PERSON_CODED = ("employment_events",)
# Text columns kept (as text) by the encoding; every other free-text column (ids, names) is dropped.
_KEEP_TEXT = ("region_code", "village_code", "county_code")
DAYS_PER_MONTH = 365.25 / 12
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def distinct_codes(values: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Integer codes (-1 for missing) into the list of distinct values, in order of first appearance.

    Arrow-backed text is dictionary-encoded by Arrow, about twice as fast as ``pd.factorize`` on the
    millions of income rows; anything else (Python strings: a few per call) is factorized in place,
    not converted to Arrow first.
    """
    arrow = arrow_text(values)
    if arrow is None:
        codes, uniques = values.array.factorize(use_na_sentinel=True)
        return codes.astype(np.int64), list(uniques)
    encoded = pc.dictionary_encode(arrow)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def positions_in(
    values: pd.Series | pd.Index, ids: pd.Index, found: dict[str, int] | None = None
) -> np.ndarray:
    """Position of each value in ``ids`` (-1 when missing or not there).

    Arrow's ``index_in`` on Arrow-backed text: on 12 M income rows in month order it takes half the
    time of dictionary-encoding them (hash look-ups only, no growing dictionary). Python strings are
    factorized first and only their distinct values looked up, in ``found`` (positions in these same
    ``ids`` already looked up, say for another table of the world; updated) before ``ids``.
    """
    if not isinstance(values.dtype, pd.StringDtype):
        values = values.astype("string")
    arrow = arrow_text(values)
    if arrow is not None:
        return _index_in(arrow, ids)
    codes, uniques = distinct_codes(values)
    found = {} if found is None else found
    new = [value for value in uniques if value not in found]
    if new:
        found.update(zip(new, _index_in(new, ids).tolist(), strict=True))
    return np.array([*(found[value] for value in uniques), -1], dtype=np.int64)[codes]


def _index_in(values: pa.Array | list[str], ids: pd.Index) -> np.ndarray:
    value_set = arrow_text(ids)
    if value_set is None:
        value_set = pa.array(ids.to_numpy(dtype=object, na_value=None), type=pa.large_string())
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=value_set.type)
    elif value_set.type != values.type:
        value_set = value_set.cast(values.type)
    return index_in(values, value_set)


def month_index(month: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """``YYYY-MM`` strings to integers ``year * 12 + month - 1`` (missing -> -1).

    Raises:
        ValueError: a value that is not a ``YYYY-MM`` month.
    """
    if not isinstance(month, pd.Series | pd.Index):
        month = pd.Series(month, copy=False)
    codes, uniques = distinct_codes(month)
    # Few distinct months (36 in a 3-year extract), so plain Python per distinct value.
    bad = [u for u in uniques if not (isinstance(u, str) and _MONTH.fullmatch(u))]
    if bad:
        raise ValueError(f"not a YYYY-MM month: {bad[:3]}")
    lookup = np.array([int(u[:4]) * 12 + int(u[5:7]) - 1 for u in uniques] + [-1], dtype=np.int64)
    return lookup[codes]


def category_codes(values: pd.Series, allowed: tuple[str, ...]) -> np.ndarray:
    """Positions of ``values`` in ``allowed`` as int8 (missing or not allowed -> -1)."""
    codes, uniques = distinct_codes(values)
    lookup = [allowed.index(u) if u in allowed else -1 for u in uniques]
    return np.array([*lookup, -1], dtype=np.int8)[codes]


def timestamp_month(as_of: pd.Timestamp) -> int:
    """Month index of the month containing ``as_of``."""
    return as_of.year * 12 + as_of.month - 1


def last_started_month(as_of: pd.Timestamp) -> int:
    """Index of the last month whose first day is before ``as_of``."""
    month = timestamp_month(as_of)
    return month if as_of > as_of.normalize().replace(day=1) else month - 1


def months_earlier(when: pd.Timestamp, months: int) -> pd.Timestamp:
    """``when - pd.DateOffset(months=months)`` (same day and time, the day cut to the month's end),
    by calendar arithmetic: the offset costs ~0.1 ms per call."""
    year, month = divmod(when.year * 12 + when.month - 1 - months, 12)
    month += 1
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


def known_mask(table: Table, frame: pd.DataFrame | Columns, as_of: pd.Timestamp) -> np.ndarray:
    """Rows of ``frame`` (contract form or encoded) known before ``as_of`` and dated before it."""
    keep = np.ones(len(frame), dtype=bool)
    known = table.known or ("recorded_at" if "recorded_at" in frame else None)
    if known is not None and known in frame:
        nullable = table.column(known).nullable
        recorded = np.asarray(frame[known], dtype="datetime64[ns]")
        missing = np.isnat(recorded)
        keep &= np.where(missing, nullable, recorded < as_of.to_datetime64())
    event = table.event or _EVENT_FALLBACK.get(table.name)
    if event is not None and event in frame:
        values = frame[event]
        if table.column(event).dtype == "month":
            months = np.asarray(values) if pd.api.types.is_integer_dtype(values) else month_index(values)
            keep &= (months >= 0) & (months <= last_started_month(as_of))
        else:
            dates = np.asarray(values, dtype="datetime64[ns]")
            keep &= ~np.isnat(dates) & (dates < as_of.to_datetime64())
    return keep


def known_before(world: World, as_of: pd.Timestamp | str) -> World:
    """The contract-form world restricted to records known before ``as_of`` (static tables unchanged)."""
    as_of = pd.Timestamp(as_of)
    out: World = {}
    for name, frame in world.items():
        table = TABLES.get(name)
        if table is None:
            out[name] = frame
            continue
        mask = known_mask(table, frame, as_of)
        out[name] = frame if mask.all() else frame.loc[mask].reset_index(drop=True)
    return out


class Columns:
    """One encoded table: equal-length numpy columns, read-only, what builders read.

    ``table["amount"]`` is a dict lookup returning the numpy array. Builders read a few hundred columns
    per snapshot, and a DataFrame column lookup costs about 50 µs: noise on a million households, most
    of the time of a one-household call. :meth:`frame` gives a DataFrame for the few pandas operations
    (sorting, merging) a builder needs.
    """

    __slots__ = ("_data", "_n", "__weakref__")

    def __init__(self, data: dict[str, np.ndarray], n: int):
        self._data = data
        self._n = n

    def __getitem__(self, name: str) -> np.ndarray:
        return self._data[name]

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def __len__(self) -> int:
        return self._n

    @property
    def columns(self) -> list[str]:
        """Column names."""
        return list(self._data)

    def take(self, rows: np.ndarray) -> Columns:
        """The rows selected by a boolean mask or integer positions, in that order."""
        rows = np.asarray(rows)
        n = int(rows.sum()) if rows.dtype == bool else len(rows)
        return Columns({name: values[rows] for name, values in self._data.items()}, n)

    def with_column(self, name: str, values: np.ndarray) -> Columns:
        """The table with one more (or a replaced) column."""
        return Columns({**self._data, name: values}, self._n)

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (numpy-backed columns, RangeIndex)."""
        return pd.DataFrame(self._data, index=pd.RangeIndex(self._n), copy=False)


def select_rows(frame: Columns, mask: np.ndarray) -> Columns:
    """Rows of an encoded table where ``mask`` holds (the table itself when every row does)."""
    return frame if mask.all() else frame.take(mask)


@dataclass(frozen=True)
class EncodedWorld:
    """A world encoded once for fast point-in-time builds (see :func:`encode_world`).

    Attributes:
        ids: household ids in households-table order (``household_id`` index); row ``i`` of every
            feature is household ``ids[i]``.
        tables: table name -> encoded table (:class:`Columns`). ``_h`` is the household position in
            ``ids`` (rows of
            unknown households are dropped), ``_p`` a per-table person code (tables in ``PERSON_CODED``),
            month columns are month
            indexes, categorical text columns are codes into the contract's ``allowed`` tuple (-1 when
            missing), nullable ints and bools are float64 with NaN.
    """

    ids: pd.Index
    tables: dict[str, Columns]
    policy: PolicyConfig | None = None


def encode_world(world: World, *, policy: PolicyConfig | None = None) -> EncodedWorld:
    """Encode a contract-form world once, so that many as-of dates can be built cheaply.

    Args:
        world: contract-form tables (absent tables count as empty).
        policy: policy ratios used by some features (default: ``doudi/policy.yaml``).

    Raises:
        KeyError: the world has no households table.
        ValueError: duplicate household ids.
    """
    if "households" not in world:
        raise KeyError("the world has no households table")
    ids = pd.Index(world["households"]["household_id"], dtype="string", name="household_id")
    if not ids.is_unique:
        raise ValueError(f"duplicate household ids: {list(ids[ids.duplicated()][:5])}")
    found: dict[str, int] = {}  # household ids already looked up in ``ids`` (shared by the tables)
    tables = {name: _encode_cached(TABLES[name], world.get(name), ids, found) for name in TABLES}
    return EncodedWorld(ids=ids, tables=tables, policy=policy)


# A scoring server encodes a new world per call, but its region tables (regions, standards, disasters)
# are the same frames every time, and an empty household table encodes the same whatever the
# households: both are kept (doudi.memo), as are region-level intermediates (Snapshot.regional).
_REGION_TABLES = TableMemo(kept=16)
_EMPTY_TABLES: dict[str, Columns] = {}
_REGIONAL = TableMemo(kept=64)


def _encode_cached(table: Table, frame: pd.DataFrame | None, ids: pd.Index, found: dict[str, int]) -> Columns:
    if frame is None or not len(frame):
        if table.name not in _EMPTY_TABLES:
            _EMPTY_TABLES[table.name] = _encode_table(table, None, ids, {})
        return _EMPTY_TABLES[table.name]
    if _per_household(table):
        return _encode_table(table, frame, ids, found)
    return _REGION_TABLES.get((frame,), (table.name,), lambda: _encode_table(table, frame, ids, {}))


def _per_household(table: Table) -> bool:
    """Whether ``table`` holds households' records (else it is a region table: regions, standards...)."""
    return any(column.name == "household_id" for column in table.columns)


def _encode_table(table: Table, frame: pd.DataFrame | None, ids: pd.Index, found: dict[str, int]) -> Columns:
    columns: dict[str, Any] = {}
    if frame is None:
        frame = pd.DataFrame({c.name: pd.Series(dtype=object) for c in table.columns})
    keep = np.ones(len(frame), dtype=bool)
    for column in table.columns:
        name = column.name
        # Columns the encoding drops are not even read: a column lookup costs ~20 µs on a small frame.
        if name not in frame or not _encoded(table, column):
            continue
        values = frame[name]
        if name == "household_id":
            columns["_h"] = positions_in(values, ids, found)
            keep &= columns["_h"] >= 0
        elif name == "person_id":
            columns["_p"] = distinct_codes(values)[0]
        elif column.dtype == "month":
            columns[name] = month_index(values)
        elif column.dtype == "str" and column.allowed is not None:
            columns[name] = category_codes(values, column.allowed)
        elif column.dtype == "str":
            text = values if isinstance(values.dtype, pd.StringDtype) else values.astype("string")
            columns[name] = text.to_numpy(dtype=object, na_value=None)
        elif column.dtype == "date":
            columns[name] = _dates(values)
        else:
            columns[name] = _numbers(values)
    return select_rows(Columns(columns, len(frame)), keep)


def _encoded(table: Table, column: Column) -> bool:
    """Whether the encoding keeps ``column`` (in some form)."""
    if column.name == "person_id":
        return table.name in PERSON_CODED
    if column.dtype == "str":
        return column.allowed is not None or column.name in _KEEP_TEXT or column.name == "household_id"
    return column.dtype in ("month", "date", "int", "bool", "float")


def _dates(values: pd.Series) -> np.ndarray:
    """A date column as datetime64[ns] (what ``Series.to_numpy`` does, without its overhead per call)."""
    if isinstance(values.dtype, np.dtype):
        return np.asarray(values.array, dtype="datetime64[ns]")
    return values.to_numpy("datetime64[ns]")


_MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)


def _numbers(values: pd.Series) -> np.ndarray:
    """A numeric or boolean column as numpy: as it is when nothing is missing, else float64 with NaN."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
        array = values.to_numpy()
        return array.astype(np.float64) if array.dtype.kind == "f" and np.isnan(array).any() else array
    if isinstance(values.array, _MASKED):  # nullable Int64 / Float64 / boolean
        missing = values.array.isna().any()
        return values.to_numpy(np.float64, na_value=np.nan) if missing else values.to_numpy()
    numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
    if values.isna().any() or not numeric:
        return pd.to_numeric(values.astype("Float64"), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    return values.to_numpy()


class Snapshot:
    """The world as known before ``as_of``: what every builder receives.

    Builders read tables with :meth:`table` (already cut; numpy columns), compute per-household values
    aligned to ``ids`` (use :meth:`per_household`), and share intermediate results through :meth:`cached`
    (per snapshot) and :meth:`regional` (region-level, per as-of date).
    """

    def __init__(self, encoded: EncodedWorld, as_of: pd.Timestamp):
        if pd.isna(as_of):
            raise ValueError("as_of is missing")
        if pd.Timestamp(as_of).tzinfo is not None:
            raise ValueError(f"as_of must be a plain date without a time zone, not {as_of}")
        self.as_of = pd.Timestamp(as_of)
        self.ids = encoded.ids
        self.n = len(encoded.ids)
        self.month = timestamp_month(self.as_of)
        """Index of the month containing T; complete months are those ``< self.month``."""
        self.policy = encoded.policy
        self._encoded = encoded
        self._tables: dict[str, Columns] = {}
        self._cache: dict[str, Any] = {}

    def table(self, name: str) -> Columns:
        """Encoded table ``name`` with only the records known before T (cut once, then reused)."""
        if name not in self._tables:
            table, frame = TABLES[name], self._encoded.tables[name]

            def cut() -> Columns:
                return select_rows(frame, known_mask(table, frame, self.as_of))

            # A region table's cut depends on T only: a server cuts it once per as-of date.
            regional = not _per_household(table)
            self._tables[name] = self.regional(f"known {name}", (name,), cut) if regional else cut()
        return self._tables[name]

    def complete_month(self, name: str) -> int:
        """Index of the latest month of table ``name`` that is complete at T.

        That is T's month - 1 - the table's ``complete_after_months`` (the month before T's when the
        contract declares no lag): months after it are still being recorded, so their totals are partial.
        """
        return self.month - 1 - (TABLES[name].complete_after_months or 0)

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per snapshot (intermediates shared by several features)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def regional(self, key: str, tables: tuple[str, ...], compute: Callable[[], T]) -> T:
        """``compute()`` once per as-of date for intermediates that depend only on region-level
        ``tables`` (no household data) and T, shared by every snapshot of the same encoded tables.

        A server scoring one household per call then pays for, say, the standards in force at T once,
        not on every call. ``compute`` must read nothing but ``tables`` and ``self.as_of``.
        """
        frames = tuple(self._encoded.tables[name] for name in tables)
        return _REGIONAL.get(frames, (key, self.as_of), compute)

    def months_ago(self, months: int) -> np.datetime64:
        """The date ``months`` calendar months before T (window starts: ``date >= T - k months``)."""
        return self.cached(f"months_ago_{months}", lambda: months_earlier(self.as_of, months).to_datetime64())

    def months_before(self, dates: np.ndarray) -> np.ndarray:
        """Months (fractional, 30.44 days) between each date and T."""
        return (self.as_of.to_datetime64() - dates) / np.timedelta64(1, "D") / DAYS_PER_MONTH

    def per_household(self, codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of ``weights`` (or count of rows) per household, aligned to ``ids``."""
        return np.bincount(codes, weights=weights, minlength=self.n).astype(np.float64)

    def per_household_max(
        self, codes: np.ndarray, values: np.ndarray, *, empty: float = np.nan
    ) -> np.ndarray:
        """Maximum of ``values`` per household (``empty`` where a household has no rows)."""
        out = np.full(self.n, -np.inf)
        np.maximum.at(out, codes, values.astype(np.float64))
        return np.where(np.isneginf(out), empty, out)

    def per_household_min(
        self, codes: np.ndarray, values: np.ndarray, *, empty: float = np.nan
    ) -> np.ndarray:
        """Minimum of ``values`` per household (``empty`` where a household has no rows)."""
        return -self.per_household_max(codes, -np.asarray(values, dtype=np.float64), empty=-empty)
