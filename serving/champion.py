"""The pinned model: resolve ``models:/<name>@champion`` once, then keep that version for the app's life.

The native ``RiskModel`` is loaded from the registered version's artifact (``artifacts/risk_model``), not
through pyfunc, which would add about 1.6 ms per single-row call; pyfunc stays for interoperability.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from doudi.settings import Settings, disable_telemetry
from serving.errors import NotReady

CARD_ARTIFACT = "model_card.md"
METRIC_PREFIX = "lightgbm."


@dataclass(frozen=True)
class ServingModel:
    """A model version pinned for serving.

    Attributes:
        name, version: registered model name and the version the alias pointed to at start-up.
        model: the native ``models.risk_model.RiskModel``.
        run_id: the MLflow run that trained it.
        aliases: the version's aliases when it was resolved.
        metrics: test-period metrics of the LightGBM model (prefix stripped, per-county left out).
        card: the model card (markdown) logged with the run.
    """

    name: str
    version: str
    model: Any
    run_id: str | None = None
    aliases: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)
    card: str | None = None


def load_champion(
    settings: Settings, *, alias: str = "champion", directory: Path | None = None
) -> ServingModel:
    """Resolve ``models:/<settings.model_name>@<alias>`` to a version and load that version natively.

    Raises:
        NotReady: no registered model or no version under the alias.
    """
    disable_telemetry()
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from models.train import load_registered

    uri = settings.resolved_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    name = settings.model_name
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        raise NotReady(f"no model version under models:/{name}@{alias} in {uri}: train and promote one "
                       "first (doudi train)") from error
    directory = directory or Path(tempfile.mkdtemp(prefix="doudi-model-"))
    # Pinned by number, not by alias: a later promotion does not change what this process serves.
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = load_registered(f"models:/{name}/{version.version}", directory / "model")
    metrics: dict[str, float] = {}
    card = None
    if version.run_id:
        run = client.get_run(version.run_id)
        metrics = {key.removeprefix(METRIC_PREFIX): float(value) for key, value in run.data.metrics.items()
                   if key.startswith(METRIC_PREFIX) and ".county." not in key}
        try:
            path = client.download_artifacts(version.run_id, CARD_ARTIFACT, str(directory))
            card = Path(path).read_text(encoding="utf-8")
        except (MlflowException, OSError):
            card = None
    return ServingModel(name=name, version=str(version.version), model=model, run_id=version.run_id,
                        aliases=tuple(version.aliases or ()), metrics=metrics, card=card)
