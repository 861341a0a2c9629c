"""The official single-indicator triggers, declared once: the rule baseline ranks by them and the
serving layer shows the ones that fired.

A trigger fires for a row when any one of its ``conditions`` holds *and* every condition of its
``requires`` gate holds. A condition may carry its own gate (``when``): it only applies to rows where
that gate holds (the medical trigger uses this to give lifted-out households their own threshold).
Thresholds are either a plain number or the name of a :class:`doudi.policy.PolicyRules` field, looked
up per county (policy overrides by region-code prefix apply). A missing feature value never fires a
condition and never opens a gate.

Severity of a fired trigger, in [0, 1]: the largest severity of its ``conditions`` that fired; gates
(``requires``, ``when``) decide whether a condition counts but never change its severity. Below a line
``t``: ``(t - x) / t`` (how far below); above a threshold ``t > 0``: ``1 - t / x`` (how far past it);
above zero (counts): ``x / (1 + x)``; an equality: 1.

What each trigger asks (thresholds in ``doudi/policy.yaml``):

* ``below_edge_line`` fires for a household that *fell* below the edge line: its income of the last 3
  months is under the line and at least ``income_drop_trigger_share`` below its average of the 12
  months before, and it is not already an edge family (for an edge family, being below the line is its
  definition, not news). Households on dibao or 特困 are already outside the cohort
  (``doudi.labels.cohort``), so the gate does not repeat that. A household long below the line without
  the status is a matter for enrolment: the model ranks it, and its recommendations name edge-family
  assistance.
* ``medical_burden`` is the published medical-bill rule: out-of-pocket spending over 12 months above
  ``medical_trigger_share`` of last year's local per-capita disposable income for lifted-out
  households, above ``medical_trigger_share_other`` for every other household.
* ``disaster_loss`` needs an assessed loss of at least ``disaster_loss_trigger`` yuan *and* of at least
  ``disaster_loss_income_share`` of the household's annual income: the same loss is a catastrophe for
  one household and a setback for another.
* ``uninsured_job_loss`` and ``below_monitoring_line`` are single conditions on recent events or on
  income relative to a line; they need no gate.

The price-linkage trigger (CPI y/y >= 3.5 % or food CPI y/y >= 6 %) is evaluated and shown, but it is
not counted by the rule baseline (``ranks=False``): it fires for every household of a region in the same
month, so counting it would lift whole regions up the list without telling households apart.
"""

from __future__ import annotations

import functools
import operator
import string
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from doudi.frames import column_arrays, column_values, frame_of
from doudi.policy import PolicyConfig, PolicyRules, load_policy

Op = Literal["<", "<=", ">", ">=", "=="]


@dataclass(frozen=True)
class Condition:
    """``feature op threshold``; ``threshold`` is a number or a PolicyRules field name.

    Attributes:
        when: gate of this condition alone: it holds only for rows where all of these hold too.
    """

    feature: str
    op: Op
    threshold: float | str
    when: tuple[Condition, ...] = ()

    def features(self) -> list[str]:
        """The feature columns this condition reads, its gate's included."""
        return [self.feature, *(name for gate in self.when for name in gate.features())]

    def policy_fields(self) -> list[str]:
        """The PolicyRules fields its thresholds name, its gate's included."""
        own = [self.threshold] if isinstance(self.threshold, str) else []
        return [*own, *(name for gate in self.when for name in gate.policy_fields())]


@dataclass(frozen=True)
class Trigger:
    """One official warning rule.

    Attributes:
        name: column name in :func:`evaluate_triggers` output.
        conditions: any one of them fires the trigger (they alone set its severity).
        zh, en: the whole rule in the policy's words; ``{field}`` placeholders are PolicyRules fields,
            and every field a threshold names must appear in both (checked on creation).
        source: where the rule comes from.
        requires: gate: all of them must hold as well.
        ranks: counted by the rule baseline's score.
    """

    name: str
    conditions: tuple[Condition, ...]
    zh: str
    en: str
    source: str
    requires: tuple[Condition, ...] = ()
    ranks: bool = True

    def __post_init__(self) -> None:
        for lang, text in (("zh", self.zh), ("en", self.en)):
            stated = {field for _, field, _, _ in string.Formatter().parse(text) if field}
            unstated = [f for f in self.policy_fields() if f not in stated]
            if unstated:
                raise ValueError(f"trigger {self.name}: the {lang} text does not state {', '.join(unstated)}")

    def features(self) -> list[str]:
        """The feature columns the trigger reads (conditions, then gates), each once."""
        names = [name for c in (*self.conditions, *self.requires) for name in c.features()]
        return list(dict.fromkeys(names))

    def policy_fields(self) -> list[str]:
        """The PolicyRules fields its thresholds name, each once."""
        names = [name for c in (*self.conditions, *self.requires) for name in c.policy_fields()]
        return list(dict.fromkeys(names))

    def text(self, rules: PolicyRules, lang: str = "zh") -> str:
        """The rule as a sentence with the thresholds in force for ``rules``."""
        if lang not in ("zh", "en"):
            raise ValueError(f"unknown language {lang!r}: use zh or en")
        return (self.zh if lang == "zh" else self.en).format(**rules.model_dump())


TRIGGERS: tuple[Trigger, ...] = (
    Trigger(
        name="below_monitoring_line",
        conditions=(Condition("income_to_monitoring_line", "<", 1.0),),
        zh="家庭人均纯收入低于防返贫监测线",
        en="Per-capita household income is below the relapse-monitoring line",
        source="防止返贫动态监测：监测线 (standards.monitoring_line)",
    ),
    Trigger(
        name="below_edge_line",
        conditions=(Condition("income_to_edge_line", "<", 1.0),),
        requires=(Condition("edge_family", "==", 0.0),
                  Condition("income_drop_3m_vs_12m", ">=", "income_drop_trigger_share")),
        zh="近3个月家庭人均月收入跌破低保边缘标准（低保标准的{edge_multiplier:g}倍），比前12个月平均下降"
           "{income_drop_trigger_share:.0%}以上，且目前不是低保边缘家庭",
        en="Per-capita monthly income of the last 3 months fell below the edge line ({edge_multiplier:g} x "
           "the dibao standard), at least {income_drop_trigger_share:.0%} below the 12 months before, and "
           "the household is not already an edge family",
        source="低保边缘家庭认定 (policy.edge_multiplier x standards.dibao_standard)",
    ),
    Trigger(
        name="medical_burden",
        conditions=(
            Condition("medical_oop_to_local_income", ">", "medical_trigger_share",
                      when=(Condition("lifted_out", "==", 1.0),)),
            Condition("medical_oop_to_local_income", ">", "medical_trigger_share_other",
                      when=(Condition("lifted_out", "==", 0.0),)),
        ),
        zh="近12个月自付医疗费用超过当地上年人均可支配收入的{medical_trigger_share:.0%}（已脱贫户）"
           "或{medical_trigger_share_other:.0%}（其他家庭）",
        en="Out-of-pocket medical spending over 12 months exceeds {medical_trigger_share:.0%} (households "
           "lifted out of poverty) or {medical_trigger_share_other:.0%} (other households) of last year's "
           "local per-capita disposable income",
        source="因病监测预警 (policy.medical_trigger_share, policy.medical_trigger_share_other)",
    ),
    Trigger(
        name="disaster_loss",
        conditions=(Condition("disaster_loss_12m", ">=", "disaster_loss_trigger"),),
        requires=(Condition("disaster_loss_to_income", ">=", "disaster_loss_income_share"),),
        zh="近12个月灾害损失达到{disaster_loss_trigger:,.0f}元，且不低于家庭年收入的"
           "{disaster_loss_income_share:.0%}",
        en="Assessed disaster loss over 12 months of at least {disaster_loss_trigger:,.0f} yuan and at least "
           "{disaster_loss_income_share:.0%} of household annual income",
        source="因灾监测预警 (policy.disaster_loss_trigger, policy.disaster_loss_income_share)",
    ),
    Trigger(
        name="uninsured_job_loss",
        conditions=(Condition("uninsured_job_loss_6m", ">", 0.0),),
        zh="近6个月有家庭成员失业且未参加失业保险",
        en="A member lost a job without unemployment insurance in the last 6 months",
        source="临时救助：未参保失业人员 (temporary assistance)",
    ),
    Trigger(
        name="price_linkage",
        conditions=(Condition("cpi_yoy", ">=", "cpi_linkage_threshold"),
                    Condition("food_cpi_yoy", ">=", "food_cpi_linkage_threshold")),
        zh="物价联动：CPI同比涨幅≥{cpi_linkage_threshold:g}%或食品CPI同比涨幅≥{food_cpi_linkage_threshold:g}%",
        en="Price linkage: CPI up {cpi_linkage_threshold:g} % or more year on year, or food CPI up "
           "{food_cpi_linkage_threshold:g} % or more",
        source="社会救助和保障标准与物价上涨挂钩联动机制 (policy.cpi_linkage_threshold)",
        ranks=False,
    ),
)

TRIGGER_NAMES: tuple[str, ...] = tuple(t.name for t in TRIGGERS)
RANKING_TRIGGERS: tuple[str, ...] = tuple(t.name for t in TRIGGERS if t.ranks)


def trigger_features() -> list[str]:
    """Feature columns the triggers read, gates included (plus ``county_code`` for per-region thresholds)."""
    return list(dict.fromkeys(name for t in TRIGGERS for name in t.features()))


_POLICY_FIELDS: tuple[str, ...] = tuple(dict.fromkeys(f for t in TRIGGERS for f in t.policy_fields()))
"""The PolicyRules fields the triggers' thresholds name."""


@functools.cache
@functools.cache
def _result_columns() -> pd.Index:
    return pd.Index([*TRIGGER_NAMES, "n_fired", "severity"])


def _rules_by_row(features: pd.DataFrame, policy: PolicyConfig) -> dict[str, np.ndarray] | None:
    """The policy fields per row, from each row's county (None when no county column or no overrides)."""
    if "county_code" not in features or not policy.overrides:
        return None
    county = features["county_code"].astype("string").fillna("").to_numpy(dtype=object)
    at, counties = pd.factorize(county)
    rules = [policy.for_region(code) for code in counties]
    return {field: np.array([getattr(r, field) for r in rules], dtype=np.float64)[at]
            for field in _POLICY_FIELDS}


_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


def _threshold(
    condition: Condition, rules_by_row: dict[str, np.ndarray] | None, defaults: PolicyRules
) -> np.ndarray | np.float64:
    if not isinstance(condition.threshold, str):
        return np.float64(condition.threshold)
    if rules_by_row is None:
        return np.float64(getattr(defaults, condition.threshold))
    return rules_by_row[condition.threshold]


def _holds(
    condition: Condition, columns: dict[str, np.ndarray], rules_by_row: dict[str, np.ndarray] | None,
    defaults: PolicyRules,
) -> np.ndarray:
    """Rows where ``condition`` and its own gate hold (a missing value compares False: it never holds)."""
    x, t = columns[condition.feature], _threshold(condition, rules_by_row, defaults)
    hit = _COMPARE[condition.op](x, t)
    for gate in condition.when:
        hit &= _holds(gate, columns, rules_by_row, defaults)
    return hit


def _severity(
    condition: Condition, columns: dict[str, np.ndarray], rules_by_row: dict[str, np.ndarray] | None,
    defaults: PolicyRules,
) -> np.ndarray:
    """The condition's severity per row, in [0, 1] (see the module doc; 0 where it cannot be computed)."""
    x, t = columns[condition.feature], _threshold(condition, rules_by_row, defaults)
    with np.errstate(invalid="ignore", divide="ignore"):
        if condition.op in ("<", "<="):
            level = np.where(t > 0, (t - x) / t, 1.0)
        elif condition.op in (">", ">="):
            level = np.where(t > 0, 1.0 - t / x, x / (1.0 + x))
        else:
            return np.ones(len(x))
    level = np.clip(level, 0.0, 1.0)  # +-inf to the bounds; NaN stays, then counts 0
    level[np.isnan(level)] = 0.0
    return level


def evaluate_triggers(features: pd.DataFrame, policy: PolicyConfig | None = None) -> pd.DataFrame:
    """Which official triggers fire for each row, and how severely.

    Args:
        features: feature frame with at least :func:`trigger_features` columns (``county_code`` optional).
        policy: thresholds (the packaged policy when None).

    Returns:
        Frame aligned to ``features.index``: one boolean column per trigger (:data:`TRIGGER_NAMES`), then
        ``n_fired`` (number of fired ranking triggers) and ``severity`` (mean severity of the fired ranking
        triggers, in [0, 1); 0 when none fired).

    Raises:
        KeyError: a feature a trigger needs is missing from ``features``.
    """
    policy = policy or load_policy()
    names = trigger_features()
    arrays = column_arrays(features, names)  # a pandas column look-up costs more than a condition on one row
    missing = [name for name in names if name not in arrays]
    if missing:
        raise KeyError(f"evaluate_triggers: feature column(s) missing: {', '.join(missing)}")
    columns = {name: column_values(arrays[name], np.float64, np.nan) for name in names}
    rules_by_row = _rules_by_row(features, policy)
    out: list[np.ndarray] = []
    severity_sum = np.zeros(len(features))
    n_fired = np.zeros(len(features), dtype=np.int64)
    for trigger in TRIGGERS:
        fired = np.zeros(len(features), dtype=bool)
        severity = np.zeros(len(features))
        for condition in trigger.conditions:
            hit = _holds(condition, columns, rules_by_row, policy.defaults)
            if hit.any():  # a severity only where the condition fired
                level = _severity(condition, columns, rules_by_row, policy.defaults)
                severity = np.where(hit, np.maximum(severity, level), severity)
                fired |= hit
        for gate in trigger.requires:
            fired &= _holds(gate, columns, rules_by_row, policy.defaults)
        out.append(fired)
        if trigger.ranks:
            n_fired += fired
            severity_sum += np.where(fired, severity, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_severity = np.where(n_fired > 0, severity_sum / np.maximum(n_fired, 1), 0.0)
    # Keep the severity term below 1 so that k+1 fired triggers always outrank k.
    out += [n_fired, np.minimum(mean_severity, np.nextafter(1.0, 0.0))]
    # One frame at the end, from its typed columns and labels built once: pandas inferring them again
    # would cost more than the rules for one row.
    return frame_of(out, features.index, _result_columns())
