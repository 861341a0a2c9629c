"""Case actions over the API, so the monitoring platform can sync case states (same state machine as the
pages: ``serving.casework``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from serving import casework, store
from serving.auth import Permission
from serving.db import transaction
from serving.deps import Caller, DbSession, State
from serving.errors import NotFound
from serving.orm import User, utcnow

router = APIRouter(tags=["cases"])


@router.post("/v1/alerts/{alert_id}/transitions")
async def post_transition(
    alert_id: int, body: casework.TransitionRequest, request: Request, state: State, caller: Caller
) -> dict[str, Any]:
    """Apply a case action (assign, transfer, verify, propose, approve, reject, close) with the case version
    you saw: a stale ``expected_version`` is a 409 and nothing is written; another region's case is a 404."""
    caller.require(Permission.READ_ALERTS)
    return await run_in_threadpool(
        casework.transition,
        state.sessions,
        caller,
        alert_id,
        body,
        limits=state.policy.casework,
        request_path=str(request.url.path),
    )


@router.get("/v1/alerts/{alert_id}/case")
def get_case(
    alert_id: int, request: Request, state: State, caller: Caller, session: DbSession
) -> dict[str, Any]:
    """The case of an alert: state, stage, due date, allowed actions for you, and the household's timeline.
    The read is audited."""
    caller.require(Permission.READ_ALERTS)
    try:
        alert = store.get_alert(session, caller.scope, alert_id)
    except NotFound:
        with transaction(state.sessions) as audit_session:
            store.audit(
                audit_session,
                caller,
                "read_case",
                outcome="not_found",
                alert_id=alert_id,
                request_path=str(request.url.path),
            )
        raise
    assignee = session.get(User, alert.assignee_id) if alert.assignee_id is not None else None
    view = casework.case_view(
        alert,
        caller,
        limits=state.policy.casework,
        now=utcnow(),
        assignee_name=assignee.name if assignee else None,
    )
    view["timeline"] = casework.timeline(session, caller.scope, alert.household_id)
    with transaction(state.sessions) as audit_session:
        store.audit(
            audit_session,
            caller,
            "read_case",
            household_id=alert.household_id,
            alert_id=alert.id,
            request_path=str(request.url.path),
        )
    return view
