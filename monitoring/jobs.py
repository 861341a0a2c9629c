"""The three monitoring jobs behind ``doudi monitor``: each computes, writes its files under the data
folder (``<data_dir>/monitoring/<kind>-<run>-<time>/``) and records a row in the service database."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from doudi.io import World
from doudi.settings import Settings
from monitoring.config import MonitoringConfig
from monitoring.drift import DriftResult, drift_report, save_drift
from monitoring.fairness import (
    ATTRIBUTE_LABELS,
    audit,
    audit_records,
    flagged_groups,
    household_groups,
    markdown,
)
from monitoring.performance import RunPerformance, last_data_month, matured, matured_performance, trend
from monitoring.util import plain


@dataclass(frozen=True)
class Saved:
    """Where a report went."""

    report_id: int
    directory: Path
    html: Path | None
    json: Path | None


def report_directory(settings: Settings, kind: str, run_id: int | None) -> Path:
    """A new folder for one report's files."""
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
    source = f"run{run_id}" if run_id else "file"
    directory = settings.data_dir / "monitoring" / f"{kind}-{source}-{stamp}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _sessions(settings: Settings) -> tuple[Any, Any]:
    from serving.db import make_engine, session_factory, upgrade

    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    return engine, session_factory(engine)


def _record(sessions: Any, **row: Any) -> int:
    from monitoring import store
    from serving.db import transaction

    with transaction(sessions) as session:
        return store.save_report(session, **row)


# --- drift ------------------------------------------------------------------------------------------------

def run_drift(
    reference: str,
    current: str,
    *,
    settings: Settings,
    config: MonitoringConfig,
    world_dir: Path | None = None,
    as_of: pd.Timestamp | None = None,
    sessions: Any = None,
) -> tuple[DriftResult, Saved]:
    """Resolve both sides, compare them, save ``drift.html`` and ``drift.json``, record a report row.

    Raises:
        monitoring.sources.SourceError: a side names nothing usable.
    """
    from monitoring.sources import SourceError, resolve

    engine = None
    if sessions is None:
        engine, sessions = _sessions(settings)
    try:
        ref = resolve(reference, settings=settings, sessions=sessions, world_dir=world_dir, as_of=as_of)
        cur = resolve(current, settings=settings, sessions=sessions, world_dir=world_dir, as_of=as_of)
        if cur.contract is not None and cur.contract.errors and cur.frame.empty:
            raise SourceError(f"{cur.label} breaks the data contract ({cur.contract.errors} error(s), e.g. "
                              f"{cur.contract.examples[0]}): run doudi validate")
        result = drift_report(ref, cur, config=config.drift)
        directory = report_directory(settings, "drift", cur.run_id)
        html_path, json_path = save_drift(result, directory)
        report_id = _record(
            sessions, kind="drift", flags=result.flags, summary=result.summary(),
            config_hash=config.config_hash(),
            run_id=cur.run_id, as_of=cur.as_of.date() if cur.as_of is not None else None,
            model_name=cur.model_name or ref.model_name, model_version=cur.model_version or ref.model_version,
            reference=ref.label, current=cur.label, html_path=str(html_path), json_path=str(json_path),
        )
    finally:
        if engine is not None:
            engine.dispose()
    return result, Saved(report_id, directory, html_path, json_path)


# --- matured performance ------------------------------------------------------------------------------------

def run_performance(
    world: World,
    *,
    settings: Settings,
    config: MonitoringConfig,
    run_ids: list[int] | None = None,
    feedback: pd.DataFrame | None = None,
    use_mlflow: bool = True,
    sessions: Any = None,
    progress: Any = None,
) -> tuple[list[tuple[RunPerformance, Saved]], pd.DataFrame, pd.DataFrame]:
    """Evaluate every matured run, save its files, store one report per run (replacing older ones).

    Returns:
        (performance, where it was saved) per evaluated run; the runs not matured yet; the trend over
        every stored performance report.
    """
    from monitoring import store
    from monitoring.sources import model_horizon, model_metrics

    engine = None
    if sessions is None:
        engine, sessions = _sessions(settings)
    try:
        expected = (lambda name, version: model_metrics(settings, name, version)) if use_mlflow else None
        horizon = (lambda name, version: model_horizon(settings, name, version)) if use_mlflow else None
        results, pending = matured_performance(sessions, world, config=config.performance, run_ids=run_ids,
                                               expected=expected, horizon=horizon, extra_outcomes=feedback,
                                               progress=progress)
        saved = []
        for result in results:
            directory = report_directory(settings, "performance", result.run_id)
            json_path = directory / "performance.json"
            json_path.write_text(json.dumps(result.summary(), indent=1, ensure_ascii=False), encoding="utf-8")
            html_path = directory / "performance.html"
            html_path.write_text(performance_html(result), encoding="utf-8")
            report_id = _record(
                sessions, kind="performance", flags=result.flags, summary=result.summary(),
                config_hash=config.config_hash(), run_id=result.run_id, as_of=result.as_of.date(),
                model_name=result.model_name, model_version=result.model_version,
                current=f"scoring run {result.run_id} ({result.as_of.date()})",
                reference=f"labels through {last_data_month(world)}",
                html_path=str(html_path), json_path=str(json_path), replace=True,
            )
            saved.append((result, Saved(report_id, directory, html_path, json_path)))
        with sessions() as session:
            history = trend(store.performance_history(session), config.performance)
    finally:
        if engine is not None:
            engine.dispose()
    return saved, pending, history


# --- fairness ---------------------------------------------------------------------------------------------

def run_fairness(
    world: World,
    run_id: int | None = None,
    *,
    settings: Settings,
    config: MonitoringConfig,
    sessions: Any = None,
    use_mlflow: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any], Saved]:
    """Audit one scoring run (the latest batch run by default) by group, save and record it.

    Precision, FNR and FPR need matured labels; before the window has passed only sizes and alert
    rates are audited (``summary["labelled"]`` says which).

    Raises:
        monitoring.sources.SourceError: no such run (or no run at all).
    """
    from doudi.labels import build_labels
    from monitoring import store
    from monitoring.sources import SourceError, model_horizon

    engine = None
    if sessions is None:
        engine, sessions = _sessions(settings)
    try:
        with sessions() as session:
            runs = store.scoring_runs(session, sources=(), run_ids=[run_id] if run_id is not None else None)
            if run_id is None:
                runs = runs[runs["source"].isin(config.performance.sources)]
            if runs.empty:
                raise SourceError(f"no scoring run {run_id}" if run_id is not None else "no scoring run yet")
            run_id = int(runs.index[-1])
            run = runs.loc[run_id]
            scores = store.run_scores(session, run_id)
        as_of = pd.Timestamp(run["as_of"])
        months = ((model_horizon(settings, str(run["model_name"]), str(run["model_version"]))
                   if use_mlflow else None) or config.performance.horizon_months)
        labelled = matured(as_of, horizon_months=months, lag_months=config.performance.maturity_lag_months,
                           last_month=last_data_month(world))
        groups = household_groups(world, as_of, elderly_age=config.fairness.elderly_age)
        # In front of a social worker: alerted by this run, or already under an open case it did not repeat.
        covered = scores["alerted"].to_numpy(bool) | scores["open_case"].to_numpy(bool)
        frame = scores[[]].assign(alerted=covered).join(groups[list(config.fairness.attributes)], how="left")
        if labelled:
            labels = build_labels(world, as_of, horizon_months=months)["label"]
            frame["label"] = labels.reindex(frame.index).astype("Int64")
        table = audit(frame, config=config.fairness)
        flagged = flagged_groups(table)
        summary = plain({
            "run_id": run_id, "as_of": as_of.strftime("%Y-%m-%d"), "horizon_months": months,
            "labelled": labelled,
            "households": len(frame), "alerts": int(scores["alerted"].sum()),
            "open_cases": int((scores["open_case"] & ~scores["alerted"]).sum()),
            "flagged_groups": [f"{a}={g}" for a, g in flagged],
            "groups": audit_records(table), "config": config.fairness.model_dump(mode="json"),
        })
        flags = [f"{ATTRIBUTE_LABELS.get(a, a)} = {g}: {table.loc[(a, g), 'why']}" for a, g in flagged]
        directory = report_directory(settings, "fairness", run_id)
        json_path = directory / "fairness.json"
        json_path.write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
        title = f"Fairness of scoring run {run_id} ({as_of.date()})"
        text = markdown(table, config=config.fairness, title=title)
        text += ("\n\nAlerted here means put in front of a social worker: alerted by this run, or already "
                 "under an open case from an earlier run (the service does not alert those again).")
        if not labelled:
            text += ("\n\nThe label window has not passed yet: precision, FNR and FPR are not known; "
                     "only sizes and alert rates are shown.")
        (directory / "fairness.md").write_text(text + "\n", encoding="utf-8")
        html_path = directory / "fairness.html"
        html_path.write_text(_page(title, _markdown_table_html(text)), encoding="utf-8")
        report_id = _record(
            sessions, kind="fairness", flags=flags, summary=summary, config_hash=config.config_hash(),
            run_id=run_id, as_of=as_of.date(), model_name=str(run["model_name"]),
            model_version=str(run["model_version"]), current=f"scoring run {run_id} ({as_of.date()})",
            reference="largest group of each attribute" if not config.fairness.reference_groups
            else "configured reference groups", html_path=str(html_path), json_path=str(json_path),
        )
    finally:
        if engine is not None:
            engine.dispose()
    return table, summary, Saved(report_id, directory, html_path, json_path)


# --- small self-contained HTML pages (no scripts, no external assets) ---------------------------------------

def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:2em;max-width:75em;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;"
        "text-align:right}td:first-child,th:first-child,td:nth-child(2){text-align:left}"
        ".flag{color:#b00020;font-weight:bold}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _markdown_table_html(text: str) -> str:
    """The markdown of :func:`monitoring.fairness.markdown` as HTML (paragraphs and one table)."""
    parts, rows = [], []
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
            continue
        if rows:
            head, *body = rows
            cells = "".join(f"<th>{html.escape(c)}</th>" for c in head)
            lines = "".join(
                "<tr>" + "".join(f"<td{' class=flag' if c.startswith('**FLAGGED') else ''}>"
                                 f"{html.escape(c.replace('**', ''))}</td>" for c in row) + "</tr>"
                for row in body)
            parts.append(f"<table><tr>{cells}</tr>{lines}</table>")
            rows = []
        if line.startswith("## ") or line.startswith("|---") or not line.strip():
            continue
        parts.append(f"<p>{html.escape(line)}</p>")
    return "".join(parts)


def performance_html(result: RunPerformance) -> str:
    """A one-page view of a run's matured performance: headline metrics, flags, reliability table."""
    title = f"Matured performance of scoring run {result.run_id} ({result.as_of.date()})"
    metrics = pd.DataFrame({"this run": pd.Series(result.metrics)})
    if result.expected:
        metrics["at training (test period)"] = pd.Series(result.expected).reindex(metrics.index)
    counts = pd.Series(result.counts, name="households").to_frame()
    flags = ("".join(f"<p class=flag>{html.escape(f)}</p>" for f in result.flags)
             or "<p>No drop beyond the margins.</p>")
    confirmed = ("none verified" if pd.isna(result.alert_confirmed_rate)
                 else f"{result.alert_confirmed_rate:.1%}")
    rates = (f"<p>Alerts that fell into hardship: {result.alert_label_rate:.1%}. Verified alerts confirmed "
             f"in hardship at home: {confirmed}.</p>")
    body = (flags + rates + metrics.to_html(float_format=lambda v: f"{v:.4f}", na_rep="")
            + "<h2>Households</h2>" + counts.to_html()
            + "<h2>Reliability (equal-width bins)</h2>"
            + result.reliability.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep=""))
    return _page(title, body)
