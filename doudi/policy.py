"""Policy thresholds from configuration: one place for every ratio the rules use."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field


class PolicyRules(BaseModel):
    """Ratios and rules of the assistance policy for one region (see ``policy.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    edge_multiplier: float
    income_drop_trigger_share: float
    tekun_multiplier: float
    tekun_minor_age: int
    rigid_spending_share: float
    medical_trigger_share: float
    medical_trigger_share_other: float
    medical_assistance_share: float
    employment_cost_deduction: float
    disaster_loss_trigger: float
    disaster_loss_income_share: float
    cpi_linkage_threshold: float
    food_cpi_linkage_threshold: float
    serious_disability_grades: tuple[int, ...]
    deposit_limit_months: float
    edge_assistance_temporary_months: int


class CaseworkLimits(BaseModel):
    """Time limits, in days, of each stage of an alert's case (stages declared in ``serving.casework``).

    A stage's clock starts when the case enters it; the case is overdue once the limit has passed. The
    limits in force apply to open cases at once (the due date is computed, not stored).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    assignment: int = Field(3, ge=1, le=365)
    verification: int = Field(7, ge=1, le=365)
    decision: int = Field(15, ge=1, le=365)
    closing: int = Field(30, ge=1, le=365)
    due_soon: int = Field(2, ge=0, le=30)


class PolicyConfig(BaseModel):
    """Default rules and overrides by region-code prefix (longest prefix wins), and casework time limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: PolicyRules
    overrides: dict[str, dict[str, float | int | list[int]]] = {}
    casework: CaseworkLimits = CaseworkLimits()

    def for_region(self, region_code: str) -> PolicyRules:
        """The rules in force for a region code (12-digit village or 6-digit county code)."""
        rules = self.defaults
        for prefix in sorted(self.overrides, key=len):
            if region_code.startswith(prefix):
                rules = PolicyRules.model_validate({**rules.model_dump(), **self.overrides[prefix]})
        return rules


def load_policy(path: Path | None = None) -> PolicyConfig:
    """Read the policy YAML (the packaged default when ``path`` is None)."""
    if path is None:
        return _default_policy()
    return PolicyConfig.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def _default_policy() -> PolicyConfig:
    text = resources.files("doudi").joinpath("policy.yaml").read_text(encoding="utf-8")
    return PolicyConfig.model_validate(yaml.safe_load(text))
