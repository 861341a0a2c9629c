"""The HTTP API: an app factory whose lifespan pins the champion model; thin routes over service functions.

Routes translate HTTP to calls of ``serving.service`` / ``serving.store`` and back. Every read of a
household's detail is written to the audit log with who, when, what and why (``reason``).
"""

from __future__ import annotations

import gc
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from typing import Annotated, Any

import anyio
import pandas as pd
from fastapi import FastAPI, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from doudi.frames import column_arrays
from doudi.io import World
from doudi.policy import PolicyConfig, load_policy
from doudi.settings import Settings, disable_telemetry
from serving import schemas, store
from serving.auth import Permission, authenticate
from serving.champion import ServingModel, load_champion
from serving.db import (
    checkpoint,
    deferred_checkpoints,
    is_sqlite_file,
    make_engine,
    session_factory,
    transaction,
    upgrade,
)
from serving.deps import AppState, AuthorizationHeader, Caller, DbSession, PinnedModel, State, pinned_model
from serving.errors import BadRequest, DoudiError, InvalidInput, NotFound, NotReady
from serving.metrics import Metrics, MetricsMiddleware

REASON_HEADER = "X-Doudi-Reason"
_RESPONSE_COLUMNS = ("village_code", "in_cohort", "risk", "raw_score", "base_value", "tier", "rank",
                     "triggered", "alerted", "not_alerted_because", "reasons", "triggers", "recommendations",
                     "contributions")
"""The columns of ``ScoredBatch.scores`` that a score response returns."""
ReasonQuery = Annotated[str | None, Query(max_length=500, description="Why you open this household.")]
ReasonHeader = Annotated[str | None, Header(max_length=500, description="Alternative to ?reason=.")]


def validation_detail(errors: list[Any]) -> list[dict[str, Any]]:
    """Pydantic / FastAPI errors as table, household index, row index and field, without any input value.

    ``("households", 3, "income", 5, "amount")`` -> table income, household 3, row 5, field amount;
    ``("standards", 2, "cpi_yoy")`` -> table standards, row 2; query and header parameters keep their name.
    """
    out = []
    for error in errors:
        loc = [part for part in error.get("loc", ()) if part not in ("body",)]
        item: dict[str, Any] = {"table": None, "household_index": None, "index": None, "field": None,
                                "type": error.get("type", "invalid")}
        if loc and loc[0] in ("query", "path", "header"):
            item["location"], item["field"] = loc[0], ".".join(str(p) for p in loc[1:]) or None
        elif len(loc) >= 2 and loc[0] == "households" and isinstance(loc[1], int):
            item["household_index"] = loc[1]
            rest = loc[2:]
            if rest and rest[0] == "household":
                item["table"], rest = "households", rest[1:]
            elif rest and isinstance(rest[0], str):
                item["table"], rest = rest[0], rest[1:]
                if rest and isinstance(rest[0], int):
                    item["index"], rest = rest[0], rest[1:]
            item["field"] = ".".join(str(p) for p in rest) or None
        elif len(loc) >= 2 and loc[0] in schemas.REFERENCE_TABLES and isinstance(loc[1], int):
            item["table"], item["index"] = loc[0], loc[1]
            item["field"] = ".".join(str(p) for p in loc[2:]) or None
        else:
            item["field"] = ".".join(str(p) for p in loc) or None
        item["message"] = _safe_message(error)
        out.append(item)
    return out


def _safe_message(error: dict[str, Any]) -> str:
    """Pydantic's message unless it could contain the submitted value (then a generic one by type)."""
    message = str(error.get("msg", "invalid value"))
    value = error.get("input")
    text = str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""
    if text and text in message:
        return f"invalid value ({error.get('type', 'invalid')})"
    return message


def _error_response(error: DoudiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status_code)


def _reason(query: str | None, header: str | None) -> str:
    reason = (query or header or "").strip()
    if not reason:
        raise BadRequest(f"say why you open this household: add ?reason=... or the {REASON_HEADER} header")
    return reason[:500]


def _model_info(model: ServingModel | None) -> dict[str, str]:
    if model is None:
        return {"name": "", "version": ""}
    return {"name": model.name, "version": model.version}


CHECKPOINT_SECONDS = 2.0
"""How often the server copies SQLite's WAL into the database (see ``serving.db.deferred_checkpoints``)."""
_log = logging.getLogger(__name__)


async def _checkpoints(db: Engine) -> None:
    """Checkpoint the WAL every ``CHECKPOINT_SECONDS``, in a worker thread, until cancelled. A failed
    checkpoint is logged and tried again the next time (the WAL only grows meanwhile): it must not stop
    the server."""
    while True:
        await anyio.sleep(CHECKPOINT_SECONDS)
        try:
            await run_in_threadpool(checkpoint, db)
        except SQLAlchemyError as error:
            _log.warning("SQLite WAL checkpoint failed, tried again in %s s: %s", CHECKPOINT_SECONDS, error)


def create_app(
    settings: Settings,
    *,
    model: ServingModel | None = None,
    engine: Engine | None = None,
    reference: World | None = None,
    policy: PolicyConfig | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        settings: deployment settings (database, MLflow, policy file, pseudonym key).
        model: a pinned model to serve (tests); by default the lifespan resolves
            ``models:/<settings.model_name>@champion`` once and pins that version.
        engine: database engine (default: ``settings.resolved_database_url()``); migrated at start-up.
        reference: region-level tables (regions, standards, disasters) used when a score request does
            not send them.
        policy: policy configuration (default: ``settings.policy_file`` or the packaged policy).
    """
    disable_telemetry()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_engine = engine is None
        db = engine if engine is not None else make_engine(settings.resolved_database_url())
        await run_in_threadpool(upgrade, db)
        key = None
        if settings.id_hmac_key is not None:
            from doudi.pseudonym import hmac_key

            key = hmac_key(settings)
        state = AppState(settings=settings, engine=db, sessions=session_factory(db),
                         policy=policy or load_policy(settings.policy_file), metrics=metrics,
                         reference=reference, model=model, id_key=key)
        if state.model is None:
            try:
                state.model = await run_in_threadpool(load_champion, settings)
            except (NotReady, OSError) as error:
                state.model_error = str(error)
        if state.model is not None:
            metrics.model.labels(state.model.name, state.model.version).set(1)
            metrics.ready.set(1)
        app.state.doudi = state
        # What start-up loaded (libraries, the model, the reference tables) lives as long as the process.
        # Frozen, the collector no longer walks it: a full collection took ~390 ms, once every ~100
        # calls, and set the p99 of POST /v1/score; it now takes 11-22 ms, about every 250 calls.
        # Collect first, so that only live objects are frozen.
        gc.collect()
        gc.freeze()
        wal = is_sqlite_file(db)
        with deferred_checkpoints(db) if wal else nullcontext():
            async with anyio.create_task_group() as tasks:
                if wal:
                    tasks.start_soon(_checkpoints, db)
                try:
                    yield
                finally:
                    tasks.cancel_scope.cancel()
        if own_engine:
            db.dispose()

    app = FastAPI(title="doudi scoring service", version="1", lifespan=lifespan,
                  description="Ranked early-warning alerts with reasons, policy triggers and recommended "
                              "assistance for the low-income dynamic monitoring platform.")
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(DoudiError)
    async def on_domain_error(_request: Request, error: DoudiError) -> JSONResponse:
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        detail = validation_detail(list(error.errors()))
        return _error_response(InvalidInput(f"{len(detail)} invalid field(s)", detail=detail))

    @app.get("/livez", tags=["ops"])
    def get_livez() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def get_readyz(state: State) -> JSONResponse:
        """Ready only when the pinned model is loaded (and the database answers)."""
        if state.model is None:
            body = {"status": "not ready", "reason": state.model_error or "loading"}
            return JSONResponse(body, status_code=503)
        with state.sessions() as session:
            store.latest_run(session)
        return JSONResponse({"status": "ready", "model": _model_info(state.model)})

    @app.get("/metrics", tags=["ops"])
    def get_metrics(state: State) -> Response:
        """Prometheus metrics."""
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post(
        "/v1/score", tags=["scoring"], response_model=schemas.ScoreResponse,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": schemas.ScoreRequest.model_json_schema(ref_template="#/components/schemas/{model}")}}}},
    )
    async def post_score(request: Request, state: State, authorization: AuthorizationHeader = None,
                         contributions: bool = False) -> dict[str, Any]:
        """Score up to 1,000 households from their raw records, store the run and alerts, return per
        household: risk, tier, rank within the call, reasons, triggers, recommended assistance."""
        body = await request.body()
        return await run_in_threadpool(_score, state, authorization, body, contributions)

    def _score(state: AppState, authorization: str | None, body: bytes, contributions: bool
               ) -> dict[str, Any]:
        from serving.service import score_world

        # The checks of the other routes' dependencies, in their order (401, 503, 403, then 422), in the
        # scoring's own worker-thread call: the caller check as a dependency was a thread-pool hop more.
        caller = authenticate(state.engine, authorization)
        model = pinned_model(state)
        caller.require(Permission.SCORE)
        try:
            parsed = schemas.ScoreRequest.model_validate_json(body)
        except ValidationError as error:
            detail = validation_detail(list(error.errors(include_input=True)))
            raise InvalidInput(f"{len(detail)} invalid field(s)", detail=detail) from None
        request_world = schemas.request_world(parsed, reference=state.reference, id_key=state.id_key)
        villages = request_world.world["households"]["village_code"].tolist()
        outside = [h for h, code in zip(request_world.households, villages, strict=True)
                   if not caller.scope.contains(str(code))]
        if outside:
            raise NotFound(f"{len(outside)} household(s) are outside your regions")
        def audit(session: Any, stored: Any) -> None:  # who had which households scored, in one row
            store.audit(session, caller, "score", request_path="/v1/score",
                        detail={"run_id": stored.run_id, "households": len(stored.scores),
                                "alerts": int(stored.scores["alerted"].to_numpy(bool).sum())})

        batch = score_world(request_world.world, pd.Timestamp(parsed.as_of), model, state.policy,
                            households=request_world.households, sessions=state.sessions, source="api",
                            explain_all=True, on_store=audit)
        scores = batch.scores
        # Each column as one list, from the array behind it: a Series per column, or one boxing pass over
        # the whole frame, costs more than the values of one household.
        arrays = column_arrays(scores, _RESPONSE_COLUMNS)
        column = {name: arrays[name].tolist() for name in _RESPONSE_COLUMNS}
        state.metrics.scored.labels("api").inc(len(scores))
        tiers = Counter(t for t, alerted in zip(column["tier"], column["alerted"], strict=True) if alerted)
        for tier, count in tiers.items():
            state.metrics.alerts.labels("api", tier).inc(count)
        alert_ids = batch.alert_ids.to_dict()
        rows = [{
            "household_id": household_id, "village_code": column["village_code"][i],
            "in_cohort": bool(column["in_cohort"][i]), "risk": column["risk"][i],
            "raw_score": column["raw_score"][i], "base_value": column["base_value"][i],
            "tier": column["tier"][i], "rank": int(column["rank"][i]),
            "triggered": bool(column["triggered"][i]), "alerted": bool(column["alerted"][i]),
            "alert_id": int(alert_ids[household_id]) if household_id in alert_ids else None,
            "not_alerted_because": column["not_alerted_because"][i], "reasons": column["reasons"][i] or [],
            "triggers": column["triggers"][i] or [], "recommendations": column["recommendations"][i] or [],
            "contributions": column["contributions"][i] if contributions else None,
        } for i, household_id in enumerate(scores.index.tolist())]
        order = {h: i for i, h in enumerate(request_world.households)}
        rows.sort(key=lambda r: order[r["household_id"]])
        return {"run_id": batch.run_id, "as_of": parsed.as_of, "model": _model_info(model),
                "households": rows}

    @app.get("/v1/alerts", tags=["alerts"], response_model=schemas.AlertPage)
    def get_alerts(
        request: Request, state: State, caller: Caller, session: DbSession,
        region: Annotated[str | None, Query(pattern=r"^\d{1,12}$", description="Region code prefix.")] = None,
        tier: Annotated[str | None, Query(pattern="^(red|orange|yellow|none)$")] = None,
        status: Annotated[str | None, Query(max_length=20)] = None,
        run_id: int | None = None,
        open_only: bool = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        """Alerts in the caller's regions, highest risk first, paginated."""
        caller.require(Permission.READ_ALERTS)
        filters = store.AlertFilter(region_prefix=region, tier=tier, status=status, run_id=run_id,
                                    open_only=open_only)
        total, alerts = store.list_alerts(session, caller.scope, filters, limit=limit, offset=offset)
        with transaction(state.sessions) as audit_session:
            store.audit(audit_session, caller, "list_alerts", request_path=str(request.url.path),
                        detail={"filters": {k: v for k, v in vars(filters).items() if v not in (None, False)},
                                "returned": len(alerts)})
        return {"total": total, "limit": limit, "offset": offset, "model": _model_info(state.model),
                "items": [schemas.AlertOut.model_validate(a) for a in alerts]}

    @app.get("/v1/alerts/{alert_id}", tags=["alerts"], response_model=schemas.AlertDetail)
    def get_alert(
        alert_id: int, request: Request, state: State, caller: Caller, session: DbSession,
        reason: ReasonQuery = None,
        x_doudi_reason: ReasonHeader = None,
        contributions: bool = False,
    ) -> dict[str, Any]:
        """One alert with its features and (on request) all contributions; the read is audited."""
        caller.require(Permission.READ_ALERTS)
        why = _reason(reason, x_doudi_reason)
        try:
            alert = store.get_alert(session, caller.scope, alert_id)
        except NotFound:
            with transaction(state.sessions) as audit_session:
                store.audit(audit_session, caller, "read_alert", outcome="not_found", alert_id=alert_id,
                            reason=why, request_path=str(request.url.path))
            raise
        with transaction(state.sessions) as audit_session:
            store.audit(audit_session, caller, "read_alert", household_id=alert.household_id,
                        alert_id=alert.id, reason=why, request_path=str(request.url.path))
        out = schemas.AlertDetail.model_validate(alert).model_dump()
        if not contributions:
            out["contributions"] = {k: v for k, v in (alert.contributions or {}).items() if k != "features"}
        return out

    @app.get("/v1/households/{household_id}/risk-history", tags=["alerts"],
             response_model=schemas.RiskHistory)
    def get_risk_history(
        household_id: str, request: Request, state: State, caller: Caller, session: DbSession,
        reason: ReasonQuery = None,
        x_doudi_reason: ReasonHeader = None,
    ) -> dict[str, Any]:
        """A household's risk in every scoring run, alerted or not; the read is audited."""
        caller.require(Permission.READ_ALERTS)
        why = _reason(reason, x_doudi_reason)
        try:
            history = store.risk_history(session, caller.scope, household_id)
        except NotFound:
            with transaction(state.sessions) as audit_session:
                store.audit(audit_session, caller, "read_risk_history", outcome="not_found",
                            household_id=household_id, reason=why, request_path=str(request.url.path))
            raise
        with transaction(state.sessions) as audit_session:
            store.audit(audit_session, caller, "read_risk_history", household_id=household_id, reason=why,
                        request_path=str(request.url.path))
        return {"household_id": household_id, "model": _model_info(state.model), "history": history}

    @app.get("/v1/model", tags=["model"], response_model=schemas.ModelCard)
    def get_model(caller: Caller, model: PinnedModel) -> dict[str, Any]:
        """The pinned model: version, test metrics, tier thresholds and model card."""
        caller.require(Permission.READ_MODEL)
        risk_model = model.model
        return {"name": model.name, "version": model.version, "run_id": model.run_id,
                "aliases": list(model.aliases), "features": list(risk_model.features),
                "registry_version": getattr(risk_model, "registry_version", None),
                "tiers": dict(getattr(risk_model, "tiers_", {})), "metrics": model.metrics,
                "card": model.card}

    from serving.pages import install_pages

    install_pages(app)  # the social workers' pages and the case API (issue 5)
    from serving.monitoring_routes import router as monitoring_router

    app.include_router(monitoring_router)  # GET /v1/monitoring/reports (issue 6)
    app.state.started_at = time.time()
    return app
