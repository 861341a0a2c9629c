"""Where monitoring's data comes from: registered models (MLflow), scoring runs (the service database),
feature files and world folders.

A drift side is named by a short spec (``doudi monitor drift --reference SPEC --current SPEC``):

* ``champion``, ``challenger`` or ``model:<alias or version>``: the training reference snapshot logged
  with that registered model version (``reference/snapshot.parquet``).
* ``run:<id>`` (or just the id): a stored scoring run. Its households and stored risk come from the
  database; their features are rebuilt from ``--world`` at the run's as-of date (features at T only
  see records recorded before T, so a newer extract gives the same features).
* a ``.parquet`` file: a features table (``household_id`` column, feature columns, optionally ``risk``;
  without ``risk`` the champion scores it).
* a folder: a world (needs ``--as-of``): the cohort's features at that date, scored by the champion.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from doudi.settings import Settings, disable_telemetry
from monitoring.drift import ContractCheck, DriftData, contract_check_folder
from monitoring.training import REFERENCE_ARTIFACT

MODEL_SPEC = re.compile(r"^(?:model:)?(champion|challenger)$|^model:(\w+)$")
RUN_SPEC = re.compile(r"^(?:run:)?(\d+)$")


class SourceError(ValueError):
    """A spec that names nothing usable (no such run, model, file; missing --world or --as-of)."""


@dataclass(frozen=True)
class ModelRef:
    """A registered model version and the MLflow run that trained it."""

    name: str
    version: str
    run_id: str | None


def _client(settings: Settings) -> Any:
    disable_telemetry()
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = settings.resolved_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def resolve_model(settings: Settings, ref: str = "champion") -> ModelRef:
    """A registered version by alias (``champion``, ``challenger``, any alias) or number.

    Raises:
        SourceError: no such model, alias or version.
    """
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    name = settings.model_name
    try:
        version = (client.get_model_version(name, ref) if ref.isdigit()
                   else client.get_model_version_by_alias(name, ref))
    except MlflowException:
        raise SourceError(f"no version {ref!r} of registered model {name} in "
                          f"{settings.resolved_tracking_uri()}: train one first (doudi train)") from None
    return ModelRef(name, str(version.version), version.run_id)


def load_model(settings: Settings, ref: ModelRef, directory: Path) -> Any:
    """The native ``RiskModel`` of a registered version."""
    from models.train import load_registered

    _client(settings)
    return load_registered(f"models:/{ref.name}/{ref.version}", directory)


def model_metrics(settings: Settings, name: str, version: str) -> dict[str, float] | None:
    """The LightGBM test-period metrics logged with a registered version (None when unknown)."""
    run = _version_run(settings, name, version)
    if run is None:
        return None
    metrics = {k.removeprefix("lightgbm."): float(v) for k, v in run.data.metrics.items()
               if k.startswith("lightgbm.") and ".county." not in k and ".fairness." not in k
               and not k.startswith("lightgbm.fairness.")}
    return metrics or None


def model_horizon(settings: Settings, name: str, version: str) -> int | None:
    """The label horizon a registered version was trained for (tag ``doudi.horizon_months``)."""
    run = _version_run(settings, name, version)
    value = None if run is None else run.data.tags.get("doudi.horizon_months")
    return int(value) if value and str(value).isdigit() else None


def _version_run(settings: Settings, name: str, version: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    try:
        model_version = client.get_model_version(name, str(version))
        return client.get_run(model_version.run_id) if model_version.run_id else None
    except MlflowException:
        return None


def reference_from_model(settings: Settings, ref: str = "champion") -> DriftData:
    """The training reference snapshot logged with a registered model version.

    Raises:
        SourceError: no such version, or it was trained before reference snapshots were logged.
    """
    from mlflow.exceptions import MlflowException

    model = resolve_model(settings, ref)
    client = _client(settings)
    with tempfile.TemporaryDirectory(prefix="doudi-reference-") as tmp:
        try:
            path = client.download_artifacts(model.run_id, REFERENCE_ARTIFACT, tmp)
        except (MlflowException, OSError):
            raise SourceError(f"{model.name} v{model.version} has no {REFERENCE_ARTIFACT} (trained before "
                              "reference snapshots were logged): retrain it, or pass a features file"
                              ) from None
        frame = pd.read_parquet(path)
    dates = pd.to_datetime(frame["as_of"]) if "as_of" in frame else pd.Series(dtype="datetime64[ns]")
    span = f" {dates.min():%Y-%m}..{dates.max():%Y-%m}" if len(dates) else ""
    frame = frame.set_index(pd.Index(frame["household_id"].astype(str), name="household_id"))
    frame = frame.drop(columns=[c for c in ("as_of", "household_id", "label") if c in frame])
    return DriftData(frame, f"{model.name} v{model.version} training snapshot{span}", as_of=None,
                     model_name=model.name, model_version=model.version)


def _features_at(world: Any, as_of: pd.Timestamp, households: pd.Index | None) -> pd.DataFrame:
    from features import build_features, encode_world

    return build_features(encode_world(world), as_of, households=households)


def current_from_run(settings: Settings, sessions: Any, run_id: int, world_dir: Path | None,
                     *, world: Any = None) -> DriftData:
    """A stored scoring run: its households and risk from the database, features rebuilt from the world.

    Raises:
        SourceError: no such run, or no world to rebuild the features from.
    """
    import sqlalchemy as sa

    from monitoring import store
    from serving.orm import ScoringRun

    with sessions() as session:
        run = session.scalar(sa.select(ScoringRun).where(ScoringRun.id == run_id))
        if run is None:
            raise SourceError(f"no scoring run {run_id} in the database")
        scores = store.run_scores(session, run_id)
    if world is None:
        if world_dir is None:
            raise SourceError(f"run {run_id}: pass --world DIR (the data it was scored on, or newer) so its "
                              "features can be rebuilt")
        world = _load_world(world_dir)
    as_of = pd.Timestamp(run.as_of)
    frame = _features_at(world, as_of, pd.Index(scores.index, name="household_id"))
    frame["risk"] = scores["risk"].reindex(frame.index).to_numpy()
    contract = contract_check_folder(world_dir) if world_dir is not None else None
    return DriftData(frame, f"scoring run {run_id} ({as_of.date()}, {run.model_name} v{run.model_version})",
                     as_of=as_of, run_id=run_id, model_name=run.model_name, model_version=run.model_version,
                     contract=contract)


def _load_world(directory: Path) -> Any:
    from doudi.validate import load_world

    return load_world(directory)


def current_from_file(path: Path, *, scorer: Any = None, label: str | None = None) -> DriftData:
    """A features table (``household_id`` column or index, feature columns, optionally ``risk``)."""
    frame = pd.read_parquet(path)
    if "household_id" in frame:
        frame = frame.set_index(pd.Index(frame["household_id"].astype(str), name="household_id"))
        frame = frame.drop(columns=["household_id"])
    as_of = None
    if "as_of" in frame:
        dates = pd.to_datetime(frame["as_of"]).dropna().unique()
        as_of = pd.Timestamp(dates[0]) if len(dates) == 1 else None
        frame = frame.drop(columns=["as_of"])
    model_name = model_version = None
    if "risk" not in frame and scorer is not None:
        frame["risk"] = scorer.model.predict_proba(frame[scorer.model.features])
        model_name, model_version = scorer.name, scorer.version
    return DriftData(frame, label or str(path), as_of=as_of, model_name=model_name,
                     model_version=model_version)


def current_from_world(directory: Path, as_of: pd.Timestamp, *, scorer: Any = None) -> DriftData:
    """The cohort of a world folder at ``as_of``: features, and the champion's risk when a scorer is given."""
    from doudi.labels import cohort

    contract = contract_check_folder(directory)
    if contract.errors:
        return DriftData(pd.DataFrame(), str(directory), as_of=as_of, contract=contract)
    world = _load_world(directory)
    frame = _features_at(world, as_of, cohort(world, as_of))
    model_name = model_version = None
    if scorer is not None:
        frame["risk"] = scorer.model.predict_proba(frame[scorer.model.features])
        model_name, model_version = scorer.name, scorer.version
    return DriftData(frame, f"{directory} at {as_of.date()}", as_of=as_of, model_name=model_name,
                     model_version=model_version, contract=contract)


@dataclass(frozen=True)
class Scorer:
    """A registered model loaded natively, to score data that comes without a risk column."""

    name: str
    version: str
    model: Any


def champion_scorer(settings: Settings, directory: Path) -> Scorer | None:
    """The champion, loaded natively; None when there is no champion (the data is compared without score)."""
    try:
        ref = resolve_model(settings, "champion")
    except SourceError:
        return None
    return Scorer(ref.name, ref.version, load_model(settings, ref, directory))


def resolve(spec: str, *, settings: Settings, sessions: Any = None, world_dir: Path | None = None,
            as_of: pd.Timestamp | None = None, workdir: Path | None = None) -> DriftData:
    """The drift side named by ``spec`` (see the module docstring).

    Raises:
        SourceError: the spec names nothing usable.
    """
    model = MODEL_SPEC.match(spec)
    if model:
        return reference_from_model(settings, model.group(1) or model.group(2))
    run = RUN_SPEC.match(spec)
    if run:
        if sessions is None:
            raise SourceError("a scoring run needs the service database")
        return current_from_run(settings, sessions, int(run.group(1)), world_dir)
    path = Path(spec)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="doudi-monitor-"))
    if path.is_file() and path.suffix == ".parquet":
        import pyarrow.parquet as pq

        scored = "risk" in pq.read_schema(path).names
        scorer = None if scored else champion_scorer(settings, workdir / "champion")
        return current_from_file(path, scorer=scorer)
    if path.is_dir():
        if as_of is None:
            raise SourceError(f"{path} is a world folder: pass --as-of DATE to say which cohort to compare")
        return current_from_world(path, as_of, scorer=champion_scorer(settings, workdir / "champion"))
    raise SourceError(f"{spec!r} is not champion/challenger/model:VERSION, run:ID, a .parquet features file "
                      "or a world folder")


__all__ = ["ContractCheck", "ModelRef", "Scorer", "SourceError", "resolve"]
