"""Train and compare the rule baseline, logistic regression and LightGBM; log and register with MLflow.

``train`` runs the whole stage: snapshots and splits, fitting, evaluation on the test period, then one
MLflow run with params, config hash, data fingerprint, the feature list with the registry version, every
metric (``<model>.<metric>`` and ``<model>.county.<code>.<metric>``), plots, the splits table and the
model card, and registers the LightGBM model as a pyfunc (alias ``challenger``; the first version
ever is also ``champion``).

When a champion exists, the champion is re-scored on this run's test data and logged as
``champion.<metric>`` with tag ``doudi.champion_compared_version``: ``doudi promote`` then compares
challenger and champion on the same test period (see ``models/registry.py``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from doudi.io import World
from doudi.policy import PolicyConfig
from doudi.settings import Settings, disable_telemetry
from models.config import TrainConfig
from models.dataset import FeatureInfo, Splits, build_splits, data_fingerprint, describe_splits, feature_info
from models.evaluate import lead_time_summary, lead_times, ranking_metrics
from models.logistic import LogisticBaseline
from models.risk_model import RiskModel
from models.rules import RuleBaseline

MODEL_NAMES = ("rules", "logistic", "lightgbm")
FIT_STEPS = ("fit rule baseline", "fit logistic regression", "fit LightGBM", "evaluate", "log to MLflow")
EXPERIMENT = "doudi-relapse-risk"
TAG_PREFIX = "doudi."


class Scorer(Protocol):
    def score(self, X: pd.DataFrame) -> np.ndarray: ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...


@dataclass
class TrainResult:
    """What a training run produced."""

    models: dict[str, Scorer]
    metrics: dict[str, dict[str, float]]
    by_county: dict[str, dict[str, dict[str, float]]]
    splits: Splits
    splits_table: pd.DataFrame
    features: FeatureInfo
    config_hash: str
    data_fingerprint: str
    run_id: str | None = None
    model_version: str | None = None
    aliases: list[str] = field(default_factory=list)
    champion_metrics: dict[str, float] | None = None

    @property
    def comparison(self) -> pd.DataFrame:
        """Models x metrics on the test period."""
        return pd.DataFrame(self.metrics).T.loc[list(self.metrics)].rename_axis("model")

    def report(self) -> dict[str, Any]:
        """The JSON report: ``{"models": {name: metrics}, ...}`` (NaN as null)."""
        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, float) and np.isnan(value):
                return None
            return value

        return clean({
            "models": self.metrics,
            "by_county": self.by_county,
            "splits": self.splits_table.to_dict(orient="records"),
            "features": list(self.features.names),
            "registry_version": self.features.registry_version,
            "config_hash": self.config_hash,
            "data_fingerprint": self.data_fingerprint,
            "run_id": self.run_id,
            "model_version": self.model_version,
            "aliases": self.aliases,
            "champion_on_this_test": self.champion_metrics,
        })


def fit_models(
    splits: Splits,
    config: TrainConfig,
    info: FeatureInfo,
    *,
    policy: PolicyConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Scorer]:
    """Fit the three models on the training snapshots (LightGBM: early stopping on validation, then
    calibration and tiers on the calibration snapshots)."""
    def step(name: str) -> None:
        if progress is not None:
            progress(name)

    names = list(info.names)
    train_x, train_y = splits.train[names], splits.train["label"]
    rules = RuleBaseline(policy).fit(splits.train, train_y)
    step(FIT_STEPS[0])
    logistic = LogisticBaseline(
        names, info.categorical, C=config.logistic.C, max_iter=config.logistic.max_iter,
        clip_quantile=config.logistic.clip_quantile,
    ).fit(train_x, train_y)
    step(FIT_STEPS[1])
    lgbm = RiskModel(
        names, info.categorical, monotone=info.monotone, params=config.lightgbm.booster_params(),
        num_boost_round=config.lightgbm.n_estimators,
        early_stopping_rounds=config.lightgbm.early_stopping_rounds,
        calibration=config.calibration_method, tier_targets=config.tiers.model_dump(),
        registry_version=info.registry_version,
    ).fit(train_x, train_y, X_valid=splits.validation[names], y_valid=splits.validation["label"],
          X_calib=splits.calibration[names], y_calib=splits.calibration["label"])
    step(FIT_STEPS[2])
    return {"rules": rules, "logistic": logistic, "lightgbm": lgbm}


def _list_metrics(frame: pd.DataFrame, score: np.ndarray, probability: np.ndarray,
                  config: TrainConfig) -> dict[str, float]:
    """Metrics of each as-of's list, averaged over the test as-of dates (counts are summed)."""
    per_date = [
        ranking_metrics(frame["label"].to_numpy()[rows], score[rows], probability[rows],
                        k_values=config.k_values, bins=config.ece_bins)
        for rows in frame.groupby("as_of", sort=True).indices.values()
    ]
    table = pd.DataFrame(per_date)
    out = table.mean().to_dict()
    out.update(n=float(table["n"].sum()), positives=float(table["positives"].sum()))
    return {k: float(v) for k, v in out.items()}


def _event_leads(model: Scorer, splits: Splits, config: TrainConfig) -> pd.DataFrame:
    """Lead time per event of the test cohort (label 1 at the first test as-of), from the monthly lists."""
    test = splits.test
    first = test["as_of"] == test["as_of"].min()
    events = test.loc[first & (test["label"] == 1), ["household_id", "event_month", "county_code"]]
    lists = splits.lead[["as_of", "household_id"]].assign(score=model.score(splits.lead))
    leads = lead_times(events, lists, fraction=config.lead_time_k, seed=config.tie_break_seed)
    leads["county_code"] = events.set_index("household_id")["county_code"].reindex(leads.index)
    return leads


def _evaluate(
    model: Scorer, splits: Splits, config: TrainConfig
) -> tuple[dict[str, float], dict[str, dict[str, float]], pd.DataFrame]:
    test = splits.test
    score, probability = model.score(test), model.predict_proba(test)
    overall = _list_metrics(test, score, probability, config)
    leads = _event_leads(model, splits, config)
    overall.update(lead_time_summary(leads))
    by_county: dict[str, dict[str, float]] = {}
    for county, rows in test.groupby("county_code", sort=True).indices.items():
        metrics = _list_metrics(test.iloc[rows], score[rows], probability[rows], config)
        metrics.update(lead_time_summary(leads[leads["county_code"] == county]))
        by_county[str(county)] = metrics
    return overall, by_county, leads


def evaluate_model(
    model: Scorer, splits: Splits, config: TrainConfig
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Test-period metrics of one model, overall and per county.

    Lead time: the test cohort's households that fall into hardship (label 1 at the first test as-of)
    are followed through the monthly lists of ``splits.lead``. Per county, precision@k uses the
    county's own top k (verification capacity is local); lead time uses the global monthly lists.
    """
    overall, by_county, _ = _evaluate(model, splits, config)
    return overall, by_county


def evaluate_models(
    models: Mapping[str, Scorer], splits: Splits, config: TrainConfig
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, dict[str, float]]]]:
    """:func:`evaluate_model` for each model, plus the paired lead-time comparison with the rules.

    ``lead_gain_vs_rules_months``: over the events that both this model and the rule baseline caught
    before they happened, the mean of (this model's lead - the rules' lead); ``earlier_than_rules_share``
    the share of those events this model listed strictly earlier.
    """
    metrics, by_county, leads = {}, {}, {}
    for name, model in models.items():
        metrics[name], by_county[name], leads[name] = _evaluate(model, splits, config)
    if "rules" in leads:
        base = leads["rules"]["lead_months"]
        for name, table in leads.items():
            both = table["lead_months"].notna() & base.reindex(table.index).notna()
            gain = (table["lead_months"] - base.reindex(table.index))[both]
            empty = len(gain) == 0
            metrics[name]["lead_gain_vs_rules_months"] = float("nan") if empty else float(gain.mean())
            metrics[name]["earlier_than_rules_share"] = float("nan") if empty else float((gain > 0).mean())
    return metrics, by_county


def flat_metrics(
    metrics: Mapping[str, Mapping[str, float]], by_county: Mapping[str, Mapping[str, Mapping[str, float]]]
) -> dict[str, float]:
    """``<model>.<metric>`` and ``<model>.county.<code>.<metric>`` for MLflow (NaN kept: "undefined")."""
    out = {f"{m}.{k}": v for m, values in metrics.items() for k, v in values.items()}
    out.update({f"{m}.county.{c}.{k}": v for m, counties in by_county.items()
                for c, values in counties.items() for k, v in values.items()})
    return {k: float(v) for k, v in out.items() if v is not None and not np.isinf(v)}


def train(
    world: World,
    config: TrainConfig,
    *,
    tracking_uri: str | None = None,
    model_name: str | None = None,
    register: bool = True,
    policy: PolicyConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Build the splits, fit and compare the three models, log the run and register the LightGBM model.

    Args:
        world: validated input tables.
        config: training config.
        tracking_uri: MLflow tracking URI (``Settings().resolved_tracking_uri()`` when None).
        model_name: registered model name (``Settings().model_name`` when None).
        register: register the model version (and set aliases).
        policy: trigger thresholds for the rule baseline (the packaged policy when None).
        progress: called with a short description after each snapshot and each stage.
    """
    info = feature_info(config.features)
    splits = build_splits(world, config, progress=progress)
    from monitoring.training import with_audit_groups  # fairness audit groups (not model inputs)

    splits = with_audit_groups(splits, world)
    return train_on_splits(splits, config, info, data_fingerprint=data_fingerprint(world),
                           tracking_uri=tracking_uri, model_name=model_name, register=register, policy=policy,
                           progress=progress)


def train_on_splits(
    splits: Splits,
    config: TrainConfig,
    info: FeatureInfo,
    *,
    data_fingerprint: str,
    tracking_uri: str | None = None,
    model_name: str | None = None,
    register: bool = True,
    policy: PolicyConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """:func:`train` from snapshots already built (fit, evaluate, log, register)."""
    disable_telemetry()
    settings = Settings()
    models = fit_models(splits, config, info, policy=policy, progress=progress)
    metrics, by_county = evaluate_models(models, splits, config)
    if progress is not None:
        progress(FIT_STEPS[3])
    result = TrainResult(
        models=models, metrics=metrics, by_county=by_county, splits=splits,
        splits_table=describe_splits(splits), features=info, config_hash=config.config_hash(),
        data_fingerprint=data_fingerprint,
    )
    _log_run(result, config, tracking_uri=tracking_uri or settings.resolved_tracking_uri(),
             model_name=model_name or settings.model_name, register=register)
    if progress is not None:
        progress(FIT_STEPS[4])
    return result


def _experiment_id(mlflow: Any, tracking_uri: str) -> str:
    """The experiment, created with its artifacts beside a local sqlite store (not in the working dir)."""
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:///"):
        location = (Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
    return mlflow.create_experiment(EXPERIMENT, artifact_location=location)


def _champion(client: Any, model_name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model_name)
        return client.get_model_version_by_alias(model_name, "champion")
    except MlflowException:
        return None


def load_registered(model_uri: str, directory: Path) -> RiskModel:
    """Download a registered model (``models:/name@alias``) and load its RiskModel natively."""
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(directory)))
    return RiskModel.load(local / "artifacts" / "risk_model")


def _champion_on_test(champion: Any, splits: Splits, config: TrainConfig, model_name: str,
                      workdir: Path) -> dict[str, float] | None:
    """The current champion's metrics on this run's test data, or None if it needs features we lack."""
    model = load_registered(f"models:/{model_name}/{champion.version}", workdir / "champion")
    if any(name not in splits.test for name in model.features):
        return None
    metrics, _ = evaluate_model(model, splits, config)
    from monitoring.training import test_period_metrics  # fairness flags on this test period

    metrics.update(test_period_metrics(model, splits, seed=config.tie_break_seed))
    return metrics


def _log_run(result: TrainResult, config: TrainConfig, *, tracking_uri: str, model_name: str,
             register: bool) -> None:
    import lightgbm
    import mlflow
    from mlflow.tracking import MlflowClient

    from models import pyfunc

    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    lgbm: RiskModel = result.models["lightgbm"]  # type: ignore[assignment]
    test_dates = ",".join(d.strftime("%Y-%m-%d") for d in config.test.as_of_dates())
    experiment_id = _experiment_id(mlflow, tracking_uri)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(experiment_id=experiment_id) as run:
        work = Path(tmp)
        champion = _champion(client, model_name) if register else None
        tags = {
            "config_hash": result.config_hash, "data_fingerprint": result.data_fingerprint,
            "registry_version": result.features.registry_version, "test_period": test_dates,
            "horizon_months": str(config.horizon_months),
        }
        if champion is not None:
            result.champion_metrics = _champion_on_test(champion, result.splits, config, model_name, work)
            if result.champion_metrics is not None:
                tags["champion_compared_version"] = str(champion.version)
                mlflow.log_metrics({f"champion.{k}": v for k, v in result.champion_metrics.items()
                                    if np.isfinite(v)})
        mlflow.set_tags({TAG_PREFIX + k: v for k, v in tags.items()})
        mlflow.log_params({**config.flat_params(), "feature_count": len(result.features.names),
                           "registry_version": result.features.registry_version})
        mlflow.log_metrics(flat_metrics(result.metrics, result.by_county))
        from monitoring.training import test_period_metrics  # fairness flags, for the promotion check

        mlflow.log_metrics(test_period_metrics(lgbm, result.splits, seed=config.tie_break_seed,
                                               prefix="lightgbm."))
        mlflow.log_metric("lightgbm.best_iteration", lgbm.best_iteration_)
        _write_artifacts(result, config, work / "report", model_name=model_name)
        mlflow.log_artifacts(str(work / "report"))
        model_dir = lgbm.save(work / "risk_model")
        example = pyfunc.input_frame(lgbm, result.splits.test.head(5)).reset_index(drop=True)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=pyfunc.RiskModelPyfunc(),
            artifacts={pyfunc.ARTIFACT_KEY: str(model_dir)},
            code_paths=[str(_package_copy(work / "code"))],
            signature=pyfunc.signature(lgbm),
            input_example=example,
            registered_model_name=model_name if register else None,
            pip_requirements=[f"lightgbm=={lightgbm.__version__}", f"pandas=={pd.__version__}",
                              f"numpy=={np.__version__}", f"mlflow=={mlflow.__version__}"],
        )
        result.run_id = run.info.run_id
    if register:
        version = str(info.registered_model_version)
        client.set_registered_model_alias(model_name, "challenger", version)
        result.aliases = ["challenger"]
        if champion is None:
            client.set_registered_model_alias(model_name, "champion", version)
            result.aliases.append("champion")
        result.model_version = version


def _package_copy(directory: Path) -> Path:
    """This package's source (no caches) for the pyfunc's ``code_paths``: loads without an install."""
    target = directory / "models"
    shutil.copytree(Path(__file__).parent, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


def _write_artifacts(result: TrainResult, config: TrainConfig, directory: Path, *, model_name: str) -> None:
    from models import report

    plots = directory / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    test = result.splits.test
    y = test["label"].to_numpy()
    ranking = {name: (y, m.score(test)) for name, m in result.models.items()}
    probability = {name: (y, m.predict_proba(test)) for name, m in result.models.items()}
    lgbm: RiskModel = result.models["lightgbm"]  # type: ignore[assignment]
    report.plot_pr_curves(ranking, plots / "pr_curve.png")
    report.plot_calibration(probability, plots / "calibration_curve.png", bins=config.ece_bins)
    report.plot_importance(lgbm.feature_importance(), plots / "importance.png")
    comparison = result.comparison
    by_county = pd.DataFrame(result.by_county["lightgbm"]).T.rename_axis("county")
    comparison.to_csv(directory / "comparison.csv")
    pd.concat({m: pd.DataFrame(c).T for m, c in result.by_county.items()}, names=["model", "county"]).to_csv(
        directory / "metrics_by_county.csv")
    result.splits_table.to_csv(directory / "splits.csv", index=False)
    (directory / "config.json").write_text(config.canonical_json(), encoding="utf-8")
    (directory / "features.json").write_text(json.dumps({
        "registry_version": result.features.registry_version,
        "features": [{"name": n, "kind": "categorical" if n in result.features.categorical else "numeric",
                      "monotone": result.features.monotone[n]} for n in result.features.names],
    }, indent=2), encoding="utf-8")
    report_text = json.dumps(result.report(), indent=2, default=str)
    (directory / "report.json").write_text(report_text, encoding="utf-8")
    from monitoring.training import write_training_artifacts  # drift reference snapshot, fairness table

    fairness = write_training_artifacts(lgbm, result.splits, directory, seed=config.tie_break_seed)
    card = report.model_card(
        model_name=model_name, comparison=comparison, by_county=by_county, splits=result.splits_table,
        tiers=lgbm.tiers_, tier_targets=lgbm.tier_targets, features=list(result.features.names),
        registry_version=result.features.registry_version, config_hash=result.config_hash,
        data_fingerprint=result.data_fingerprint, horizon_months=config.horizon_months,
        lead_time_k=config.lead_time_k, fairness=fairness,
    )
    (directory / "model_card.md").write_text(card, encoding="utf-8")
