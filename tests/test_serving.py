"""The one scoring path: ranking with its tie-break, who is alerted (tiers, triggers, open cases, the
per-township cap), what is explained, and what is stored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import test_serving_fixtures as fx

from doudi.policy import load_policy
from serving import store
from serving.db import make_engine, session_factory, upgrade
from serving.orm import Alert, HouseholdScore, ScoringRun
from serving.service import rank_order, score_world, select_alerts


@pytest.fixture()
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'doudi.db'}")
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def batch():
    return score_world(fx.world(), fx.AS_OF, fx.serving_model(tiers=fx.tiers()), load_policy())


def test_rank_order_breaks_ties_by_triggers_then_a_fixed_hash():
    ids = pd.Index(["a", "b", "c", "d", "e"])
    risk = np.array([0.5, 0.9, 0.5, 0.5, np.nan])
    triggers = np.array([0, 0, 2, 0, 5])
    order = ids[rank_order(risk, triggers, ids)]
    assert list(order[:2]) == ["b", "c"] and order[-1] == "e"  # missing risk ranks last
    tied = sorted(["a", "d"], key=lambda h: pd.util.hash_array(np.array([h], dtype=object))[0])
    assert list(order[2:4]) == tied
    shuffled = pd.Index(["d", "e", "a", "c", "b"])
    perm = [list(ids).index(h) for h in shuffled]
    assert list(shuffled[rank_order(risk[perm], triggers[perm], shuffled)]) == list(order)


def test_scores_are_ranked_and_tiered_by_the_pinned_model(batch):
    scores = batch.scores
    assert list(scores["rank"]) == list(range(1, len(scores) + 1))
    assert (np.diff(scores["risk"].to_numpy()) <= 0).all()
    model = fx.risk_model()
    frame = __import__("features").build_features(fx.world(), fx.AS_OF, households=scores.index)
    np.testing.assert_allclose(scores["risk"], model.predict_proba(frame[model.features]), atol=1e-12)
    assert batch.model_version == "7" and batch.feature_version


def test_every_tiered_or_triggered_cohort_household_is_alerted(batch):
    scores = batch.scores
    expected = scores["in_cohort"] & ((scores["tier"] != "none") | scores["triggered"])
    assert (scores["alerted"] == expected).all()
    assert set(scores["tier"]) >= {"red", "orange", "yellow"}


def test_triggered_households_are_alerted_whatever_their_score():
    unreachable = {"red": 1.1, "orange": 1.1, "yellow": 1.1}
    batch = score_world(fx.world(), fx.AS_OF, fx.serving_model(tiers=unreachable), load_policy())
    scores = batch.scores
    assert (scores["tier"] == "none").all()
    assert scores["triggered"].any() and not scores["triggered"].all()
    assert (scores["alerted"] == scores["triggered"]).all()


def test_only_alerted_rows_are_explained_with_triggers_and_assistance(batch):
    alerts, quiet = batch.alerts, batch.scores[~batch.scores["alerted"]]
    assert len(quiet) and quiet["reasons"].isna().all() and quiet["recommendations"].isna().all()
    for row in alerts.itertuples():
        assert 0 < len(row.reasons) <= 4 or row.raw_score <= row.base_value
        assert [t["name"] for t in row.triggers if t["ranks"]] or not row.triggered
        assert abs(row.contributions["base_value"] + sum(row.contributions["features"].values())
                   - row.raw_score) < 1e-5
        assert isinstance(row.recommendations, list)


def _ranked(rows: list[tuple[str, str, str, bool, bool]]) -> pd.DataFrame:
    """(household, township, tier, triggered, in_cohort) rows, already in rank order."""
    frame = pd.DataFrame(rows, columns=["household_id", "township_code", "tier", "triggered", "in_cohort"])
    return frame.set_index("household_id").assign(rank=np.arange(1, len(rows) + 1))


NO_OPEN = pd.DataFrame({"alert_id": pd.Series(dtype="int64"), "tier": pd.Series(dtype=object)})


def test_top_per_township_caps_tier_only_alerts_and_keeps_triggered():
    scores = _ranked([
        ("a", "T1", "red", False, True), ("b", "T1", "red", False, True), ("c", "T1", "orange", True, True),
        ("d", "T2", "yellow", False, True), ("e", "T1", "none", True, True), ("f", "T1", "none", False, True),
        ("g", "T2", "red", False, False),
    ])
    out = select_alerts(scores, NO_OPEN, top_per_township=1)
    assert list(out.index[out["alerted"]]) == ["a", "c", "d", "e"]
    assert out["not_alerted_because"].to_dict() == {
        "a": None, "b": "capped", "c": None, "d": None, "e": None, "f": None, "g": "not_in_cohort"}
    assert list(select_alerts(scores, NO_OPEN).query("alerted").index) == ["a", "b", "c", "d", "e"]


def test_open_case_rule_on_hand_made_rows():
    scores = _ranked([("a", "T1", "red", False, True), ("b", "T1", "orange", False, True),
                      ("c", "T1", "yellow", True, True), ("d", "T1", "red", False, True)])
    open_cases = pd.DataFrame({"alert_id": [10, 11, 12], "tier": ["orange", "orange", "yellow"]},
                              index=pd.Index(["a", "b", "c"], name="household_id"))
    out = select_alerts(scores, open_cases)
    # a rose orange -> red: new alert superseding 10; b same tier and c (triggered) same tier: not again
    assert list(out.index[out["alerted"]]) == ["a", "d"]
    assert out.loc["a", "supersedes"] == 10 and pd.isna(out.loc["d", "supersedes"])
    assert list(out["not_alerted_because"]) == [None, "open_case", "open_case", None]


def test_runs_are_stored_with_every_score_and_one_alert_per_household(sessions):
    model = fx.serving_model(tiers=fx.tiers())
    batch = score_world(fx.world(), fx.AS_OF, model, load_policy(), sessions=sessions)
    with sessions() as session:
        run = session.get(ScoringRun, batch.run_id)
        assert (run.n_scored, run.n_alerts, run.model_version, run.source) == (
            len(batch.scores), int(batch.scores["alerted"].sum()), "7", "batch")
        scores = session.scalar(sa.select(sa.func.count()).select_from(HouseholdScore))
        assert scores == len(batch.scores)
        stored = session.execute(sa.select(Alert.household_id, Alert.tier, Alert.rank, Alert.model_version)
                                 .where(Alert.run_id == batch.run_id)).all()
    assert sorted(h for h, *_ in stored) == sorted(batch.alerts.index)
    assert all(v == "7" for *_, v in stored)
    assert {h: (t, r) for h, t, r, _ in stored} == {
        h: (t, r) for h, t, r in batch.alerts[["tier", "rank"]].itertuples()}


def test_open_cases_are_not_alerted_again_unless_the_tier_rises(sessions):
    policy, world = load_policy(), fx.world()
    first = score_world(world, fx.AS_OF, fx.serving_model(tiers=fx.tiers()), policy, sessions=sessions)
    again = score_world(world, fx.AS_OF, fx.serving_model(tiers=fx.tiers()), policy, sessions=sessions)
    assert not again.scores.loc[first.alerts.index, "alerted"].any()
    assert (again.scores.loc[first.alerts.index, "not_alerted_because"] == "open_case").all()
    # Lower thresholds: some households rise a tier and get a new alert that supersedes the open case.
    lower = fx.tiers(0.7, 0.4, 0.1)
    third = score_world(world, fx.AS_OF, fx.serving_model(tiers=lower), policy, sessions=sessions)
    level = store.TIER_LEVEL
    before = first.scores["tier"].map(level)
    after = third.scores["tier"].map(level).reindex(before.index)
    rose = before.index[(after > before) & first.scores["alerted"]]
    assert len(rose)
    assert third.scores.loc[rose, "alerted"].all()
    stayed = first.alerts.index.difference(rose)
    assert not third.scores.loc[stayed, "alerted"].any()
    with sessions() as session:
        rows = session.scalars(sa.select(Alert).where(Alert.run_id == first.run_id))
        old = {a.household_id: a for a in rows}
        for household in rose:
            assert old[household].status == "superseded"
            assert old[household].superseded_by == int(third.alert_ids[household])
        still_open = Alert.status.not_in(("closed", "superseded"))
        per_household = sa.select(Alert.household_id, sa.func.count()).group_by(Alert.household_id)
        open_per_household = session.execute(per_household.where(still_open)).all()
    assert max(count for _, count in open_per_household) == 1


def test_households_outside_the_cohort_are_scored_but_never_alerted(monkeypatch):
    import doudi.labels

    world = fx.world()
    ids = pd.Index(world["households"]["household_id"].astype(str))
    monkeypatch.setattr(doudi.labels, "cohort", lambda w, t: ids[:100])
    batch = score_world(world, fx.AS_OF, fx.serving_model(tiers=fx.tiers()), load_policy(),
                        households=ids[:150], explain_all=True)
    outside = batch.scores[~batch.scores["in_cohort"]]
    assert len(outside) == 50 and not outside["alerted"].any()
    assert (outside["not_alerted_because"] == "not_in_cohort").all()
    assert outside["reasons"].notna().all()  # explained on request (the API explains what it returns)
