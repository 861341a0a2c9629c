"""Data and score drift of a scoring run against the model's training snapshot, with Evidently (0.7 API).

Per feature, one Evidently ``ValueDrift`` with the method and threshold fixed in ``monitoring.yaml``
(numeric and categorical features separately), so that the numbers of two reports mean the same thing.
The score (calibrated risk) gets its own method and threshold. Around Evidently's report, doudi adds
what a drift table alone does not say: the share of drifted features, missing values that appeared,
features the current data lacks or holds in the wrong type, and whether the raw data still follows the
data contract. A run is *flagged* when any of the configured conditions holds (see ``DriftConfig``);
weaker signs are reported as *warnings*.

Flags are tuned on what a year of ordinary change looks like against a training snapshot (in the
synthetic world a run a year after training sees 33-46 % of the features drift while its score does not
move): a broad share of drifted features (50 %), one feature family drifting *strongly* together (a
department's feed broke, or a disaster struck), the score distribution shifting, missing values
appearing, a schema or contract problem. Calendar features (prices, "months since" counters, which move
with the calendar and the length of history) are shown but never counted.

Evidently is imported only inside :func:`evidently_report` (it takes seconds to import and is never
needed by the API).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from doudi.io import Violation, World
from monitoring.config import DriftConfig
from monitoring.util import plain

SCORE_COLUMN = "risk"
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


@dataclass(frozen=True)
class ContractCheck:
    """What ``doudi.validate`` said about the raw data behind one side of the comparison."""

    source: str
    errors: int
    warnings: int
    by_rule: dict[str, int]
    examples: tuple[str, ...]

    @classmethod
    def from_violations(cls, source: str, violations: Sequence[Violation], *, examples: int = 5
                        ) -> ContractCheck:
        """Summarise violations (their messages never hold personal values: see ``doudi.io.Violation``)."""
        errors = [v for v in violations if v.severity == "error"]
        rules: dict[str, int] = {}
        for violation in violations:
            key = f"{violation.table}.{violation.rule or 'other'}"
            rules[key] = rules.get(key, 0) + 1
        shown = tuple(str(v) for v in (errors or list(violations))[:examples])
        return cls(source, len(errors), len(violations) - len(errors), rules, shown)


@dataclass(frozen=True)
class DriftData:
    """One side of a drift comparison: features (and the score) of the households, and where they came from.

    Attributes:
        frame: one row per household (index household_id): feature columns and, when known, ``risk``.
        label: what this is, for people ("champion v3 training snapshot", "scoring run 12").
        as_of: the as-of date (None for a stack of several dates).
        run_id: the scoring run, when the data is one.
        model_name, model_version: the model whose score ``risk`` is.
        contract: the data-contract check of the raw data, when the data came from raw records.
    """

    frame: pd.DataFrame
    label: str
    as_of: pd.Timestamp | None = None
    run_id: int | None = None
    model_name: str | None = None
    model_version: str | None = None
    contract: ContractCheck | None = None


@dataclass
class DriftResult:
    """A drift comparison, its verdict and the Evidently snapshot behind it.

    Attributes:
        features: one row per feature (index name): group, kind, method, threshold, score, drifted,
            strong (score at least ``strong_factor`` x the threshold), calendar (never counted),
            missing_reference, missing_current, missing_increase, note.
        score: the score's drift (method, threshold, value, drifted) and quantiles on both sides, or None.
        schema: problems with the current frame's columns (absent, wrong type).
        flags: why the run is flagged (empty when it is not), in words.
        warnings: weaker signs worth a look (they do not flag the run), in words.
    """

    reference: DriftData
    current: DriftData
    features: pd.DataFrame
    score: dict[str, Any] | None
    schema: list[str]
    flags: list[str]
    config: DriftConfig
    rows: tuple[int, int]
    warnings: list[str] = field(default_factory=list)
    snapshot: Any = field(default=None, repr=False)

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def counted(self) -> pd.DataFrame:
        """The features the verdict counts (calendar features left out)."""
        return self.features[~self.features["calendar"]]

    @property
    def n_drifted(self) -> int:
        """Drifted features, calendar features left out."""
        return int(self.counted["drifted"].sum())

    @property
    def drifted_share(self) -> float:
        """Share of drifted features, calendar features left out."""
        return float(self.counted["drifted"].mean()) if len(self.counted) else 0.0

    def groups(self) -> pd.DataFrame:
        """Per feature family (calendar features left out): features, drifted, strongly drifted, shares."""
        grouped = self.counted.groupby("group", sort=True)
        table = pd.DataFrame({"features": grouped.size(), "drifted": grouped["drifted"].sum().astype(int),
                              "strong": grouped["strong"].sum().astype(int)})
        table["share"] = table["drifted"] / table["features"]
        table["strong_share"] = table["strong"] / table["features"]
        return table

    def summary(self) -> dict[str, Any]:
        """The headline numbers as plain JSON values (stored in the database row and the JSON file)."""
        drifted = self.features[self.features["drifted"]].sort_values("score", ascending=False)
        missing = self.features[self.features["missing_increase"] > self.config.missing_increase]
        return plain({
            "reference": _side(self.reference),
            "current": _side(self.current),
            "rows": {"reference": self.rows[0], "current": self.rows[1]},
            "features": int(len(self.features)),
            "drifted_features": self.n_drifted,
            "drifted_share": self.drifted_share,
            "drifted": drifted.index.tolist(),
            "calendar_drifted": drifted.index[drifted["calendar"]].tolist(),
            "groups": self.groups().to_dict(orient="index"),
            "missing_increased": missing.index.tolist(),
            "score": self.score,
            "schema": self.schema,
            "contract": None if self.current.contract is None else vars(self.current.contract),
            "flagged": self.flagged,
            "flags": self.flags,
            "warnings": self.warnings,
            "config": self.config.model_dump(mode="json"),
        })


def _side(data: DriftData) -> dict[str, Any]:
    return {"label": data.label, "as_of": None if data.as_of is None else data.as_of.strftime("%Y-%m-%d"),
            "run_id": data.run_id, "model_name": data.model_name, "model_version": data.model_version}


def contract_check_world(world: World, source: str) -> ContractCheck:
    """Check an in-memory world against the data contract (``doudi.validate.check_world``)."""
    from doudi.validate import check_world

    return ContractCheck.from_violations(source, check_world(
        {name: (Path(f"{name}.parquet"), frame) for name, frame in world.items()}))


def contract_check_folder(directory: Path) -> ContractCheck:
    """Check a world folder against the data contract (``doudi.validate.check_world``)."""
    from doudi.io import read_raw
    from doudi.validate import check_world, stray_files

    return ContractCheck.from_violations(str(directory), check_world(read_raw(directory))
                                         + stray_files(directory))


def feature_kinds(columns: Sequence[str]) -> dict[str, str]:
    """``numeric`` or ``categorical`` per column, from the feature registry (numeric for unknown names)."""
    from features import REGISTRY

    return {name: REGISTRY[name].kind if name in REGISTRY else "numeric" for name in columns}


def feature_groups(columns: Sequence[str]) -> dict[str, str]:
    """The registry's family of each feature (income, medical, disaster, ...; ``other`` if unregistered)."""
    from features import REGISTRY

    return {name: REGISTRY[name].group if name in REGISTRY else "other" for name in columns}


def _sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=rows, random_state=seed) if len(frame) > rows else frame


def _schema(current: pd.DataFrame, kinds: dict[str, str]) -> tuple[list[str], list[str]]:
    """Problems with the current frame's columns, and the features both sides can be compared on."""
    problems, usable = [], []
    for name, kind in kinds.items():
        if name not in current:
            problems.append(f"feature {name} is absent from the current data")
            continue
        values = current[name]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if kind == "numeric" and not numeric:
            problems.append(f"feature {name} should be numeric, the current data holds {values.dtype}")
            continue
        if kind == "categorical" and numeric:
            problems.append(f"feature {name} should be categorical text, the current data holds "
                            f"{values.dtype}")
            continue
        usable.append(name)
    return problems, usable


def _prepared(frame: pd.DataFrame, names: Sequence[str], kinds: dict[str, str], score: str | None
              ) -> pd.DataFrame:
    """Columns as Evidently reads them: numeric float64, categorical object strings (missing = None)."""
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for name in names:
        values = frame[name]
        if kinds[name] == "numeric":
            out[name] = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[name] = values.astype("string").astype(object).where(values.notna(), None).to_numpy()
    if score is not None:
        out[score] = frame[score].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def evidently_report(
    reference: pd.DataFrame, current: pd.DataFrame, kinds: dict[str, str], config: DriftConfig, *,
    score: str | None,
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Run the Evidently report; return its snapshot and, per column, the drift value and verdict.

    Columns without a single value on one side are left out (Evidently cannot compare them; the caller
    reports them as drifted).
    """
    from monitoring._evidently import evidently

    ev = evidently()
    numeric = [n for n, k in kinds.items() if k == "numeric"]
    categorical = [n for n, k in kinds.items() if k == "categorical"]
    definition = ev.DataDefinition(numerical_columns=numeric + ([score] if score else []),
                                   categorical_columns=categorical)
    metrics: list[Any] = [ev.DatasetMissingValueCount()]
    methods: dict[str, tuple[str, float]] = {}
    for name in [*numeric, *categorical]:
        methods[name] = ((config.numeric_method, config.numeric_threshold) if kinds[name] == "numeric"
                         else (config.categorical_method, config.categorical_threshold))
    if score:
        methods[score] = (config.score_method, config.score_threshold)
    for name, (method, threshold) in methods.items():
        metrics.append(ev.ValueDrift(column=name, method=method, threshold=threshold))
    report = ev.Report(metrics, include_tests=True)
    snapshot = report.run(ev.Dataset.from_pandas(current, data_definition=definition),
                          ev.Dataset.from_pandas(reference, data_definition=definition))
    return snapshot, _value_drifts(snapshot.dict(), set(methods))


def _value_drifts(snapshot: dict[str, Any], columns: set[str]) -> dict[str, dict[str, Any]]:
    """Per column: method, threshold, value and whether Evidently's test failed (drift detected)."""
    verdict: dict[str, bool] = {}
    for test in snapshot.get("tests", []):
        config = test.get("metric_config", {}).get("params", {})
        column = config.get("column")
        if column in columns and test.get("status") in ("FAIL", "SUCCESS"):
            verdict[column] = test["status"] == "FAIL"
    out: dict[str, dict[str, Any]] = {}
    for metric in snapshot["metrics"]:
        config = metric.get("config", {})
        if not config.get("type", "").endswith(":ValueDrift") or config.get("column") not in columns:
            continue
        column = config["column"]
        value = float(metric["value"])
        if column not in verdict:
            raise RuntimeError(f"Evidently gave no drift test result for {column}")
        out[column] = {"method": config["method"], "threshold": float(config["threshold"]), "value": value,
                       "drifted": verdict[column]}
    missing = columns - set(out)
    if missing:
        raise RuntimeError(f"Evidently gave no drift value for {sorted(missing)}")
    return out


def drift_report(
    reference: DriftData,
    current: DriftData,
    *,
    config: DriftConfig,
    features: Sequence[str] | None = None,
    score: str | None = SCORE_COLUMN,
) -> DriftResult:
    """Compare ``current`` with ``reference``: feature drift, score shift, missing values, schema, contract.

    Args:
        reference: the training snapshot (features and the model's score on them).
        current: a scoring run (or any features frame).
        config: methods, thresholds and flag rules.
        features: the features to compare (default: the reference's columns other than the score).
        score: the score column; its drift is measured when both sides have it (None: no score).

    Returns:
        The result, with the Evidently snapshot for the HTML and JSON files.
    """
    names = [c for c in (features or reference.frame.columns) if c != score]
    absent = [n for n in names if n not in reference.frame]
    if absent:
        raise ValueError(f"the reference has no column(s) {absent}")
    kinds = feature_kinds(names)
    schema, usable = _schema(current.frame, kinds)
    with_score = score if (score and score in reference.frame and score in current.frame) else None
    ref = _sample(reference.frame, config.max_rows, config.seed)
    cur = _sample(current.frame, config.max_rows, config.seed)
    ref_x = _prepared(ref, usable, kinds, with_score)
    cur_x = _prepared(cur, usable, kinds, with_score)
    empty = [n for n in usable if ref_x[n].notna().sum() == 0 or cur_x[n].notna().sum() == 0]
    compared = {n: kinds[n] for n in usable if n not in empty}
    snapshot, drifts = evidently_report(ref_x, cur_x, compared, config, score=with_score)

    missing_ref = reference.frame.reindex(columns=usable).isna().mean()
    missing_cur = current.frame.reindex(columns=usable).isna().mean()
    rows = []
    for name in usable:
        found = drifts.get(name)
        note = ""
        if name in empty:
            side = "reference" if ref_x[name].notna().sum() == 0 else "current"
            note = f"no values in the {side} data"
        method, threshold = ((config.numeric_method, config.numeric_threshold) if kinds[name] == "numeric"
                             else (config.categorical_method, config.categorical_threshold))
        rows.append({
            "name": name, "kind": kinds[name], "method": method, "threshold": threshold,
            "score": found["value"] if found else float("nan"),
            "drifted": bool(found["drifted"]) if found else True,
            "missing_reference": float(missing_ref[name]), "missing_current": float(missing_cur[name]),
            "note": note,
        })
    table = pd.DataFrame(rows, columns=["name", "kind", "method", "threshold", "score", "drifted",
                                        "missing_reference", "missing_current", "note"]).set_index("name")
    table["missing_increase"] = table["missing_current"] - table["missing_reference"]
    table["drifted"] = table["drifted"].astype(bool)
    table.insert(0, "group", pd.Series(feature_groups(usable), dtype=object).reindex(table.index))
    table["strong"] = (table["score"] >= config.strong_factor * table["threshold"]).to_numpy(bool)
    table["calendar"] = table.index.isin(config.calendar_features)

    score_summary = None
    if with_score:
        found = drifts[with_score]
        score_summary = {
            **found,
            "reference_mean": float(reference.frame[with_score].mean()),
            "current_mean": float(current.frame[with_score].mean()),
            "reference_quantiles": _quantiles(reference.frame[with_score]),
            "current_quantiles": _quantiles(current.frame[with_score]),
        }
    result = DriftResult(reference=reference, current=current, features=table, score=score_summary,
                         schema=schema, flags=[], config=config, snapshot=snapshot,
                         rows=(len(reference.frame), len(current.frame)))
    result.flags = flag_reasons(result)
    result.warnings = warning_reasons(result)
    return result


def _quantiles(values: pd.Series) -> dict[str, float]:
    clean = pd.to_numeric(values, errors="coerce").dropna()
    return {f"q{int(q * 100)}": float(clean.quantile(q)) if len(clean) else float("nan") for q in QUANTILES}


def _names(names: pd.Index, shown: int = 4) -> str:
    return ", ".join(names[:shown]) + (", …" if len(names) > shown else "")


def _families(result: DriftResult, column: str, share: str) -> pd.DataFrame:
    groups = result.groups()
    return groups[(groups["features"] >= result.config.min_group_features)
                  & (groups[share] >= result.config.group_share) & (groups[column] > 0)]


def flag_reasons(result: DriftResult) -> list[str]:
    """Why a drift result is flagged, one sentence per configured condition that holds."""
    config = result.config
    counted = result.counted
    reasons = []
    share = result.drifted_share
    if len(counted) and share >= config.drifted_share:
        top = counted[counted["drifted"]].sort_values("score", ascending=False).index
        reasons.append(f"{result.n_drifted} of {len(counted)} features drifted ({share:.0%} >= "
                       f"{config.drifted_share:.0%}), e.g. {_names(top, 5)}")
    for group, row in _families(result, "strong", "strong_share").iterrows():
        names = counted.index[(counted["group"] == group) & counted["strong"]]
        reasons.append(f"{int(row['strong'])} of {int(row['features'])} {group} features drifted strongly "
                       f"together (at least {config.strong_factor:g} x the threshold: {_names(names)}): "
                       "one source moved")
    if config.flag_on_score and result.score is not None and result.score["drifted"]:
        s = result.score
        reasons.append(f"score distribution shifted: {s['method']} {s['value']:.3f} >= {s['threshold']} "
                       f"(mean risk {s['reference_mean']:.3f} -> {s['current_mean']:.3f})")
    rising = result.features[result.features["missing_increase"] > config.missing_increase]
    if len(rising):
        worst = rising["missing_increase"].sort_values(ascending=False)
        shown = ", ".join(f"{name} +{value:.0%}" for name, value in worst.head(5).items())
        reasons.append(f"missing values rose in {len(rising)} feature(s): {shown}")
    if result.schema:
        reasons.append(f"{len(result.schema)} schema problem(s): {result.schema[0]}")
    contract = result.current.contract
    if config.flag_on_contract and contract is not None and contract.errors:
        reasons.append(f"the data breaks the data contract: {contract.errors} error(s), e.g. "
                       f"{contract.examples[0]}")
    return reasons


def warning_reasons(result: DriftResult) -> list[str]:
    """Weaker signs of drift, reported without flagging the run."""
    config = result.config
    counted = result.counted
    reasons = []
    share = result.drifted_share
    if len(counted) and config.warn_share <= share < config.drifted_share:
        reasons.append(f"{result.n_drifted} of {len(counted)} features drifted ({share:.0%}, flagged from "
                       f"{config.drifted_share:.0%})")
    strong = set(_families(result, "strong", "strong_share").index)
    for group, row in _families(result, "drifted", "share").iterrows():
        if group in strong:
            continue
        names = counted.index[(counted["group"] == group) & counted["drifted"]]
        reasons.append(f"{int(row['drifted'])} of {int(row['features'])} {group} features drifted "
                       f"({_names(names)}), {int(row['strong'])} strongly")
    calendar = result.features[result.features["calendar"] & result.features["drifted"]]
    if len(calendar):
        reasons.append(f"calendar features moved as expected, not counted: {_names(calendar.index, 8)}")
    return reasons


def save_drift(result: DriftResult, directory: Path) -> tuple[Path, Path]:
    """Write ``drift.html`` (Evidently's report) and ``drift.json`` (doudi's summary, the per-feature
    table and Evidently's own JSON) into ``directory``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    html, data = directory / "drift.html", directory / "drift.json"
    result.snapshot.save_html(str(html))
    table = result.features.reset_index()
    payload = {
        "summary": result.summary(),
        "features": plain(table.astype(object).where(table.notna(), None).to_dict(orient="records")),
        "evidently": result.snapshot.dict(),
    }
    data.write_text(json.dumps(payload, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return html, data
