"""The monitoring config: data (``monitoring/monitoring.yaml``) read into a frozen pydantic model.

Drift methods and thresholds, the performance margins and the fairness band live here and nowhere else,
so that two reports made months apart (or for two townships) are judged the same way. The config hash is
stored with every report.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

DEFAULT_CONFIG = "monitoring.yaml"
ATTRIBUTES = (
    "county_code", "urban_rural", "ethnic_minority", "disabled_member", "female_head", "elderly_head",
)
"""Group attributes the fairness audit knows how to derive (see ``monitoring.fairness.household_groups``)."""
RATE_METRICS = ("alert_rate", "precision", "fnr", "fpr")

_FROZEN = ConfigDict(extra="forbid", frozen=True)
CALENDAR_FEATURES = ("cpi_yoy", "food_cpi_yoy", "months_since_lifted", "months_since_exit",
                     "months_since_disaster", "months_since_job_loss", "assets_check_age_months")
"""Features that move with the calendar (monthly prices; counters that grow with the length of history)."""
STATTESTS = ("wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "ks", "chisquare", "z", "TVD",
             "anderson", "ed", "es", "mannw", "cramer_von_mises", "t_test", "empirical_mmd", "fisher_exact",
             "g_test")
"""Evidently's stattest names (``evidently.legacy.calculations.stattests``)."""


class DriftConfig(BaseModel):
    """How drift is measured and when a run is flagged."""

    model_config = _FROZEN

    numeric_method: str = "wasserstein"
    numeric_threshold: float = Field(default=0.1, gt=0)
    categorical_method: str = "jensenshannon"
    categorical_threshold: float = Field(default=0.1, gt=0)
    score_method: str = "psi"
    score_threshold: float = Field(default=0.1, gt=0)
    drifted_share: float = Field(default=0.5, gt=0, le=1)
    warn_share: float = Field(default=0.2, gt=0, le=1)
    strong_factor: float = Field(default=5.0, ge=1)
    group_share: float = Field(default=0.5, gt=0, le=1)
    min_group_features: PositiveInt = 3
    calendar_features: tuple[str, ...] = CALENDAR_FEATURES
    flag_on_score: bool = True
    missing_increase: float = Field(default=0.05, ge=0, le=1)
    flag_on_contract: bool = True
    max_rows: PositiveInt = 20000
    seed: int = 7

    @model_validator(mode="after")
    def _known_methods(self) -> DriftConfig:
        for name in ("numeric_method", "categorical_method", "score_method"):
            method = getattr(self, name)
            if method not in STATTESTS:
                raise ValueError(f"{name}: unknown drift method {method!r}; use one of "
                                 f"{', '.join(STATTESTS)}")
        return self


class PerformanceConfig(BaseModel):
    """When a run's labels have matured and how a drop in its performance is judged."""

    model_config = _FROZEN

    horizon_months: PositiveInt = 6
    maturity_lag_months: int = Field(default=2, ge=0)
    k_values: tuple[float, ...] = (0.01, 0.05, 0.10)
    bins: PositiveInt = 10
    drop_margins: dict[str, float] = Field(
        default_factory=lambda: {"precision_at_5pct": 0.05, "recall_at_5pct": 0.05, "pr_auc": 0.05})
    ece_margin: float = Field(default=0.03, ge=0)
    sources: tuple[Literal["batch", "api"], ...] = ("batch",)

    @model_validator(mode="after")
    def _fractions(self) -> PerformanceConfig:
        if not self.k_values or any(not 0 < k < 1 for k in self.k_values):
            raise ValueError("k_values must be fractions in (0, 1)")
        if any(margin < 0 for margin in self.drop_margins.values()):
            raise ValueError("drop_margins must not be negative")
        return self


class FairnessConfig(BaseModel):
    """Which groups are audited, against which reference, and when a disparity is flagged."""

    model_config = _FROZEN

    attributes: tuple[str, ...] = ATTRIBUTES
    elderly_age: PositiveInt = 60
    alert_fraction: float = Field(default=0.05, gt=0, lt=1)
    band: tuple[float, float] = (0.8, 1.25)
    flag_metrics: tuple[str, ...] = ("fnr",)
    reference_groups: dict[str, str] = Field(default_factory=dict)
    min_support: PositiveInt = 30
    confidence: float = Field(default=0.95, gt=0, lt=1)
    require_separation: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> FairnessConfig:
        unknown = sorted(set(self.attributes) - set(ATTRIBUTES))
        if unknown:
            raise ValueError(f"unknown fairness attributes {unknown}; known: {', '.join(ATTRIBUTES)}")
        bad = sorted(set(self.flag_metrics) - set(RATE_METRICS))
        if bad:
            raise ValueError(f"unknown flag_metrics {bad}; use {', '.join(RATE_METRICS)}")
        low, high = self.band
        if not 0 < low < 1 < high:
            raise ValueError(f"band {self.band} must contain 1 (e.g. [0.8, 1.25])")
        return self


class MonitoringConfig(BaseModel):
    """Everything that decides how doudi judges drift, matured performance and fairness."""

    model_config = _FROZEN

    drift: DriftConfig = DriftConfig()
    performance: PerformanceConfig = PerformanceConfig()
    fairness: FairnessConfig = FairnessConfig()

    def config_hash(self) -> str:
        """sha256 (first 16 hex) of the canonical JSON of the config."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def load_config(path: Path | None = None) -> MonitoringConfig:
    """Read a monitoring config YAML (the packaged ``monitoring/monitoring.yaml`` when ``path`` is None).

    Raises:
        pydantic.ValidationError: unknown keys or bad values (the message names the field).
    """
    if path is None:
        text = resources.files("monitoring").joinpath(DEFAULT_CONFIG).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return MonitoringConfig.model_validate(yaml.safe_load(text) or {})
