"""Matured performance: a hand-computed run (metrics, alert rates, verified outcomes, flags), the maturity
rule, and past runs judged from the database and a newer world, through the library and the CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from test_monitoring_api import save_run
from typer.testing import CliRunner

from doudi.io import write_world
from doudi.labels import build_labels, cohort
from doudi.world import generate_world
from models.evaluate import ranking_metrics
from monitoring.config import PerformanceConfig, load_config
from monitoring.performance import evaluate_run, last_data_month, matured, matured_performance
from monitoring.store import with_confirmed
from serving.db import make_engine, session_factory, transaction, upgrade

RISK = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
LABEL = [1, 0, 1, 0, 0, 1, 0, 0, 0, 0]
IDS = [f"h{i}" for i in range(10)]


def _hand_case():
    scores = pd.DataFrame({"risk": RISK + [0.95], "alerted": [True] * 3 + [False] * 7 + [True]},
                          index=pd.Index(IDS + ["h10"], name="household_id"))  # h10 left the cohort
    labels = pd.DataFrame({"label": LABEL}, index=pd.Index(IDS, name="household_id"))
    outcomes = with_confirmed(pd.DataFrame(
        {"verification_outcome": ["not_in_hardship", "confirmed_hardship", "could_not_reach", None],
         "close_reason": [None, None, None, "false_alarm"]},
        index=pd.Index(["h0", "h1", "h2", "h9"], name="household_id")))
    return scores, labels, outcomes


def test_a_run_judged_by_hand():
    scores, labels, outcomes = _hand_case()
    config = PerformanceConfig(k_values=(0.2,), drop_margins={"precision_at_20pct": 0.05, "pr_auc": 0.05},
                               ece_margin=0.03)
    result = evaluate_run(scores, labels, as_of=pd.Timestamp("2024-06-01"), config=config, outcomes=outcomes,
                          expected={"precision_at_20pct": 1.0, "pr_auc": 0.99, "ece": 0.2}, run_id=7)
    # h1 was confirmed in hardship at home although no record shows it: labels 1,1,1,0,0,1,0,0,0,0.
    assert result.counts == {"scored": 11, "labelled": 10, "unlabelled": 1, "positives": 4,
                             "confirmed_added": 1, "alerts": 3, "alerts_verified": 2, "alerts_confirmed": 1}
    m = result.metrics
    assert m["precision_at_20pct"] == 1.0 and m["recall_at_20pct"] == 0.5  # top 2 = h0, h1 of 4 positives
    assert m["pr_auc"] == pytest.approx((1 + 1 + 1 + 4 / 6) / 4)  # positives at ranks 1, 2, 3, 6
    assert m["roc_auc"] == pytest.approx(22 / 24)  # 18 + 4 of 4 x 6 pairs ordered right
    assert m["brier"] == pytest.approx(1.2525 / 10)
    assert m["ece"] == pytest.approx(0.295)  # one household per bin: mean of |y - p|
    assert result.alert_label_rate == 1.0  # h0, h1, h2 all fell into hardship
    assert result.alert_confirmed_rate == 0.5  # h0 not in hardship, h1 confirmed, h2 not reached
    table = result.reliability
    assert table["count"].sum() == 10
    assert table.loc[9, "observed_rate"] == 1.0 and table.loc[6, "observed_rate"] == 0
    # Precision held; PR-AUC fell 0.07 (margin 0.05) and ECE rose 0.095 (margin 0.03): flagged twice.
    assert len(result.flags) == 2
    assert result.flags[0].startswith("pr_auc fell to 0.917 from 0.990")
    assert result.flags[1].startswith("ece rose")
    summary = result.summary()
    assert summary["counts"]["positives"] == 4 and summary["metrics"]["precision_at_20pct"] == 1.0
    assert summary["as_of"] == "2024-06-01" and len(summary["reliability"]) == 10
    unflagged = evaluate_run(scores, labels, as_of=pd.Timestamp("2024-06-01"), config=config,
                             outcomes=outcomes)
    assert unflagged.flags == []  # nothing to compare with


def test_false_alarm_closures_count_as_not_confirmed():
    _, _, outcomes = _hand_case()
    assert outcomes["confirmed"].tolist()[:2] == [0, 1]
    assert pd.isna(outcomes["confirmed"].iloc[2]) and outcomes["confirmed"].iloc[3] == 0


def test_maturity_waits_for_the_window_and_late_records():
    last = pd.Period("2025-06", freq="M")
    # Window of 2024-12 is 2024-12 .. 2025-05; two more months for late records -> needs 2025-07.
    assert not matured(pd.Timestamp("2024-12-01"), horizon_months=6, lag_months=2, last_month=last)
    assert matured(pd.Timestamp("2024-11-01"), horizon_months=6, lag_months=2, last_month=last)
    assert matured(pd.Timestamp("2025-01-01"), horizon_months=6, lag_months=0, last_month=last)


@pytest.fixture(scope="module")
def past(tmp_path_factory):
    """A newer world (30 months, to 2025-06), and two stored runs: 2024-06 (matured) and 2025-03 (not)."""
    root = tmp_path_factory.mktemp("performance")
    world = generate_world(1200, 30, seed=11)
    engine = make_engine(f"sqlite:///{root / 'doudi.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    rng = np.random.default_rng(0)
    runs = {}
    still_open: set[str] = set()  # the first run's alerts stay open: the open-case rule skips them
    for as_of in ("2024-06-01", "2025-03-01"):
        ids = cohort(world, pd.Timestamp(as_of))
        risk = dict(zip(ids.astype(str), rng.uniform(0, 0.3, len(ids)), strict=True))
        if as_of == "2024-06-01":
            truth = build_labels(world, pd.Timestamp(as_of))["label"]
            for household in truth.index[truth == 1][:20]:  # a model that sees some of the truth
                risk[str(household)] = 0.9
        alerted = [h for h in sorted(risk, key=risk.get, reverse=True) if h not in still_open][:30]
        still_open.update(alerted)
        runs[as_of] = save_run(sessions, as_of, risk, alerted)
    with transaction(sessions) as session:  # one home verification on the first run's top alert
        top = session.execute(sa.text("SELECT id FROM alerts WHERE run_id = :r ORDER BY risk DESC LIMIT 1"),
                              {"r": runs["2024-06-01"]}).scalar_one()
        session.execute(sa.text("UPDATE alerts SET verification_outcome = 'confirmed_hardship' "
                                "WHERE id = :i"), {"i": top})
    write_world(world, root / "world")
    yield {"root": root, "world": world, "sessions": sessions, "engine": engine, "runs": runs}
    engine.dispose()


@pytest.mark.slow
def test_matured_runs_are_judged_on_the_newer_world(past):
    config = load_config().performance
    results, pending = matured_performance(
        past["sessions"], past["world"], config=config,
        expected=lambda name, version: {"precision_at_5pct": 0.99, "ece": 0.0})
    assert last_data_month(past["world"]) == pd.Period("2025-06", freq="M")
    assert [r.run_id for r in results] == [past["runs"]["2024-06-01"]]
    assert pending["run_id"].tolist() == [past["runs"]["2025-03-01"]]
    assert pending["needs_data_through"].tolist() == ["2025-10"]
    result = results[0]
    with past["sessions"]() as session:
        stored = pd.read_sql(sa.text("SELECT household_id, risk FROM household_scores WHERE run_id = :r"),
                             session.connection(), params={"r": result.run_id}).set_index("household_id")
    labels = build_labels(past["world"], pd.Timestamp("2024-06-01"))["label"]
    y = labels.reindex(stored.index).to_numpy()
    risk = stored["risk"].to_numpy()
    expected = ranking_metrics(y, risk, risk, k_values=config.k_values)
    top = stored["risk"].idxmax()
    assert result.counts["alerts"] == 30 and result.counts["alerts_verified"] == 1
    assert result.counts["alerts_confirmed"] == 1 and result.alert_confirmed_rate == 1.0
    if y[stored.index.get_loc(top)] == 0:
        assert result.counts["confirmed_added"] == 1
    else:
        assert result.counts["confirmed_added"] == 0
        assert result.metrics["pr_auc"] == pytest.approx(expected["pr_auc"])
    assert result.metrics["precision_at_5pct"] > 0.3  # the 20 true households lead the list
    assert any(flag.startswith("precision_at_5pct fell") for flag in result.flags)


@pytest.mark.slow
def test_cli_stores_performance_and_fairness(past, monkeypatch: pytest.MonkeyPatch):
    from doudi.cli import app

    monkeypatch.setenv("DOUDI_DATABASE_URL", str(past["engine"].url))
    monkeypatch.setenv("DOUDI_DATA_DIR", str(past["root"] / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{past['root'] / 'mlflow.db'}")
    monkeypatch.setenv("DOUDI_ID_HMAC_KEY", "monitoring-test-key-0123456789")
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "performance", str(past["root"] / "world")])
    assert result.exit_code == 0, result.output
    assert "Matured performance by scoring run" in result.output and "Not matured yet" in result.output
    again = runner.invoke(app, ["monitor", "performance", str(past["root"] / "world")])
    assert again.exit_code == 0, again.output
    with past["sessions"]() as session:
        rows = session.execute(sa.text("SELECT run_id, html_path FROM monitoring_reports "
                                       "WHERE kind = 'performance'")).all()
    assert [r.run_id for r in rows] == [past["runs"]["2024-06-01"]]  # recomputed, not duplicated
    assert (past["root"] / "data").exists() and rows[0].html_path.endswith("performance.html")

    run = past["runs"]["2024-06-01"]
    fair = runner.invoke(app, ["monitor", "fairness", str(past["root"] / "world"), "--run", str(run)])
    assert fair.exit_code == 0, fair.output
    assert "Fairness of run" in fair.output and "female" in fair.output
    with past["sessions"]() as session:
        summary = session.execute(sa.text("SELECT summary FROM monitoring_reports WHERE kind = 'fairness'")
                                  ).scalar_one()
    summary = summary if isinstance(summary, dict) else __import__("json").loads(summary)
    assert summary["labelled"] and summary["alerts"] == 30
    sizes = {(g["attribute"], g["group"]): g["size"] for g in summary["groups"]}
    assert sum(v for (a, _), v in sizes.items() if a == "county_code") == summary["households"]
    pending = runner.invoke(app, ["monitor", "fairness", str(past["root"] / "world"),
                                  "--run", str(past["runs"]["2025-03-01"])])
    assert pending.exit_code == 0 and "only sizes and alert rates" in pending.output
    missing = runner.invoke(app, ["monitor", "fairness", str(past["root"] / "world"), "--run", "999"])
    assert missing.exit_code == 1 and "no scoring run 999" in missing.output
