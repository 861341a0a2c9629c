"""Data access: every query of runs, scores, alerts and the audit log, with region scope in the WHERE clause.

A record outside the caller's scope is treated exactly like a missing one (``NotFound``), so that its
existence does not leak.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from doudi.arrowtext import TEXT, text_array
from doudi.frames import boxed, column_arrays, column_values, frame_of
from serving.auth import Principal, Scope
from serving.errors import NotFound
from serving.orm import (
    CLOSED_STATUSES,
    TIERS,
    Alert,
    AuditLog,
    HouseholdScore,
    ScoringRun,
    core_table,
    utcnow,
)

TIER_LEVEL = {tier: level for level, tier in enumerate(TIERS)}
_CHUNK = 5000

ALERT_COLUMNS = (
    "household_id", "village_code", "township_code", "county_code", "risk", "raw_score", "base_value",
    "tier", "rank", "triggered", "reasons", "triggers", "recommendations", "contributions", "features",
)


def _chunks(values: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# Core statements built once and run on the session's connection: the ORM's execution path (and building a
# statement per call) adds more per call than the few rows of an API call cost to write.
_RUNS, _SCORES, _ALERTS = core_table(ScoringRun), core_table(HouseholdScore), core_table(Alert)
_OPEN_CASES = sa.select(_ALERTS.c.household_id, _ALERTS.c.id, _ALERTS.c.tier).where(
    _ALERTS.c.household_id.in_(sa.bindparam("households", expanding=True)),
    _ALERTS.c.status.not_in(CLOSED_STATUSES),
)
_INSERT_RUN = sa.insert(_RUNS).returning(_RUNS.c.id)
_FINISH_RUN = sa.update(_RUNS).where(_RUNS.c.id == sa.bindparam("run")).values(finished_at=sa.bindparam("at"))
_INSERT_SCORES = sa.insert(_SCORES)
_INSERT_ALERTS = sa.insert(_ALERTS).returning(_ALERTS.c.id, sort_by_parameter_order=True)
_SUPERSEDE = (
    sa.update(_ALERTS)
    .where(_ALERTS.c.id.in_(sa.bindparam("old_ids", expanding=True)),
           _ALERTS.c.status.not_in(CLOSED_STATUSES))
    .values(status="superseded", version=_ALERTS.c.version + 1, updated_at=sa.bindparam("at"))
)
_LINK_SUPERSEDED = (
    sa.update(_ALERTS).where(_ALERTS.c.id == sa.bindparam("old_id"))
    .values(superseded_by=sa.bindparam("new_id"))
)
_INSERT_AUDIT = sa.insert(core_table(AuditLog))

_CASE_LABELS = pd.Index(["alert_id", "tier"])
_NO_CASES = pd.DataFrame({"alert_id": [], "tier": []}, index=pd.Index([], name="household_id"), dtype=object)
_NO_ALERT_IDS = pd.Series(np.array([], dtype=np.int64), index=pd.Index([], name="household_id"))


def _text_index(values: list[str], name: str) -> pd.Index:
    """``pd.Index(values, name=name)`` for Python strings, without inferring their dtype."""
    return pd.Index(text_array(values), name=name, copy=False)


def text_list(values: list[Any]) -> list[Any]:
    """``values`` as ``astype(str).tolist()`` gives them (missing stays missing), with no pandas call when
    they are strings already, as they are on the scoring path."""
    if all(type(value) is str for value in values):
        return values
    return pd.Series(values, dtype=object).astype(str).tolist()


def open_cases(session: Session, household_ids: Sequence[str]) -> pd.DataFrame:
    """The open alert (case) of each given household that has one.

    Returns:
        Frame indexed by household_id with columns ``alert_id`` and ``tier``.
    """
    connection = session.connection()
    rows = [row for chunk in _chunks(list(household_ids))
            for row in connection.execute(_OPEN_CASES, {"households": list(chunk)})]
    if not rows:
        return _NO_CASES.copy()  # object dtypes, as the row-wise frame had them
    households, alert_ids, tiers = (list(column) for column in zip(*rows, strict=True))
    # The dtypes the row-wise frame had (text index, int64, text), given rather than inferred: inferring
    # them costs more than the query for a few rows.
    return frame_of([np.array(alert_ids, dtype=np.int64), text_array(tiers)],
                    _text_index(households, "household_id"), _CASE_LABELS)


@dataclass(frozen=True)
class RunRecord:
    """What is stored about a scoring run besides its scores and alerts."""

    as_of: pd.Timestamp
    source: str
    model_name: str
    model_version: str
    feature_version: str | None
    started_at: dt.datetime
    params: dict[str, Any]
    n_open_case: int = 0
    n_capped: int = 0


def parameter_rows(columns: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """Executemany parameters, one dict per row, from column lists (any other value is the same in every row).

    Built from plain lists rather than through ``DataFrame.to_dict``: its per-row pandas overhead costs
    more than the INSERT for the few rows of an API call.
    """
    names = list(columns)
    values = [v if isinstance(v, list) else [v] * n for v in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def save_run(
    session: Session, run: RunRecord, scores: pd.DataFrame, alerts: pd.DataFrame
) -> tuple[int, pd.Series]:
    """Store a run, every household's score and the run's alerts in the caller's transaction.

    An alert for a household that still has an open case (allowed only when its tier rose) supersedes
    that case: the old alert is marked ``superseded`` and points to the new one.

    Args:
        session: a session inside a transaction (see ``serving.db.transaction``).
        run: the run's metadata.
        scores: indexed by household_id, columns village_code, risk, tier, rank.
        alerts: indexed by household_id, the columns of ``ALERT_COLUMNS`` (without household_id) and
            ``supersedes`` (alert id of the open case it replaces, or missing).

    Returns:
        The run id and the new alert ids indexed by household_id.
    """
    connection = session.connection()
    as_of = run.as_of.date()
    typed = {"rank": np.int64, "triggered": bool, "risk": np.float64, "raw_score": np.float64,
             "base_value": np.float64}
    columns: dict[str, Any] = {"household_id": [], "triggered": []}
    supersedes: list[Any] = []
    if len(alerts):
        columns["household_id"] = alerts.index.tolist()
        # Each column boxed as ``alerts.to_numpy(dtype=object)`` boxes it, from the array behind it: that
        # conversion of the whole frame took 0.2 ms for one alert, more than writing it.
        arrays = column_arrays(alerts, (*ALERT_COLUMNS[1:], "supersedes"))
        for name in ALERT_COLUMNS[1:]:
            column = boxed(arrays[name])
            columns[name] = (column.astype(typed[name]) if name in typed else column).tolist()
        supersedes = boxed(arrays["supersedes"]).tolist() if "supersedes" in arrays else [None] * len(alerts)
    run_id = int(connection.execute(_INSERT_RUN, {
        "as_of": as_of, "source": run.source, "model_name": run.model_name,
        "model_version": run.model_version, "feature_version": run.feature_version,
        "started_at": run.started_at, "params": run.params, "n_scored": len(scores), "n_alerts": len(alerts),
        "n_triggered": sum(columns["triggered"]), "n_open_case": run.n_open_case, "n_capped": run.n_capped,
    }).scalar_one())
    if len(scores):
        score = column_arrays(scores, ("village_code", "risk", "tier", "rank"))
        connection.execute(_INSERT_SCORES, parameter_rows({
            "run_id": run_id,
            "household_id": text_list(scores.index.tolist()),
            "village_code": text_list(boxed(score["village_code"]).tolist()),
            "risk": column_values(score["risk"], np.float64).tolist(),
            "tier": text_list(boxed(score["tier"]).tolist()),
            "rank": column_values(score["rank"], np.int64).tolist(),
        }, len(scores)))
    households = text_list(columns["household_id"])
    ids: Sequence[int] = []
    if len(alerts):
        old_ids = [None if pd.isna(old) else int(old) for old in supersedes]
        if any(old is not None for old in old_ids):
            # Close the old cases first: the partial unique index allows one open alert per household.
            connection.execute(_SUPERSEDE, {"old_ids": [old for old in old_ids if old is not None],
                                            "at": utcnow()})
        now = utcnow()
        rows = parameter_rows({
            **columns, "run_id": run_id, "as_of": as_of, "model_name": run.model_name,
            "model_version": run.model_version, "status": "new", "version": 1, "created_at": now,
            "updated_at": now,
        }, len(alerts))
        ids = connection.execute(_INSERT_ALERTS, rows).scalars().all()
        links = [{"old_id": old, "new_id": new}
                 for old, new in zip(old_ids, ids, strict=True) if old is not None]
        if links:
            connection.execute(_LINK_SUPERSEDED, links)
    connection.execute(_FINISH_RUN, {"run": run_id, "at": utcnow()})
    if not households:
        return run_id, _NO_ALERT_IDS.copy()
    # The alerts' own index when it is already that text index (as on the scoring path): building it
    # again from the strings costs more than the rest of this return.
    index = (alerts.index.rename("household_id") if households is columns["household_id"]
             and alerts.index.dtype == TEXT else _text_index(households, "household_id"))
    return run_id, pd.Series(np.array(ids, dtype=np.int64), index=index)


@dataclass(frozen=True)
class AlertFilter:
    """Filters of the alert list."""

    region_prefix: str | None = None
    tier: str | None = None
    status: str | None = None
    run_id: int | None = None
    open_only: bool = False


def list_alerts(session: Session, scope: Scope, filters: AlertFilter, *, limit: int = 50, offset: int = 0
                ) -> tuple[int, list[Alert]]:
    """Alerts in scope matching the filters, highest risk first (then rank, then id), with the total count."""
    conditions = [scope.clause(Alert.village_code)]
    if filters.region_prefix:
        conditions.append(Alert.village_code.startswith(filters.region_prefix, autoescape=True))
    if filters.tier:
        conditions.append(Alert.tier == filters.tier)
    if filters.status:
        conditions.append(Alert.status == filters.status)
    if filters.open_only:
        conditions.append(Alert.status.not_in(CLOSED_STATUSES))
    if filters.run_id is not None:
        conditions.append(Alert.run_id == filters.run_id)
    where = sa.and_(*conditions)
    total = session.scalar(sa.select(sa.func.count()).select_from(Alert).where(where)) or 0
    stmt = (sa.select(Alert).where(where).order_by(Alert.risk.desc(), Alert.rank, Alert.id)
            .limit(limit).offset(offset))
    return total, list(session.scalars(stmt))


def get_alert(session: Session, scope: Scope, alert_id: int) -> Alert:
    """One alert in scope, or ``NotFound`` (also when it exists outside the scope)."""
    alert = session.scalar(sa.select(Alert).where(Alert.id == alert_id, scope.clause(Alert.village_code)))
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


def risk_history(session: Session, scope: Scope, household_id: str) -> list[dict[str, Any]]:
    """A household's score in every run that scored it, oldest first, with the alert of that run if any.

    Raises:
        NotFound: never scored, or outside the caller's regions.
    """
    stmt = (
        sa.select(ScoringRun.id.label("run_id"), ScoringRun.as_of, ScoringRun.source, ScoringRun.model_name,
                  ScoringRun.model_version, HouseholdScore.village_code, HouseholdScore.risk,
                  HouseholdScore.tier, HouseholdScore.rank, Alert.id.label("alert_id"))
        .join(ScoringRun, ScoringRun.id == HouseholdScore.run_id)
        .outerjoin(Alert, sa.and_(Alert.run_id == HouseholdScore.run_id,
                                  Alert.household_id == HouseholdScore.household_id))
        .where(HouseholdScore.household_id == household_id, scope.clause(HouseholdScore.village_code))
        .order_by(ScoringRun.as_of, ScoringRun.id)
    )
    rows = [dict(row._mapping) for row in session.execute(stmt)]
    if not rows:
        raise NotFound(f"household {household_id} not found")
    return rows


def audit(session: Session, principal: Principal, action: str, *, outcome: str = "ok",
          household_id: str | None = None, alert_id: int | None = None, reason: str | None = None,
          request_path: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Append one row to the audit log, at once, in the caller's transaction.

    A Core INSERT on the session's connection rather than an ORM object: flushing one object costs more
    than the row, and every scoring call writes one. Objects already added to the session are flushed
    first, so rows land in the order they were added, as they did when this row was an ORM object too.
    """
    session.flush()
    session.connection().execute(_INSERT_AUDIT, {
        "at": utcnow(), "user_id": principal.user_id, "user_name": principal.name,
        "role": principal.role.value, "action": action, "outcome": outcome, "household_id": household_id,
        "alert_id": alert_id, "reason": reason, "request_path": request_path[:500] if request_path else None,
        "detail": detail,
    })


def latest_run(session: Session) -> ScoringRun | None:
    """The most recent scoring run."""
    return session.scalar(sa.select(ScoringRun).order_by(ScoringRun.id.desc()).limit(1))
