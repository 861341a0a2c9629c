"""Small seeded feature/label frames for the model tests (no world, no feature builders needed).

The label follows a known logistic model of the features, so a fitted model must find the signal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.config import TrainConfig
from models.dataset import FeatureInfo, Splits

COUNTIES = ("530102", "530103", "530104")
NUMERIC = (
    "income_to_monitoring_line", "income_to_edge_line", "income_to_dibao_standard", "income_drop_3m_vs_12m",
    "medical_oop_3m", "medical_oop_12m", "medical_oop_share_12m", "serious_illness", "disaster_loss_12m",
    "uninsured_job_loss_6m", "lifted_out", "cpi_yoy", "food_cpi_yoy", "household_size",
)
CATEGORICAL = ("county_code", "urban_rural")
FEATURES = (*NUMERIC, *CATEGORICAL)
TRIGGER_ONLY = ("edge_family", "medical_oop_to_local_income", "disaster_loss_to_income")
"""Columns the triggers read (gates, the medical yardstick) that are not model inputs here."""
LOCAL_INCOME = 15000.0  # last year's local per-capita disposable income, yuan (medical yardstick)
MONOTONE = {
    "income_to_monitoring_line": -1, "income_to_edge_line": -1, "income_to_dibao_standard": -1,
    "income_drop_3m_vs_12m": 1, "medical_oop_3m": 1, "medical_oop_12m": 1, "medical_oop_share_12m": 1,
    "serious_illness": 1, "disaster_loss_12m": 1, "uninsured_job_loss_6m": 1,
}


def feature_info() -> FeatureInfo:
    return FeatureInfo(FEATURES, CATEGORICAL, {f: MONOTONE.get(f, 0) for f in FEATURES}, "synthetic")


def features(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` households' features and labels drawn from a known logistic model."""
    rng = np.random.default_rng(seed)
    ratio = rng.lognormal(0.5, 0.45, n)
    drop = np.clip(rng.normal(0.0, 0.2, n), -1, 1)
    oop12 = np.where(rng.random(n) < 0.3, rng.exponential(4000, n), 0.0)
    share = np.minimum(oop12 / (ratio * 9000 * 3), 10)
    loss = np.where(rng.random(n) < 0.05, rng.exponential(6000, n), 0.0)
    job = (rng.random(n) < 0.04).astype(float)
    frame = pd.DataFrame({
        "income_to_monitoring_line": ratio,
        "income_to_edge_line": ratio * rng.uniform(0.8, 1.2, n),
        "income_to_dibao_standard": ratio * 1.6,
        "income_drop_3m_vs_12m": drop,
        "medical_oop_3m": oop12 * rng.uniform(0, 0.5, n),
        "medical_oop_12m": oop12,
        "medical_oop_share_12m": share,
        "serious_illness": (oop12 > 8000).astype(float),
        "disaster_loss_12m": loss,
        "uninsured_job_loss_6m": job,
        "lifted_out": (rng.random(n) < 0.4).astype(float),
        "cpi_yoy": np.round(rng.normal(2.0, 1.0, n), 1),
        "food_cpi_yoy": np.round(rng.normal(3.0, 2.0, n), 1),
        "household_size": rng.integers(1, 7, n).astype(float),
        "county_code": pd.array(rng.choice(COUNTIES, n), dtype="string"),
        "urban_rural": pd.array(rng.choice(("urban", "rural"), n), dtype="string"),
    })
    frame.loc[rng.random(n) < 0.05, "medical_oop_share_12m"] = np.nan
    # Their own generator, so that the model features and the labels stay what they were.
    extra = np.random.default_rng([seed, 1])
    frame["edge_family"] = (extra.random(n) < 0.1).astype(float)
    frame["medical_oop_to_local_income"] = oop12 / LOCAL_INCOME
    frame["disaster_loss_to_income"] = np.minimum(loss / (ratio * 9000 * 3), 10)
    z = (-2.6 - 2.2 * np.log(ratio) + 3.0 * drop + 1.5 * np.minimum(share, 3) + loss / 8000 + 1.0 * job
         + 0.4 * (frame["county_code"] == "530104").to_numpy(dtype=float))
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    return frame, label


def snapshots(dates: list[pd.Timestamp], n: int, seed: int, *, labelled: bool = True) -> pd.DataFrame:
    """Stacked snapshot frames in the layout of ``models.dataset.snapshot``."""
    frames = []
    for i, as_of in enumerate(dates):
        x, y = features(n, seed + 101 * i)
        x.insert(0, "household_id", pd.array([f"H{j:05d}" for j in range(n)], dtype="string"))
        x.insert(0, "as_of", as_of)
        if labelled:
            rng = np.random.default_rng(seed + 7 * i)
            x["label"] = y
            months = pd.PeriodIndex([as_of.to_period("M")] * n) + rng.integers(0, 6, n)
            x["event_month"] = pd.array(np.where(y == 1, months.astype(str), None), dtype="string")
            x["reason"] = pd.array(np.where(y == 1, "income", None), dtype="string")
        frames.append(x)
    return pd.concat(frames, ignore_index=True)


def splits(config: TrainConfig, n: int = 1500, seed: int = 1) -> Splits:
    """Synthetic splits at the config's dates."""
    return Splits(
        train=snapshots(config.train.as_of_dates(), n, seed),
        validation=snapshots(config.validation.as_of_dates(), n, seed + 1000),
        calibration=snapshots(config.calibration.as_of_dates(), n, seed + 2000),
        test=snapshots(config.test.as_of_dates(), n, seed + 3000),
        lead=snapshots(config.lead_time_dates(), n, seed + 3000, labelled=False),
        horizon_months=config.horizon_months,
    )
