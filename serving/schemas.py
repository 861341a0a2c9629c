"""Request and response bodies of the API.

The request models are generated from ``doudi.contract`` (one pydantic model per table, the contract's
column names, types, allowed values, patterns and bounds), so the API cannot drift from the contract.
They are parsed with ``model_validate_json`` (pydantic-core straight from bytes, no ``json.loads``).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model

from doudi.contract import TABLES, Column, Table
from doudi.io import World
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
_BOOLEAN = pd.BooleanDtype()
_INT = pd.Int64Dtype()


def _typed_column(column: Column, values: list[Any]) -> Any:
    """Validated Python values as the column's contract dtype (as ``doudi.validate.load_world`` types it).

    Built directly rather than through ``doudi.io.typed_table``: the values are already parsed, and
    re-parsing them costs more than the whole model call for one household.
    """
    if column.dtype in ("str", "month"):
        return pd.array(values, dtype=_STRING)
    if column.dtype == "date":
        return np.array([np.datetime64("NaT") if v is None else np.datetime64(v, "D") for v in values],
                        dtype="datetime64[ns]")
    if column.dtype == "float":
        return np.array(values, dtype=np.float64)  # None becomes NaN
    # As doudi.io.finalize_dtypes does: plain numpy where the column cannot be (and is not) missing.
    plain = not column.nullable and None not in values
    if column.dtype == "int":
        return np.array(values, dtype=np.int64) if plain else pd.array(values, dtype=_INT)
    return np.array(values, dtype=bool) if plain else pd.array(values, dtype=_BOOLEAN)


def _columns(table: Table) -> list[Column]:
    """The columns a request world holds (resident ID numbers are pseudonymised, never kept)."""
    return [c for c in table.columns if c.name != "id_number"]


@functools.cache
def _empty(name: str) -> pd.DataFrame:
    table = TABLES[name]
    return pd.DataFrame({c.name: _typed_column(c, []) for c in _columns(table)}, index=pd.RangeIndex(0))


def _frame(table: Table, rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:  # most tables of a single household: typed once, handed out as a (copy-on-write) copy
        return _empty(table.name).copy(deep=False)
    return pd.DataFrame(
        {c.name: _typed_column(c, [row.get(c.name) for row in rows]) for c in _columns(table)},
        index=pd.RangeIndex(len(rows)),
    )


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
    origins: dict[str, list[tuple[int, int]]] = {name: [] for name in TABLES}
    for h, item in enumerate(items):
        household = item.household.__dict__
        rows["households"].append(household)
        origins["households"].append((h, 0))
        household_id = household["household_id"]
        for name in HOUSEHOLD_TABLES:
            for i, record in enumerate(getattr(item, name)):
                values = record.__dict__
                if values["household_id"] is None:
                    values = {**values, "household_id": household_id}
                elif values["household_id"] != household_id:
                    problems.append(_problem(name, (h, i), "household_id", "household_mismatch",
                                             "the record names another household than its item"))
                rows[name].append(values)
                origins[name].append((h, i))
    world: World = {}
    held: set[str] = set()  # region tables taken from the server's reference rather than the call
    for name, table in TABLES.items():
        if name in REFERENCE_TABLES:
            sent = getattr(request, name, None)
            if sent is None and reference is not None and name in reference:
                world[name] = reference[name]
                held.add(name)
                continue
            rows[name] = [record.__dict__ for record in sent or []]
            origins[name] = [(-1, i) for i in range(len(rows[name]))]
        world[name] = _frame(table, rows[name])
    where = {name: np.array(o, dtype=np.int64).reshape(-1, 2) for name, o in origins.items()}

    # Keys and references over the parsed rows (already Python objects: cheaper than pandas for a call).
    for name, table in TABLES.items():
        submitted = rows[name] if name not in REFERENCE_TABLES or where[name].size else []
        seen: set[tuple[Any, ...]] = set()
        for pos, row in enumerate(submitted):
            key = tuple(row.get(c) for c in table.primary_key)
            if key in seen:
                problems.append(_problem(name, tuple(where[name][pos]), ",".join(table.primary_key),
                                         "duplicate_key",
                                         "a record with the same key appears earlier in the call"))
            seen.add(key)
        for fk in table.foreign_keys:
            if fk.prefix is not None or fk.area or not submitted:  # area codes: `doudi validate` checks them
                continue
            values = [row.get(fk.column) for row in submitted]
            wanted = {str(v) for v in values if v is not None}
            if fk.ref_table in held:
                known = _present(world[fk.ref_table][fk.ref_column], wanted)
            else:
                keys = (r.get(fk.ref_column) for r in rows[fk.ref_table])
                known = {str(key) for key in keys if key is not None}
            for pos, value in enumerate(values):
                if value is not None and str(value) not in known:
                    problems.append(_problem(name, tuple(where[name][pos]), fk.column, "foreign_key",
                                             f"refers to a {fk.ref_table} record that is not in the call"))
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the submitted records", detail=problems)

    numbers = [r.get("id_number") for r in rows["members"]]
    if any(number is not None for number in numbers):
        if id_key is None:
            raise InvalidInput("resident ID numbers cannot be accepted: the server has no pseudonym key "
                               "(DOUDI_ID_HMAC_KEY); leave members.id_number out",
                               detail=[_problem("members", None, "id_number", "pseudonym_key",
                                                "no pseudonym key configured")])
        hashed, last4 = pseudonymize_ids(pd.Series(numbers, dtype=object), id_key)
        world["members"]["id_hash"] = pd.array(hashed, dtype=_STRING)
        world["members"]["id_last4"] = pd.array(last4, dtype=_STRING)
    ids = pd.Index(world["households"]["household_id"].astype(str), name="household_id")
    return RequestWorld(world=world, households=ids, origins=where)


def _present(column: pd.Series, wanted: set[str]) -> set[str]:
    """Which of ``wanted`` occur in ``column`` (as strings), without turning the whole column into a set."""
    text = column if isinstance(column.dtype, pd.StringDtype) else column.astype(str)
    return set(text[text.isin(list(wanted))].tolist())


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
