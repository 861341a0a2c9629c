"""Database side of monitoring: read scoring runs, their scores, alerts and case outcomes; write report rows.

Case outcomes come from the casework columns of ``alerts`` (``verification_outcome``, ``close_reason``,
issue 5) when the database has them; they are read by column name, so monitoring works on a database
without casework too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from serving.orm import Alert, HouseholdScore, MonitoringReport, ScoringRun, utcnow

OUTCOME_LABELS = {"confirmed_hardship": 1, "not_in_hardship": 0}
"""Home-verification outcome -> hardship confirmed (1) or not (0); could not reach / moved: unknown."""
NOT_CONFIRMED_CLOSURES = ("false_alarm",)
"""A case closed as a false alarm counts as verified not in hardship."""
KINDS = ("drift", "performance", "fairness")


def scoring_runs(
    session: Session, *, sources: Sequence[str] = ("batch",), run_ids: Sequence[int] | None = None
) -> pd.DataFrame:
    """Finished scoring runs, oldest as-of first: id, as_of, source, model_name, model_version, n_scored,
    n_alerts (index ``run_id``)."""
    stmt = sa.select(ScoringRun.id, ScoringRun.as_of, ScoringRun.source, ScoringRun.model_name,
                     ScoringRun.model_version, ScoringRun.feature_version, ScoringRun.n_scored,
                     ScoringRun.n_alerts).where(ScoringRun.finished_at.is_not(None))
    if sources:
        stmt = stmt.where(ScoringRun.source.in_(list(sources)))
    if run_ids is not None:
        stmt = stmt.where(ScoringRun.id.in_([int(r) for r in run_ids]))
    rows = session.execute(stmt.order_by(ScoringRun.as_of, ScoringRun.id)).all()
    frame = pd.DataFrame(rows, columns=["run_id", "as_of", "source", "model_name", "model_version",
                                        "feature_version", "n_scored", "n_alerts"])
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[ns]")
    return frame.set_index("run_id")


def run_scores(session: Session, run_id: int) -> pd.DataFrame:
    """Every household scored in a run (index household_id): village_code, risk, tier, rank, alerted,
    alert_id and ``open_case``: already under a case opened by an earlier run and not closed when this
    run was scored (the service does not alert those again unless their tier rises, yet a social worker
    is looking at them)."""
    scores = session.execute(
        sa.select(HouseholdScore.household_id, HouseholdScore.village_code, HouseholdScore.risk,
                  HouseholdScore.tier, HouseholdScore.rank).where(HouseholdScore.run_id == run_id)
    ).all()
    frame = pd.DataFrame(scores, columns=["household_id", "village_code", "risk", "tier", "rank"])
    alerts = session.execute(sa.select(Alert.household_id, Alert.id).where(Alert.run_id == run_id)).all()
    alert_id = pd.Series({h: i for h, i in alerts}, dtype="Int64")
    frame = frame.set_index(pd.Index(frame["household_id"].astype(str), name="household_id")).drop(
        columns="household_id")
    frame["risk"] = frame["risk"].astype(np.float64)
    frame["alert_id"] = alert_id.reindex(frame.index)
    frame["alerted"] = frame["alert_id"].notna().to_numpy()
    started = session.scalar(sa.select(ScoringRun.started_at).where(ScoringRun.id == run_id))
    scored = sa.select(HouseholdScore.household_id).where(HouseholdScore.run_id == run_id)
    earlier = session.scalars(
        sa.select(Alert.household_id).distinct().where(
            Alert.run_id != run_id, Alert.created_at < started, Alert.household_id.in_(scored),
            sa.or_(Alert.closed_at.is_(None), Alert.closed_at > started))
    ).all() if started is not None else []
    frame["open_case"] = frame.index.isin(pd.Index(earlier, dtype=object))
    return frame


def case_outcomes(session: Session, run_id: int) -> pd.DataFrame:
    """Verified outcomes of a run's alerts (index household_id): ``verification_outcome``,
    ``close_reason`` and ``confirmed`` (1 hardship confirmed, 0 not, missing when unknown).

    Empty when the database has no casework columns.
    """
    columns = {c["name"] for c in sa.inspect(session.connection()).get_columns("alerts")}
    empty = pd.DataFrame({"verification_outcome": pd.Series(dtype="string"),
                          "close_reason": pd.Series(dtype="string"),
                          "confirmed": pd.Series(dtype="Int8")},
                         index=pd.Index([], name="household_id", dtype=object))
    if not {"verification_outcome", "close_reason"} <= columns:
        return empty
    table = sa.table("alerts", sa.column("run_id"), sa.column("household_id"),
                     sa.column("verification_outcome"), sa.column("close_reason"))
    rows = session.execute(
        sa.select(table.c.household_id, table.c.verification_outcome, table.c.close_reason)
        .where(table.c.run_id == run_id)
        .where(sa.or_(table.c.verification_outcome.is_not(None), table.c.close_reason.is_not(None)))
    ).all()
    if not rows:
        return empty
    frame = pd.DataFrame(rows, columns=["household_id", "verification_outcome", "close_reason"])
    frame = frame.set_index(pd.Index(frame["household_id"].astype(str), name="household_id")).drop(
        columns="household_id")
    return with_confirmed(frame)


def with_confirmed(frame: pd.DataFrame) -> pd.DataFrame:
    """Add ``confirmed`` (Int8) from ``verification_outcome`` and ``close_reason``."""
    out = frame.copy()
    outcome = out["verification_outcome"].astype("string")
    close = (out["close_reason"].astype("string") if "close_reason" in out
             else pd.Series(pd.NA, index=out.index, dtype="string"))
    confirmed = outcome.map(OUTCOME_LABELS).astype("Int8")
    false_alarm = close.isin(NOT_CONFIRMED_CLOSURES).fillna(False).to_numpy(bool)
    confirmed = confirmed.mask(false_alarm & confirmed.isna().to_numpy(), 0)
    out["verification_outcome"] = outcome
    out["close_reason"] = close
    out["confirmed"] = confirmed
    return out


def save_report(
    session: Session,
    *,
    kind: str,
    flags: list[str],
    summary: dict[str, Any],
    config_hash: str,
    run_id: int | None = None,
    as_of: dt.date | None = None,
    model_name: str | None = None,
    model_version: str | None = None,
    reference: str | None = None,
    current: str | None = None,
    html_path: str | None = None,
    json_path: str | None = None,
    replace: bool = False,
) -> int:
    """Store one report row (in the caller's transaction) and return its id.

    Args:
        replace: first delete earlier reports of the same kind for the same run (a matured-performance
            report is recomputed as more records arrive; the latest one stands).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}; use one of {', '.join(KINDS)}")
    if replace and run_id is not None:
        session.execute(sa.delete(MonitoringReport).where(MonitoringReport.kind == kind,
                                                          MonitoringReport.run_id == run_id))
    row = MonitoringReport(
        kind=kind, created_at=utcnow(), run_id=run_id, as_of=as_of, model_name=model_name,
        model_version=model_version, reference=(reference or "")[:200] or None,
        current=(current or "")[:200] or None, flagged=bool(flags), flags=list(flags), summary=summary,
        config_hash=config_hash, html_path=html_path, json_path=json_path,
    )
    session.add(row)
    session.flush()
    return int(row.id)


def performance_history(session: Session) -> pd.DataFrame:
    """The stored matured-performance reports, one per run, oldest as-of first (index run_id): as_of,
    model_version, flagged and the headline metrics."""
    rows = session.execute(
        sa.select(MonitoringReport.run_id, MonitoringReport.as_of, MonitoringReport.model_version,
                  MonitoringReport.flagged, MonitoringReport.summary)
        .where(MonitoringReport.kind == "performance", MonitoringReport.run_id.is_not(None))
        .order_by(MonitoringReport.as_of, MonitoringReport.run_id, MonitoringReport.id)
    ).all()
    records = [{"run_id": run_id, "as_of": as_of, "model_version": version, "flagged": flagged,
                **(summary.get("metrics") or {}),
                "alert_confirmed_rate": summary.get("alert_confirmed_rate"),
                "alert_label_rate": summary.get("alert_label_rate")}
               for run_id, as_of, version, flagged, summary in rows]
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(index=pd.Index([], name="run_id"))
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[ns]")
    return frame.drop_duplicates("run_id", keep="last").set_index("run_id")
