"""The training config: data (a YAML file) read into a frozen pydantic model, hashed and logged with a run.

The as-of dates of the four periods are checked for leakage when the config is read: every training
label window (T, T + H] must end on or before the first validation and calibration as-of date, and every
validation and calibration window must end on or before the first test as-of date (rolling origin).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

DEFAULT_CONFIG = "default.yaml"


class Period(BaseModel):
    """A set of monthly as-of dates: an explicit list, or a range ``start..end`` every ``step_months``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dates: tuple[date, ...] = ()
    start: date | None = None
    end: date | None = None
    step_months: PositiveInt = 1

    @model_validator(mode="after")
    def _one_form(self) -> Period:
        ranged = self.start is not None or self.end is not None
        if bool(self.dates) == ranged:
            raise ValueError("give either `dates` or both `start` and `end`")
        if ranged and (self.start is None or self.end is None):
            raise ValueError("a range needs both `start` and `end`")
        if ranged and self.start > self.end:  # type: ignore[operator]
            raise ValueError(f"start {self.start} is after end {self.end}")
        for day in self.as_of_dates():
            if day.day != 1:
                raise ValueError(f"as-of date {day.date()} is not the first of a month (monthly snapshots)")
        return self

    def as_of_dates(self) -> list[pd.Timestamp]:
        """The as-of dates, sorted, as midnight timestamps."""
        if self.dates:
            return sorted({pd.Timestamp(d) for d in self.dates})
        start, end = pd.Timestamp(self.start), pd.Timestamp(self.end)
        out, current = [], start
        while current <= end:
            out.append(current)
            current = current + pd.DateOffset(months=self.step_months)
        return out


class LightGBMParams(BaseModel):
    """LightGBM parameters (names as in ``lightgbm.train``; ``n_estimators`` is the round budget)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objective: Literal["binary"] = "binary"
    num_leaves: PositiveInt = 31
    learning_rate: float = Field(0.05, gt=0, le=1)
    n_estimators: PositiveInt = 600
    early_stopping_rounds: PositiveInt = 50
    min_data_in_leaf: PositiveInt = 100
    feature_fraction: float = Field(0.9, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(1.0, ge=0)
    cat_smooth: float = Field(10.0, ge=0)
    monotone_constraints_method: Literal["basic", "intermediate", "advanced"] = "intermediate"
    num_threads: PositiveInt = 2
    seed: int = 7

    def booster_params(self) -> dict[str, object]:
        """Parameters for ``lightgbm.train`` (without the round budget and early stopping)."""
        params = self.model_dump(exclude={"n_estimators", "early_stopping_rounds"})
        params.update(verbosity=-1, deterministic=True, force_row_wise=True)
        return params


class LogisticParams(BaseModel):
    """The scaled logistic-regression baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    C: float = Field(1.0, gt=0)
    max_iter: PositiveInt = 2000
    clip_quantile: float = Field(0.005, ge=0, lt=0.5)


class TierTargets(BaseModel):
    """Precision each alert tier must reach on the calibration period (red is the most certain)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    red: float = Field(0.5, gt=0, le=1)
    orange: float = Field(0.3, gt=0, le=1)
    yellow: float = Field(0.15, gt=0, le=1)

    @model_validator(mode="after")
    def _decreasing(self) -> TierTargets:
        if not self.red >= self.orange >= self.yellow:
            raise ValueError("tier precision targets must satisfy red >= orange >= yellow")
        return self


class TrainConfig(BaseModel):
    """Everything that decides a training run; see ``models/default.yaml`` for the documented default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon_months: PositiveInt = 6
    train: Period
    validation: Period
    calibration: Period
    test: Period
    lead_time_months: PositiveInt | None = Field(
        None, description="Monthly scorings from the first test as-of for lead time; the horizon if unset."
    )
    features: tuple[str, ...] | None = Field(None, description="Feature list; all registered ones if unset.")
    lightgbm: LightGBMParams = LightGBMParams()
    logistic: LogisticParams = LogisticParams()
    calibration_method: Literal["platt", "isotonic"] = "platt"
    k_values: tuple[float, ...] = (0.01, 0.05, 0.10)
    lead_time_k: float = Field(0.05, gt=0, lt=1)
    tiers: TierTargets = TierTargets()
    ece_bins: PositiveInt = 10
    tie_break_seed: int = 7

    @model_validator(mode="after")
    def _no_leakage(self) -> TrainConfig:
        if not self.k_values or any(not 0 < k < 1 for k in self.k_values):
            raise ValueError("k_values must be fractions in (0, 1)")
        if self.features is not None and len(set(self.features)) != len(self.features):
            raise ValueError("features lists a name twice")
        horizon = pd.DateOffset(months=self.horizon_months)
        train, valid = self.train.as_of_dates(), self.validation.as_of_dates()
        calib, test = self.calibration.as_of_dates(), self.test.as_of_dates()
        first_held_out = min(valid[0], calib[0])
        if train[-1] + horizon > first_held_out:
            raise ValueError(
                f"training label window of {train[-1].date()} ends {(train[-1] + horizon).date()}, after the "
                f"first validation/calibration as-of {first_held_out.date()}: labels would leak"
            )
        for name, dates in (("validation", valid), ("calibration", calib)):
            if dates[-1] + horizon > test[0]:
                raise ValueError(
                    f"{name} label window of {dates[-1].date()} ends {(dates[-1] + horizon).date()}, "
                    f"after the first test as-of {test[0].date()}"
                )
        return self

    @property
    def lead_months(self) -> int:
        """Number of monthly as-of dates scored for lead time, starting at the first test as-of."""
        return self.lead_time_months or self.horizon_months

    def lead_time_dates(self) -> list[pd.Timestamp]:
        """The monthly as-of dates at which the test-period lists are drawn for lead time."""
        first = self.test.as_of_dates()[0]
        return [first + pd.DateOffset(months=i) for i in range(self.lead_months)]

    def canonical_json(self) -> str:
        """The config as canonical JSON (sorted keys, no spaces): what the hash is taken of."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        """sha256 of the canonical JSON, hex."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def flat_params(self) -> dict[str, str]:
        """Flattened ``section.key`` -> value strings, for ``mlflow.log_params``."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: object) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    walk(f"{prefix}.{key}" if prefix else key, item)
            elif isinstance(value, list):
                out[prefix] = ",".join(str(v) for v in value)
            else:
                out[prefix] = str(value)

        walk("", self.model_dump(mode="json"))
        return out


def load_config(path: Path | None = None) -> TrainConfig:
    """Read a training config YAML (the packaged ``models/default.yaml`` when ``path`` is None).

    Raises:
        pydantic.ValidationError: unknown keys, bad values or leaking periods (the message names the field).
    """
    if path is None:
        text = resources.files("models").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    return TrainConfig.model_validate(data)
