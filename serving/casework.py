"""The case behind each alert, declared in one place: states, stages, actions, who may do each, time limits.

Pages and the API (``POST /v1/alerts/{id}/transitions``) both call ``transition``; nothing else changes a
case's state (the scoring run only marks an open case ``superseded`` when a higher tier replaces it).

    new ──assign──▶ assigned ──verify──▶ verified ──propose──▶ proposed ──approve──▶ approved
                      │  ▲                  │  ▲                  │                     │
                      │  └─verify: could────┘  └────reject────────┘                     │
                      │    not reach (stays assigned)                                   │
                      └──────────────── close (reason allowed by state) ◀───────────────┘
    transfer: hand an assigned..approved case to another worker (state and clock unchanged)

Stages and their clocks: ``assignment`` (new), ``verification`` (assigned), ``decision`` (verified and
proposed share one clock: a rejected proposal does not restart it), ``closing`` (approved). A stage's
clock starts when the case enters it (``stage_started_at``; the alert's creation for ``new``); its time
limit comes from configuration (``casework:`` in ``doudi/policy.yaml``, ``doudi.policy.CaseworkLimits``)
and is applied when read, so a changed limit applies to open cases at once.

Every transition is one transaction: the scoped read (another region's case is a 404), the expected
version (a stale one is a 409 and nothing is written), the role and assignee check, field validation
(each problem names its field, in Chinese and English), the update (SQLAlchemy's version counter guards
the UPDATE against a concurrent writer), the timeline event and the audit row.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from doudi.contract import PROGRAMMES
from doudi.policy import CaseworkLimits
from serving import store
from serving.auth import Principal, Role, Scope
from serving.db import transaction
from serving.errors import Conflict, DoudiError, Forbidden, InvalidInput
from serving.orm import Alert, CaseEvent, User, utcnow

STAGES = ("assignment", "verification", "decision", "closing")
"""Stages with a time limit; each is a field of ``CaseworkLimits``."""


@dataclass(frozen=True)
class State:
    """A case state: the stage whose clock runs in it (None once the case has ended)."""

    name: str
    stage: str | None


STATES: dict[str, State] = {
    s.name: s
    for s in (
        State("new", "assignment"),
        State("assigned", "verification"),
        State("verified", "decision"),
        State("proposed", "decision"),
        State("approved", "closing"),
        State("closed", None),
        State("superseded", None),  # a later alert with a higher tier replaced this one (set by scoring)
    )
}
OPEN_STATES = tuple(name for name, state in STATES.items() if state.stage is not None)

OUTCOMES = ("confirmed_hardship", "not_in_hardship", "could_not_reach", "moved")
"""Home-verification outcomes (核实结果)."""

CLOSE_REASONS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    # reason: (states it may close from, verification outcomes it needs (None: any or none))
    "resolved": (("verified", "approved"), ("confirmed_hardship",)),
    "false_alarm": (("verified",), ("not_in_hardship",)),
    "declined": (("verified", "approved"), ("confirmed_hardship",)),
    "moved_away": (("assigned", "verified"), None),
    "duplicate": (("new", "assigned"), None),
}
"""Close reasons (结案原因) and when each is allowed."""

STAFF = frozenset({Role.SUPERVISOR, Role.ADMIN, Role.PLATFORM})
"""Roles that may act on any case in their scope (the platform syncs the states it records)."""
ALL_CASE_ROLES = STAFF | {Role.WORKER}


@dataclass(frozen=True)
class Action:
    """A transition: from which states, to which (None: unchanged), by whom, with which required fields.

    ``assignee_only``: a worker may do it only on a case assigned to them (staff always may).
    """

    name: str
    sources: tuple[str, ...]
    target: str | None
    roles: frozenset[Role]
    assignee_only: bool
    required: tuple[str, ...]


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("assign", ("new",), "assigned", ALL_CASE_ROLES, False, ("assignee",)),
        Action(
            "transfer",
            ("assigned", "verified", "proposed", "approved"),
            None,
            ALL_CASE_ROLES,
            True,
            ("assignee",),
        ),
        Action("verify", ("assigned",), "verified", ALL_CASE_ROLES, True, ("outcome", "findings")),
        Action(
            "propose", ("verified",), "proposed", ALL_CASE_ROLES, True, ("programme", "amount", "start_date")
        ),
        Action("approve", ("proposed",), "approved", STAFF, False, ()),
        Action("reject", ("proposed",), "verified", STAFF, False, ("note",)),
        Action(
            "close",
            ("new", "assigned", "verified", "approved"),
            "closed",
            ALL_CASE_ROLES,
            True,
            ("close_reason",),
        ),
    )
}
ActionName = Literal["assign", "transfer", "verify", "propose", "approve", "reject", "close"]


class TransitionRequest(BaseModel):
    """A case action with the version of the case the caller saw (body of the transitions API)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: ActionName
    expected_version: int = Field(ge=1, description="The case version you saw; a newer one is a 409.")
    note: str | None = Field(None, max_length=2000)
    assignee: str | None = Field(None, max_length=100, description="assign/transfer: the worker's user name.")
    outcome: Literal[OUTCOMES] | None = None  # type: ignore[valid-type]
    findings: str | None = Field(None, max_length=4000, description="verify: what the home visit found.")
    programme: Literal[PROGRAMMES] | None = None  # type: ignore[valid-type]
    amount: float | None = Field(None, description="propose: yuan; monthly for dibao, tekun, edge.")
    start_date: dt.date | None = None
    close_reason: Literal[tuple(CLOSE_REASONS)] | None = None  # type: ignore[valid-type]


MAX_AMOUNT = 100_000.0
MIN_FINDINGS = 4


class TransitionNotAllowed(DoudiError):
    """The action does not apply to the case's current state."""

    status_code: ClassVar[int] = 409
    code: ClassVar[str] = "transition_not_allowed"


@dataclass(frozen=True)
class Problem:
    """A field-level validation problem: the message is looked up by ``code`` in the page catalogue."""

    field: str
    code: str
    params: dict[str, Any]


def stage_limit(limits: CaseworkLimits, status: str) -> int | None:
    """Days allowed in the stage of ``status`` (None for an ended case)."""
    stage = STATES[status].stage if status in STATES else None
    return None if stage is None else int(getattr(limits, stage))


def due_at(alert: Alert, limits: CaseworkLimits) -> dt.datetime | None:
    """When the current stage must be done (None for an ended case)."""
    days = stage_limit(limits, alert.status)
    if days is None:
        return None
    return (alert.stage_started_at or alert.created_at) + dt.timedelta(days=days)


def overdue_clause(limits: CaseworkLimits, now: dt.datetime) -> sa.ColumnElement[bool]:
    """SQL condition: the case is open and past the time limit of its stage."""
    started = sa.func.coalesce(Alert.stage_started_at, Alert.created_at)
    parts = []
    for stage in STAGES:
        states = [name for name, state in STATES.items() if state.stage == stage]
        cutoff = now - dt.timedelta(days=int(getattr(limits, stage)))
        parts.append(sa.and_(Alert.status.in_(states), started < cutoff))
    return sa.or_(*parts)


def due_soon_clause(limits: CaseworkLimits, now: dt.datetime) -> sa.ColumnElement[bool]:
    """SQL condition: open, not yet overdue, due within ``limits.due_soon`` days."""
    return sa.and_(
        overdue_clause(limits, now + dt.timedelta(days=limits.due_soon)), sa.not_(overdue_clause(limits, now))
    )


def allowed_actions(alert: Alert, principal: Principal) -> list[str]:
    """The actions ``principal`` may take on the case now (for showing forms and buttons)."""
    out = []
    for action in ACTIONS.values():
        if alert.status not in action.sources or principal.role not in action.roles:
            continue
        if principal.role is Role.WORKER and action.assignee_only and alert.assignee_id != principal.user_id:
            continue
        if action.name == "close" and not _close_reasons_for(alert):
            continue
        if action.name == "propose" and alert.verification_outcome != "confirmed_hardship":
            continue
        if action.name == "approve" and (alert.proposal or {}).get("by_id") == principal.user_id:
            continue
        out.append(action.name)
    return out


def _close_reasons_for(alert: Alert) -> list[str]:
    return [
        reason
        for reason, (sources, outcomes) in CLOSE_REASONS.items()
        if alert.status in sources and (outcomes is None or alert.verification_outcome in outcomes)
    ]


def close_reasons_for(alert: Alert) -> list[str]:
    """The close reasons allowed for the case now."""
    return _close_reasons_for(alert)


def workers_for(session: Session, village_code: str) -> list[User]:
    """Active workers whose regions cover a village (who a case there may be assigned to), by name."""
    users = session.scalars(
        sa.select(User).where(User.role == Role.WORKER.value, User.active.is_(True)).order_by(User.name)
    )
    return [u for u in users if Scope(tuple(u.region_codes)).contains(village_code)]


def _problems(
    session: Session,
    alert: Alert,
    principal: Principal,
    action: Action,
    request: TransitionRequest,
    today: dt.date,
) -> tuple[list[Problem], User | None]:
    problems = [
        Problem(name, "required", {}) for name in action.required if getattr(request, name) in (None, "")
    ]
    missing = {p.field for p in problems}
    assignee: User | None = None
    if "assignee" in action.required and "assignee" not in missing:
        assignee = next(
            (u for u in workers_for(session, alert.village_code) if u.name == request.assignee), None
        )
        if assignee is None:
            problems.append(Problem("assignee", "assignee_unknown", {}))
        elif principal.role is Role.WORKER and action.name == "assign" and assignee.id != principal.user_id:
            problems.append(Problem("assignee", "assign_self_only", {}))
        elif action.name == "transfer" and assignee.id == alert.assignee_id:
            problems.append(Problem("assignee", "assignee_same", {}))
    if action.name == "verify" and "findings" not in missing and len(request.findings or "") < MIN_FINDINGS:
        problems.append(Problem("findings", "too_short", {"min": MIN_FINDINGS}))
    if action.name == "propose":
        if "amount" not in missing and not (0 < float(request.amount or 0) <= MAX_AMOUNT):
            problems.append(Problem("amount", "amount_range", {"max": f"{MAX_AMOUNT:,.0f}"}))
        if "start_date" not in missing and request.start_date is not None:
            earliest, latest = alert.as_of, today + dt.timedelta(days=366)
            if not earliest <= request.start_date <= latest:
                problems.append(
                    Problem(
                        "start_date",
                        "date_range",
                        {"earliest": earliest.isoformat(), "latest": latest.isoformat()},
                    )
                )
    if action.name == "close" and "close_reason" not in missing:
        if request.close_reason not in _close_reasons_for(alert):
            problems.append(Problem("close_reason", "close_reason_state", {}))
    return problems, assignee


def _apply(
    alert: Alert,
    principal: Principal,
    action: Action,
    request: TransitionRequest,
    assignee: User | None,
    now: dt.datetime,
) -> tuple[str, dict[str, Any]]:
    """Change the case; return the new status and the fields recorded in the timeline."""
    source = alert.status
    target = action.target or source
    data: dict[str, Any] = {}
    if assignee is not None:
        data["assignee"] = assignee.name
        alert.assignee_id = assignee.id
    if action.name == "verify":
        data.update(outcome=request.outcome, findings=request.findings)
        alert.verification_outcome = request.outcome
        alert.verified_at = now
        if request.outcome == "could_not_reach":
            target = source  # a visit attempt: the case waits for the next visit, on the same clock
    elif action.name == "propose":
        proposal = {
            "programme": request.programme,
            "amount": round(float(request.amount or 0), 2),
            "start_date": request.start_date.isoformat() if request.start_date else None,
            "by": principal.name,
            "by_id": principal.user_id,
            "at": now.isoformat(),
        }
        data.update({k: proposal[k] for k in ("programme", "amount", "start_date")})
        alert.proposal = proposal
    elif action.name in ("approve", "reject"):
        decided = {
            **(alert.proposal or {}),
            "decision": action.name,
            "decided_by": principal.name,
            "decided_at": now.isoformat(),
        }
        alert.proposal = decided
        data["proposal"] = {k: decided.get(k) for k in ("programme", "amount", "start_date")}
    elif action.name == "close":
        data["close_reason"] = request.close_reason
        alert.close_reason = request.close_reason
        alert.closed_at = now
    if STATES[target].stage != STATES[source].stage:
        alert.stage_started_at = now
    alert.status = target
    return target, data


def transition(
    sessions: sessionmaker[Session],
    principal: Principal,
    alert_id: int,
    request: TransitionRequest,
    *,
    limits: CaseworkLimits,
    now: Callable[[], dt.datetime] = utcnow,
    request_path: str | None = None,
    attempts: int = 3,
) -> dict[str, Any]:
    """Apply one case action in one transaction and return the case as ``case_view`` shows it.

    Raises:
        NotFound: no such alert in the caller's regions.
        Forbidden: the caller's role may not take this action, or the case is someone else's.
        Conflict: ``expected_version`` is not the case's current version, or another action changed
            the case while this one was being written; nothing is written.
        TransitionNotAllowed: the action does not apply in the case's current state.
        InvalidInput: missing or invalid fields; ``detail`` has field, type and the message in
            English (``message``) and Chinese (``message_zh``).
    """
    for attempt in range(attempts):
        try:
            return _transition_once(
                sessions, principal, alert_id, request, limits=limits, now=now(), request_path=request_path
            )
        except OperationalError as error:
            # SQLite: a write transaction that read before another writer committed cannot be upgraded
            # ("database is locked"); retrying reads the new state, so a real conflict is then reported
            # by the version check below.
            if "locked" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _transition_once(
    sessions: sessionmaker[Session],
    principal: Principal,
    alert_id: int,
    request: TransitionRequest,
    *,
    limits: CaseworkLimits,
    now: dt.datetime,
    request_path: str | None,
) -> dict[str, Any]:
    from serving.i18n import message

    action = ACTIONS[request.action]
    try:
        with transaction(sessions) as session:
            alert = store.get_alert(session, principal.scope, alert_id)
            if principal.role not in action.roles:
                raise Forbidden(f"role {principal.role.value} may not {action.name} a case")
            if alert.version != request.expected_version:
                raise Conflict(
                    f"case {alert_id} changed since you read it (version "
                    f"{request.expected_version} -> {alert.version}); nothing was saved: "
                    "reload and try again"
                )
            if alert.status not in action.sources:
                raise TransitionNotAllowed(f"cannot {action.name} a case that is {alert.status}")
            if (
                principal.role is Role.WORKER
                and action.assignee_only
                and alert.assignee_id != principal.user_id
            ):
                raise Forbidden(f"case {alert_id} is assigned to another worker")
            if action.name == "approve" and (alert.proposal or {}).get("by_id") == principal.user_id:
                raise Forbidden("you proposed this assistance: another supervisor must approve it")
            problems, assignee = _problems(session, alert, principal, action, request, now.date())
            if problems:
                detail = [
                    {
                        "field": p.field,
                        "type": p.code,
                        "message": message("en", f"error.{p.code}", **p.params),
                        "message_zh": message("zh", f"error.{p.code}", **p.params),
                    }
                    for p in problems
                ]
                raise InvalidInput(f"{len(problems)} invalid field(s)", detail=detail)
            source = alert.status
            target, data = _apply(alert, principal, action, request, assignee, now)
            session.flush()  # the versioned UPDATE: a concurrent writer makes it match no row
            session.add(
                CaseEvent(
                    alert_id=alert.id,
                    household_id=alert.household_id,
                    village_code=alert.village_code,
                    at=now,
                    user_id=principal.user_id,
                    user_name=principal.name,
                    role=principal.role.value,
                    action=action.name,
                    from_status=source,
                    to_status=target,
                    version=alert.version,
                    note=request.note or None,
                    data=data,
                )
            )
            store.audit(
                session,
                principal,
                f"case_{action.name}",
                household_id=alert.household_id,
                alert_id=alert.id,
                request_path=request_path,
                detail={"from": source, "to": target, "version": alert.version},
            )
            session.flush()
            assignee_name = assignee.name if assignee is not None else _user_name(session, alert.assignee_id)
            return case_view(alert, principal, limits=limits, now=now, assignee_name=assignee_name)
    except StaleDataError:
        raise Conflict(
            f"case {alert_id} was changed by someone else at the same moment; nothing was "
            "saved: reload and try again"
        ) from None


def _user_name(session: Session, user_id: int | None) -> str | None:
    return None if user_id is None else session.scalar(sa.select(User.name).where(User.id == user_id))


def case_view(
    alert: Alert,
    principal: Principal,
    *,
    limits: CaseworkLimits,
    now: dt.datetime,
    assignee_name: str | None = None,
) -> dict[str, Any]:
    """The case state of an alert as the API returns it: status, stage, due date, overdue, allowed actions."""
    due = due_at(alert, limits)
    return {
        "alert_id": alert.id,
        "household_id": alert.household_id,
        "status": alert.status,
        "version": alert.version,
        "stage": STATES[alert.status].stage if alert.status in STATES else None,
        "stage_started_at": alert.stage_started_at or alert.created_at,
        "due_at": due,
        "overdue": bool(due is not None and now > due),
        "due_soon": bool(due is not None and now <= due <= now + dt.timedelta(days=limits.due_soon)),
        "assignee": assignee_name,
        "verification_outcome": alert.verification_outcome,
        "verified_at": alert.verified_at,
        "proposal": {k: v for k, v in (alert.proposal or {}).items() if k != "by_id"} or None,
        "close_reason": alert.close_reason,
        "closed_at": alert.closed_at,
        "allowed_actions": allowed_actions(alert, principal),
    }


def timeline(session: Session, scope: Scope, household_id: str) -> list[dict[str, Any]]:
    """A household's case history, oldest first: each alert's creation and every case event, in scope.

    Raises:
        NotFound: no alert of this household in the caller's regions.
    """
    from serving.errors import NotFound

    alerts = list(
        session.scalars(
            sa.select(Alert)
            .where(Alert.household_id == household_id, scope.clause(Alert.village_code))
            .order_by(Alert.created_at, Alert.id)
        )
    )
    if not alerts:
        raise NotFound(f"household {household_id} not found")
    items: list[dict[str, Any]] = [
        {
            "at": a.created_at,
            "kind": "alert",
            "alert_id": a.id,
            "tier": a.tier,
            "risk": a.risk,
            "as_of": a.as_of,
            "model_version": a.model_version,
            "triggered": a.triggered,
        }
        for a in alerts
    ]
    events = session.scalars(
        sa.select(CaseEvent)
        .where(CaseEvent.alert_id.in_([a.id for a in alerts]))
        .order_by(CaseEvent.at, CaseEvent.id)
    )
    items += [
        {
            "at": e.at,
            "kind": "event",
            "alert_id": e.alert_id,
            "action": e.action,
            "user": e.user_name,
            "role": e.role,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "note": e.note,
            "data": e.data,
            "version": e.version,
        }
        for e in events
    ]
    items.sort(key=lambda item: (item["at"], 0 if item["kind"] == "alert" else 1))
    return items
