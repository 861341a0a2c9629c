"""The cohort at an as-of date and the label: does a household fall into hardship within the horizon?

Definition (quoted by the README):

**Net income.** A household's net income in month *m* is the sum of its income records of month *m*
(every source, every member) minus the out-of-pocket medical spending of its claims discharged in
month *m*. Its *trailing 12-month per-capita net income* at month *m* is the net income of months
*m-11 .. m* divided by its household size (members born by the end of month *m*). When the world
holds fewer than 12 of those months, the sum over the months it holds is scaled up to a year.
A month without any income record counts as zero income. Assistance payments are not income.

**Monitoring line.** The ``monitoring_line`` of the ``standards`` row for the household's county
(first 6 digits of its village code), its urban/rural registration and the month.

**Cohort at T** (``cohort``), judged only from records known before T (``recorded_at < T``), because
that is all the service knows when it scores:

* the household is in the database at T (``registered_at`` missing or before T);
* it is *not below the monitoring line at T*: its trailing 12-month per-capita net income over the
  12 months ending at the latest income month complete at T (month(T) - 1 - the contract's
  ``complete_after_months`` for income, i.e. three months before T's month: a month's income keeps
  arriving for two months after it, as the income features also assume), from the income and claims
  known before T, members known and born before T, is at least the latest monitoring line published
  before T for a month up to T's month. Households for which no line or no member is known are left out;
* it is *not on dibao or 特困 at T*: no known record of those programmes with ``start_date < T`` and
  ``end_date`` missing or on/after T.

**Label at T with horizon H** (``build_labels``), ground truth: records count by the date they
happened, whatever their ``recorded_at``. The window is the months *M .. M+H-1* where *M* is T's
month, and for dated records the days ``T <= date < T + H months`` (so a date belongs either to
"before T", as for the cohort, or to the window). ``label`` is 1 when within the window

* ``income_below_line``: in some month of the window the trailing 12-month per-capita net income is
  below that month's monitoring line; or
* ``dibao`` / ``tekun``: a dibao or 特困 record starts (the household newly enters the programme;
  spells begun before T do not count); or
* ``temporary_assistance``: the household receives temporary assistance (临时救助).

``event_month`` is the first month of the window in which any of these happened (``YYYY-MM``, missing
when label is 0) and ``reason`` the condition that fired then (``income_below_line`` first, then
``dibao``, ``tekun``, ``temporary_assistance`` when several fired in the same month).

A household already below the line in the truth at T but not in the data known at T is in the cohort,
and gets label 1 with T's month as event month: the service did not know it yet. A late-recorded
dibao spell that began before T does not exclude the household from the cohort (not known) and does
not count as a new entry either (it began before T).
"""

from __future__ import annotations

import functools
import itertools
import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray

from doudi.arrowtext import index_in, python_strings
from doudi.contract import TABLES
from doudi.frames import column_arrays
from doudi.io import World
from doudi.memo import TableMemo

REASONS = ("income_below_line", "dibao", "tekun", "temporary_assistance")
"""Conditions of the label, in the order that breaks ties within a month."""

_MAIN_PROGRAMMES = ("dibao", "tekun")
_MAIN = pa.array(_MAIN_PROGRAMMES, pa.large_string())
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
# The cohort judges the 12 months ending at the latest income month complete at T (as the features do).
_COMPLETE_AFTER_MONTHS = TABLES["income"].complete_after_months or 0


Values = pd.Series | np.ndarray | ExtensionArray
"""A column: a Series, or the array behind it (:func:`_column`)."""


def _column(frame: pd.DataFrame, name: str) -> np.ndarray | ExtensionArray:
    """The array behind ``frame[name]``, without the Series ``frame[name]`` makes (~20 µs a call for a
    score request's small frames, about 20 reads per cohort)."""
    return column_arrays(frame, (name,))[name]


def _array(values: Values) -> np.ndarray | ExtensionArray:
    return values.array if isinstance(values, pd.Series) else values


def _arrow(values: Values) -> pa.Array:
    """Text values as one Arrow string array (no copy when they are Arrow-backed already)."""
    # A server converts a few rows per call, so per-call costs count: no astype("string") of what is
    # text already, and Python-held strings read by Arrow directly (half the cost of pandas' conversion).
    values = _array(values)
    text = values if isinstance(values.dtype, pd.StringDtype) else pd.Series(values).astype("string").array
    if text.dtype.storage == "python":
        return pa.array(np.asarray(text), type=pa.large_string(), from_pandas=True)
    array = pa.array(text, type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
    return array


def _lookup(values: list[Any], found: dict[Any, int]) -> np.ndarray:
    """``found[value]`` for each of ``values`` (-1 when absent)."""
    return np.fromiter(map(found.get, values, itertools.repeat(-1, len(values))), np.int64, count=len(values))


def _is_in(values: Values, choices: pa.Array) -> np.ndarray:
    """Text values among ``choices`` (missing is not)."""
    strings = python_strings(values)
    if strings is not None:  # a few per call: no conversion to Arrow
        found = frozenset(choices.to_pylist())
        return np.fromiter(map(found.__contains__, strings.tolist()), bool, count=len(strings))
    return pc.is_in(_arrow(values), value_set=choices).to_numpy(zero_copy_only=False)


def _floats(values: Values) -> np.ndarray:
    """Numbers as float64 (missing -> NaN)."""
    values = _array(values)
    if isinstance(values.dtype, np.dtype) and values.dtype != object:
        return np.asarray(values, dtype=np.float64)
    return pd.Series(values).to_numpy(np.float64, na_value=np.nan)


def _dates(values: Values) -> np.ndarray:
    """Dates as datetime64[ns] (what ``to_numpy("datetime64[ns]")`` gives, for a third of its cost)."""
    return np.asarray(_array(values), dtype="datetime64[ns]")


def _place(county: pa.Array, urban_rural: pa.Array) -> pa.Array:
    """``county|urban_rural`` keys of the monitoring lines (missing when either part is)."""
    return pc.binary_join_element_wise(county, urban_rural, pa.scalar("|", pa.large_string()))


@functools.lru_cache(maxsize=4096)
def _parse_month(text: object) -> int:
    """``YYYY-MM`` -> year * 12 + month - 1 (missing or malformed -> -1)."""
    return int(text[:4]) * 12 + int(text[5:7]) - 1 if isinstance(text, str) and _MONTH.fullmatch(text) else -1


def _month_number(month: Values) -> np.ndarray:
    """Month numbers of ``YYYY-MM`` text (:func:`_parse_month`), parsed once per distinct value."""
    strings = python_strings(month)
    if strings is not None:  # a few per call: the parse is cached
        return np.fromiter(map(_parse_month, strings.tolist()), np.int64, count=len(strings))
    encoded = pc.dictionary_encode(_arrow(month), null_encoding="encode")
    lookup = np.array([_parse_month(u) for u in encoded.dictionary.to_pylist()], dtype=np.int64)
    return lookup[encoded.indices.to_numpy(zero_copy_only=False)]


def _date_month(dates: Values) -> np.ndarray:
    values = np.asarray(_array(dates), dtype="datetime64[M]")
    out = values.astype(np.int64) + 1970 * 12
    return np.where(np.isnat(values), -1, out)


def _month_label(number: int) -> str:
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def _month_ends(first: int, last: int) -> np.ndarray:
    """The first day after each month ``first .. last`` (exclusive month ends), as datetime64[ns]."""
    months = np.arange(first + 1, last + 2) - 1970 * 12
    return months.astype("datetime64[M]").astype("datetime64[ns]")


def _timestamp_month(as_of: pd.Timestamp) -> int:
    return as_of.year * 12 + as_of.month - 1


class _Frame:
    """Households of a world as integer positions, and their county / urban-rural key.

    Text held as Python strings (a score request's few rows) is looked up in Python dicts; Arrow-backed
    text (a loaded world's millions of rows) with Arrow's hash look-ups. Each is read when first asked.
    """

    def __init__(self, world: World):
        self.homes = world["households"]
        ids = _column(self.homes, "household_id")
        # An ExtensionArray, as Series.array would give it (an object ndarray would be read as text).
        self._id_column = ids if isinstance(ids, ExtensionArray) else pd.arrays.NumpyExtensionArray(ids)
        self.n = len(self.homes)

    @functools.cached_property
    def ids(self) -> pd.Index:
        """Household ids, in households-table order."""
        return pd.Index(self._id_column, name="household_id")

    def ids_at(self, mask: np.ndarray) -> pd.Index:
        """``ids[mask]`` (without the index of every household)."""
        return pd.Index(self._id_column.take(np.flatnonzero(mask)), name="household_id")

    @functools.cached_property
    def _ids(self) -> pa.Array:
        return _arrow(self._id_column)

    @functools.cached_property
    def _found(self) -> dict[Any, int]:
        """Household id -> first position (a missing id finds the first missing one, as in index_in)."""
        strings = python_strings(self._id_column)
        values = strings.tolist() if strings is not None else self._ids.to_pylist()
        found = dict(zip(reversed(values), range(len(values) - 1, -1, -1), strict=True))
        missing = [found[value] for value in (None, pd.NA, np.nan) if value in found]
        if missing:
            found.update(dict.fromkeys((None, pd.NA, np.nan), min(missing)))
        return found

    @functools.cached_property
    def _county(self) -> pa.Array:
        return pc.utf8_slice_codeunits(_arrow(_column(self.homes, "village_code")), 0, 6)

    @functools.cached_property
    def key(self) -> pa.Array:
        """``county|urban_rural`` per household (missing when either part is)."""
        return _place(self._county, _arrow(_column(self.homes, "urban_rural")))

    @property
    def county(self) -> np.ndarray:
        """County code per household (object array, None when unknown)."""
        return self._county.to_numpy(zero_copy_only=False)

    def positions(self, household_id: Values) -> np.ndarray:
        """Row positions of ``household_id`` in the households table (-1 when unknown)."""
        strings = python_strings(household_id)
        if strings is not None:
            return _lookup(strings.tolist(), self._found)
        # Arrow's hash lookup: pandas' get_indexer on millions of strings is ~10x slower.
        return index_in(_arrow(household_id), self._ids)

    def places_in(self, places: pa.Array, found: dict[Any, int]) -> np.ndarray:
        """Position of each household's key in ``places`` (``found``: place -> position; -1 when absent)."""
        village, urban_rural = (
            python_strings(_column(self.homes, name)) for name in ("village_code", "urban_rural"))
        if village is None or urban_rural is None:
            return index_in(self.key, places)
        keys = [f"{v[:6]}|{u}" if isinstance(v, str) and isinstance(u, str) else None
                for v, u in zip(village.tolist(), urban_rural.tolist(), strict=True)]
        return _lookup(keys, found)


# Household positions and months of the big tables (a training set asks for the cohort and labels of
# one world at many dates), and the monitoring lines known at T (a server judges one household per call
# against the same standards table): kept per table object (doudi.memo).
_CODES = TableMemo(kept=8)
_LINES = TableMemo(kept=8)


def _codes(world: World, frame: _Frame, table: str, month_of: str) -> tuple[np.ndarray, np.ndarray]:
    """Household position and month number of every row of ``world[table]``."""
    records, homes = world[table], world["households"]

    def compute() -> tuple[np.ndarray, np.ndarray]:
        home = frame.positions(_column(records, "household_id"))
        month_column = _column(records, month_of)
        month = _month_number(month_column) if month_of == "month" else _date_month(month_column)
        return home, month

    return _CODES.get((records, homes), (month_of,), compute)


def _income_matrix(
    world: World, frame: _Frame, first: int, months: int, *, known_before: pd.Timestamp | None
) -> np.ndarray:
    """Net income (income minus out-of-pocket) per household and month ``first .. first+months-1``."""
    total = np.zeros(frame.n * months)
    for table, month_of, amount, sign in (
        ("income", "month", "amount", 1.0),
        ("medical_claims", "discharge_date", "out_of_pocket", -1.0),
    ):
        records = world[table]
        if not len(records):
            continue
        home, month = _codes(world, frame, table, month_of)
        value = _floats(_column(records, amount))
        ok = (home >= 0) & (month >= first) & (month < first + months) & np.isfinite(value)
        if known_before is not None:
            ok &= _dates(_column(records, "recorded_at")) < known_before.to_datetime64()
        total += sign * np.bincount(
            home[ok] * months + (month[ok] - first), weights=value[ok], minlength=frame.n * months
        )
    return total.reshape(frame.n, months)


def _sizes(
    world: World, frame: _Frame, month_ends: np.ndarray, *, known_before: pd.Timestamp | None
) -> np.ndarray:
    """Members per household born before each date of ``month_ends`` (and known, when asked)."""
    members = world["members"]
    home = frame.positions(_column(members, "household_id"))
    birth = _dates(_column(members, "birth_date"))
    ok = home >= 0
    if known_before is not None:
        recorded = _dates(_column(members, "recorded_at"))
        ok &= np.isnat(recorded) | (recorded < known_before.to_datetime64())
    home, birth = home[ok], birth[ok]
    # Members born before each month end: count births cumulatively over the sorted month ends.
    width = len(month_ends) + 1
    slot = np.searchsorted(month_ends, birth, side="right")  # first month end after the birth
    counts = np.bincount(home * width + slot, minlength=frame.n * width).reshape(frame.n, width)
    return np.cumsum(counts, axis=1, dtype=np.float64)[:, : len(month_ends)]


def _lines(world: World, frame: _Frame, first: int, months: int) -> np.ndarray:
    """Monitoring line per household and month (truth: the row of that month, else the latest before)."""
    standards = world["standards"]
    encoded = pc.dictionary_encode(
        _place(_arrow(standards["county_code"]), _arrow(standards["urban_rural"])), null_encoding="encode"
    )
    keys = encoded.dictionary
    key_code = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    month = _month_number(standards["month"])
    grid = np.full((len(keys), months), np.nan)
    before = np.full(len(keys), np.nan)
    line = standards["monitoring_line"].to_numpy(np.float64, na_value=np.nan)
    inside = (month >= first) & (month < first + months)
    grid[key_code[inside], month[inside] - first] = line[inside]
    # The latest row before the grid starts, for forward filling.
    earlier = np.flatnonzero((month < first) & (month >= 0))
    if len(earlier):
        last = pd.DataFrame({"k": key_code[earlier], "m": month[earlier], "v": line[earlier]})
        last = last.sort_values("m").drop_duplicates("k", keep="last")
        before[last["k"].to_numpy()] = last["v"].to_numpy()
    filled = pd.DataFrame(np.column_stack([before, grid]).T).ffill().to_numpy().T[:, 1:]
    where = index_in(frame.key, keys)
    out = np.full((frame.n, months), np.nan)
    out[where >= 0] = filled[where[where >= 0]]
    return out


def _known_line(world: World, frame: _Frame, as_of: pd.Timestamp) -> np.ndarray:
    """The latest monitoring line known before T for a month up to T's month, per household."""
    standards = world["standards"]

    def compute() -> tuple[pa.Array, dict[Any, int], np.ndarray]:
        month = _month_number(standards["month"])
        known = np.flatnonzero(
            (_dates(standards["recorded_at"]) < as_of.to_datetime64())
            & (month >= 0)
            & (month <= _timestamp_month(as_of))
        )
        rows = known[np.argsort(month[known], kind="stable")]  # the latest month last
        encoded = pc.dictionary_encode(
            _place(_arrow(standards["county_code"]), _arrow(standards["urban_rural"])).take(rows),
            null_encoding="encode",
        )
        code = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        last = np.full(len(encoded.dictionary), -1)
        np.maximum.at(last, code, np.arange(len(code)))
        line = standards["monitoring_line"].to_numpy(np.float64, na_value=np.nan)[rows[last]]
        places = encoded.dictionary
        found = {place: i for i, place in enumerate(places.to_pylist())}
        return places, found, np.append(line, np.nan)  # the NaN answers places without a line

    places, found, lines = _LINES.get((standards,), (as_of,), compute)
    return lines[frame.places_in(places, found)]


def _data_months(world: World, frame: _Frame) -> tuple[int, int]:
    """First and last month of the world's income records."""
    _, month = _codes(world, frame, "income", "month")
    month = month[month >= 0]
    if not len(month):
        raise ValueError("the world has no income records: cohort and labels need income")
    return int(month.min()), int(month.max())


def _trailing(net: np.ndarray, first_data: int, first: int, end: int) -> np.ndarray:
    """Trailing 12-month sums ending at each month ``end..`` of ``net`` (columns from month ``first``).

    Scaled to a year when fewer than 12 of the months are in the world (before ``first_data``).
    """
    cumulative = np.concatenate([np.zeros((net.shape[0], 1)), np.cumsum(net, axis=1)], axis=1)
    ends = np.arange(end, first + net.shape[1])
    lo = np.maximum(ends - 11, first)
    total = cumulative[:, ends - first + 1] - cumulative[:, lo - first]
    available = ends - np.maximum(ends - 11, first_data) + 1
    return total * (12 / np.minimum(np.maximum(available, 1), 12))  # np.clip: more per-call overhead


def _on_programme(world: World, frame: _Frame, as_of: pd.Timestamp) -> np.ndarray:
    """Households with a known dibao or 特困 record active at T."""
    records = world["assistance"]
    out = np.zeros(frame.n, dtype=bool)
    if not len(records):
        return out
    t = as_of.to_datetime64()
    start = _dates(_column(records, "start_date"))
    end = _dates(_column(records, "end_date"))
    active = (
        _is_in(_column(records, "programme"), _MAIN)
        & (_dates(_column(records, "recorded_at")) < t)
        & (start < t)
        & (np.isnat(end) | (end >= t))
    )
    home = frame.positions(_column(records, "household_id"))
    out[home[active & (home >= 0)]] = True
    return out


def _judged(world: World, as_of: pd.Timestamp) -> tuple[_Frame, dict[str, np.ndarray]]:
    """The households and the columns of :func:`cohort_frame`."""
    as_of = pd.Timestamp(as_of)
    frame = _Frame(world)
    first_data, _ = _data_months(world, frame)
    end = _timestamp_month(as_of) - 1 - _COMPLETE_AFTER_MONTHS
    first = end - 11
    net = _income_matrix(world, frame, first, 12, known_before=as_of)
    income = _trailing(net, first_data, first, end)[:, 0]
    size = _sizes(world, frame, np.array([as_of.to_datetime64()]), known_before=as_of)[:, 0]
    per_capita = np.where(size > 0, income / np.maximum(size, 1), np.nan)
    if end < first_data:
        per_capita[:] = np.nan  # no known income month at all to judge from
    line = _known_line(world, frame, as_of)
    registered = _dates(_column(frame.homes, "registered_at"))
    in_database = np.isnat(registered) | (registered < as_of.to_datetime64())
    below = per_capita < line
    on_programme = _on_programme(world, frame, as_of)
    judged = np.isfinite(per_capita) & np.isfinite(line)
    return frame, {
        "income_pc_12m_net": per_capita,
        "monitoring_line": line,
        "registered": in_database,
        "below_line": below,
        "on_dibao_or_tekun": on_programme,
        "in_cohort": in_database & judged & ~below & ~on_programme,
    }


def cohort_frame(world: World, as_of: pd.Timestamp) -> pd.DataFrame:
    """Why each household is in the cohort at T or not.

    Returns:
        Indexed by household_id (every household): ``income_pc_12m_net`` (known trailing per-capita
        net income), ``monitoring_line`` (known at T), ``registered``, ``below_line``,
        ``on_dibao_or_tekun`` and ``in_cohort``.
    """
    frame, columns = _judged(world, as_of)
    return pd.DataFrame(columns, index=frame.ids)


def cohort(world: World, as_of: pd.Timestamp) -> pd.Index:
    """Household ids in the cohort at T (see the module docstring), in households-table order."""
    frame, columns = _judged(world, as_of)  # no frame of the reasons: the server asks for this per call
    return frame.ids_at(columns["in_cohort"])


def build_labels(world: World, as_of: pd.Timestamp, *, horizon_months: int = 6) -> pd.DataFrame:
    """Labels of the cohort at T over the next ``horizon_months`` months (see the module docstring).

    Returns:
        Indexed by household_id (the cohort, in its order): ``label`` (int64 0/1), ``event_month``
        (string ``YYYY-MM``, missing when 0) and ``reason`` (string, one of :data:`REASONS`).

    Raises:
        ValueError: the horizon is not positive, or the world's income does not cover the window.
    """
    as_of = pd.Timestamp(as_of)
    if horizon_months < 1:
        raise ValueError(f"horizon_months must be at least 1, not {horizon_months}")
    frame = _Frame(world)
    first_data, last_data = _data_months(world, frame)
    start = _timestamp_month(as_of)
    stop = start + horizon_months - 1
    if stop > last_data:
        raise ValueError(
            f"labels at {as_of.date()} with a {horizon_months}-month horizon need income up to "
            f"{_month_label(stop)}, but the world's income ends in {_month_label(last_data)}"
        )
    members = cohort(world, as_of)
    rows = frame.positions(pd.Series(members, dtype="string"))
    first = start - 11
    net = _income_matrix(world, frame, first, stop - first + 1, known_before=None)
    trailing = _trailing(net[rows], first_data, first, start)
    month_ends = _month_ends(start, stop)
    size = _sizes(world, frame, month_ends, known_before=None)[rows]
    line = _lines(world, frame, start, horizon_months)[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        below = (size > 0) & (trailing / np.where(size > 0, size, 1) < line)
    never = horizon_months
    first_month = {"income_below_line": np.where(below.any(axis=1), below.argmax(axis=1), never)}
    records = world["assistance"]
    t0 = as_of.to_datetime64()
    t1 = (as_of + pd.DateOffset(months=horizon_months)).to_datetime64()
    begins = _dates(records["start_date"])
    in_window = (begins >= t0) & (begins < t1)
    home = frame.positions(records["household_id"])
    slot = pd.Series(-1, index=range(frame.n), dtype=np.int64)
    slot.iloc[rows] = np.arange(len(rows))
    slot_of = slot.to_numpy()
    month = _date_month(records["start_date"]) - start
    for reason, programme in (("dibao", "dibao"), ("tekun", "tekun"), ("temporary_assistance", "temporary")):
        hit = in_window & (records["programme"] == programme).to_numpy(dtype=bool) & (home >= 0)
        who = slot_of[home[hit]]
        keep = who >= 0
        earliest = np.full(len(rows), never)
        np.minimum.at(earliest, who[keep], month[hit][keep])
        first_month[reason] = earliest
    stacked = np.column_stack([first_month[r] for r in REASONS])
    event = stacked.min(axis=1)
    fired = event < never
    reason_code = stacked.argmin(axis=1)  # argmin takes the first of equal months: REASONS order
    event_month = pd.array(
        [_month_label(start + int(e)) if f else None for e, f in zip(event, fired, strict=True)],
        dtype="string",
    )
    reason = pd.array(np.where(fired, np.array(REASONS, dtype=object)[reason_code], None), dtype="string")
    return pd.DataFrame(
        {"label": fired.astype(np.int64), "event_month": event_month, "reason": reason},
        index=pd.Index(members, name="household_id"),
    )


def hardship_summary(
    world: World, as_of_dates: list[pd.Timestamp], *, horizon_months: int = 6
) -> pd.DataFrame:
    """Cohort size and label base rate per county at each as-of date (for summaries and benchmarks).

    Returns:
        One row per as-of date and county (``county_code``; ``all`` for the whole world) with
        ``cohort`` and ``base_rate``.
    """
    frames = []
    frame = _Frame(world)
    county = pd.Series(frame.county, index=frame.ids)
    for as_of in as_of_dates:
        labels = build_labels(world, as_of, horizon_months=horizon_months)
        by = county.reindex(labels.index).to_numpy()
        table = labels.groupby(by)["label"].agg(cohort="size", base_rate="mean")
        table.loc["all"] = [len(labels), labels["label"].mean() if len(labels) else np.nan]
        frames.append(table.rename_axis("county_code").reset_index().assign(as_of=pd.Timestamp(as_of).date()))
    return pd.concat(frames, ignore_index=True)[["as_of", "county_code", "cohort", "base_rate"]]


def hardship_events(world: World) -> pd.DataFrame:
    """Relapse-like events over the whole world, per county (ground truth, by event date).

    Returns:
        Indexed by county_code: ``households``, ``fell_below_line`` (households whose trailing
        12-month per-capita net income went from at or above the monitoring line to below it in
        some month after the first 12 months of data), ``entered_dibao_or_tekun`` (households with a
        dibao or 特困 record starting within the world's months) and ``temporary_assistance``
        (households that received it).
    """
    frame = _Frame(world)
    first_data, last_data = _data_months(world, frame)
    months = last_data - first_data + 1
    net = _income_matrix(world, frame, first_data, months, known_before=None)
    county = pd.Series(frame.county, index=frame.ids, name="county_code")
    fell = np.zeros(frame.n, dtype=bool)
    if months > 12:
        start = first_data + 11
        trailing = _trailing(net, first_data, first_data, start)
        ends = _month_ends(start, last_data)
        size = _sizes(world, frame, ends, known_before=None)
        line = _lines(world, frame, start, len(ends))
        with np.errstate(invalid="ignore", divide="ignore"):
            below = (size > 0) & (trailing / np.where(size > 0, size, 1) < line)
        fell = (below[:, 1:] & ~below[:, :-1]).any(axis=1)
    records = world["assistance"]
    begins = _date_month(records["start_date"])
    inside = (begins >= first_data) & (begins <= last_data)
    home = frame.positions(records["household_id"])
    counts = {"fell_below_line": fell}
    conditions = (("entered_dibao_or_tekun", _MAIN_PROGRAMMES), ("temporary_assistance", ("temporary",)))
    for name, programmes in conditions:
        hit = inside & records["programme"].isin(programmes).to_numpy(dtype=bool) & (home >= 0)
        flag = np.zeros(frame.n, dtype=bool)
        flag[home[hit]] = True
        counts[name] = flag
    table = pd.DataFrame(counts, index=frame.ids).groupby(county.to_numpy()).sum()
    table.insert(0, "households", county.value_counts().reindex(table.index).to_numpy())
    return table.rename_axis("county_code")
