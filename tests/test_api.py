"""The HTTP API with a real app (``with TestClient(app)``) and once over real HTTP (uvicorn in a thread):
tokens and roles, scoring through the one path, 422 that never echoes values, region scope as 404,
audit rows, risk history, model card, health and metrics."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import test_serving_fixtures as fx
from fastapi.testclient import TestClient

from doudi.policy import load_policy
from doudi.settings import Settings
from serving.app import create_app
from serving.auth import add_user
from serving.db import make_engine, session_factory, transaction, upgrade
from serving.orm import AuditLog
from serving.schemas import HOUSEHOLD_TABLES, REFERENCE_TABLES
from serving.service import score_world

AS_OF = fx.AS_OF.strftime("%Y-%m-%d")


def _json_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d")
    rows = json.loads(out.to_json(orient="records", force_ascii=False))
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def payload(household_ids: list[str], *, as_of: str = AS_OF) -> dict[str, Any]:
    """A score request for households of the test world, in the contract's table and column names."""
    world = fx.world()
    items = []
    for household_id in household_ids:
        item: dict[str, Any] = {}
        home = world["households"][world["households"]["household_id"] == household_id]
        item["household"] = _json_rows(home)[0]
        for name in HOUSEHOLD_TABLES:
            frame = world[name]
            item[name] = _json_rows(frame[frame["household_id"] == household_id])
        items.append(item)
    return {"as_of": as_of, "households": items}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    engine = make_engine(f"sqlite:///{root / 'doudi.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    world = fx.world()
    villages = world["households"].set_index(world["households"]["household_id"].astype(str))["village_code"]
    villages = villages.astype(str)
    risk = fx.cohort_risk()  # highest first
    cohort_villages = villages.reindex(risk.index)
    village = cohort_villages.value_counts().index[0]
    mine = list(risk.index[cohort_villages == village])  # worker wang's cohort households, riskiest first
    township = next(t for t in sorted(set(villages.str[:9])) if t != village[:9] and t[:6] == village[:6])
    theirs = list(villages.index[villages.str.startswith(township)])
    tokens = {}
    with transaction(sessions) as session:
        for name, role, regions in (("admin", "admin", []), ("platform", "platform", ["53"]),
                                    ("wang", "worker", [village]), ("zhao", "worker", [township]),
                                    ("li", "supervisor", [village]), ("chen", "modeler", [])):
            tokens[name] = add_user(session, name, role, region_codes=regions)[1]
    reference = {name: world[name] for name in REFERENCE_TABLES}
    app = create_app(Settings(data_dir=root), model=fx.serving_model(tiers=fx.tiers()), engine=engine,
                     reference=reference)
    with TestClient(app) as client:
        yield {"client": client, "tokens": tokens, "sessions": sessions, "mine": mine, "theirs": theirs,
               "village": village, "engine": engine}
    engine.dispose()


def auth(setup, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {setup['tokens'][name]}"}


def audit_rows(setup) -> list[AuditLog]:
    with setup["sessions"]() as session:
        return list(session.scalars(sa.select(AuditLog).order_by(AuditLog.id)))


@pytest.fixture(scope="module")
def scored(setup):
    """One API scoring of three households of worker wang's village and two of zhao's township."""
    ids = setup["mine"][:3] + setup["theirs"][:2]
    response = setup["client"].post("/v1/score", json=payload(ids), headers=auth(setup, "platform"))
    assert response.status_code == 200, response.text
    return ids, response.json()


def test_score_returns_each_household_with_the_pinned_version(scored):
    ids, body = scored
    assert body["model"] == {"name": "doudi-relapse-risk", "version": "7"}
    assert [h["household_id"] for h in body["households"]] == ids  # request order
    assert sorted(h["rank"] for h in body["households"]) == [1, 2, 3, 4, 5]
    by_rank = sorted(body["households"], key=lambda h: h["rank"])
    assert [h["risk"] for h in by_rank] == sorted((h["risk"] for h in by_rank), reverse=True)
    for household in body["households"]:
        assert 0 <= household["risk"] <= 1 and household["tier"] in ("red", "orange", "yellow", "none")
        assert len(household["reasons"]) <= 4
        for reason in household["reasons"]:
            assert {"group", "feature", "value", "contribution", "zh", "en"} <= set(reason)
        assert household["alerted"] == (household["alert_id"] is not None)


def test_scoring_is_audited(setup, scored):
    ids, body = scored
    rows = [r for r in audit_rows(setup) if r.action == "score"]
    assert rows[0].user_name == "platform" and rows[0].request_path == "/v1/score"
    assert rows[0].detail == {"run_id": body["run_id"], "households": len(ids),
                              "alerts": sum(h["alerted"] for h in body["households"])}


def test_api_and_batch_give_the_same_numbers(scored):
    ids, body = scored
    batch = score_world(fx.world(), fx.AS_OF, fx.serving_model(tiers=fx.tiers()), load_policy(),
                        households=pd.Index(ids), explain_all=True)
    for household in body["households"]:
        row = batch.scores.loc[household["household_id"]]
        assert household["risk"] == pytest.approx(row["risk"], abs=1e-12)
        assert household["tier"] == row["tier"]
        assert household["reasons"] == json.loads(json.dumps(row["reasons"]))
        assert household["recommendations"] == json.loads(json.dumps(row["recommendations"]))
        assert [t["name"] for t in household["triggers"]] == [t["name"] for t in row["triggers"]]


def test_contributions_on_request_add_up_to_the_raw_score(setup):
    ids = setup["mine"][3:4]
    response = setup["client"].post("/v1/score?contributions=true", json=payload(ids),
                                    headers=auth(setup, "admin"))
    household = response.json()["households"][0]
    contributions = household["contributions"]
    total = contributions["base_value"] + sum(contributions["features"].values())
    assert total == pytest.approx(household["raw_score"], abs=1e-5)
    assert household["base_value"] == pytest.approx(contributions["base_value"])


SECRETS = ("张三丰", "110101199003071234", "SECRET-9f8e7d", "13800138000")


def test_validation_errors_locate_the_field_and_never_echo_values(setup):
    body = payload(setup["mine"][:2])
    body["households"][0]["income"][1]["amount"] = SECRETS[2]
    body["households"][0]["household"]["village_code"] = SECRETS[1]
    body["households"][1]["members"][0]["sex"] = SECRETS[0]
    body["households"][1]["members"][0]["phone"] = SECRETS[3]
    response = setup["client"].post("/v1/score", json=body, headers=auth(setup, "platform"))
    assert response.status_code == 422
    for secret in SECRETS:
        assert secret not in response.text
    detail = response.json()["detail"]
    found = {(d["table"], d["household_index"], d["index"], d["field"]) for d in detail}
    assert found == {("income", 0, 1, "amount"), ("households", 0, None, "village_code"),
                     ("members", 1, 0, "sex"), ("members", 1, 0, "phone")}


def test_cross_row_problems_are_located_without_values(setup):
    body = payload(setup["mine"][:2])
    body["households"][0]["income"][0]["person_id"] = SECRETS[2]          # no such member
    body["households"][1]["members"].append(dict(body["households"][1]["members"][0]))  # key twice
    body["households"][1]["income"][0]["household_id"] = setup["mine"][0]  # another household's record
    response = setup["client"].post("/v1/score", json=body, headers=auth(setup, "platform"))
    assert response.status_code == 422 and SECRETS[2] not in response.text
    kinds = {(d["table"], d["household_index"], d["field"], d["type"]) for d in response.json()["detail"]}
    assert kinds == {("income", 0, "person_id", "foreign_key"),
                     ("members", 1, "person_id", "duplicate_key"),
                     ("income", 1, "household_id", "household_mismatch")}


def test_malformed_json_too_many_households_and_query_errors_do_not_echo(setup):
    client, headers = setup["client"], auth(setup, "platform")
    broken = b'{"as_of": "2025-04-01", "households": [' + SECRETS[2].encode()
    response = client.post("/v1/score", content=broken, headers=headers)
    assert response.status_code == 422 and SECRETS[2] not in response.text
    one = payload(setup["mine"][:1])
    response = client.post("/v1/score", json={**one, "households": one["households"] * 1001}, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "households"
    response = client.get(f"/v1/alerts?limit={SECRETS[2]}", headers=auth(setup, "admin"))
    assert response.status_code == 422 and SECRETS[2] not in response.text
    assert response.json()["detail"][0] | {"message": ""} == {
        "table": None, "household_index": None, "index": None, "field": "limit", "location": "query",
        "type": "int_parsing", "message": ""}


def test_tokens_and_roles(setup):
    client = setup["client"]
    assert client.get("/v1/alerts").status_code == 401
    assert client.get("/v1/alerts", headers={"Authorization": "Bearer nope"}).status_code == 401
    one = payload(setup["mine"][:1])
    assert client.post("/v1/score", json=one, headers=auth(setup, "wang")).status_code == 403
    assert client.post("/v1/score", json=one, headers=auth(setup, "chen")).status_code == 403
    assert client.get("/v1/alerts", headers=auth(setup, "chen")).status_code == 403
    assert client.get("/v1/model", headers=auth(setup, "chen")).status_code == 200
    response = client.post("/v1/score", json=one, headers={"Authorization": "Basic x"})
    assert response.status_code == 401 and response.json()["error"] == "unauthorized"


def test_alert_lists_are_scoped_to_the_callers_regions(setup, scored):
    client = setup["client"]
    wang = client.get("/v1/alerts", headers=auth(setup, "wang")).json()
    assert wang["total"] >= 1 and all(a["village_code"] == setup["village"] for a in wang["items"])
    supervisor = client.get("/v1/alerts", headers=auth(setup, "li")).json()
    assert supervisor["total"] >= wang["total"]
    assert all(a["county_code"] == "530102" for a in supervisor["items"])
    everyone = client.get("/v1/alerts?limit=2", headers=auth(setup, "admin")).json()
    assert len(everyone["items"]) <= 2 and everyone["model"]["version"] == "7"
    risks = [a["risk"] for a in client.get("/v1/alerts", headers=auth(setup, "admin")).json()["items"]]
    assert risks == sorted(risks, reverse=True)
    red = client.get("/v1/alerts?tier=red", headers=auth(setup, "admin")).json()
    assert all(a["tier"] == "red" for a in red["items"])
    assert client.get("/v1/alerts?region=5302", headers=auth(setup, "admin")).json()["total"] == 0


def test_reading_an_alert_is_audited_and_out_of_region_is_404(setup, scored):
    client = setup["client"]
    _, body = scored
    alert_id = next(h["alert_id"] for h in body["households"]
                    if h["alert_id"] and h["household_id"] in setup["mine"])
    household_id = next(h["household_id"] for h in body["households"] if h["alert_id"] == alert_id)
    assert client.get(f"/v1/alerts/{alert_id}", headers=auth(setup, "wang")).status_code == 400  # no reason
    response = client.get(f"/v1/alerts/{alert_id}?reason=home visit", headers=auth(setup, "wang"))
    assert response.status_code == 200
    detail = response.json()
    assert detail["household_id"] == household_id and detail["model_version"] == "7"
    assert "features" not in detail["contributions"] and detail["features"]
    full = client.get(f"/v1/alerts/{alert_id}?contributions=true",
                      headers={**auth(setup, "wang"), "X-Doudi-Reason": "case review"}).json()
    assert set(full["contributions"]["features"]) == set(fx.risk_model().features)
    outside = client.get(f"/v1/alerts/{alert_id}?reason=curious", headers=auth(setup, "zhao"))
    assert outside.status_code == 404
    assert client.get("/v1/alerts/999999?reason=x", headers=auth(setup, "zhao")).json() == {
        "error": "not_found", "message": "alert 999999 not found"}
    assert outside.json() == {"error": "not_found", "message": f"alert {alert_id} not found"}
    rows = [r for r in audit_rows(setup) if r.action == "read_alert"]
    assert [(r.user_name, r.outcome, r.household_id, r.reason) for r in rows[-4:]] == [
        ("wang", "ok", household_id, "home visit"), ("wang", "ok", household_id, "case review"),
        ("zhao", "not_found", None, "curious"), ("zhao", "not_found", None, "x")]
    assert rows[-1].request_path == "/v1/alerts/999999" and rows[-1].at is not None


def test_risk_history_includes_runs_without_an_alert_and_is_audited(setup, scored):
    client = setup["client"]
    household = setup["mine"][0]
    later = payload([household], as_of="2025-06-01")
    assert client.post("/v1/score", json=later, headers=auth(setup, "platform")).status_code == 200
    response = client.get(f"/v1/households/{household}/risk-history?reason=check",
                          headers=auth(setup, "wang"))
    assert response.status_code == 200
    history = response.json()["history"]
    assert [h["as_of"] for h in history] == sorted(h["as_of"] for h in history)
    assert {"2025-04-01", "2025-06-01"} <= {h["as_of"] for h in history}
    assert any(h["alert_id"] is None for h in history) or len(history) >= 2
    out = client.get(f"/v1/households/{household}/risk-history?reason=check", headers=auth(setup, "zhao"))
    assert out.status_code == 404
    last = [r for r in audit_rows(setup) if r.action == "read_risk_history"][-2:]
    assert [(r.user_name, r.outcome, r.household_id) for r in last] == [
        ("wang", "ok", household), ("zhao", "not_found", household)]


def test_platform_cannot_score_outside_its_regions(setup):
    with transaction(setup["sessions"]) as session:
        token = add_user(session, "yunnan-other", "platform", region_codes=["5303"])[1]
    response = setup["client"].post("/v1/score", json=payload(setup["mine"][:1]),
                                    headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404


def test_model_card_health_and_metrics(setup, scored):
    client = setup["client"]
    card = client.get("/v1/model", headers=auth(setup, "wang")).json()
    assert card["version"] == "7" and card["metrics"] == {"roc_auc": 0.8} and card["card"] == "# card"
    assert card["features"] == list(fx.risk_model().features)
    assert set(card["tiers"]) == {"red", "orange", "yellow"}
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model"]["version"] == "7"
    metrics = client.get("/metrics").text
    assert 'doudi_model_info{name="doudi-relapse-risk",version="7"} 1.0' in metrics
    assert 'doudi_http_requests_total{method="POST",route="/v1/score",status="200"}' in metrics
    assert "doudi_households_scored_total" in metrics


def test_not_ready_without_a_champion(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(data_dir=tmp_path, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'empty-mlflow.db'}")
    with TestClient(create_app(settings)) as client:
        assert client.get("/livez").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "champion" in ready.json()["reason"]
        with transaction(client.app.state.doudi.sessions) as session:
            token = add_user(session, "p", "platform", region_codes=["53"])[1]
        response = client.post("/v1/score", json={"as_of": AS_OF, "households": []},
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 503 and response.json()["error"] == "not_ready"


def test_the_server_checkpoints_sqlite_between_requests(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'doudi.db'}")

    def automatic_checkpoint() -> int:
        with engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()

    with TestClient(create_app(Settings(data_dir=tmp_path), model=fx.serving_model(tiers=fx.tiers()),
                               engine=engine)) as client:
        assert client.get("/readyz").status_code == 200
        assert automatic_checkpoint() == 0  # no request's commit copies the WAL into the database
    assert automatic_checkpoint() == 1000
    engine.dispose()


def test_a_failed_checkpoint_does_not_stop_the_server(tmp_path, monkeypatch, caplog):
    import sqlalchemy as sa

    import serving.app as app_module

    def fail(_engine):
        raise sa.exc.OperationalError("PRAGMA wal_checkpoint(PASSIVE)", {}, Exception("disk I/O error"))

    monkeypatch.setattr(app_module, "checkpoint", fail)
    monkeypatch.setattr(app_module, "CHECKPOINT_SECONDS", 0.05)
    engine = make_engine(f"sqlite:///{tmp_path / 'doudi.db'}")
    with TestClient(create_app(Settings(data_dir=tmp_path), model=fx.serving_model(tiers=fx.tiers()),
                               engine=engine)) as client:
        time.sleep(0.3)
        assert client.get("/readyz").status_code == 200
    assert "checkpoint failed" in caplog.text
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_over_real_http(setup):
    import uvicorn

    app = create_app(Settings(), model=fx.serving_model(tiers=fx.tiers()), engine=setup["engine"],
                     reference={name: fx.world()[name] for name in REFERENCE_TABLES})
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            assert client.get("/readyz").status_code == 200
            response = client.post("/v1/score", json=payload(setup["mine"][4:5]),
                                   headers=auth(setup, "platform"))
            assert response.status_code == 200
            assert response.json()["model"]["version"] == "7"
            assert np.isfinite(response.json()["households"][0]["risk"])
    finally:
        server.should_exit = True
        thread.join(timeout=20)
    assert not thread.is_alive()
