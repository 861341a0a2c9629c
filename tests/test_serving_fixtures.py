"""Shared helpers of the serving, API and storage tests (this module holds no tests).

A small seeded world (``tests/factories.random_world``) and a tiny LightGBM ``RiskModel`` trained on
that world's real features (``features.build_features``) with labels drawn from a known logistic model
of them, so the model has real signal and every feature name, group and dtype is the production one.
Built once per test process (``functools.cache``).
"""

from __future__ import annotations

import contextlib
import copy
import functools

import numpy as np
import pandas as pd
import pytest
from factories import random_world

from doudi.io import World

HOUSEHOLDS = 240
MONTHS = 30  # 2023-01 .. 2025-06
SEED = 11
AS_OF = pd.Timestamp("2025-04-01")
TRAIN_DATES = (pd.Timestamp("2024-04-01"), pd.Timestamp("2024-07-01"), pd.Timestamp("2024-10-01"))


@functools.cache
def world() -> World:
    return random_world(HOUSEHOLDS, MONTHS, SEED)


def synthetic_labels(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Labels from a known logistic model of a few features (low income, income drop, medical burden)."""
    rng = np.random.default_rng(seed)
    ratio = np.nan_to_num(frame["income_to_monitoring_line"].to_numpy(np.float64), nan=1.5)
    drop = np.nan_to_num(frame["income_drop_3m_vs_12m"].to_numpy(np.float64))
    share = np.nan_to_num(frame["medical_oop_share_12m"].to_numpy(np.float64))
    z = -1.0 - 2.0 * np.log(np.clip(ratio, 0.05, 20)) + 2.5 * drop + 1.0 * np.minimum(share, 3)
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-z))).astype(np.int64)


@functools.cache
def snapshots() -> tuple[pd.DataFrame, ...]:
    import features

    return tuple(features.build_features(world(), t) for t in TRAIN_DATES)


@functools.cache
def risk_model():
    """A calibrated RiskModel over every registered feature (monotone constraints from the registry)."""
    from models.dataset import feature_info
    from models.risk_model import RiskModel

    info = feature_info()
    frames = snapshots()
    labels = [synthetic_labels(f, seed=i) for i, f in enumerate(frames)]
    params = {"objective": "binary", "verbosity": -1, "num_leaves": 7, "min_data_in_leaf": 10,
              "learning_rate": 0.1, "num_threads": 1, "seed": 3, "deterministic": True,
              "force_row_wise": True}
    model = RiskModel(info.names, info.categorical, monotone=info.monotone, params=params,
                      num_boost_round=40, early_stopping_rounds=10,
                      tier_targets={"red": 0.6, "orange": 0.45, "yellow": 0.3},
                      registry_version=info.registry_version)
    names = list(info.names)
    return model.fit(frames[0][names], labels[0], X_valid=frames[1][names], y_valid=labels[1],
                     X_calib=frames[2][names], y_calib=labels[2])


def serving_model(*, tiers: dict[str, float | None] | None = None, version: str = "7"):
    """The tiny model wrapped as a pinned serving model; ``tiers`` overrides the thresholds."""
    from serving.champion import ServingModel

    model = risk_model()
    if tiers is not None:
        model = copy.copy(model)
        model.tiers_ = dict(tiers)
    return ServingModel(name="doudi-relapse-risk", version=version, model=model, run_id="run-1",
                        aliases=("champion",), metrics={"roc_auc": 0.8}, card="# card")


@functools.cache
def registered_store() -> tuple[str, str]:
    """A sqlite MLflow store in a temporary folder where the MODEL engineer's ``train_on_splits`` has
    registered a model trained on this world's features (version 1, alias champion).

    Returns:
        (tracking URI, folder).
    """
    import atexit
    import shutil
    import tempfile

    import features
    from models.config import TrainConfig, load_config
    from models.dataset import Splits, feature_info
    from models.train import train_on_splits

    folder = tempfile.mkdtemp(prefix="doudi-serving-mlflow-")
    atexit.register(shutil.rmtree, folder, True)
    uri = f"sqlite:///{folder}/mlflow.db"
    data = load_config().model_dump(mode="json")
    data.update(train={"dates": ["2024-01-01"]}, validation={"dates": ["2024-07-01"]},
                calibration={"dates": ["2024-08-01"]}, test={"dates": [AS_OF.strftime("%Y-%m-%d")]},
                lead_time_months=1, tiers={"red": 0.6, "orange": 0.45, "yellow": 0.3})
    data["lightgbm"].update(n_estimators=40, num_threads=1, min_data_in_leaf=10, num_leaves=7)
    config = TrainConfig.model_validate(data)

    def snapshot(as_of: pd.Timestamp, seed: int, *, labelled: bool = True) -> pd.DataFrame:
        frame = features.build_features(world(), as_of)
        out = frame.reset_index()
        out.insert(0, "as_of", as_of)
        if labelled:
            out["label"] = synthetic_labels(frame, seed)
            out["event_month"] = pd.array([None] * len(out), dtype="string")
            out["reason"] = pd.array([None] * len(out), dtype="string")
        return out

    splits = Splits(train=snapshot(pd.Timestamp("2024-01-01"), 1),
                    validation=snapshot(pd.Timestamp("2024-07-01"), 2),
                    calibration=snapshot(pd.Timestamp("2024-08-01"), 3),
                    test=snapshot(AS_OF, 4), lead=snapshot(AS_OF, 4, labelled=False),
                    horizon_months=config.horizon_months)
    train_on_splits(splits, config, feature_info(), data_fingerprint="serving-tests", tracking_uri=uri)
    return uri, folder


@functools.cache
def cohort_risk() -> pd.Series:
    """The tiny model's risk for every cohort household at AS_OF, highest first."""
    import features
    from doudi.labels import cohort

    ids = cohort(world(), AS_OF)
    frame = features.build_features(world(), AS_OF, households=ids)
    model = risk_model()
    risk = pd.Series(model.predict_proba(frame[model.features]), index=frame.index)
    return risk.sort_values(ascending=False, kind="stable")


def tiers(red: float = 0.9, orange: float = 0.7, yellow: float = 0.4) -> dict[str, float]:
    """Tier thresholds at these quantiles of the cohort's risk (so that every tier occurs in tests)."""
    risk = cohort_risk()
    return {"red": float(risk.quantile(red)), "orange": float(risk.quantile(orange)),
            "yellow": float(risk.quantile(yellow))}


@contextlib.contextmanager
def postgres_engine():
    """An engine on a fresh schema of the PostgreSQL server at ``DOUDI_TEST_POSTGRES_URL`` (skips the test
    when it is not set; ``.ci/run`` sets it), dropped afterwards."""
    import os
    import uuid

    import sqlalchemy as sa

    from serving.db import make_engine

    url = os.environ.get("DOUDI_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("DOUDI_TEST_POSTGRES_URL is not set (CI sets it)")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
