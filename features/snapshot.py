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
import functools
import itertools
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
from doudi.frames import column_arrays
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
_DAY = np.timedelta64(1, "D")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


ArrayLike = pd.Series | pd.Index | pd.api.extensions.ExtensionArray | np.ndarray
"""A column: a Series or Index, or the array behind it (what the encoding reads from a frame)."""


def distinct_codes(values: ArrayLike) -> tuple[np.ndarray, list[Any]]:
    """Integer codes (-1 for missing) into the list of distinct values, in order of first appearance.

    Arrow-backed text is dictionary-encoded by Arrow, about twice as fast as ``pd.factorize`` on the
    millions of income rows; anything else (Python strings: a few per call) is coded with a dict, which
    takes a third or less of ``pd.factorize``'s time on a one-household table and about the same time
    on a million values.
    """
    arrow = arrow_text(values)
    if arrow is None:
        items = _objects(values)
        uniques = list(dict.fromkeys(items))
        missing = [value for value in uniques if not isinstance(value, str) and pd.isna(value)]
        if missing:
            dropped = {id(value) for value in missing}
            uniques = [value for value in uniques if id(value) not in dropped]
        code = dict(zip(uniques, range(len(uniques)), strict=True))
        code.update(dict.fromkeys(missing, -1))
        return np.fromiter(map(code.__getitem__, items), dtype=np.int64, count=len(items)), uniques
    encoded = pc.dictionary_encode(arrow)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def positions_in(
    values: pd.Series | pd.Index, ids: pd.Index, found: dict[str, int] | None = None
) -> np.ndarray:
    """Position of each value in ``ids`` (-1 when missing or not there).

    Arrow's ``index_in`` on Arrow-backed text: on 12 M income rows in month order it takes half the
    time of dictionary-encoding them (hash look-ups only, no growing dictionary). Python strings are
    looked up one by one in ``found`` (positions in these same ``ids`` already looked up, say for
    another table of the world; updated), and those not in it yet in ``ids``, all at once.
    """
    return _positions(values.array, ids, found)


def _positions(values: ArrayLike, ids: pd.Index, found: dict[str, int] | None) -> np.ndarray:
    values = _as_text(values)
    arrow = arrow_text(values)
    if arrow is not None:
        return _index_in(arrow, ids)
    # Missing values are in no ``ids`` here (they are recorded in ``found`` as -1).
    items = _objects(values)
    found = {} if found is None else found
    new = [value for value in dict.fromkeys(items) if value not in found]
    if new:
        text = [value for value in new if isinstance(value, str)]
        found.update(zip(text, _index_in(text, ids).tolist(), strict=True))
        found.update((value, -1) for value in new if not isinstance(value, str))
    return np.fromiter(map(found.__getitem__, items), dtype=np.int64, count=len(items))


def _index_in(values: pa.Array | list[str], ids: pd.Index) -> np.ndarray:
    value_set = arrow_text(ids)
    if value_set is None:
        value_set = pa.array(ids.to_numpy(dtype=object, na_value=None), type=pa.large_string())
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=value_set.type)
    elif value_set.type != values.type:
        value_set = value_set.cast(values.type)
    return index_in(values, value_set)


_STRING = pd.api.types.pandas_dtype("string")
"""pandas' string dtype (``"string"``), resolved once: resolving the name costs more than the few rows
of a one-household column."""
_STRING_ARRAY = _STRING.construct_array_type()
"""Its array class (looking it up imports a module: ~15 µs a call in a one-household build)."""


def _as_text(values: ArrayLike) -> ArrayLike:
    """``values`` as pandas' string dtype (as they are when already text of that dtype)."""
    if isinstance(values.dtype, pd.StringDtype):
        return values
    if isinstance(values, np.ndarray):  # what Series.astype does with numpy values
        return _STRING_ARRAY._from_sequence(values, dtype=_STRING)
    return values.astype(_STRING)


_MONTHS: dict[str, int] = {}
"""``YYYY-MM`` -> month index, for every valid month text met so far (one per calendar month): a
server would otherwise parse the same 36 months on every call."""


def month_index(month: ArrayLike) -> np.ndarray:
    """``YYYY-MM`` strings to integers ``year * 12 + month - 1`` (missing -> -1).

    Raises:
        ValueError: a value that is not a ``YYYY-MM`` month.
    """
    if not isinstance(month, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        month = pd.Series(month, copy=False)
    codes, uniques = distinct_codes(month)
    # Few distinct months (36 in a 3-year extract), so plain Python per distinct value.
    if not all(isinstance(u, str) and u in _MONTHS for u in uniques):
        bad = [u for u in uniques if not (isinstance(u, str) and _MONTH.fullmatch(u))]
        if bad:
            raise ValueError(f"not a YYYY-MM month: {bad[:3]}")
        _MONTHS.update((u, int(u[:4]) * 12 + int(u[5:7]) - 1) for u in uniques)
    lookup = np.array([*map(_MONTHS.__getitem__, uniques), -1], dtype=np.int64)
    return lookup[codes]


def category_codes(values: ArrayLike, allowed: tuple[str, ...]) -> np.ndarray:
    """Positions of ``values`` in ``allowed`` as int8 (missing or not allowed -> -1)."""
    if arrow_text(values) is None:  # Python objects: a dict look-up each
        items = _objects(values)
        codes = map(_allowed_codes(allowed).get, items, itertools.repeat(-1))
        return np.fromiter(codes, dtype=np.int8, count=len(items))
    codes, uniques = distinct_codes(values)
    lookup = [allowed.index(u) if u in allowed else -1 for u in uniques]
    return np.array([*lookup, -1], dtype=np.int8)[codes]


@functools.cache
def _allowed_codes(allowed: tuple[str, ...]) -> dict[str, int]:
    return {value: allowed.index(value) for value in allowed}


def _objects(values: ArrayLike) -> list[Any]:
    """``values`` as a list of Python objects (missing values as they are held: None, NaN or pd.NA)."""
    return np.asarray(values, dtype=object).tolist()


def code_in(codes: np.ndarray, wanted: list[int]) -> np.ndarray:
    """``np.isin(codes, wanted)`` for int8 category codes (-1 for missing), by a look-up table (on a
    one-household table np.isin costs over 10x the look-up)."""
    return _code_table(tuple(wanted))[codes]


@functools.cache
def _code_table(wanted: tuple[int, ...]) -> np.ndarray:
    table = np.zeros(256, dtype=bool)  # every int8 code; -1 (missing) is the last entry, never wanted
    table[[code for code in wanted if 0 <= code < 128]] = True
    return table


def timestamp_month(as_of: pd.Timestamp) -> int:
    """Month index of the month containing ``as_of``."""
    return as_of.year * 12 + as_of.month - 1


def last_started_month(as_of: pd.Timestamp) -> int:
    """Index of the last month whose first day is before ``as_of``."""
    month = timestamp_month(as_of)
    # as_of > the month's first midnight, read from its fields (normalize and replace cost ~10x more).
    fields = (as_of.day - 1, as_of.hour, as_of.minute, as_of.second, as_of.microsecond, as_of.nanosecond)
    return month if any(fields) else month - 1


def months_earlier(when: pd.Timestamp, months: int) -> pd.Timestamp:
    """``when - pd.DateOffset(months=months)`` (same day and time, the day cut to the month's end),
    by calendar arithmetic: the offset costs ~0.1 ms per call."""
    year, month = divmod(when.year * 12 + when.month - 1 - months, 12)
    month += 1
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


def known_mask(table: Table, frame: pd.DataFrame | Columns, as_of: pd.Timestamp) -> np.ndarray:
    """Rows of ``frame`` (contract form or encoded) known before ``as_of`` and dated before it."""
    keep = np.ones(len(frame), dtype=bool)
    before = as_of.to_datetime64()
    known = table.known or ("recorded_at" if "recorded_at" in frame else None)
    if known is not None and known in frame:
        recorded = np.asarray(frame[known], dtype="datetime64[ns]")
        # A missing date (NaT) compares False: such rows are kept only when the column may be missing.
        in_time = recorded < before
        keep &= (in_time | np.isnat(recorded)) if table.column(known).nullable else in_time
    event = table.event or _EVENT_FALLBACK.get(table.name)
    if event is not None and event in frame:
        values = frame[event]
        if table.column(event).dtype == "month":
            months = np.asarray(values) if pd.api.types.is_integer_dtype(values) else month_index(values)
            keep &= (months >= 0) & (months <= last_started_month(as_of))
        else:
            keep &= np.asarray(values, dtype="datetime64[ns]") < before  # NaT compares False
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
        n = np.count_nonzero(rows) if rows.dtype == bool else len(rows)
        return Columns({name: values[rows] for name, values in self._data.items()}, n)

    def with_column(self, name: str, values: np.ndarray) -> Columns:
        """The table with one more (or a replaced) column."""
        return Columns({**self._data, name: values}, self._n)

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (numpy-backed columns, RangeIndex)."""
        return pd.DataFrame(self._data, index=pd.RangeIndex(self._n), copy=False)


def select_rows(frame: Columns, mask: np.ndarray) -> Columns:
    """Rows of an encoded table where ``mask`` holds (the table itself when every row does)."""
    # count_nonzero, not mask.all(): the same answer at about a quarter of the cost on a few rows.
    return frame if np.count_nonzero(mask) == len(mask) else frame.take(mask)


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
    homes = world["households"]
    column = column_arrays(homes, ("household_id",))["household_id"]
    # pd.Index(column, dtype="string") makes the same index at about twice the cost for one household.
    ids = pd.Index(_STRING_ARRAY._from_sequence(column, dtype=_STRING), name="household_id",
                   copy=False)
    found = _first_rows(column)  # household ids already looked up in ``ids`` (shared by the tables)
    households = _encode_cached(TABLES["households"], homes, ids, found)
    if not _unique(households["_h"], len(homes)):
        raise ValueError(f"duplicate household ids: {list(ids[ids.duplicated()][:5])}")
    tables = {name: households if name == "households" else
              _encode_cached(TABLES[name], world.get(name), ids, found) for name in TABLES}
    return EncodedWorld(ids=ids, tables=tables, policy=policy)


def _first_rows(ids: ArrayLike) -> dict[str, int]:
    """Each id held as a Python string -> the row of its first occurrence, which is its position in the
    ids made from this column: the look-up the households table would make ({} for Arrow-backed ids,
    which Arrow looks up)."""
    if not isinstance(ids.dtype, pd.StringDtype) or arrow_text(ids) is not None:
        return {}
    return {value: row for row, value in reversed(list(enumerate(_objects(ids)))) if isinstance(value, str)}


def _unique(positions: np.ndarray, rows: int) -> bool:
    """Whether the household ids are unique (``Index.is_unique``), read from the households table's own
    positions in them (rows whose id is missing are dropped when the id is a Python string): a repeated
    id takes its first occurrence's position, so the positions are not increasing, and more than one
    dropped row is a repeated missing id. Saves hashing the ids a second time."""
    return bool((positions[1:] > positions[:-1]).all()) and rows - len(positions) <= 1


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
    if _per_household(table.name):
        return _encode_table(table, frame, ids, found)
    return _REGION_TABLES.get((frame,), (table.name,), lambda: _encode_table(table, frame, ids, {}))


@functools.cache
def _per_household(name: str) -> bool:
    """Whether table ``name`` holds households' records (else it is a region table: regions, standards...)."""
    return any(column.name == "household_id" for column in TABLES[name].columns)


def _encode_table(table: Table, frame: pd.DataFrame | None, ids: pd.Index, found: dict[str, int]) -> Columns:
    columns: dict[str, Any] = {}
    if frame is None:
        frame = pd.DataFrame({c.name: pd.Series(dtype=object) for c in table.columns})
    arrays = column_arrays(frame, _kept_names(table.name))
    keep: np.ndarray | None = None
    for column in _kept_columns(table.name):
        name = column.name
        values = arrays.get(name)
        if values is None:
            continue
        if name == "household_id":
            columns["_h"] = _positions(values, ids, found)
            keep = columns["_h"] >= 0
        elif name == "person_id":
            columns["_p"] = distinct_codes(values)[0]
        elif column.dtype == "month":
            columns[name] = month_index(values)
        elif column.dtype == "str" and column.allowed is not None:
            columns[name] = category_codes(values, column.allowed)
        elif column.dtype == "str":
            columns[name] = _as_text(values).to_numpy(dtype=object, na_value=None)
        elif column.dtype == "date":
            columns[name] = _dates(values)
        else:
            columns[name] = _numbers(values)
    encoded = Columns(columns, len(frame))
    return encoded if keep is None else select_rows(encoded, keep)


@functools.cache
def _kept_columns(name: str) -> tuple[Column, ...]:
    """The columns of table ``name`` the encoding keeps (in some form), in contract order."""
    return tuple(column for column in TABLES[name].columns if _encoded(TABLES[name], column))


@functools.cache
def _kept_names(name: str) -> tuple[str, ...]:
    return tuple(column.name for column in _kept_columns(name))


def _encoded(table: Table, column: Column) -> bool:
    """Whether the encoding keeps ``column`` (in some form)."""
    if column.name == "person_id":
        return table.name in PERSON_CODED
    if column.dtype == "str":
        return column.allowed is not None or column.name in _KEEP_TEXT or column.name == "household_id"
    return column.dtype in ("month", "date", "int", "bool", "float")


def _dates(values: pd.api.extensions.ExtensionArray | np.ndarray) -> np.ndarray:
    """A date column's array as datetime64[ns] (what ``Series.to_numpy`` does)."""
    if isinstance(values.dtype, np.dtype):
        return np.asarray(values, dtype="datetime64[ns]")
    return values.to_numpy("datetime64[ns]")


_MASKED = (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)


def _numbers(values: pd.api.extensions.ExtensionArray | np.ndarray) -> np.ndarray:
    """A numeric or boolean column as numpy: as it is when nothing is missing, else float64 with NaN.

    What ``Series.to_numpy`` gives: numpy values as a read-only view (the world's frames are not copied,
    and no builder may write to them).
    """
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
        array = np.asarray(values).view()
        array.flags.writeable = False
        return array.astype(np.float64) if array.dtype.kind == "f" and np.isnan(array).any() else array
    if isinstance(values, _MASKED):  # nullable Int64 / Float64 / boolean
        missing = values.isna().any()
        return values.to_numpy(np.float64, na_value=np.nan) if missing else values.to_numpy()
    series = pd.Series(values, dtype=values.dtype, copy=False)  # anything else (rare): as pandas does it
    numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    if series.isna().any() or not numeric:
        return pd.to_numeric(series.astype("Float64"), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    return series.to_numpy()


@functools.lru_cache(maxsize=256)
def _months_ago(as_of: pd.Timestamp, unit: str, months: int) -> np.datetime64:
    """``months_earlier(as_of, months)`` as datetime64 (in ``as_of``'s unit), kept: a server asks for the
    same few dates on every call (as_of is tz-naive here, so equal Timestamps are the same date)."""
    return months_earlier(as_of, months).to_datetime64()


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
        self._starts: dict[int, np.datetime64] = {}  # months_ago

    def table(self, name: str) -> Columns:
        """Encoded table ``name`` with only the records known before T (cut once, then reused)."""
        if name not in self._tables:
            table, frame = TABLES[name], self._encoded.tables[name]

            def cut() -> Columns:
                # An empty table (most of a household's tables) is its own cut.
                return select_rows(frame, known_mask(table, frame, self.as_of)) if len(frame) else frame

            # A region table's cut depends on T only: a server cuts it once per as-of date.
            regional = not _per_household(name)
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
        start = self._starts.get(months)
        if start is None:
            start = self._starts[months] = _months_ago(self.as_of, self.as_of.unit, months)
        return start

    def months_before(self, dates: np.ndarray) -> np.ndarray:
        """Months (fractional, 30.44 days) between each date and T."""
        return (self.as_of.to_datetime64() - dates) / _DAY / DAYS_PER_MONTH

    def per_household(self, codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum of ``weights`` (or count of rows) per household, aligned to ``ids``."""
        return np.bincount(codes, weights=weights, minlength=self.n).astype(np.float64, copy=False)

    def per_household_max(
        self, codes: np.ndarray, values: np.ndarray, *, empty: float = np.nan
    ) -> np.ndarray:
        """Maximum of ``values`` per household (``empty`` where a household has no rows)."""
        out = np.full(self.n, -np.inf)
        np.maximum.at(out, codes, values.astype(np.float64, copy=False))
        return np.where(out == -np.inf, empty, out)

    def per_household_min(
        self, codes: np.ndarray, values: np.ndarray, *, empty: float = np.nan
    ) -> np.ndarray:
        """Minimum of ``values`` per household (``empty`` where a household has no rows)."""
        return -self.per_household_max(codes, -np.asarray(values, dtype=np.float64), empty=-empty)
