"""The service's tables as a typed SQLAlchemy 2 ORM.

An alert is also the case a social worker works on (issue 5 adds assignment, time limits and the case
timeline by migration): ``status`` holds its state and ``version`` is the optimistic-lock counter that
SQLAlchemy checks on every UPDATE. A household has at most one *open* alert (status not in
``CLOSED_STATUSES``), enforced by a partial unique index so that two concurrent runs cannot both alert it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CLOSED_STATUSES = ("closed", "superseded")
"""Alert statuses that end a case; every other status (``new`` first) is an open case."""

TIERS = ("none", "yellow", "orange", "red")
"""Risk tiers from lowest to highest (黄/橙/红)."""


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC timestamp")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}
    metadata = sa.MetaData(naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


def core_table(mapped: type[Base]) -> sa.Table:
    """The Core table of a mapped class (for statements that skip the ORM's per-object work)."""
    return mapped.metadata.tables[mapped.__tablename__]


class ScoringRun(Base):
    """One scoring of a set of households at an as-of date by one pinned model version."""

    __tablename__ = "scoring_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(sa.Date)
    source: Mapped[str] = mapped_column(sa.String(8))
    model_name: Mapped[str] = mapped_column(sa.String(100))
    model_version: Mapped[str] = mapped_column(sa.String(40))
    feature_version: Mapped[str | None] = mapped_column(sa.String(40))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    n_scored: Mapped[int] = mapped_column(default=0)
    n_alerts: Mapped[int] = mapped_column(default=0)
    n_triggered: Mapped[int] = mapped_column(default=0)
    n_open_case: Mapped[int] = mapped_column(default=0)
    n_capped: Mapped[int] = mapped_column(default=0)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (sa.CheckConstraint("source IN ('batch', 'api')", name="source"),)


class HouseholdScore(Base):
    """Every scored household's risk in a run (compact: no explanation), for risk histories."""

    __tablename__ = "household_scores"

    run_id: Mapped[int] = mapped_column(
        sa.ForeignKey("scoring_runs.id", ondelete="CASCADE"), primary_key=True
    )
    household_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    village_code: Mapped[str] = mapped_column(sa.String(12))
    risk: Mapped[float]
    tier: Mapped[str] = mapped_column(sa.String(8))
    rank: Mapped[int]

    __table_args__ = (sa.Index(None, "household_id", "run_id"),)


class Alert(Base):
    """A household put in front of a social worker: scores, reasons, triggers, assistance, case state."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("scoring_runs.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[str] = mapped_column(sa.String(64))
    village_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    township_code: Mapped[str] = mapped_column(sa.String(9))
    county_code: Mapped[str] = mapped_column(sa.String(6))
    as_of: Mapped[dt.date] = mapped_column(sa.Date)
    model_name: Mapped[str] = mapped_column(sa.String(100))
    model_version: Mapped[str] = mapped_column(sa.String(40))
    risk: Mapped[float]
    raw_score: Mapped[float]
    base_value: Mapped[float]
    tier: Mapped[str] = mapped_column(sa.String(8))
    rank: Mapped[int]
    triggered: Mapped[bool]
    reasons: Mapped[list[Any]]
    triggers: Mapped[list[Any]]
    recommendations: Mapped[list[Any]]
    contributions: Mapped[dict[str, Any]]
    features: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(sa.String(20), default="new", server_default="new")
    superseded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("alerts.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(default=1, server_default=sa.text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Casework (issue 5, migration 0002; the state machine is declared in serving.casework). No foreign
    # key on assignee_id: SQLite cannot add one without rebuilding ``alerts``, and users are deactivated,
    # never deleted.
    assignee_id: Mapped[int | None] = mapped_column(index=True)
    stage_started_at: Mapped[dt.datetime | None]
    verification_outcome: Mapped[str | None] = mapped_column(sa.String(24))
    verified_at: Mapped[dt.datetime | None]
    proposal: Mapped[dict[str, Any] | None]
    close_reason: Mapped[str | None] = mapped_column(sa.String(20))
    closed_at: Mapped[dt.datetime | None]

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        sa.UniqueConstraint("run_id", "household_id"),
        sa.CheckConstraint("tier IN ('none', 'yellow', 'orange', 'red')", name="tier"),
        sa.Index("ix_alerts_open_household", "household_id", unique=True,
                 sqlite_where=sa.text("status NOT IN ('closed', 'superseded')"),
                 postgresql_where=sa.text("status NOT IN ('closed', 'superseded')")),
        sa.Index(None, "household_id", "created_at"),
        sa.Index(None, "risk"),
    )


class User(Base):
    """A person or machine allowed to call the service; only the token's SHA-256 is kept."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    region_codes: Mapped[list[Any]] = mapped_column(default=list)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))  # pages sign-in (migration 0002)

    __table_args__ = (
        sa.CheckConstraint("role IN ('platform', 'worker', 'supervisor', 'modeler', 'admin')", name="role"),
    )


class AuditLog(Base):
    """Who read or changed which household's record, when, why and through which request."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[str] = mapped_column(sa.String(20))
    action: Mapped[str] = mapped_column(sa.String(40))
    outcome: Mapped[str] = mapped_column(sa.String(20))
    household_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    alert_id: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(sa.Text)
    request_path: Mapped[str | None] = mapped_column(sa.String(500))
    detail: Mapped[dict[str, Any] | None]


# --- casework and pages (issue 5, migration 0002) ---------------------------------------------------------


class CaseEvent(Base):
    """One state change of a case (an alert): who, when, from which state to which, the note and fields."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    household_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    village_code: Mapped[str] = mapped_column(sa.String(12))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    user_name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[str] = mapped_column(sa.String(20))
    action: Mapped[str] = mapped_column(sa.String(20))
    from_status: Mapped[str] = mapped_column(sa.String(20))
    to_status: Mapped[str] = mapped_column(sa.String(20))
    version: Mapped[int]
    note: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class HouseholdProfile(Base):
    """A household's de-identified summary as of its latest scoring: ages as bands, minors only counted.

    ``identities`` holds the adults' ID pseudonyms (HMAC) and last 4 characters, shown only through the
    audited reveal; the full ID number is never stored anywhere in doudi.
    """

    __tablename__ = "household_profiles"

    household_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    village_code: Mapped[str] = mapped_column(sa.String(12), index=True)
    village_name: Mapped[str | None] = mapped_column(sa.String(100))
    as_of: Mapped[dt.date] = mapped_column(sa.Date)
    summary: Mapped[dict[str, Any]]
    identities: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A signed-in browser: only the SHA-256 of the session secret is kept, with its CSRF token and expiry."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]


# --- monitoring (issue 6, migration 0003) -----------------------------------------------------------------


class MonitoringReport(Base):
    """A drift, matured-performance or fairness report: headline numbers, why it is flagged, its files.

    Written by ``doudi monitor`` (package ``monitoring``); the API only lists these rows.
    """

    __tablename__ = "monitoring_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(12))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    run_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scoring_runs.id", ondelete="SET NULL"),
                                               index=True)
    as_of: Mapped[dt.date | None] = mapped_column(sa.Date)
    model_name: Mapped[str | None] = mapped_column(sa.String(100))
    model_version: Mapped[str | None] = mapped_column(sa.String(40))
    reference: Mapped[str | None] = mapped_column(sa.String(200))
    current: Mapped[str | None] = mapped_column(sa.String(200))
    flagged: Mapped[bool]
    flags: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(sa.String(16))
    html_path: Mapped[str | None] = mapped_column(sa.String(500))
    json_path: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        sa.CheckConstraint("kind IN ('drift', 'performance', 'fairness')", name="kind"),
        sa.Index(None, "kind", "created_at"),
    )
