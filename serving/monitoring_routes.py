"""Monitoring reports in the API (issue 6): list and open the stored drift, performance and fairness reports.

Only reads the ``monitoring_reports`` rows and the report files they point to; the reports are made by
``doudi monitor`` (package ``monitoring``, never imported here). Modelers and admins only: reports hold
aggregates, but they describe the model, which is a modeler's business, not a caseworker's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from serving.auth import Principal, Role
from serving.deps import Caller, DbSession, State
from serving.errors import Forbidden, NotFound
from serving.orm import MonitoringReport

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])
MONITORING_ROLES = frozenset({Role.MODELER, Role.ADMIN})
Kind = Literal["drift", "performance", "fairness"]


class ReportOut(BaseModel):
    """One stored monitoring report (without its full summary)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    created_at: dt.datetime
    run_id: int | None
    as_of: dt.date | None
    model_name: str | None
    model_version: str | None
    reference: str | None
    current: str | None
    flagged: bool
    flags: list[str]
    config_hash: str
    has_html: bool


class ReportDetail(ReportOut):
    """A report with its headline numbers."""

    summary: dict[str, Any]


class ReportPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ReportOut]


def require_monitoring(caller: Principal) -> None:
    """Raise ``Forbidden`` unless the caller is a modeler or an admin."""
    if caller.role not in MONITORING_ROLES:
        raise Forbidden(f"role {caller.role.value} may not read monitoring reports (modeler or admin only)")


def list_reports(session: Session, *, kind: str | None = None, run_id: int | None = None,
                 flagged: bool | None = None, limit: int = 50, offset: int = 0
                 ) -> tuple[int, list[MonitoringReport]]:
    """Reports matching the filters, newest first, with the total count."""
    conditions: list[sa.ColumnElement[bool]] = []
    if kind is not None:
        conditions.append(MonitoringReport.kind == kind)
    if run_id is not None:
        conditions.append(MonitoringReport.run_id == run_id)
    if flagged is not None:
        conditions.append(MonitoringReport.flagged.is_(flagged))
    where = sa.and_(sa.true(), *conditions)
    total = session.scalar(sa.select(sa.func.count()).select_from(MonitoringReport).where(where)) or 0
    newest = (MonitoringReport.created_at.desc(), MonitoringReport.id.desc())
    stmt = sa.select(MonitoringReport).where(where).order_by(*newest).limit(limit).offset(offset)
    return total, list(session.scalars(stmt))


def latest_reports(session: Session, *, limit: int = 5) -> list[MonitoringReport]:
    """The newest reports of each kind (for a dashboard section)."""
    rows: list[MonitoringReport] = []
    for kind in ("drift", "performance", "fairness"):
        rows += list_reports(session, kind=kind, limit=limit)[1]
    return sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)


def _out(report: MonitoringReport, model: type[ReportOut] = ReportOut) -> ReportOut:
    data = {name: getattr(report, name) for name in model.model_fields if name != "has_html"}
    return model(**data, has_html=bool(report.html_path))


def _get(session: Session, report_id: int) -> MonitoringReport:
    report = session.get(MonitoringReport, report_id)
    if report is None:
        raise NotFound(f"monitoring report {report_id} not found")
    return report


@router.get("/reports", response_model=ReportPage)
def get_monitoring_reports(
    caller: Caller, session: DbSession,
    kind: Kind | None = None,
    run_id: int | None = None,
    flagged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Stored monitoring reports (drift, matured performance, fairness), newest first, paginated."""
    require_monitoring(caller)
    total, rows = list_reports(session, kind=kind, run_id=run_id, flagged=flagged, limit=limit, offset=offset)
    return {"total": total, "limit": limit, "offset": offset, "items": [_out(r) for r in rows]}


@router.get("/reports/{report_id}", response_model=ReportDetail)
def get_monitoring_report(report_id: int, caller: Caller, session: DbSession) -> ReportOut:
    """One report with its headline numbers (per-feature drift, metrics by run, fairness by group)."""
    require_monitoring(caller)
    return _out(_get(session, report_id), ReportDetail)


@router.get("/reports/{report_id}/html", response_class=FileResponse)
def get_monitoring_report_html(report_id: int, caller: Caller, session: DbSession, state: State
                               ) -> FileResponse:
    """The report as a page (Evidently's report for drift); only files under the data folder are served."""
    require_monitoring(caller)
    report = _get(session, report_id)
    if not report.html_path:
        raise NotFound(f"monitoring report {report_id} has no page")
    path = Path(report.html_path).resolve()
    root = Path(state.settings.data_dir).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound(f"the page of monitoring report {report_id} is not available")
    return FileResponse(path, media_type="text/html; charset=utf-8")
