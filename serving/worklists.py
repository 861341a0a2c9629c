"""Data access for the pages and the feedback export: alert lists with their case state, counts, the
supervisor dashboard's aggregates, workers, the audit log and verified outcomes.

Every function takes the caller's ``Scope`` and puts it in the WHERE clause (like ``serving.store``): a
household outside the caller's regions is never read, so no page, API or export can show it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from doudi.policy import CaseworkLimits
from serving.auth import Principal, Role, Scope
from serving.casework import OPEN_STATES, STATES, due_at, due_soon_clause, overdue_clause
from serving.orm import Alert, AuditLog, HouseholdProfile, ScoringRun, User

STATUS_CHOICES = ("open", *STATES, "all")
"""Values of the list's status filter: ``open`` (default), one state, or ``all``."""


@dataclass(frozen=True)
class CaseFilter:
    """Filters of the alert list (all optional; ``status`` defaults to open cases)."""

    village: str | None = None
    township: str | None = None
    tier: str | None = None
    status: str = "open"
    overdue: bool = False
    mine: bool = False
    assignee_id: int | None = None
    q: str | None = None


def _conditions(
    scope: Scope, filters: CaseFilter, *, limits: CaseworkLimits, now: dt.datetime, user_id: int | None
) -> list[sa.ColumnElement[bool]]:
    where = [scope.clause(Alert.village_code)]
    if filters.status == "open":
        where.append(Alert.status.in_(OPEN_STATES))
    elif filters.status != "all":
        where.append(Alert.status == filters.status)
    if filters.village:
        where.append(Alert.village_code.startswith(filters.village, autoescape=True))
    if filters.township:
        where.append(Alert.township_code == filters.township)
    if filters.tier:
        where.append(Alert.tier == filters.tier)
    if filters.overdue:
        where.append(overdue_clause(limits, now))
    if filters.mine:
        where.append(Alert.assignee_id == (user_id if user_id is not None else -1))
    if filters.assignee_id is not None:
        where.append(Alert.assignee_id == filters.assignee_id)
    if filters.q:
        where.append(Alert.household_id.contains(filters.q, autoescape=True))
    return where


def list_cases(
    session: Session,
    scope: Scope,
    filters: CaseFilter,
    *,
    limits: CaseworkLimits,
    now: dt.datetime,
    user_id: int | None = None,
    limit: int = 25,
    offset: int = 0,
) -> tuple[int, list[dict[str, Any]]]:
    """Alerts in scope matching the filters, highest risk first (then rank, id), with their case state.

    Returns:
        The total count and one dict per alert: the alert, ``assignee`` (name), ``village_name``,
        ``due_at``, ``overdue``, ``due_soon``.
    """
    where = sa.and_(*_conditions(scope, filters, limits=limits, now=now, user_id=user_id))
    total = session.scalar(sa.select(sa.func.count()).select_from(Alert).where(where)) or 0
    stmt = (
        sa.select(Alert, User.name, HouseholdProfile.village_name)
        .outerjoin(User, User.id == Alert.assignee_id)
        .outerjoin(HouseholdProfile, HouseholdProfile.household_id == Alert.household_id)
        .where(where)
        .order_by(Alert.risk.desc(), Alert.rank, Alert.id)
        .limit(limit)
        .offset(offset)
    )
    soon = dt.timedelta(days=limits.due_soon)
    rows = []
    for alert, assignee, village_name in session.execute(stmt).tuples():
        due = due_at(alert, limits)
        rows.append(
            {
                "alert": alert,
                "assignee": assignee,
                "village_name": village_name,
                "due_at": due,
                "overdue": due is not None and now > due,
                "due_soon": due is not None and now <= due <= now + soon,
            }
        )
    return total, rows


def summary_counts(
    session: Session, scope: Scope, *, limits: CaseworkLimits, now: dt.datetime, user_id: int | None = None
) -> dict[str, int]:
    """Counts over the open cases in scope: total, per tier, overdue, due soon, unassigned, mine."""

    def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)

    stmt = (
        sa.select(
            sa.func.count().label("open"),
            *(count(Alert.tier == tier).label(tier) for tier in ("red", "orange", "yellow")),
            count(Alert.triggered.is_(True)).label("triggered"),
            count(overdue_clause(limits, now)).label("overdue"),
            count(due_soon_clause(limits, now)).label("due_soon"),
            count(Alert.status == "new").label("unassigned"),
            count(Alert.assignee_id == (user_id if user_id is not None else -1)).label("mine"),
        )
        .select_from(Alert)
        .where(scope.clause(Alert.village_code), Alert.status.in_(OPEN_STATES))
    )
    row = session.execute(stmt).one()
    return {key: int(value or 0) for key, value in row._mapping.items()}


def villages(session: Session, scope: Scope) -> list[tuple[str, str | None]]:
    """Villages in scope that have alerts, with their names when known, by code."""
    stmt = (
        sa.select(Alert.village_code, sa.func.max(HouseholdProfile.village_name))
        .outerjoin(HouseholdProfile, HouseholdProfile.household_id == Alert.household_id)
        .where(scope.clause(Alert.village_code))
        .group_by(Alert.village_code)
        .order_by(Alert.village_code)
    )
    return [(code, name) for code, name in session.execute(stmt).tuples()]


def latest_alert(session: Session, scope: Scope, household_id: str) -> Alert | None:
    """The household's open alert in scope, else its latest alert in scope (None if none in scope)."""
    stmt = (
        sa.select(Alert)
        .where(Alert.household_id == household_id, scope.clause(Alert.village_code))
        .order_by(Alert.status.in_(OPEN_STATES).desc(), Alert.created_at.desc(), Alert.id.desc())
        .limit(1)
    )
    return session.scalar(stmt)


def workers_in_scope(session: Session, principal: Principal) -> list[User]:
    """Active workers whose regions lie inside the caller's scope (whom a supervisor manages), by name."""
    users = list(
        session.scalars(
            sa.select(User).where(User.role == Role.WORKER.value, User.active.is_(True)).order_by(User.name)
        )
    )
    scope = principal.scope
    return [u for u in users if u.region_codes and all(scope.contains(code) for code in u.region_codes)]


# --- supervisor dashboard ---------------------------------------------------------------------------------


def by_township(session: Session, scope: Scope, *, limits: CaseworkLimits, now: dt.datetime) -> pd.DataFrame:
    """Alerts per township and case status, with overdue open cases: one row per township."""
    stmt = (
        sa.select(
            Alert.township_code,
            Alert.status,
            sa.func.count(),
            sa.func.sum(sa.case((overdue_clause(limits, now), 1), else_=0)),
        )
        .where(scope.clause(Alert.village_code), Alert.status != "superseded")
        .group_by(Alert.township_code, Alert.status)
    )
    rows = pd.DataFrame(
        session.execute(stmt).tuples().all(), columns=["township", "status", "count", "overdue"]
    )
    states = [s for s in STATES if s != "superseded"]
    if rows.empty:
        return pd.DataFrame(columns=["township", *states, "open", "overdue", "total"])
    table = rows.pivot_table(index="township", columns="status", values="count", aggfunc="sum", fill_value=0)
    table = table.reindex(columns=states, fill_value=0).astype(int)
    table["open"] = table[[s for s in states if s in OPEN_STATES]].sum(axis=1)
    table["overdue"] = rows.groupby("township")["overdue"].sum().reindex(table.index).fillna(0).astype(int)
    table["total"] = table[states].sum(axis=1)
    return table.reset_index().sort_values("township")


def by_run(session: Session, scope: Scope, *, runs: int = 12) -> pd.DataFrame:
    """Per scoring run (latest ``runs``, oldest first): alerts in scope, verified, confirmed hardship and
    the confirmed-hardship rate among verified alerts (NaN when none verified yet)."""
    verified = sa.and_(
        Alert.verification_outcome.is_not(None), Alert.verification_outcome != "could_not_reach"
    )
    stmt = (
        sa.select(
            ScoringRun.id,
            ScoringRun.as_of,
            sa.func.count(Alert.id),
            sa.func.sum(sa.case((verified, 1), else_=0)),
            sa.func.sum(sa.case((Alert.verification_outcome == "confirmed_hardship", 1), else_=0)),
        )
        .join(Alert, Alert.run_id == ScoringRun.id)
        .where(scope.clause(Alert.village_code))
        .group_by(ScoringRun.id, ScoringRun.as_of)
        .order_by(ScoringRun.id.desc())
        .limit(runs)
    )
    frame = pd.DataFrame(
        session.execute(stmt).tuples().all(), columns=["run_id", "as_of", "alerts", "verified", "confirmed"]
    )
    frame = frame.iloc[::-1].reset_index(drop=True)
    for column in ("alerts", "verified", "confirmed"):
        frame[column] = frame[column].fillna(0).astype(int)
    frame["confirmed_rate"] = frame["confirmed"] / frame["verified"].where(frame["verified"] > 0)
    return frame


def caseloads(
    session: Session, principal: Principal, *, limits: CaseworkLimits, now: dt.datetime
) -> pd.DataFrame:
    """Open cases per worker in the caller's scope (workers without cases too): open, overdue, per state."""
    scope = principal.scope
    stmt = (
        sa.select(
            Alert.assignee_id,
            Alert.status,
            sa.func.count(),
            sa.func.sum(sa.case((overdue_clause(limits, now), 1), else_=0)),
        )
        .where(
            scope.clause(Alert.village_code), Alert.status.in_(OPEN_STATES), Alert.assignee_id.is_not(None)
        )
        .group_by(Alert.assignee_id, Alert.status)
    )
    rows = pd.DataFrame(
        session.execute(stmt).tuples().all(), columns=["user_id", "status", "count", "overdue"]
    )
    workers = workers_in_scope(session, principal)
    known = {u.id: u for u in workers}
    extra = [int(i) for i in rows["user_id"].unique() if int(i) not in known]
    if extra:  # assigned earlier to someone whose regions changed: still shown, their cases are real
        known.update({u.id: u for u in session.scalars(sa.select(User).where(User.id.in_(extra)))})
    states = [s for s in OPEN_STATES if s != "new"]
    table = pd.DataFrame(0, index=pd.Index(list(known), name="user_id"), columns=[*states, "open", "overdue"])
    if not rows.empty:
        counts = rows.pivot_table(
            index="user_id", columns="status", values="count", aggfunc="sum", fill_value=0
        ).reindex(columns=states, fill_value=0)
        table.loc[counts.index, states] = counts.to_numpy()
        table.loc[counts.index, "overdue"] = rows.groupby("user_id")["overdue"].sum().reindex(counts.index)
    table["open"] = table[states].sum(axis=1)
    table["name"] = [known[i].name for i in table.index]
    table["regions"] = [", ".join(known[i].region_codes) for i in table.index]
    return table.reset_index().sort_values(["open", "name"], ascending=[False, True])


# --- audit log --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """Filters of the audit log page."""

    user: str | None = None
    household_id: str | None = None
    action: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None


def audit_entries(
    session: Session, scope: Scope, filters: AuditFilter, *, limit: int = 50, offset: int = 0
) -> tuple[int, list[AuditLog]]:
    """Audit rows, newest first. Outside an all-regions scope, only rows about households in scope."""
    where: list[sa.ColumnElement[bool]] = []
    if scope.prefixes is not None:
        in_scope = sa.select(Alert.household_id).where(scope.clause(Alert.village_code))
        where.append(AuditLog.household_id.in_(in_scope))
    if filters.user:
        where.append(AuditLog.user_name == filters.user)
    if filters.household_id:
        where.append(AuditLog.household_id == filters.household_id)
    if filters.action:
        where.append(AuditLog.action == filters.action)
    if filters.since:
        where.append(AuditLog.at >= dt.datetime.combine(filters.since, dt.time(), dt.UTC))
    if filters.until:
        where.append(
            AuditLog.at < dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time(), dt.UTC)
        )
    condition = sa.and_(sa.true(), *where)
    total = session.scalar(sa.select(sa.func.count()).select_from(AuditLog).where(condition)) or 0
    rows = session.scalars(
        sa.select(AuditLog).where(condition).order_by(AuditLog.id.desc()).limit(limit).offset(offset)
    )
    return total, list(rows)


def audit_actions(session: Session) -> list[str]:
    """The distinct actions in the audit log (for the filter)."""
    return list(session.scalars(sa.select(AuditLog.action).distinct().order_by(AuditLog.action)))


# --- feedback for modelers ---------------------------------------------------------------------------------

FEEDBACK_COLUMNS = (
    "alert_id",
    "run_id",
    "household_id",
    "village_code",
    "township_code",
    "as_of",
    "model_name",
    "model_version",
    "feature_version",
    "risk",
    "tier",
    "rank",
    "triggered",
    "status",
    "verification_outcome",
    "verified_at",
    "close_reason",
    "closed_at",
    "programme",
    "amount",
    "approved",
    "label",
)
LABELS = {"confirmed_hardship": 1, "not_in_hardship": 0}
"""Verification outcome -> label for retraining (could not reach / moved: no label)."""


def feedback_frame(session: Session, scope: Scope, *, since: dt.date | None = None) -> pd.DataFrame:
    """Verified or closed alerts with their model version and the features they were scored on.

    One row per alert with a verification outcome or a close reason; ``label`` is 1 for confirmed
    hardship, 0 for not in hardship or a false alarm, missing otherwise. Feature columns follow, under
    their registry names (numeric float64, categorical string), as stored with the alert.

    Args:
        session: database session.
        scope: region scope (``Scope(None)`` for all).
        since: only alerts of runs as of this date or later.
    """
    from features import REGISTRY

    where = [
        scope.clause(Alert.village_code),
        sa.or_(Alert.verification_outcome.is_not(None), Alert.close_reason.is_not(None)),
    ]
    if since is not None:
        where.append(Alert.as_of >= since)
    stmt = (
        sa.select(Alert, ScoringRun.feature_version)
        .join(ScoringRun, ScoringRun.id == Alert.run_id)
        .where(*where)
        .order_by(Alert.id)
    )
    pairs = session.execute(stmt).tuples().all()
    alerts = [a for a, _ in pairs]
    proposal = [a.proposal or {} for a in alerts]
    outcome = pd.Series([a.verification_outcome for a in alerts], dtype="string")
    close = pd.Series([a.close_reason for a in alerts], dtype="string")
    label = outcome.map(LABELS).astype("Int8")
    label = label.mask(close.eq("false_alarm").fillna(False).to_numpy() & label.isna().to_numpy(), 0)

    def stamps(values: list[dt.datetime | None]) -> pd.Series:
        return pd.to_datetime(pd.Series(values, dtype=object), utc=True)

    meta = pd.DataFrame(
        {
            "alert_id": pd.array([a.id for a in alerts], dtype="int64"),
            "run_id": pd.array([a.run_id for a in alerts], dtype="int64"),
            "household_id": pd.array([a.household_id for a in alerts], dtype="string"),
            "village_code": pd.array([a.village_code for a in alerts], dtype="string"),
            "township_code": pd.array([a.township_code for a in alerts], dtype="string"),
            "as_of": pd.to_datetime(pd.Series([a.as_of for a in alerts], dtype=object)).astype(
                "datetime64[ns]"
            ),
            "model_name": pd.array([a.model_name for a in alerts], dtype="string"),
            "model_version": pd.array([a.model_version for a in alerts], dtype="string"),
            "feature_version": pd.array([v for _, v in pairs], dtype="string"),
            "risk": np.array([a.risk for a in alerts], dtype=np.float64),
            "tier": pd.array([a.tier for a in alerts], dtype="string"),
            "rank": pd.array([a.rank for a in alerts], dtype="int64"),
            "triggered": np.array([a.triggered for a in alerts], dtype=bool),
            "status": pd.array([a.status for a in alerts], dtype="string"),
            "verification_outcome": outcome.array,
            "verified_at": stamps([a.verified_at for a in alerts]).array,
            "close_reason": close.array,
            "closed_at": stamps([a.closed_at for a in alerts]).array,
            "programme": pd.array([p.get("programme") for p in proposal], dtype="string"),
            "amount": np.array(
                [p.get("amount") if p.get("amount") is not None else np.nan for p in proposal],
                dtype=np.float64,
            ),
            "approved": pd.array(
                [p.get("decision") == "approve" if p else None for p in proposal], dtype="boolean"
            ),
            "label": label.array,
        }
    )
    features = pd.DataFrame.from_records([a.features or {} for a in alerts], index=meta.index)
    clash = sorted(set(features.columns) & set(FEEDBACK_COLUMNS))
    if clash:
        raise ValueError(f"feature names clash with feedback columns: {clash}")
    for name in features.columns:
        spec = REGISTRY.get(name)
        if spec is not None and spec.kind == "categorical":
            features[name] = features[name].astype("string")
        else:
            features[name] = pd.to_numeric(features[name], errors="coerce").astype(np.float64)
    ordered = [n for n in REGISTRY if n in features.columns] + [
        n for n in features.columns if n not in REGISTRY
    ]
    return pd.concat([meta, features[ordered]], axis=1)
