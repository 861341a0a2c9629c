"""Deployment settings, read from the environment (``DOUDI_*``) once and passed down explicitly."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
}


def disable_telemetry() -> None:
    """Turn off MLflow's and Evidently's usage reporting unless the operator set the variables.

    Called by every entry point (CLI, app factory, training) before MLflow or Evidently are imported;
    not at import time, so importing doudi has no side effects.
    """
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


class Settings(BaseSettings):
    """Where doudi keeps its data, database and models, and the keys it uses."""

    model_config = SettingsConfigDict(env_prefix="DOUDI_", env_file=None, extra="ignore")

    data_dir: Path = Field(Path("data"), description="Folder for the embedded database, MLflow, outputs.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; SQLite under data_dir by default.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; MLFLOW_TRACKING_URI wins; sqlite under data_dir by default."
    )
    id_hmac_key: SecretStr | None = Field(None, description="Key of the HMAC pseudonym of resident IDs.")
    policy_file: Path | None = Field(None, description="Policy thresholds YAML; packaged default if unset.")
    model_name: str = "doudi-relapse-risk"

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'doudi.db').resolve()}"

    def resolved_tracking_uri(self) -> str:
        return (
            os.environ.get("MLFLOW_TRACKING_URI")
            or self.mlflow_tracking_uri
            or f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"
        )
