"""The app's lifespan resolves ``models:/doudi-relapse-risk@champion`` from a real MLflow store once,
pins that version, and loads the native RiskModel from the registered artifact."""

from __future__ import annotations

import pytest
import test_serving_fixtures as fx
from fastapi.testclient import TestClient

from doudi.settings import Settings
from serving.app import create_app
from serving.auth import add_user
from serving.db import transaction

pytestmark = pytest.mark.slow


def test_lifespan_pins_the_champion_version(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from models.risk_model import RiskModel

    uri, _ = fx.registered_store()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings(data_dir=tmp_path, mlflow_tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    champion = client.get_model_version_by_alias("doudi-relapse-risk", "champion")
    with TestClient(create_app(settings)) as http:
        state = http.app.state.doudi
        assert isinstance(state.model.model, RiskModel)  # native, not pyfunc
        assert state.model.version == str(champion.version) and state.model.run_id == champion.run_id
        assert http.get("/readyz").status_code == 200
        with transaction(state.sessions) as session:
            token = add_user(session, "m", "modeler")[1]
        card = http.get("/v1/model", headers={"Authorization": f"Bearer {token}"}).json()
        assert card["version"] == str(champion.version) and "champion" in card["aliases"]
        assert card["metrics"]["roc_auc"] > 0.5 and card["card"]
        assert card["features"] == list(state.model.model.features)
        # A later promotion does not change what this process serves: the version was pinned.
        other = client.create_model_version("doudi-relapse-risk", champion.source, run_id=champion.run_id)
        client.set_registered_model_alias("doudi-relapse-risk", "champion", other.version)
        try:
            pinned = http.get("/v1/model", headers={"Authorization": f"Bearer {token}"}).json()
            assert pinned["version"] == str(champion.version)
            with TestClient(create_app(settings)) as fresh:
                assert fresh.app.state.doudi.model.version == str(other.version)
        finally:
            client.set_registered_model_alias("doudi-relapse-risk", "champion", champion.version)
