"""Fairness audit by group: does the early warning serve every kind of household equally well?

Groups (``FairnessConfig.attributes``): county, urban/rural, ethnic-minority household (any member of an
ethnic minority), household with a disabled member (certified grade 1-4), female-headed and
elderly-headed (head at least ``elderly_age`` at the as-of date). Group membership is read from the
records known before the as-of date, like every feature; it is never a model input.

Per group: size, alert rate, precision (alerted households that fell into hardship), false-negative
rate (households that fell into hardship but were not alerted: for an assistive programme the rate that
matters most) and false-positive rate, each with a Wilson interval, and the disparity ratio
``group rate / reference group rate`` (reference: the largest group unless configured). A ratio outside
the band (default [0.8, 1.25]) of a ``flag_metrics`` rate is flagged, but only when both groups have at
least ``min_support`` households behind that rate (a small group shows its size and interval, never a
bare ratio) and, with ``require_separation``, when the two Wilson intervals do not overlap (with few
false negatives, 1 of 40 against 7 of 45 is a ratio of 0.16 and no evidence of anything).

The same audit runs on a scoring run (its alerts, and the households already under an open case it did
not alert again, against matured labels), on a model's test period at
training time (alerted = top ``alert_fraction`` of each monthly list; logged in the model card and as
MLflow metrics ``<model>.fairness.<attribute>.<group>.flagged``) and as a promotion check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from doudi.io import World
from monitoring.config import ATTRIBUTES, FairnessConfig

if TYPE_CHECKING:
    from models.registry import CheckResult, Evidence

ATTRIBUTE_LABELS = {
    "county_code": "county", "urban_rural": "urban/rural", "ethnic_minority": "ethnic-minority household",
    "disabled_member": "household with a disabled member", "female_head": "female-headed",
    "elderly_head": "elderly-headed",
}
RATES = {
    # rate: (numerator count, denominator count)
    "alert_rate": ("alerted", "size"),
    "precision": ("tp", "alerted_labelled"),
    "fnr": ("fn", "positives"),
    "fpr": ("fp", "negatives"),
}
UNKNOWN = "unknown"
METRIC_PREFIX = "fairness."
FLAG_SUFFIX = ".flagged"


def _yes_no(values: pd.Series) -> pd.Series:
    return pd.Series(np.where(values.to_numpy(dtype=bool), "yes", "no"), index=values.index, dtype="string")


def household_groups(world: World, as_of: pd.Timestamp, *, elderly_age: int = 60) -> pd.DataFrame:
    """Each household's group per attribute at ``as_of`` (members known before ``as_of`` only).

    Returns:
        Frame indexed by household_id (every household of the world) with string columns
        ``county_code``, ``urban_rural``, ``ethnic_minority``, ``disabled_member``, ``female_head``,
        ``elderly_head`` (``yes``/``no``; ``unknown`` when no head of household is on record).
    """
    as_of = pd.Timestamp(as_of)
    households = world["households"]
    ids = pd.Index(households["household_id"].astype(str), name="household_id")
    out = pd.DataFrame(index=ids)
    out["county_code"] = pd.array(households["village_code"].astype(str).str.slice(0, 6).to_numpy(),
                                  dtype="string")
    out["urban_rural"] = pd.array(households["urban_rural"].astype(str).to_numpy(), dtype="string")

    members = world["members"]
    recorded = members["recorded_at"] if "recorded_at" in members else pd.Series(pd.NaT, index=members.index)
    known = (recorded.isna() | (recorded < as_of)) & (members["birth_date"] < as_of)
    members = members[known.to_numpy()]
    home = members["household_id"].astype(str)
    minority = members["ethnic_minority"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    certified = members["disability_certified_at"]
    disabled = ((members["disability_grade"].fillna(0).to_numpy() > 0)
                & (certified.isna() | (certified < as_of)).to_numpy())
    out["ethnic_minority"] = _yes_no(pd.Series(minority).groupby(home.to_numpy()).any().reindex(ids,
                                                                                               fill_value=False))
    out["disabled_member"] = _yes_no(pd.Series(disabled).groupby(home.to_numpy()).any().reindex(ids,
                                                                                                fill_value=False))
    heads = members[(members["relation"].astype(str) == "head").to_numpy()]
    heads = heads.sort_values("person_id").drop_duplicates("household_id")
    head_of = heads.assign(household_id=heads["household_id"].astype(str)).set_index("household_id")
    female = (head_of["sex"].astype(str) == "F").reindex(ids)
    age = _age(head_of["birth_date"], as_of).reindex(ids)
    has_head = female.notna().to_numpy()
    is_female = female.fillna(False).to_numpy(bool)
    is_elderly = age.fillna(0).to_numpy() >= elderly_age
    out["female_head"] = pd.array(np.where(has_head, np.where(is_female, "yes", "no"), UNKNOWN),
                                  dtype="string")
    out["elderly_head"] = pd.array(np.where(has_head, np.where(is_elderly, "yes", "no"), UNKNOWN),
                                   dtype="string")
    return out


def _age(birth: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Completed years of age at ``as_of``."""
    years = as_of.year - birth.dt.year
    month, day = birth.dt.month, birth.dt.day
    before_birthday = (month > as_of.month) | ((month == as_of.month) & (day > as_of.day))
    return (years - before_birthday.astype(int)).astype("float64")


def attach_groups(frame: pd.DataFrame, world: World, *, config: FairnessConfig | None = None) -> pd.DataFrame:
    """``frame`` (rows with ``as_of`` and ``household_id``) with a column per audited attribute it lacks."""
    config = config or FairnessConfig()
    wanted = [a for a in config.attributes if a not in frame]
    if not wanted or not len(frame):
        return frame
    parts = []
    for as_of in pd.unique(frame["as_of"]):
        groups = household_groups(world, pd.Timestamp(as_of), elderly_age=config.elderly_age)[wanted]
        parts.append(groups.reset_index().assign(as_of=pd.Timestamp(as_of)))
    table = pd.concat(parts, ignore_index=True)
    table["as_of"] = table["as_of"].astype(frame["as_of"].dtype)
    keys = frame[["as_of", "household_id"]].assign(household_id=frame["household_id"].astype(str))
    joined = keys.merge(table, on=["as_of", "household_id"], how="left")
    out = frame.copy()
    for name in wanted:
        out[name] = pd.array(joined[name].fillna(UNKNOWN).to_numpy(), dtype="string")
    return out


def wilson_interval(successes: np.ndarray, trials: np.ndarray, *, confidence: float = 0.95
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion, element-wise (NaN where ``trials`` is 0)."""
    x = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        denominator = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    low, high = np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def confusion_by_group(frame: pd.DataFrame, attributes: Sequence[str], *, label: str = "label",
                       alerted: str = "alerted") -> pd.DataFrame:
    """Counts per (attribute, group): size, alerted, labelled, positives, negatives, alerted_labelled,
    tp, fp, fn, tn.

    Rows whose label is missing count in ``size`` and ``alerted`` only.
    """
    flags = frame[alerted].astype("boolean").fillna(False).to_numpy(dtype=bool)
    y = pd.to_numeric(frame[label], errors="coerce").to_numpy(dtype=np.float64) if label in frame \
        else np.full(len(frame), np.nan)
    base = pd.DataFrame({
        "size": 1, "alerted": flags.astype(int), "labelled": (~np.isnan(y)).astype(int),
        "positives": (y == 1).astype(int), "negatives": (y == 0).astype(int),
        "alerted_labelled": (flags & ~np.isnan(y)).astype(int),
        "tp": (flags & (y == 1)).astype(int), "fp": (flags & (y == 0)).astype(int),
        "fn": (~flags & (y == 1)).astype(int), "tn": (~flags & (y == 0)).astype(int),
    }, index=frame.index)
    parts = []
    for attribute in attributes:
        groups = frame[attribute].astype("string").fillna(UNKNOWN)
        counts = base.groupby(groups.to_numpy(), sort=True).sum()
        counts.index = pd.MultiIndex.from_product([[attribute], counts.index.astype(str)],
                                                  names=["attribute", "group"])
        parts.append(counts)
    if not parts:
        return base.iloc[:0].set_index(pd.MultiIndex.from_tuples([], names=["attribute", "group"]))
    return pd.concat(parts)


def audit(frame: pd.DataFrame, *, config: FairnessConfig | None = None, label: str = "label",
          alerted: str = "alerted") -> pd.DataFrame:
    """The fairness table of a list: per (attribute, group), counts, rates, intervals, ratios and flags.

    Args:
        frame: one row per household (and as-of date): the attribute columns, ``alerted`` (bool) and
            ``label`` (0/1; missing when not known yet: then precision, FNR and FPR are NaN).
        config: attributes, reference groups, band, flag metrics, minimum support, confidence.

    Returns:
        Indexed by (attribute, group): the counts of :func:`confusion_by_group`; per rate in
        ``alert_rate``, ``precision``, ``fnr``, ``fpr``: the rate, ``<rate>_low``/``<rate>_high``
        (Wilson), ``<rate>_ratio`` (to the reference group; NaN when either side has fewer than
        ``min_support`` households behind it); ``reference`` (bool), ``small`` (below ``min_support``
        for a flag metric), ``flagged`` and ``why``. Attributes absent from ``frame`` are left out.
    """
    config = config or FairnessConfig()
    attributes = [a for a in config.attributes if a in frame]
    table = confusion_by_group(frame, attributes, label=label, alerted=alerted).astype(np.int64)
    if table.empty:
        return table
    reference = pd.Series(False, index=table.index)
    for attribute in attributes:
        groups = table.loc[attribute]
        chosen = config.reference_groups.get(attribute)
        if chosen is not None and chosen not in groups.index:
            raise ValueError(f"reference group {chosen!r} of {attribute} is not among {list(groups.index)}")
        # Largest group; ties go to the first in sorted order, so the choice is reproducible.
        reference[(attribute, chosen or str(groups["size"].idxmax()))] = True
    table["reference"] = reference.to_numpy()
    low, high = config.band
    flagged = np.zeros(len(table), dtype=bool)
    small = np.zeros(len(table), dtype=bool)
    why: list[list[str]] = [[] for _ in range(len(table))]
    ref_rows = table[table["reference"]].droplevel("group")
    attribute_of = table.index.get_level_values("attribute")
    for rate, (numerator, denominator) in RATES.items():
        x, n = table[numerator].to_numpy(), table[denominator].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(n > 0, x / np.maximum(n, 1), np.nan)
        table[rate] = value
        table[f"{rate}_low"], table[f"{rate}_high"] = wilson_interval(x, n, confidence=config.confidence)
        ref_x = ref_rows[numerator].reindex(attribute_of).to_numpy(dtype=np.float64)
        ref_n = ref_rows[denominator].reindex(attribute_of).to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            ref_value = np.where(ref_n > 0, ref_x / np.maximum(ref_n, 1), np.nan)
            ratio = np.where(ref_value > 0, value / ref_value, np.where(value > 0, np.inf, 1.0))
        supported = (n >= config.min_support) & (ref_n >= config.min_support)
        ratio = np.where(supported & ~np.isnan(value) & ~np.isnan(ref_value), ratio, np.nan)
        table[f"{rate}_ratio"] = ratio
        if rate in config.flag_metrics:
            small |= n < config.min_support
            outside = ~np.isnan(ratio) & ((ratio < low) | (ratio > high))
            if config.require_separation:
                ref_low, ref_high = wilson_interval(ref_x, ref_n, confidence=config.confidence)
                group_low, group_high = table[f"{rate}_low"].to_numpy(), table[f"{rate}_high"].to_numpy()
                outside &= (group_low > ref_high) | (group_high < ref_low)
            flagged |= outside
            for i in np.flatnonzero(outside):
                why[i].append(f"{rate} {value[i]:.1%} vs {ref_value[i]:.1%} in the reference group "
                              f"(ratio {ratio[i]:.2f} outside [{low}, {high}])")
    table["small"] = small
    table["flagged"] = flagged
    table["why"] = ["; ".join(reasons) for reasons in why]
    return table


def flagged_groups(table: pd.DataFrame) -> list[tuple[str, str]]:
    """The (attribute, group) pairs a fairness table flags."""
    if table.empty:
        return []
    return [tuple(map(str, key)) for key in table.index[table["flagged"].to_numpy(bool)]]  # type: ignore[misc]


def _key_part(value: str) -> str:
    """A group name as an MLflow metric key part (letters, digits, ``_ - /`` only)."""
    return re.sub(r"[^A-Za-z0-9_\-/]", "_", value) or "_"


def audit_metrics(table: pd.DataFrame, *, prefix: str = "") -> dict[str, float]:
    """MLflow metrics of an audit: ``<prefix>fairness.<attribute>.<group>.flagged`` (0/1) for every group
    and ``<prefix>fairness.flagged_groups`` (count)."""
    out = {f"{prefix}{METRIC_PREFIX}flagged_groups": float(len(flagged_groups(table)))}
    for (attribute, group), flagged in table["flagged"].items() if not table.empty else ():
        out[f"{prefix}{METRIC_PREFIX}{_key_part(attribute)}.{_key_part(group)}{FLAG_SUFFIX}"] = float(flagged)
    return out


def _flags_in(metrics: Mapping[str, float]) -> set[str]:
    return {key[len(METRIC_PREFIX):-len(FLAG_SUFFIX)] for key, value in metrics.items()
            if key.startswith(METRIC_PREFIX) and key.endswith(FLAG_SUFFIX) and value >= 0.5}


def no_new_flagged_group(evidence: Evidence) -> CheckResult:
    """Promotion check: the challenger flags no group the champion does not flag on the same test period.

    Reads the ``fairness.<attribute>.<group>.flagged`` metrics of both versions (logged at training;
    see :func:`audit_metrics`). A champion trained before the audit existed has no such metrics: then
    every group the challenger flags counts as new.
    """
    from models.registry import CheckResult

    name = "fairness (no new flagged group)"
    new = _flags_in(evidence.challenger)
    if evidence.champion is None:
        if not new:
            return CheckResult(name, True, "the challenger flags no group")
        return CheckResult(name, False, f"not comparable ({evidence.basis}); challenger flags "
                                        f"{', '.join(sorted(new))}")
    old = _flags_in(evidence.champion)
    audited = any(key.startswith(METRIC_PREFIX) for key in evidence.champion)
    added = sorted(new - old)
    if not added:
        return CheckResult(name, True, f"challenger flags {len(new)} group(s), champion {len(old)}; none new")
    note = "" if audited else f" (champion v{evidence.champion_version} has no fairness audit)"
    return CheckResult(name, False, f"challenger adds flagged group(s) {', '.join(added)}{note}")


def training_audit(model: Any, test: pd.DataFrame, *, config: FairnessConfig | None = None, seed: int = 7
                   ) -> pd.DataFrame:
    """Fairness of a model on its test period: alerted = top ``alert_fraction`` of each as-of's list.

    Args:
        model: anything with ``score(frame) -> ndarray`` (higher = riskier).
        test: test snapshots (``as_of``, ``household_id``, ``label``, features, and the group columns
            :func:`attach_groups` added; attributes without a column are left out).
        config: fairness config.
        seed: seed of the tie order of equal scores (``models.evaluate.flag_top``).
    """
    from models.evaluate import flag_top

    config = config or FairnessConfig()
    lists = test[["as_of", "household_id"]].assign(score=model.score(test))
    alerted = flag_top(lists, config.alert_fraction, seed=seed)
    frame = test[[a for a in config.attributes if a in test] + ["label"]].assign(alerted=alerted.to_numpy())
    return audit(frame, config=config)


def audit_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A fairness table as JSON-ready rows (NaN and infinity as None)."""
    if table.empty:
        return []
    plain = table.reset_index().replace([np.inf, -np.inf], np.nan)
    plain = plain.astype(object).where(plain.notna(), None)
    return plain.to_dict(orient="records")  # type: ignore[return-value]


def describe_rate(row: Mapping[str, Any], rate: str) -> str:
    """``12.5 % [8.1–18.7]`` or ``—`` for a rate of one audit row, with its interval."""
    value = row[rate]
    if value is None or pd.isna(value):
        return "—"
    return f"{value:.1%} [{row[f'{rate}_low']:.1%}–{row[f'{rate}_high']:.1%}]"


def describe_ratio(row: Mapping[str, Any], rate: str) -> str:
    """The disparity ratio of a rate, or why there is none (reference group; too few households)."""
    if row["reference"]:
        return "reference"
    ratio = row[f"{rate}_ratio"]
    if ratio is None or pd.isna(ratio):
        return "n too small" if not pd.isna(row[rate]) else "—"
    return "∞" if np.isinf(ratio) else f"{ratio:.2f}"


def markdown(table: pd.DataFrame, *, config: FairnessConfig | None = None, title: str = "Fairness") -> str:
    """The audit as a markdown section (for the model card and the report files)."""
    config = config or FairnessConfig()
    low, high = config.band
    lines = [
        f"## {title}",
        f"Per group: size, alert rate, precision, false-negative rate (FNR) and false-positive rate (FPR), "
        f"each with its {config.confidence:.0%} Wilson interval, and the FNR ratio to the reference group "
        f"(the largest unless configured). A ratio of a flagged rate ({', '.join(config.flag_metrics)}) "
        f"outside [{low}, {high}] is flagged when both groups have at least {config.min_support} households "
        "behind the rate" + (" and the two intervals do not overlap" if config.require_separation else "")
        + "; smaller groups show their size and interval only.",
        "",
    ]
    if table.empty:
        return "\n".join([*lines, "No group attributes were available for this audit."])
    lines += ["| attribute | group | size | alert rate | precision | FNR | FNR ratio | FPR | flag |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in audit_records(table):
        flag = "**FLAGGED**: " + row["why"] if row["flagged"] else ("small group" if row["small"] else "")
        attribute = ATTRIBUTE_LABELS.get(row["attribute"], row["attribute"])
        cells = [attribute, row["group"], f"{row['size']:,}", describe_rate(row, "alert_rate"),
                 describe_rate(row, "precision"), describe_rate(row, "fnr"), describe_ratio(row, "fnr"),
                 describe_rate(row, "fpr"), flag]
        lines.append("| " + " | ".join(cells) + " |")
    flagged = flagged_groups(table)
    lines += ["", f"Flagged groups: {', '.join(f'{a}={g}' for a, g in flagged) if flagged else 'none'}."]
    return "\n".join(lines)


__all__ = ["ATTRIBUTES", "attach_groups", "audit", "audit_metrics", "household_groups", "markdown",
           "no_new_flagged_group", "training_audit", "wilson_interval"]
