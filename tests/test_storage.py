"""Storage: migrations match the ORM, runs and alerts are stored transactionally, the open-case index,
optimistic locking, region scope in the data-access layer, users and hashed tokens, and PostgreSQL."""

from __future__ import annotations

import shutil
import sqlite3

import pandas as pd
import pytest
import sqlalchemy as sa
import test_serving_fixtures as fx
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from serving import store
from serving.auth import Principal, Role, Scope, add_user, authenticate, hash_token, revoke_user
from serving.db import (
    checkpoint,
    current_revision,
    deferred_checkpoints,
    head_revision,
    make_engine,
    session_factory,
    transaction,
    upgrade,
)
from serving.errors import BadRequest, Conflict, NotFound, Unauthorized
from serving.orm import Alert, AuditLog, Base, HouseholdScore, ScoringRun, User, utcnow

VILLAGES = {"h1": "530102001001", "h2": "530102001002", "h3": "530102002001", "h4": "530203001001"}


def _run(as_of: str = "2025-07-01", source: str = "batch") -> store.RunRecord:
    return store.RunRecord(as_of=pd.Timestamp(as_of), source=source, model_name="doudi-relapse-risk",
                           model_version="3", feature_version="abc123", started_at=utcnow(), params={})


def _frames(risks: dict[str, float], alerted: dict[str, str], supersedes: dict[str, int] | None = None):
    ids = list(risks)
    scores = pd.DataFrame({
        "village_code": [VILLAGES[h] for h in ids],
        "risk": [risks[h] for h in ids],
        "tier": [alerted.get(h, "none") for h in ids],
        "rank": pd.Series([risks[h] for h in ids]).rank(ascending=False, method="first").astype(int).values,
    }, index=pd.Index(ids, name="household_id"))
    alerts = scores.loc[list(alerted)].copy()
    alerts["township_code"] = alerts["village_code"].str[:9]
    alerts["county_code"] = alerts["village_code"].str[:6]
    alerts["raw_score"] = 0.5
    alerts["base_value"] = -2.0
    alerts["triggered"] = False
    for col in ("reasons", "triggers", "recommendations"):
        alerts[col] = [[{"group": "income"}] for _ in range(len(alerts))]
    for col in ("contributions", "features"):
        alerts[col] = [{"income_pc_12m": 5000.0} for _ in range(len(alerts))]
    alerts["supersedes"] = pd.Series(supersedes or {}, dtype="Int64").reindex(alerts.index)
    return scores, alerts


@pytest.fixture()
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'doudi.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def _save(sessions, risks, alerted, **kwargs):
    scores, alerts = _frames(risks, alerted, kwargs.pop("supersedes", None))
    with transaction(sessions) as session:
        return store.save_run(session, _run(**kwargs), scores, alerts)


def test_migrations_create_exactly_the_orm_schema(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    assert upgrade(engine) == head_revision()  # idempotent
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "compare_server_default": True})
        assert compare_metadata(context, Base.metadata) == []


def _runs_in_database_file(path) -> int:
    """Runs stored in the database file itself, leaving out what is still only in its WAL."""
    copy = path.with_name("copy.db")
    shutil.copyfile(path, copy)  # without the -wal file beside it
    with sqlite3.connect(copy) as connection:
        return connection.execute("SELECT count(*) FROM scoring_runs").fetchone()[0]


def test_the_server_checkpoints_the_wal_between_requests(tmp_path):
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)

    def automatic() -> int:
        with engine.connect() as connection:
            return connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()

    assert automatic() == 1000
    with deferred_checkpoints(engine):
        assert automatic() == 0  # no commit pays for copying the WAL into the database
        for n in range(3):
            _save(session_factory(engine), {f"h{n + 1}": 0.9}, {f"h{n + 1}": "red"}, source="api")
        assert _runs_in_database_file(path) == 0
        checkpoint(engine)
        assert _runs_in_database_file(path) == 3
        _save(session_factory(engine), {"h4": 0.9}, {"h4": "red"}, source="api")
        assert _runs_in_database_file(path) == 3
    assert automatic() == 1000
    assert _runs_in_database_file(path) == 4  # checkpointed on the way out
    engine.dispose()


def test_save_run_stores_run_scores_and_alerts(sessions):
    run_id, ids = _save(sessions, {"h1": 0.9, "h2": 0.2, "h3": 0.5}, {"h1": "red", "h3": "yellow"})
    assert sorted(ids.index) == ["h1", "h3"]
    with sessions() as session:
        run = session.get(ScoringRun, run_id)
        assert (run.n_scored, run.n_alerts, run.source, run.model_version) == (3, 2, "batch", "3")
        assert run.finished_at is not None and run.finished_at.tzinfo is not None
        assert session.scalar(sa.select(sa.func.count()).select_from(HouseholdScore)) == 3
        alert = session.get(Alert, int(ids["h1"]))
        assert (alert.tier, alert.status, alert.version, alert.model_version) == ("red", "new", 1, "3")
        assert alert.reasons == [{"group": "income"}] and alert.features == {"income_pc_12m": 5000.0}
        assert alert.township_code == "530102001" and alert.county_code == "530102"


def test_one_alert_per_household_per_run_and_failed_writes_roll_back(sessions):
    scores, alerts = _frames({"h1": 0.9}, {"h1": "red"})
    doubled = pd.concat([alerts, alerts])
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        store.save_run(session, _run(), scores, doubled)
    with sessions() as session:  # nothing of the failed run is left
        assert session.scalar(sa.select(sa.func.count()).select_from(ScoringRun)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(HouseholdScore)) == 0


def test_only_one_open_case_per_household(sessions):
    _, ids = _save(sessions, {"h1": 0.9}, {"h1": "orange"})
    with pytest.raises(IntegrityError):
        _save(sessions, {"h1": 0.9}, {"h1": "orange"}, as_of="2025-08-01")
    with transaction(sessions) as session:
        session.get(Alert, int(ids["h1"])).status = "closed"
    _, again = _save(sessions, {"h1": 0.9}, {"h1": "orange"}, as_of="2025-08-01")
    with sessions() as session:
        opened = store.open_cases(session, ["h1", "h2"])
    assert opened.to_dict("index") == {"h1": {"alert_id": int(again["h1"]), "tier": "orange"}}


def test_a_rising_tier_supersedes_the_open_case(sessions):
    _, first = _save(sessions, {"h1": 0.4}, {"h1": "yellow"})
    _, second = _save(sessions, {"h1": 0.9}, {"h1": "red"}, as_of="2025-08-01",
                      supersedes={"h1": int(first["h1"])})
    with sessions() as session:
        old = session.get(Alert, int(first["h1"]))
        assert (old.status, old.superseded_by, old.version) == ("superseded", int(second["h1"]), 2)
        assert store.open_cases(session, ["h1"])["alert_id"].tolist() == [int(second["h1"])]


def test_optimistic_version_check(sessions):
    _, ids = _save(sessions, {"h1": 0.9}, {"h1": "red"})
    first, second = sessions(), sessions()
    a, b = first.get(Alert, int(ids["h1"])), second.get(Alert, int(ids["h1"]))
    a.status = "assigned"
    first.commit()
    b.status = "closed"
    with pytest.raises(StaleDataError):
        second.commit()
    first.close(), second.close()
    with sessions() as session:
        alert = session.get(Alert, int(ids["h1"]))
        assert (alert.status, alert.version) == ("assigned", 2)


def test_region_scope_is_enforced_in_queries(sessions):
    _, ids = _save(sessions, {"h1": 0.9, "h2": 0.3, "h3": 0.5, "h4": 0.7},
                   {"h1": "red", "h2": "yellow", "h3": "orange", "h4": "orange"})
    village, township, county = Scope(("530102001001",)), Scope(("530102001",)), Scope(("530102",))
    with sessions() as session:
        total, rows = store.list_alerts(session, county, store.AlertFilter())
        assert total == 3 and [a.household_id for a in rows] == ["h1", "h3", "h2"]  # by risk
        total, rows = store.list_alerts(session, township, store.AlertFilter())
        assert [a.household_id for a in rows] == ["h1", "h2"]
        assert store.list_alerts(session, Scope(None), store.AlertFilter(tier="orange"))[0] == 2
        assert store.list_alerts(session, Scope(None), store.AlertFilter(region_prefix="5302"))[0] == 1
        total, rows = store.list_alerts(session, Scope(None), store.AlertFilter(), limit=2, offset=2)
        assert total == 4 and [a.household_id for a in rows] == ["h3", "h2"]
        assert store.list_alerts(session, Scope(()), store.AlertFilter())[0] == 0
        assert store.get_alert(session, village, int(ids["h1"])).household_id == "h1"
        with pytest.raises(NotFound):
            store.get_alert(session, village, int(ids["h2"]))
        with pytest.raises(NotFound):
            store.get_alert(session, village, 10_000)
        assert len(store.risk_history(session, township, "h2")) == 1
        with pytest.raises(NotFound):
            store.risk_history(session, village, "h2")
    # a prefix is data, not a pattern: LIKE wildcards in it match nothing
    with sessions() as session:
        assert store.list_alerts(session, Scope(("5301%",)), store.AlertFilter())[0] == 0


def test_risk_history_covers_runs_without_an_alert(sessions):
    _save(sessions, {"h1": 0.2, "h2": 0.1}, {}, as_of="2025-06-01")
    _, ids = _save(sessions, {"h1": 0.8}, {"h1": "red"}, as_of="2025-07-01", source="api")
    with sessions() as session:
        history = store.risk_history(session, Scope(None), "h1")
    assert [(str(h["as_of"]), h["risk"], h["tier"], h["alert_id"], h["source"]) for h in history] == [
        ("2025-06-01", 0.2, "none", None, "batch"), ("2025-07-01", 0.8, "red", int(ids["h1"]), "api")]


def test_users_tokens_are_hashed_and_scoped(sessions):
    with transaction(sessions) as session:
        _, token = add_user(session, "wang", "worker", region_codes=["530102001001"])
        _, sup = add_user(session, "li", Role.SUPERVISOR, region_codes=["530102001001"])
    with sessions() as session:
        stored = session.scalars(sa.select(User.token_hash)).all()
        assert token not in stored and hash_token(token) in stored
        worker = authenticate(session, f"Bearer {token}")
        assert worker.role is Role.WORKER and worker.scope == Scope(("530102001001",))
        assert authenticate(session, f"bearer {sup}").scope == Scope(("530102",))
        for header in (None, "", "Bearer", f"Basic {token}", f"Bearer {token}x"):
            with pytest.raises(Unauthorized):
                authenticate(session, header)
    with transaction(sessions) as session:
        assert revoke_user(session, "wang")
    with sessions() as session, pytest.raises(Unauthorized):
        authenticate(session, f"Bearer {token}")


@pytest.mark.parametrize(("name", "role", "regions", "error"), [
    ("a", "boss", ["53"], BadRequest), ("a", "worker", [], BadRequest),
    ("a", "worker", ["5301x"], BadRequest), ("a", "worker", ["53010"], BadRequest),
    ("wang", "admin", [], Conflict), (" ", "admin", [], BadRequest),
])
def test_add_user_rejects_bad_input(sessions, name, role, regions, error):
    with transaction(sessions) as session:
        add_user(session, "wang", "admin")
    with pytest.raises(error), transaction(sessions) as session:
        add_user(session, name, role, region_codes=regions)


def test_audit_rows(sessions):
    who = Principal(user_id=None, name="wang", role=Role.WORKER, region_codes=("530102001001",))  # type: ignore[arg-type]
    with transaction(sessions) as session:
        store.audit(session, who, "read_alert", household_id="h1", alert_id=1, reason="home visit",
                    request_path="/v1/alerts/1")
    with sessions() as session:
        row = session.scalars(sa.select(AuditLog)).one()
        assert (row.user_name, row.action, row.household_id) == ("wang", "read_alert", "h1")
        assert row.reason == "home visit"
        assert row.at.tzinfo is not None


@pytest.mark.postgres
def test_postgres_round_trip():
    with fx.postgres_engine() as engine:
        assert upgrade(engine) == head_revision()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        sessions = session_factory(engine)
        _, first = _save(sessions, {"h1": 0.4, "h2": 0.1}, {"h1": "yellow"})
        with pytest.raises(IntegrityError):
            _save(sessions, {"h1": 0.4}, {"h1": "yellow"}, as_of="2025-08-01")
        _, second = _save(sessions, {"h1": 0.9}, {"h1": "red"}, as_of="2025-08-01",
                          supersedes={"h1": int(first["h1"])})
        with sessions() as session:
            assert session.get(Alert, int(first["h1"])).status == "superseded"
            history = store.risk_history(session, Scope(("530102",)), "h1")
            assert [h["tier"] for h in history] == ["yellow", "red"]
            with pytest.raises(NotFound):
                store.get_alert(session, Scope(("5302",)), int(second["h1"]))
