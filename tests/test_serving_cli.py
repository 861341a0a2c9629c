"""The serving commands end to end: ``doudi db upgrade``, ``doudi users add``, ``doudi score``."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
import test_serving_fixtures as fx
from typer.testing import CliRunner

from doudi.cli import app
from doudi.io import write_world
from serving.db import head_revision, make_engine
from serving.orm import Alert, ScoringRun, User

pytestmark = pytest.mark.slow


@pytest.fixture()
def env(tmp_path, monkeypatch):
    uri, _ = fx.registered_store()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DOUDI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOUDI_MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("DOUDI_DATABASE_URL", raising=False)
    write_world(fx.world(), tmp_path / "world")
    return tmp_path


def test_db_upgrade_and_users(env):
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and f"(empty) -> {head_revision()}" in result.output
    result = runner.invoke(app, ["users", "add", "wang", "--role", "worker", "--region", "530102001001"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert len(token) >= 40
    engine = make_engine(f"sqlite:///{env / 'data' / 'doudi.db'}")
    with engine.connect() as connection:
        stored = connection.execute(sa.select(User.token_hash, User.region_codes)).one()
    engine.dispose()
    assert token not in stored.token_hash and stored.region_codes == ["530102001001"]
    bad = runner.invoke(app, ["users", "add", "li", "--role", "worker"])
    assert bad.exit_code == 1 and "needs at least one --region" in bad.output
    assert "wang" in runner.invoke(app, ["users", "list"]).output
    assert runner.invoke(app, ["users", "revoke", "wang"]).exit_code == 0


def test_score_stores_the_run_writes_alerts_and_summarises_by_county(env):
    runner = CliRunner()
    result = runner.invoke(app, ["score", str(env / "world"), "--as-of", "2025-04-01",
                                 "--top-per-township", "2"])
    assert result.exit_code == 0, result.output
    assert "530102" in result.output and "total" in result.output
    alerts = pd.read_parquet(env / "data" / "alerts.parquet")
    assert len(alerts) and list(alerts["rank"]) == sorted(alerts["rank"])
    assert alerts["model_version"].nunique() == 1 and alerts["alert_id"].notna().all()
    tier_only = alerts[~alerts["triggered"]]
    assert tier_only.groupby("township_code").size().max() <= 2
    engine = make_engine(f"sqlite:///{env / 'data' / 'doudi.db'}")
    with engine.connect() as connection:
        run = connection.execute(sa.select(ScoringRun)).one()
        stored = connection.scalar(sa.select(sa.func.count()).select_from(Alert))
    engine.dispose()
    assert run.n_alerts == len(alerts) == stored and run.params == {"top_per_township": 2}
    again = runner.invoke(app, ["score", str(env / "world"), "--as-of", "2025-04-01", "--out",
                                str(env / "second.parquet")])
    assert again.exit_code == 0
    assert not set(pd.read_parquet(env / "second.parquet")["household_id"]) & set(alerts["household_id"])


def test_score_without_a_champion_or_with_bad_data_exits_cleanly(env, monkeypatch, tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad"
    world = dict(fx.world())
    world["income"] = world["income"].assign(amount=-5.0)
    write_world(world, bad)
    result = runner.invoke(app, ["score", str(bad), "--as-of", "2025-04-01"])
    assert result.exit_code == 1 and "does not follow the contract" in " ".join(result.output.split())
    monkeypatch.setenv("DOUDI_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    result = runner.invoke(app, ["score", str(env / "world"), "--as-of", "2025-04-01"])
    assert result.exit_code == 1 and "no model version" in " ".join(result.output.split())
