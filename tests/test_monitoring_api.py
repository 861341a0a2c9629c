"""Monitoring reports in the database and the API: migration matches the ORM, rows are written and listed
(modeler and admin only), filters, detail, the report page served only from the data folder."""

from __future__ import annotations

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from doudi.settings import Settings
from monitoring import store as monitoring_store
from serving import store
from serving.app import create_app
from serving.auth import add_user
from serving.champion import ServingModel
from serving.db import make_engine, session_factory, transaction, upgrade
from serving.orm import Base, MonitoringReport, utcnow


def save_run(sessions, as_of: str, risks: dict[str, float], alerted: list[str], *, source: str = "batch",
             village: str = "530102001001", model_version: str = "3") -> int:
    """Store a scoring run with these households' risk; ``alerted`` households get an alert."""
    ids = list(risks)
    scores = pd.DataFrame({
        "village_code": village, "risk": [risks[h] for h in ids],
        "tier": ["yellow" if h in alerted else "none" for h in ids],
        "rank": pd.Series([risks[h] for h in ids]).rank(ascending=False, method="first").to_numpy(int),
    }, index=pd.Index(ids, name="household_id"))
    alerts = scores.loc[alerted].copy()
    alerts["township_code"] = village[:9]
    alerts["county_code"] = village[:6]
    alerts["raw_score"], alerts["base_value"], alerts["triggered"] = 0.0, -2.0, False
    for column in ("reasons", "triggers", "recommendations"):
        alerts[column] = [[] for _ in range(len(alerts))]
    for column in ("contributions", "features"):
        alerts[column] = [{} for _ in range(len(alerts))]
    alerts["supersedes"] = pd.Series(dtype="Int64").reindex(alerts.index)
    run = store.RunRecord(as_of=pd.Timestamp(as_of), source=source, model_name="doudi-relapse-risk",
                          model_version=model_version, feature_version="f1", started_at=utcnow(), params={})
    with transaction(sessions) as session:
        run_id, _ = store.save_run(session, run, scores, alerts)
    return run_id


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("monitoring-api")
    engine = make_engine(f"sqlite:///{root / 'doudi.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    tokens = {}
    with transaction(sessions) as session:
        for name, role, regions in (("admin", "admin", []), ("chen", "modeler", []),
                                    ("wang", "worker", ["530102001001"]), ("li", "supervisor", ["530102"])):
            tokens[name] = add_user(session, name, role, region_codes=regions)[1]
    run_id = save_run(sessions, "2025-01-01", {"h1": 0.4, "h2": 0.1}, ["h1"])
    page = root / "monitoring" / "drift-run1" / "drift.html"
    page.parent.mkdir(parents=True)
    page.write_text("<html><body>drift report</body></html>", encoding="utf-8")
    outside = tmp_path_factory.mktemp("elsewhere") / "secret.html"
    outside.write_text("not a report", encoding="utf-8")
    ids = {}
    with transaction(sessions) as session:
        ids["drift"] = monitoring_store.save_report(
            session, kind="drift", flags=["12 of 62 features drifted"], summary={"drifted_share": 0.19},
            config_hash="abc", run_id=run_id, as_of=pd.Timestamp("2025-01-01").date(), model_version="3",
            reference="v3 training snapshot", current="scoring run 1", html_path=str(page))
        ids["performance"] = monitoring_store.save_report(
            session, kind="performance", flags=[], summary={"metrics": {"precision_at_5pct": 0.31}},
            config_hash="abc", run_id=run_id)
        ids["outside"] = monitoring_store.save_report(
            session, kind="fairness", flags=[], summary={}, config_hash="abc", html_path=str(outside))
    model = ServingModel(name="doudi-relapse-risk", version="3", model=None)
    app = create_app(Settings(data_dir=root), model=model, engine=engine)
    with TestClient(app) as client:
        yield {"client": client, "tokens": tokens, "ids": ids, "run_id": run_id, "sessions": sessions,
               "engine": engine, "root": root}
    engine.dispose()


def _auth(api, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api['tokens'][name]}"}


def test_migration_matches_the_orm(api):
    with api["engine"].connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert "monitoring_reports" in Base.metadata.tables


def test_modelers_and_admins_list_reports_newest_first(api):
    client = api["client"]
    for name in ("chen", "admin"):
        response = client.get("/v1/monitoring/reports", headers=_auth(api, name))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == 3
        assert [item["id"] for item in body["items"]] == sorted(api["ids"].values(), reverse=True)
    drift = next(i for i in body["items"] if i["kind"] == "drift")
    assert drift["flagged"] and drift["flags"] == ["12 of 62 features drifted"]
    assert drift["run_id"] == api["run_id"] and drift["as_of"] == "2025-01-01" and drift["has_html"]
    assert "summary" not in drift


def test_filters_and_pagination(api):
    client, headers = api["client"], _auth(api, "chen")
    flagged = client.get("/v1/monitoring/reports", params={"flagged": True}, headers=headers).json()
    assert [i["kind"] for i in flagged["items"]] == ["drift"]
    by_kind = client.get("/v1/monitoring/reports", params={"kind": "performance"}, headers=headers).json()
    assert by_kind["total"] == 1 and by_kind["items"][0]["id"] == api["ids"]["performance"]
    by_run = client.get("/v1/monitoring/reports", params={"run_id": api["run_id"]}, headers=headers).json()
    assert by_run["total"] == 2
    page = client.get("/v1/monitoring/reports", params={"limit": 1, "offset": 1}, headers=headers).json()
    assert page["total"] == 3 and len(page["items"]) == 1
    assert client.get("/v1/monitoring/reports", params={"kind": "other"}, headers=headers).status_code == 422


def test_other_roles_and_strangers_are_refused(api):
    client = api["client"]
    for name in ("wang", "li"):
        response = client.get("/v1/monitoring/reports", headers=_auth(api, name))
        assert response.status_code == 403 and "modeler or admin" in response.json()["message"]
    assert client.get("/v1/monitoring/reports").status_code == 401
    assert client.get(f"/v1/monitoring/reports/{api['ids']['drift']}/html",
                      headers=_auth(api, "wang")).status_code == 403


def test_detail_and_page(api):
    client, headers = api["client"], _auth(api, "chen")
    detail = client.get(f"/v1/monitoring/reports/{api['ids']['drift']}", headers=headers)
    assert detail.status_code == 200 and detail.json()["summary"] == {"drifted_share": 0.19}
    page = client.get(f"/v1/monitoring/reports/{api['ids']['drift']}/html", headers=headers)
    assert page.status_code == 200 and "drift report" in page.text
    assert page.headers["content-type"].startswith("text/html")
    # A page outside the data folder is never served; a report without a page is a 404.
    outside = client.get(f"/v1/monitoring/reports/{api['ids']['outside']}/html", headers=headers)
    assert outside.status_code == 404
    assert client.get(f"/v1/monitoring/reports/{api['ids']['performance']}/html",
                      headers=headers).status_code == 404
    assert client.get("/v1/monitoring/reports/999999", headers=headers).status_code == 404


def test_performance_reports_replace_older_ones_of_the_same_run(api):
    with transaction(api["sessions"]) as session:
        newer = monitoring_store.save_report(
            session, kind="performance", flags=["precision fell"],
            summary={"metrics": {"precision_at_5pct": 0.2}}, config_hash="abc", run_id=api["run_id"],
            replace=True)
    with api["sessions"]() as session:
        rows = session.query(MonitoringReport).filter_by(kind="performance").all()
        history = monitoring_store.performance_history(session)
    assert [r.id for r in rows] == [newer]
    assert history.loc[api["run_id"], "precision_at_5pct"] == 0.2 and history.loc[api["run_id"], "flagged"]
    with pytest.raises(ValueError, match="unknown report kind"):
        with transaction(api["sessions"]) as session:
            monitoring_store.save_report(session, kind="weather", flags=[], summary={}, config_hash="x")


def test_cli_lists_reports(api, monkeypatch: pytest.MonkeyPatch):
    from doudi.cli import app

    monkeypatch.setenv("DOUDI_DATABASE_URL", str(api["engine"].url))
    result = CliRunner().invoke(app, ["monitor", "reports", "--kind", "drift"])
    assert result.exit_code == 0, result.output
    assert "drift" in result.output and "yes" in result.output and "performance" not in result.output


def _sign_in(client: TestClient, name: str) -> None:
    import re

    client.cookies.clear()
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token,
                                           "next": "/alerts"}, follow_redirects=False)
    assert response.status_code == 303, response.text


PASSWORD = "monitoring pages password"


def test_supervisor_dashboard_shows_the_reports_and_opens_their_pages(api):
    from serving.orm import AuditLog
    from serving.websession import set_password

    with transaction(api["sessions"]) as session:
        for name in ("li", "wang", "admin"):
            set_password(session, name, PASSWORD)
    client = api["client"]
    _sign_in(client, "li")
    dashboard = client.get("/dashboard")
    assert dashboard.status_code == 200
    section = dashboard.text[dashboard.text.index('id="monitoring"'):]
    assert "模型监测" in section and "数据漂移" in section and "需要关注" in section
    assert "12 of 62 features drifted" in section
    assert f'href="/monitoring/{api["ids"]["drift"]}"' in section
    page = client.get(f"/monitoring/{api['ids']['drift']}")
    assert page.status_code == 200 and "drift report" in page.text
    assert client.get(f"/monitoring/{api['ids']['outside']}").status_code == 404  # outside the data folder
    assert client.get("/monitoring/999999").status_code == 404
    with api["sessions"]() as session:
        views = session.query(AuditLog).filter_by(action="view_monitoring_report").all()
    assert [v.detail["report_id"] for v in views] == [api["ids"]["drift"]] and views[0].user_name == "li"
    english = client.get("/dashboard?lang=en").text
    assert "Model monitoring" in english and "Needs attention" in english
    _sign_in(client, "admin")  # admins open reports too (modelers read them through the API)
    assert client.get(f"/monitoring/{api['ids']['drift']}").status_code == 200
    _sign_in(client, "wang")  # a social worker does not
    assert client.get(f"/monitoring/{api['ids']['drift']}").status_code == 403
    client.cookies.clear()


def test_households_under_an_open_case_are_marked_in_later_runs(tmp_path):
    import datetime as dt

    import sqlalchemy as sa

    engine = make_engine(f"sqlite:///{tmp_path / 'doudi.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    first = save_run(sessions, "2025-01-01", {"a": 0.9, "b": 0.8, "c": 0.1}, ["a", "b"])
    with transaction(sessions) as session:  # b's case is closed before the next run
        session.execute(sa.text("UPDATE alerts SET status = 'closed', closed_at = :t "
                                "WHERE household_id = 'b'"), {"t": dt.datetime(2025, 1, 15, tzinfo=dt.UTC)})
    second = save_run(sessions, "2025-02-01", {"a": 0.9, "b": 0.7, "c": 0.6}, ["c"])
    with sessions() as session:
        later = monitoring_store.run_scores(session, second)
        earlier = monitoring_store.run_scores(session, first)
    assert later.loc["a", "open_case"] and not later.loc["a", "alerted"]  # still open from the first run
    assert not later.loc["b", "open_case"]  # closed before the second run
    assert later.loc["c", "alerted"] and not later.loc["c", "open_case"]
    assert not earlier["open_case"].any()
    engine.dispose()
