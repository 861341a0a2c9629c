"""Reasons a social worker can read, from the model's own TreeSHAP contributions.

``RiskModel.contributions`` returns LightGBM's ``pred_contrib`` (log-odds): per feature, plus the base
value; base value + contributions = raw score. Contributions are summed by the feature registry's
groups (income, medical, disaster, ...); the reasons are the groups that push risk up the most (at most
four), each stated through the group's strongest feature with its actual value, e.g.
"近3个月人均收入较前12个月平均下降46%". Only features declared ``reason=True`` in the registry are stated:
a group pushed up only by where the household lives (county, urban/rural) gives no reason, since that is
nothing to verify or act on; its contribution stays in ``groups`` and ``contributions``.

Explaining costs about 100x scoring, so callers explain only the rows a person will see (the alerts).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from doudi.frames import column_arrays

MAX_REASONS = 4
OTHER_GROUP = "other"


class Explainable(Protocol):
    features: list[str]

    def contributions(self, X: pd.DataFrame, *, matrix: np.ndarray | None = None) -> pd.DataFrame: ...


@dataclass(frozen=True)
class Explanations:
    """Explanations of a set of rows (aligned to ``index``, the explained frame's).

    Held as arrays; the pandas views (``base_value``, ``raw_score``, ``contributions``, ``groups``,
    ``reasons``) are built when first read: for the API's one row, building them all cost more than the
    explanation's own arithmetic.

    Attributes:
        index: the explained rows.
        base_values: the model's expected raw score (log-odds), per row.
        feature_values: per-feature contributions (log-odds), rows x ``feature_names``.
        feature_names: the model's features.
        group_values: contributions summed by feature group, rows x ``group_names``.
        group_names: the groups, in the order of their first feature.
        reason_lists: per row, at most ``MAX_REASONS`` dicts with group, feature, value, contribution (the
            group's total), feature_contribution, zh and en.
    """

    index: pd.Index
    base_values: np.ndarray
    feature_values: np.ndarray
    feature_names: pd.Index
    group_values: np.ndarray
    group_names: pd.Index
    reason_lists: np.ndarray

    @functools.cached_property
    def base_value(self) -> pd.Series:
        """The model's expected raw score (log-odds), per row."""
        return pd.Series(self.base_values, index=self.index, name="base_value")

    @functools.cached_property
    def raw_score(self) -> pd.Series:
        """Base value + sum of contributions, per row."""
        return pd.Series(self._raw_scores, index=self.index, name="raw_score")

    @functools.cached_property
    def contributions(self) -> pd.DataFrame:
        """Per-feature contributions (log-odds), rows x model features."""
        return pd.DataFrame(self.feature_values, index=self.index, columns=self.feature_names)

    @functools.cached_property
    def groups(self) -> pd.DataFrame:
        """Contributions summed by feature group, rows x groups."""
        return pd.DataFrame(self.group_values, index=self.index, columns=self.group_names.copy())

    @functools.cached_property
    def reasons(self) -> pd.Series:
        """Per row, the reasons (see ``reason_lists``)."""
        return pd.Series(self.reason_lists, index=self.index, dtype=object, name="reasons", copy=False)

    @property
    def _raw_scores(self) -> np.ndarray:
        return self.base_values + self.feature_values.sum(axis=1)

    def contribution_records(self, *, with_features: bool = True) -> list[dict[str, Any]]:
        """Per row, the JSON stored with an alert: base value, raw score, group and feature contributions."""
        groups = _records(self.group_values, self.group_names)
        features = (_records(self.feature_values, self.feature_names) if with_features
                    else [None] * len(groups))
        return [
            {"base_value": float(b), "raw_score": float(r), "groups": g, **({"features": f} if f else {})}
            for b, r, g, f in zip(self.base_values.tolist(), self._raw_scores.tolist(), groups, features,
                                  strict=True)
        ]


def _records(values: np.ndarray, columns: pd.Index) -> list[dict[str, float]]:
    """Rows as {column: value rounded to 6 decimals} (``frame.round(6).to_dict("records")`` without pandas'
    per-row overhead)."""
    names = [str(c) for c in columns.tolist()]  # iterating an Arrow-text Index boxes label by label
    return [dict(zip(names, row, strict=True)) for row in np.round(values, 6).tolist()]


def feature_groups(names: list[str]) -> pd.Series:
    """The registry group of each feature (``other`` for a feature the registry does not know)."""
    return pd.Series(_groups_of(names), index=names)


def _groups_of(names: list[str]) -> list[str]:
    from features import REGISTRY

    return [REGISTRY[n].group if n in REGISTRY else OTHER_GROUP for n in names]


def _statable(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per feature: may it be stated as a reason (``FeatureSpec.reason``; unknown features not), and is
    its missing value a missing record (``FeatureSpec.missing_is_gap``)."""
    from features import REGISTRY

    return (np.array([n in REGISTRY and REGISTRY[n].reason for n in names], dtype=bool),
            np.array([n in REGISTRY and REGISTRY[n].missing_is_gap for n in names], dtype=bool))


@dataclass(frozen=True)
class _Layout:
    """How a model's features fall into registry groups.

    Attributes:
        order: the groups, in the order of their first feature.
        labels: the same, as the groups frame's columns.
        columns: per group, the positions of its features.
        statable, gap: per feature, see :func:`_statable`.
    """

    order: list[str]
    labels: pd.Index
    columns: list[np.ndarray]
    statable: np.ndarray
    gap: np.ndarray


@functools.lru_cache(maxsize=8)
def _layout(names: tuple[str, ...]) -> _Layout:
    """The layout of a feature list, worked out once (the registry is declared once, at import): for one
    row, these lookups and the groups' labels cost as much as the explanation."""
    group_of = np.asarray(_groups_of(list(names)), dtype=object)
    order = list(dict.fromkeys(group_of))
    statable, gap = _statable(list(names))
    return _Layout(order=order, labels=pd.Index(order), statable=statable, gap=gap,
                   columns=[np.flatnonzero(group_of == group) for group in order])


def _value(value: Any) -> Any:
    """A feature value as plain JSON (None when missing)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return str(value) if not isinstance(value, int | float | bool) else value


def explain(
    model: Explainable, X: pd.DataFrame, *, top: int = MAX_REASONS, matrix: np.ndarray | None = None
) -> Explanations:
    """Explain the rows of ``X`` (the model's input features; other columns are ignored).

    Args:
        model: a fitted ``models.risk_model.RiskModel`` (anything with ``features`` and ``contributions``).
        X: feature frame indexed by household_id.
        top: maximum number of reasons per row.
        matrix: ``model.matrix(X)`` when already built (shared with the scoring).
    """
    from features import reason_text

    names = list(model.features)
    n = len(X)
    if n:
        contrib = model.contributions(X, matrix=matrix)
        table, columns = contrib.to_numpy(dtype=np.float64), contrib.columns[:-1]
    else:  # LightGBM cannot predict zero rows
        table, columns = np.zeros((0, len(names) + 1)), pd.Index(names)
    values, base = table[:, :-1], table[:, -1]
    layout = _layout(tuple(names))
    statable, gap, order = layout.statable, layout.gap, layout.order
    if n:
        # A missing value is stated only where missing means a missing record ("check at the visit"),
        # not where it means "never happened" (months since a job loss there never was).
        matrix = model.matrix(X) if matrix is None and hasattr(model, "matrix") else matrix
        missing = (np.isnan(np.asarray(matrix, dtype=np.float64)) if matrix is not None
                   else X[names].isna().to_numpy())
        can_state = statable[None, :] & (gap[None, :] | ~missing)
    else:
        can_state = np.zeros((0, len(names)), dtype=bool)
    group_sums = np.zeros((n, len(order)))
    best_feature = np.zeros((n, len(order)), dtype=np.int64)
    stated = np.where(can_state, values, -np.inf)
    for g, cols in enumerate(layout.columns):
        # One pass per group (a handful), never per row: the group's total and its strongest feature
        # that may be stated as a reason (never where a household lives or its registration).
        group_sums[:, g] = values[:, cols].sum(axis=1)
        best_feature[:, g] = cols[np.argmax(stated[:, cols], axis=1)] if n else 0
    ranked = np.argsort(-group_sums, axis=1, kind="stable")
    taken = np.take_along_axis(group_sums, ranked, axis=1)
    # Feature values are read cell by cell for the reasons only (at most `top` per row): selecting the
    # model's columns out of X costs more than explaining one row.
    columns_of_x = column_arrays(X, names)
    absent = [name for name in names if name not in columns_of_x]
    if n and absent:
        raise KeyError(f"explain: input lacks feature column(s): {', '.join(absent)}")
    reasons = np.empty(n, dtype=object)  # of lists: made as a Series, a list of lists costs more
    for i in range(n):  # formatting only: at most `top` sentences per explained (alerted) row
        row: list[dict[str, Any]] = []
        for g, total in zip(ranked[i].tolist(), taken[i].tolist(), strict=True):
            if total <= 0 or len(row) == top:
                break
            j = int(best_feature[i, g])
            if not can_state[i, j] or values[i, j] <= 0:  # the group's push comes from nothing to state
                continue
            name = names[j]
            value = _value(columns_of_x[name][i])
            row.append({
                "group": order[g], "feature": name, "value": value, "contribution": round(total, 6),
                "feature_contribution": round(float(values[i, j]), 6),
                "zh": reason_text(name, value, "zh"), "en": reason_text(name, value, "en"),
            })
        reasons[i] = row
    return Explanations(index=X.index, base_values=base, feature_values=values, feature_names=columns,
                        group_values=group_sums, group_names=layout.labels, reason_lists=reasons)
