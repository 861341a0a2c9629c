"""Request and response bodies of the API.

The request models are generated from ``doudi.contract`` (one pydantic model per table, the contract's
column names, types, allowed values, patterns and bounds), so the API cannot drift from the contract.
They are parsed with ``model_validate_json`` (pydantic-core straight from bytes, no ``json.loads``).
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model

from doudi.arrowtext import text_array
from doudi.contract import TABLES, Column, Table
from doudi.frames import frame_of
from doudi.io import World
from doudi.memo import TableMemo
from serving.errors import InvalidInput

MAX_HOUSEHOLDS = 1000
REFERENCE_TABLES = ("regions", "standards", "disasters")
"""Region-level tables: sent once per call (or held by the server), not per household."""
HOUSEHOLD_TABLES = tuple(
    name for name, table in TABLES.items() if name != "households" and "household_id" in table.column_names
)
"""Tables whose rows belong to one household: sent inside each household item."""

_PYTHON_TYPES: dict[str, Any] = {
    "str": str, "month": str, "int": int, "float": float, "bool": bool, "date": dt.date,
}


def _field(column: Column, *, optional: bool) -> tuple[Any, Any]:
    """A pydantic field declaration for a contract column."""
    kind: Any = _PYTHON_TYPES[column.dtype]
    if column.allowed is not None:
        kind = Literal[column.allowed]  # type: ignore[valid-type]
    constraints: dict[str, Any] = {"description": column.description}
    if column.pattern and column.allowed is None:
        constraints["pattern"] = column.pattern
    if column.ge is not None:
        constraints["ge"] = column.ge
    if column.le is not None:
        constraints["le"] = column.le
    annotated = Annotated[kind, Field(**constraints)]
    if optional:
        return annotated | None, None
    return annotated, ...


def _row_model(table: Table, *, household_scoped: bool) -> type[BaseModel]:
    """The model of one row of ``table``; in household items ``household_id`` may be left out."""
    fields: dict[str, Any] = {}
    for column in table.columns:
        implied = household_scoped and column.name == "household_id"
        optional = implied or not column.required or column.nullable
        fields[column.name] = _field(column, optional=optional)
    model = create_model(  # type: ignore[call-overload]
        f"{''.join(part.title() for part in table.name.split('_'))}Row",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__=table.description,
        **fields,
    )
    return model  # type: ignore[no-any-return]


ROW_MODELS: dict[str, type[BaseModel]] = {
    name: _row_model(table, household_scoped=name in HOUSEHOLD_TABLES) for name, table in TABLES.items()
}

HouseholdItem: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "HouseholdItem",
    __config__=ConfigDict(extra="forbid", frozen=True),
    __doc__="One household's row and its records under the contract's table names.",
    household=(ROW_MODELS["households"], ...),
    **{name: (list[ROW_MODELS[name]], Field(default_factory=list)) for name in HOUSEHOLD_TABLES},  # type: ignore[name-defined,valid-type]
)

ScoreRequest: type[BaseModel] = create_model(  # type: ignore[call-overload]
    "ScoreRequest",
    __config__=ConfigDict(extra="forbid", frozen=True),
    __doc__="Households to score at an as-of date; region-level tables may be sent or held by the server.",
    as_of=(dt.date, Field(description="As-of date T: only records known before T count.")),
    households=(list[HouseholdItem], Field(min_length=1, max_length=MAX_HOUSEHOLDS)),  # type: ignore[valid-type]
    **{name: (list[ROW_MODELS[name]] | None, None) for name in REFERENCE_TABLES},  # type: ignore[name-defined,valid-type]
)


_STRING = pd.StringDtype("python")
"""Text columns: pandas' string dtype as ``load_world`` gives them, stored as Python strings rather than
Arrow (for the few rows of a call, each Arrow-backed operation costs 5-10x more; values and missing values
behave the same). An instance: resolving the name "string" costs ~0.1 ms."""
_NAT = np.iinfo(np.int64).min
"""NaT as a day number."""
_EPOCH = dt.date(1970, 1, 1).toordinal()


_STRINGS = _STRING.construct_array_type()
"""The text columns' array class, looked up once rather than per column."""


def _typed_column(column: Column, values: Sequence[Any]) -> Any:
    """Validated Python values as the column's contract dtype (as ``doudi.validate.load_world`` types it).

    Built directly rather than through ``doudi.io.typed_table`` or ``pd.array``: the values are already
    parsed, and re-parsing them costs more than the whole model call for one household.
    """
    if column.dtype in ("str", "month"):
        return _STRINGS._from_sequence(values, dtype=_STRING)
    if column.dtype == "date":
        # Day numbers from the dates' ordinals: a numpy datetime64 made per value costs ~20x more.
        days = np.array([_NAT if v is None else v.toordinal() - _EPOCH for v in values], dtype=np.int64)
        return days.view("datetime64[D]").astype("datetime64[ns]")
    if column.dtype == "float":
        return np.array(values, dtype=np.float64)  # None becomes NaN
    # As doudi.io.finalize_dtypes does: plain numpy where the column cannot be (and is not) missing.
    kind = np.int64 if column.dtype == "int" else np.bool_
    if not column.nullable and None not in values:
        return np.array(values, dtype=kind)
    # Masked, with the data under the mask as pd.array fills it (1, False).
    missing = np.array([value is None for value in values], dtype=bool)
    if column.dtype == "int":
        return pd.arrays.IntegerArray(np.array([1 if v is None else v for v in values], dtype=kind), missing)
    return pd.arrays.BooleanArray(np.array([False if v is None else v for v in values], dtype=kind), missing)


def _columns(table: Table) -> list[Column]:
    """The columns a request world holds (resident ID numbers are pseudonymised, never kept)."""
    return [c for c in table.columns if c.name != "id_number"]


@functools.cache
def _empty(name: str) -> pd.DataFrame:
    table = TABLES[name]
    frame = pd.DataFrame({c.name: _typed_column(c, []) for c in _columns(table)}, index=pd.RangeIndex(0))
    # Column labels as plain Python strings, not pandas' inferred Arrow strings: every ``frame[name]``
    # downstream looks its label up, and on an object index that costs about 60 % as much.
    frame.columns = pd.Index(frame.columns.tolist(), dtype=object)
    return frame


def _values(table: Table, rows: list[dict[str, Any]]) -> dict[str, Sequence[Any]]:
    """The rows' values column by column (all of the table's columns: every row model declares them)."""
    names = table.column_names
    if not rows:
        return {name: () for name in names}
    return dict(zip(names, zip(*map(operator.itemgetter(*names), rows), strict=True), strict=True))


def _frame(name: str, arrays: dict[str, Any] | None) -> pd.DataFrame:
    """A request table from its typed columns (None: the call sent none of its rows)."""
    if arrays is None:  # most tables of one household: typed once, handed out as a (lazy) copy
        return _empty(name).copy(deep=False)
    length = len(next(iter(arrays.values())))
    return frame_of(arrays.values(), pd.RangeIndex(length), _empty(name).columns)


@dataclass
class RequestWorld:
    """The contract world of a score request, and where each of its rows came from.

    Attributes:
        world: contract tables, typed as ``load_world`` types them.
        households: household ids in request order.
        origins: table -> (household index, row index) per row; household index -1 for region tables
            sent at the top level.
    """

    world: World
    households: pd.Index
    origins: dict[str, np.ndarray]


def _problem(
    table: str, origin: tuple[int, int] | None, field: str, kind: str, message: str
) -> dict[str, Any]:
    household, index = origin if origin is not None else (-1, None)
    return {"table": table, "household_index": None if household < 0 else int(household),
            "index": None if index is None else int(index), "field": field, "type": kind, "message": message}


def request_world(
    request: BaseModel, *, reference: World | None = None, id_key: bytes | None = None
) -> RequestWorld:
    """Turn a parsed score request into a contract world, checking what pydantic cannot see per row.

    Checks, from the contract's declarations: a record inside a household item belongs to that
    household (a ``household_id`` left out is filled in), primary keys are unique, and references
    (person, village, disaster) exist in the call or in the server's region tables. Resident ID
    numbers are replaced by their keyed pseudonym (``doudi.pseudonym``) and never kept.

    Raises:
        InvalidInput: with table, household index, row index and field of every problem (never values).
    """
    from doudi.pseudonym import pseudonymize_ids

    items: list[Any] = request.households  # type: ignore[attr-defined]
    problems: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    owners: dict[str, list[str]] = {name: [] for name in HOUSEHOLD_TABLES}  # household of each record's item
    items_at: dict[str, list[int]] = {name: [] for name in TABLES}  # origins, column by column
    index_at: dict[str, list[int]] = {name: [] for name in TABLES}
    for h, item in enumerate(items):
        household = item.household.__dict__
        rows["households"].append(household)
        items_at["households"].append(h)
        index_at["households"].append(0)
        household_id = household["household_id"]
        for name in HOUSEHOLD_TABLES:
            records = [record.__dict__ for record in getattr(item, name)]
            if not records:
                continue
            if not {values["household_id"] for values in records} <= {None, household_id}:
                for i, values in enumerate(records):
                    if values["household_id"] is not None and values["household_id"] != household_id:
                        problems.append(_problem(name, (h, i), "household_id", "household_mismatch",
                                                 "the record names another household than its item"))
            rows[name] += records
            owners[name] += [household_id] * len(records)
            items_at[name] += [h] * len(records)
            index_at[name] += range(len(records))
    # Typed column by column before any check (a value numpy cannot hold fails here, as it always did).
    columns: dict[str, dict[str, Sequence[Any]]] = {}
    arrays: dict[str, dict[str, Any]] = {}
    held: World = {}  # region tables taken from the server's reference rather than the call
    for name, table in TABLES.items():
        if name in REFERENCE_TABLES:
            sent = getattr(request, name, None)
            if sent is None and reference is not None and name in reference:
                held[name] = reference[name]
                continue
            rows[name] = [record.__dict__ for record in sent or []]
            items_at[name] = [-1] * len(rows[name])
            index_at[name] = list(range(len(rows[name])))
        columns[name] = _values(table, rows[name])
        if name in HOUSEHOLD_TABLES:  # a household_id left out is the item's
            columns[name]["household_id"] = [
                owner if value is None else value
                for value, owner in zip(columns[name]["household_id"], owners[name], strict=True)
            ]
        if rows[name]:
            arrays[name] = {c.name: _typed_column(c, columns[name][c.name]) for c in _columns(table)}
    where = {name: np.array((items_at[name], index_at[name]), dtype=np.int64).T.copy() for name in TABLES}

    # Keys and references over the parsed values (already Python objects: cheaper than pandas for a call).
    for name, table in TABLES.items():
        if name in held or not rows[name]:
            continue
        submitted = columns[name]
        keys = list(zip(*(submitted[c] for c in table.primary_key), strict=True))
        if len(set(keys)) < len(keys):
            seen: set[tuple[Any, ...]] = set()
            for pos, key in enumerate(keys):
                if key in seen:
                    problems.append(_problem(name, tuple(where[name][pos]), ",".join(table.primary_key),
                                             "duplicate_key",
                                             "a record with the same key appears earlier in the call"))
                seen.add(key)
        for fk in table.foreign_keys:
            if fk.prefix is not None or fk.area:  # area codes: `doudi validate` checks them
                continue
            if fk.ref_table in held:
                known = _present(held[fk.ref_table], fk.ref_column)
            else:
                known = {str(key) for key in columns[fk.ref_table][fk.ref_column] if key is not None}
            values = submitted[fk.column]
            if all(str(value) in known for value in set(values) if value is not None):
                continue
            for pos, value in enumerate(values):
                if value is not None and str(value) not in known:
                    problems.append(_problem(name, tuple(where[name][pos]), fk.column, "foreign_key",
                                             f"refers to a {fk.ref_table} record that is not in the call"))
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the submitted records", detail=problems)

    numbers = list(columns["members"]["id_number"])
    if any(number is not None for number in numbers):
        if id_key is None:
            raise InvalidInput("resident ID numbers cannot be accepted: the server has no pseudonym key "
                               "(DOUDI_ID_HMAC_KEY); leave members.id_number out",
                               detail=[_problem("members", None, "id_number", "pseudonym_key",
                                                "no pseudonym key configured")])
        hashed, last4 = pseudonymize_ids(pd.Series(numbers, dtype=object), id_key)
        arrays["members"]["id_hash"] = pd.array(hashed, dtype=_STRING)
        arrays["members"]["id_last4"] = pd.array(last4, dtype=_STRING)
    world: World = {name: held[name] if name in held else _frame(name, arrays.get(name)) for name in TABLES}
    ids = pd.Index(text_array([row["household_id"] for row in rows["households"]]), name="household_id",
                   copy=False)
    return RequestWorld(world=world, households=ids, origins=where)


_KNOWN = TableMemo(kept=16)
"""Keys of the server's region tables: the same tables on every call."""


def _present(table: pd.DataFrame, column: str) -> set[str]:
    """The values of a column of a server table (as strings, missing values left out)."""

    def compute() -> set[str]:
        values = table[column]
        text = values if isinstance(values.dtype, pd.StringDtype) else values.astype(str)
        return {value for value in text.tolist() if isinstance(value, str)}

    return _KNOWN.get((table,), (column,), compute)


class ModelInfo(BaseModel):
    """The pinned model that produced a response."""

    name: str
    version: str


class Reason(BaseModel):
    group: str
    feature: str
    value: float | str | None
    contribution: float = Field(description="The group's summed contribution (log-odds).")
    feature_contribution: float
    zh: str
    en: str


class TriggerOut(BaseModel):
    name: str
    zh: str
    en: str
    source: str
    ranks: bool
    figures: dict[str, float | None]


class Recommendation(BaseModel):
    programme: str
    zh: str
    en: str
    rule_zh: str
    rule_en: str
    figures: dict[str, Any]
    monthly_amount: float | None = None
    person_ids: list[str] = []


class ScoredHousehold(BaseModel):
    household_id: str
    village_code: str
    in_cohort: bool
    risk: float
    raw_score: float
    base_value: float | None
    tier: str
    rank: int
    triggered: bool
    alerted: bool
    alert_id: int | None
    not_alerted_because: str | None
    reasons: list[Reason]
    triggers: list[TriggerOut]
    recommendations: list[Recommendation]
    contributions: dict[str, Any] | None = None


class ScoreResponse(BaseModel):
    run_id: int
    as_of: dt.date
    model: ModelInfo
    households: list[ScoredHousehold]


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    household_id: str
    village_code: str
    township_code: str
    county_code: str
    as_of: dt.date
    model_name: str
    model_version: str
    risk: float
    raw_score: float
    base_value: float
    tier: str
    rank: int
    triggered: bool
    status: str
    version: int
    created_at: dt.datetime
    reasons: list[dict[str, Any]]
    triggers: list[dict[str, Any]]
    recommendations: list[dict[str, Any]]


class AlertDetail(AlertOut):
    contributions: dict[str, Any] | None = None
    features: dict[str, Any]
    superseded_by: int | None


class AlertPage(BaseModel):
    total: int
    limit: int
    offset: int
    model: ModelInfo
    items: list[AlertOut]


class RiskPoint(BaseModel):
    run_id: int
    as_of: dt.date
    source: str
    model_name: str
    model_version: str
    risk: float
    tier: str
    rank: int
    alert_id: int | None


class RiskHistory(BaseModel):
    household_id: str
    model: ModelInfo
    history: list[RiskPoint]


class ModelCard(BaseModel):
    name: str
    version: str
    run_id: str | None
    aliases: list[str]
    features: list[str]
    registry_version: str | None
    tiers: dict[str, float | None]
    metrics: dict[str, float]
    card: str | None
