"""The case state machine (serving.casework): declaration, transitions by role, optimistic versions and
real concurrency, region scope, time limits, profiles, the transitions API and the feedback export."""

from __future__ import annotations

import datetime as dt
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
import test_cases_fixtures as cf
import test_serving_fixtures as fx
from typer.testing import CliRunner

from doudi.policy import CaseworkLimits, load_policy
from serving import casework, i18n, worklists
from serving.auth import Scope, add_user
from serving.casework import (
    ACTIONS,
    CLOSE_REASONS,
    OPEN_STATES,
    STAGES,
    STATES,
    TransitionRequest,
    transition,
)
from serving.db import make_engine, session_factory, transaction, upgrade
from serving.errors import Conflict, Forbidden, InvalidInput, NotFound
from serving.orm import Alert, AuditLog, CaseEvent, HouseholdProfile, User, utcnow
from serving.profiles import household_profiles
from serving.service import score_world
from serving.websession import principal_of

LIMITS = load_policy().casework


@pytest.fixture
def db(tmp_path):
    engine = make_engine(cf.fresh_copy(tmp_path))
    sessions = session_factory(engine)
    yield sessions
    engine.dispose()


def who(sessions, name):
    with sessions() as session:
        return principal_of(session.scalar(sa.select(User).where(User.name == name)))


def case_in(sessions, prefix, *, status="new"):
    """The highest-risk alert in a region with the given status."""
    with sessions() as session:
        return session.scalar(
            sa.select(Alert)
            .where(Alert.village_code.startswith(prefix), Alert.status == status)
            .order_by(Alert.risk.desc())
            .limit(1)
        )


def act(sessions, name, alert_id, action, **fields):
    with sessions() as session:
        version = session.get(Alert, alert_id).version
    request = TransitionRequest(action=action, expected_version=fields.pop("version", version), **fields)
    return transition(sessions, who(sessions, name), alert_id, request, limits=LIMITS)


def counts(sessions):
    with sessions() as session:
        return (
            session.scalar(sa.select(sa.func.count()).select_from(CaseEvent)),
            session.scalar(sa.select(sa.func.count()).select_from(AuditLog)),
        )


def test_the_declaration_is_complete_and_consistent():
    assert set(STAGES) == {name for name in CaseworkLimits.model_fields if name != "due_soon"}
    assert {s.stage for s in STATES.values()} - {None} == set(STAGES)
    assert set(OPEN_STATES) == {n for n, s in STATES.items() if s.stage is not None}
    for action in ACTIONS.values():
        assert set(action.sources) <= set(OPEN_STATES)
        assert action.target is None or action.target in STATES
        assert set(action.required) <= set(TransitionRequest.model_fields)
    for sources, _ in CLOSE_REASONS.values():
        assert set(sources) <= set(ACTIONS["close"].sources)
    # Every state, action, outcome, close reason and stage has words in both languages.
    for lang in i18n.LANGS:
        for key in (
            [f"status.{s}" for s in STATES]
            + [f"action.{a}" for a in ACTIONS]
            + [f"outcome.{o}" for o in casework.OUTCOMES]
            + [f"close.{r}" for r in CLOSE_REASONS]
            + [f"stage.{s}" for s in STAGES]
            + [f"done.{a}" for a in ACTIONS]
        ):
            assert i18n.has(lang, key), (lang, key)


def test_a_case_from_alert_to_closure(db):
    alert = case_in(db, "530102001001")
    events, audits = counts(db)
    view = act(db, "li", alert.id, "assign", assignee="wang")
    assert (view["status"], view["assignee"], view["stage"], view["version"]) == (
        "assigned",
        "wang",
        "verification",
        alert.version + 1,
    )
    assert view["allowed_actions"] == ["transfer", "verify", "close"]  # staff may act on any case
    view = act(db, "wang", alert.id, "verify", outcome="confirmed_hardship", findings="收入骤降，老人住院")
    assert view["status"] == "verified" and view["verification_outcome"] == "confirmed_hardship"
    view = act(db, "wang", alert.id, "propose", programme="dibao", amount=448, start_date=dt.date.today())
    assert view["status"] == "proposed" and view["proposal"]["amount"] == 448.0
    with pytest.raises(Forbidden):  # a worker never approves
        act(db, "wang", alert.id, "approve")
    view = act(db, "li", alert.id, "approve", note="符合条件")
    assert view["status"] == "approved" and view["stage"] == "closing"
    view = act(db, "wang", alert.id, "close", close_reason="resolved")
    assert view["status"] == "closed" and view["due_at"] is None and view["allowed_actions"] == []
    assert counts(db) == (events + 5, audits + 5)
    with db() as session:
        rows = session.scalars(
            sa.select(CaseEvent).where(CaseEvent.alert_id == alert.id).order_by(CaseEvent.id)
        )
        trail = [(e.action, e.from_status, e.to_status, e.user_name, e.version) for e in rows]
    v = alert.version
    assert trail == [
        ("assign", "new", "assigned", "li", v + 1),
        ("verify", "assigned", "verified", "wang", v + 2),
        ("propose", "verified", "proposed", "wang", v + 3),
        ("approve", "proposed", "approved", "li", v + 4),
        ("close", "approved", "closed", "wang", v + 5),
    ]


def test_roles_assignees_and_four_eyes(db):
    alert = case_in(db, "530102001001")  # wang's village, inside sun's township
    with pytest.raises(InvalidInput) as error:  # a worker may only take a case for themself
        act(db, "sun", alert.id, "assign", assignee="wang")
    assert (
        error.value.detail[0]["field"] == "assignee" and error.value.detail[0]["type"] == "assign_self_only"
    )
    assert "分派" in error.value.detail[0]["message_zh"]
    act(db, "sun", alert.id, "assign", assignee="sun")
    with pytest.raises(Forbidden, match="assigned to another worker"):  # wang sees it, but it is sun's
        act(db, "wang", alert.id, "verify", outcome="moved", findings="已经搬走")
    act(db, "sun", alert.id, "verify", outcome="confirmed_hardship", findings="家中有重病人")
    act(db, "li", alert.id, "propose", programme="medical", amount=3000, start_date=dt.date.today())
    with pytest.raises(Forbidden, match="another supervisor"):
        act(db, "li", alert.id, "approve")
    with pytest.raises(InvalidInput) as error:  # returning a proposal needs a reason
        act(db, "zhou", alert.id, "reject")
    assert [d["field"] for d in error.value.detail] == ["note"]
    view = act(db, "zhou", alert.id, "reject", note="金额请按票据核算")
    assert view["status"] == "verified" and view["proposal"]["decision"] == "reject"
    assert view["stage"] == "decision"  # the decision clock keeps running
    act(db, "sun", alert.id, "propose", programme="medical", amount=2500, start_date=dt.date.today())
    assert act(db, "li", alert.id, "approve")["status"] == "approved"  # sun proposed: li may approve


def test_scope_is_a_404_for_every_path(db):
    alert = case_in(db, "530102001001")
    zhao = who(db, "zhao")
    with pytest.raises(NotFound):
        transition(
            db,
            zhao,
            alert.id,
            TransitionRequest(action="assign", expected_version=alert.version, assignee="zhao"),
            limits=LIMITS,
        )
    with db() as session:
        _, rows = worklists.list_cases(
            session, zhao.scope, worklists.CaseFilter(status="all"), limits=LIMITS, now=utcnow(), limit=1000
        )
        assert rows and all(r["alert"].village_code.startswith(cf.OTHER_TOWNSHIP) for r in rows)
        assert worklists.latest_alert(session, zhao.scope, alert.household_id) is None
        with pytest.raises(NotFound):
            casework.timeline(session, zhao.scope, alert.household_id)
        feedback = worklists.feedback_frame(session, zhao.scope)
        assert not feedback["household_id"].isin([alert.household_id]).any()
    # Assigning to a worker who does not cover the village is a field error, not a silent success.
    with pytest.raises(InvalidInput) as error:
        act(db, "li", alert.id, "assign", assignee="zhao")
    assert error.value.detail[0]["type"] == "assignee_unknown"


def test_stale_version_is_a_conflict_and_nothing_is_written(db):
    alert = case_in(db, "530102001001")  # wang's village: he may take it
    act(db, "li", alert.id, "assign", assignee="sun")
    before = counts(db)
    with pytest.raises(Conflict, match="changed since you read it"):
        act(db, "li", alert.id, "transfer", assignee="wang", version=alert.version)  # the old version
    assert counts(db) == before
    with db() as session:
        assert session.get(Alert, alert.id).assignee_id == who(db, "sun").user_id


def race(sessions) -> None:
    """Two people act on the same case at once with the same version: one wins, the other conflicts."""
    alert = case_in(sessions, "530102001001")  # wang's village: he may take it
    act(sessions, "li", alert.id, "assign", assignee="sun")
    with sessions() as session:
        version = session.get(Alert, alert.id).version
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(name: str, request: TransitionRequest) -> None:
        principal = who(sessions, name)
        barrier.wait()
        try:
            results[name] = transition(sessions, principal, alert.id, request, limits=LIMITS)["status"]
        except Conflict as error:
            results[name] = error

    threads = [
        threading.Thread(
            target=run,
            args=(
                "sun",
                TransitionRequest(
                    action="verify",
                    expected_version=version,
                    outcome="not_in_hardship",
                    findings="收入正常，已复工",
                ),
            ),
        ),
        threading.Thread(
            target=run,
            args=("li", TransitionRequest(action="transfer", expected_version=version, assignee="wang")),
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, r in results.items() if isinstance(r, str)]
    losers = [n for n, r in results.items() if isinstance(r, Conflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    with sessions() as session:
        stored = session.get(Alert, alert.id)
        events = session.scalar(
            sa.select(sa.func.count()).select_from(CaseEvent).where(CaseEvent.alert_id == alert.id)
        )
    assert stored.version == version + 1 and events == 2  # assign + the winner's action only
    if winners == ["sun"]:
        assert stored.status == "verified" and stored.assignee_id == who(sessions, "sun").user_id
    else:
        assert stored.status == "assigned" and stored.assignee_id == who(sessions, "wang").user_id


def test_two_concurrent_actions_one_wins_the_other_conflicts(db):
    race(db)


@pytest.mark.postgres
def test_concurrent_actions_on_postgres():
    with fx.postgres_engine() as engine:
        upgrade(engine)
        sessions = session_factory(engine)
        score_world(
            fx.world(), fx.AS_OF, fx.serving_model(tiers=cf.stored().tiers), load_policy(), sessions=sessions
        )
        with transaction(sessions) as session:
            for name, role, regions in cf.USERS:
                add_user(session, name, role, region_codes=regions)
        race(sessions)
        alert = case_in(sessions, "530102001")  # the stale version conflicts first
        act(sessions, "li", alert.id, "assign", assignee="sun")
        with pytest.raises(Conflict):
            act(sessions, "li", alert.id, "transfer", assignee="wang", version=alert.version)


def test_field_validation_names_each_field_in_both_languages(db):
    alert = case_in(db, "530102001")
    act(db, "li", alert.id, "assign", assignee="sun")
    with pytest.raises(InvalidInput) as error:
        act(db, "sun", alert.id, "verify", findings="ok")
    detail = {d["field"]: d for d in error.value.detail}
    assert set(detail) == {"outcome", "findings"}
    assert detail["outcome"]["type"] == "required" and detail["findings"]["type"] == "too_short"
    assert detail["findings"]["message_zh"] == i18n.message("zh", "error.too_short", min=4)
    act(db, "sun", alert.id, "verify", outcome="confirmed_hardship", findings="确认困难属实")
    with pytest.raises(InvalidInput) as error:
        act(
            db,
            "sun",
            alert.id,
            "propose",
            programme="dibao",
            amount=0,
            start_date=alert.as_of - dt.timedelta(days=1),
        )
    assert {d["field"]: d["type"] for d in error.value.detail} == {
        "amount": "amount_range",
        "start_date": "date_range",
    }
    with pytest.raises(InvalidInput) as error:  # false alarm needs "not in hardship"
        act(db, "sun", alert.id, "close", close_reason="false_alarm")
    assert error.value.detail[0]["type"] == "close_reason_state"
    with pytest.raises(casework.TransitionNotAllowed):
        act(db, "li", alert.id, "approve")


def test_could_not_reach_keeps_the_case_waiting_on_the_same_clock(db):
    alert = case_in(db, "530102001")
    act(db, "li", alert.id, "assign", assignee="sun")
    with db() as session:
        started = session.get(Alert, alert.id).stage_started_at
    view = act(db, "sun", alert.id, "verify", outcome="could_not_reach", findings="两次上门无人")
    assert view["status"] == "assigned" and view["stage_started_at"] == started
    assert "verify" in view["allowed_actions"]


def test_time_limits_from_configuration_and_overdue(db):
    alert = case_in(db, "530102001")
    act(db, "li", alert.id, "assign", assignee="sun")
    now = utcnow()
    with db.begin() as session:
        session.execute(
            sa.update(Alert).where(Alert.id == alert.id).values(stage_started_at=now - dt.timedelta(days=8)),
            execution_options={"synchronize_session": False},
        )
    with db() as session:
        stored = session.get(Alert, alert.id)
        assert casework.due_at(stored, LIMITS) == stored.stage_started_at + dt.timedelta(days=7)
        scope = who(db, "sun").scope
        _, late = worklists.list_cases(
            session, scope, worklists.CaseFilter(overdue=True), limits=LIMITS, now=now
        )
        assert alert.id in [r["alert"].id for r in late] and all(r["overdue"] for r in late)
        # Every untouched "new" alert was created now: not overdue under the 3-day assignment limit.
        assert all(r["alert"].status != "new" for r in late)
        relaxed = CaseworkLimits(verification=30)
        _, late = worklists.list_cases(
            session, scope, worklists.CaseFilter(overdue=True), limits=relaxed, now=now
        )
        assert alert.id not in [r["alert"].id for r in late]
        counts_ = worklists.summary_counts(
            session, scope, limits=LIMITS, now=now, user_id=who(db, "sun").user_id
        )
        assert counts_["overdue"] == 1 and counts_["mine"] == 1
        # Ten days later every new alert is past its 3-day assignment limit.
        later = now + dt.timedelta(days=10)
        _, late = worklists.list_cases(
            session,
            scope,
            worklists.CaseFilter(overdue=True, status="new"),
            limits=LIMITS,
            now=later,
            limit=1000,
        )
        total_new = session.scalar(
            sa.select(sa.func.count())
            .select_from(Alert)
            .where(Alert.status == "new", scope.clause(Alert.village_code))
        )
        assert len(late) == total_new > 0


def test_profiles_show_bands_and_hide_minors():
    world = {name: frame.copy() for name, frame in fx.world().items()}
    members = world["members"]
    members["id_hash"] = pd.array([f"h{i:063d}" for i in range(len(members))], dtype="string")
    members["id_last4"] = pd.array([f"{i % 10000:04d}" for i in range(len(members))], dtype="string")
    as_of = pd.Timestamp("2025-04-01")
    known = members[members["recorded_at"] < as_of]
    age = (as_of - known["birth_date"]).dt.days / 365.2425
    home = str(known.loc[(age < 18).to_numpy(), "household_id"].iloc[0])
    profile = household_profiles(world, as_of, [home]).loc[home]
    mine = known[known["household_id"] == home]
    minors = int((((as_of - mine["birth_date"]).dt.days / 365.2425) < 18).sum())
    summary = profile["summary"]
    assert summary["size"] == len(mine) and summary["minors"] == minors >= 1
    assert len(summary["adults"]) == len(mine) - minors
    for adult in summary["adults"]:
        assert set(adult) == {
            "relation",
            "sex",
            "age_band",
            "labour_capacity",
            "disability_grade",
            "id_last4",
        }
        assert adult["age_band"] != "<18" and len(adult["id_last4"]) == 4
    text = repr(profile.to_dict())
    for _, child in mine[((as_of - mine["birth_date"]).dt.days / 365.2425 < 18).to_numpy()].iterrows():
        assert child["id_hash"] not in text and child["person_id"] not in text
    assert {i["id_hash"] for i in profile["identities"]} <= set(mine["id_hash"])
    assert "birth" not in text


def test_stored_runs_keep_profiles_of_alerted_households(db):
    with db() as session:
        alerted = set(session.scalars(sa.select(Alert.household_id)))
        profiled = set(session.scalars(sa.select(HouseholdProfile.household_id)))
    assert alerted and alerted <= profiled


@pytest.fixture
def api(tmp_path):
    yield from cf.served(tmp_path)


def bearer(name):
    return {"Authorization": f"Bearer {cf.stored().tokens[name]}"}


def test_transitions_api(api):
    client, sessions = api
    alert = case_in(sessions, "530102001001")
    url = f"/v1/alerts/{alert.id}/transitions"
    body = {"action": "assign", "expected_version": alert.version, "assignee": "wang"}
    assert client.post(url, json=body, headers=bearer("zhao")).status_code == 404
    response = client.post(url, json=body, headers=bearer("platform"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "assigned" and response.json()["version"] == alert.version + 1
    again = client.post(url, json=body, headers=bearer("li"))
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    secret = "张三 110101199003071234"
    bad = client.post(
        url,
        json={"action": "verify", "expected_version": alert.version + 1, "outcome": secret},
        headers=bearer("wang"),
    )
    assert bad.status_code == 422 and secret not in bad.text
    missing = client.post(
        url, json={"action": "verify", "expected_version": alert.version + 1}, headers=bearer("wang")
    )
    assert missing.status_code == 422
    assert {d["field"] for d in missing.json()["detail"]} == {"outcome", "findings"}
    wrong_state = client.post(
        url, json={"action": "approve", "expected_version": alert.version + 1}, headers=bearer("li")
    )
    assert wrong_state.status_code == 409 and wrong_state.json()["error"] == "transition_not_allowed"
    assert client.post(url, json=body).status_code == 401
    case = client.get(f"/v1/alerts/{alert.id}/case", headers=bearer("wang"))
    assert case.status_code == 200 and case.json()["assignee"] == "wang"
    assert [i["kind"] for i in case.json()["timeline"]].count("event") == 1
    assert client.get(f"/v1/alerts/{alert.id}/case", headers=bearer("zhao")).status_code == 404


def test_feedback_export_cli(tmp_path, monkeypatch):
    url = cf.fresh_copy(tmp_path)
    engine = make_engine(url)
    sessions = session_factory(engine)
    first = case_in(sessions, "530102001")
    act(sessions, "li", first.id, "assign", assignee="sun")
    act(sessions, "sun", first.id, "verify", outcome="confirmed_hardship", findings="确认困难属实")
    second = case_in(sessions, "530102001")
    act(sessions, "li", second.id, "assign", assignee="sun")
    act(sessions, "sun", second.id, "verify", outcome="not_in_hardship", findings="家庭收入已恢复")
    act(sessions, "sun", second.id, "close", close_reason="false_alarm")
    third = case_in(sessions, "530102002")
    act(sessions, "li", third.id, "close", close_reason="duplicate")
    engine.dispose()

    from doudi.cli import app

    monkeypatch.setenv("DOUDI_DATABASE_URL", url)
    out = tmp_path / "out" / "feedback.parquet"
    result = CliRunner().invoke(app, ["feedback", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out).set_index("alert_id")
    assert set(frame.index) == {first.id, second.id, third.id}
    assert frame.loc[first.id, "label"] == 1 and frame.loc[second.id, "label"] == 0
    assert pd.isna(frame.loc[third.id, "label"]) and frame.loc[third.id, "close_reason"] == "duplicate"
    assert set(frame["model_version"]) == {"7"}
    import features

    assert [c for c in frame.columns if c in features.REGISTRY] == list(features.REGISTRY)
    assert frame["income_pc_12m"].dtype == "float64" and frame["county_code"].dtype == "string"
    with session_factory(make_engine(url))() as session:
        stored = session.get(Alert, first.id).features
    assert frame.loc[first.id, "income_pc_12m"] == pytest.approx(stored["income_pc_12m"])
    scoped = tmp_path / "scoped.parquet"
    result = CliRunner().invoke(
        app, ["feedback", "export", "--out", str(scoped), "--region", cf.OTHER_TOWNSHIP]
    )
    assert result.exit_code == 0 and set(pd.read_parquet(scoped)["alert_id"]) == {third.id}
    result = CliRunner().invoke(app, ["feedback", "export", "--out", str(scoped), "--region", "x1"])
    assert result.exit_code != 0


def test_scope_helper_never_widens():
    assert Scope(("530102001",)).contains("530102001004")
    assert not Scope(("530102001",)).contains("530102002001")


def test_users_password_cli(tmp_path, monkeypatch):
    from doudi.cli import app

    url = cf.fresh_copy(tmp_path)
    monkeypatch.setenv("DOUDI_DATABASE_URL", url)
    new = "a new password 42"
    result = CliRunner().invoke(app, ["users", "password", "wang"], input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert new not in result.output
    short = CliRunner().invoke(app, ["users", "password", "wang"], input="short\nshort\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    nobody = CliRunner().invoke(app, ["users", "password", "nobody"], input=f"{new}\n{new}\n")
    assert nobody.exit_code == 1 and "no user named" in nobody.output
    engine = make_engine(url)
    with session_factory(engine)() as session:
        stored = session.scalar(sa.select(User.password_hash).where(User.name == "wang"))
    engine.dispose()
    from serving.websession import verify_password

    assert verify_password(stored, new) and not verify_password(stored, cf.PASSWORD)
