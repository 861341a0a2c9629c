"""The ``doudi`` command line. Each command is a thin shell over a library function."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from doudi.settings import disable_telemetry

app = typer.Typer(
    help="doudi (兜底): early warning of households at risk of falling (back) into poverty.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

AsOf = Annotated[str, typer.Option("--as-of", help="As-of date T, YYYY-MM-DD: only records known before T count.")]
WorldDir = Annotated[Path, typer.Argument(help="Folder with one CSV or Parquet file per contract table.")]


@app.callback()
def _main() -> None:
    disable_telemetry()


def _as_of(value: str):
    import pandas as pd

    try:
        return pd.Timestamp(value).normalize()
    except (ValueError, TypeError):
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--as-of") from None


def _load(directory: Path):
    """Load and validate a world, turning contract violations into a clear message and exit code 1."""
    from doudi.io import ContractError
    from doudi.validate import load_world

    try:
        return load_world(directory)
    except ContractError as error:
        err_console.print(f"[red]{directory}: the data does not follow the contract.[/red]")
        err_console.print(str(error), markup=False)
        err_console.print("Run [bold]doudi validate[/bold] for the full list.")
        raise typer.Exit(1) from None
    except FileNotFoundError as error:
        err_console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None


# ---------------------------------------------------------------------------------------------------------
# MODEL engineer: `doudi train`, `doudi promote` (models/)
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="Training config YAML (default: models/default.yaml).")
]
ReportJson = Annotated[
    Path | None, typer.Option("--report-json", help="Write the comparison table as JSON to this file.")
]
COMPARISON_COLUMNS = (
    "roc_auc", "pr_auc", "precision_at_1pct", "precision_at_5pct", "recall_at_5pct", "precision_at_10pct",
    "brier", "ece", "caught_before_event_share", "lead_time_median_months",
)


@app.command("train")
def train_command(directory: WorldDir, config: ConfigFile = None, report_json: ReportJson = None) -> None:
    """Train the relapse-risk model and compare it with the baselines.

    Builds monthly snapshots, fits the rule baseline, logistic regression and LightGBM, compares them on
    the test period, logs everything to MLflow and registers the model (alias challenger; the first
    version ever is also champion).
    """
    import json

    import yaml
    from pydantic import ValidationError
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from doudi.settings import Settings
    from models.config import load_config
    from models.dataset import snapshot_count
    from models.train import FIT_STEPS, train

    try:
        cfg = load_config(config)
    except (ValidationError, OSError, yaml.YAMLError) as error:
        err_console.print(f"[red]{config or 'default config'}: not a valid training config.[/red]")
        err_console.print(str(error), markup=False)
        raise typer.Exit(1) from None
    world = _load(directory)
    settings = Settings()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("building snapshots", total=snapshot_count(cfg) + len(FIT_STEPS))
            result = train(world, cfg, tracking_uri=settings.resolved_tracking_uri(),
                           model_name=settings.model_name,
                           progress=lambda done: bar.update(task, advance=1, description=done))
    except (ValueError, KeyError) as error:
        err_console.print(f"[red]training failed: {error}[/red]", markup=False)
        raise typer.Exit(1) from None

    splits = Table(title="Splits (by as-of date, rolling origin)")
    for name in result.splits_table.columns:
        splits.add_column(name, justify="left" if name == "split" else "right")
    for row in result.splits_table.itertuples(index=False):
        splits.add_row(*("" if v is None or v != v else str(v) for v in row))
    console.print(splits)
    test_dates = ", ".join(d.strftime("%Y-%m-%d") for d in cfg.test.as_of_dates())
    comparison = Table(title=f"Test period {test_dates} (horizon {cfg.horizon_months} months)")
    comparison.add_column("metric")
    for model in result.metrics:
        comparison.add_column(model, justify="right")
    for metric in COMPARISON_COLUMNS:
        values = [result.metrics[m].get(metric, float("nan")) for m in result.metrics]
        comparison.add_row(metric, *("" if v != v else f"{v:.4f}" for v in values))
    console.print(comparison)
    console.print(f"MLflow run [bold]{result.run_id}[/bold] in {settings.resolved_tracking_uri()}")
    console.print(f"Registered {settings.model_name} version [bold]{result.model_version}[/bold] "
                  f"as {', '.join(result.aliases)}; config {result.config_hash[:12]}, "
                  f"data {result.data_fingerprint}")
    if report_json is not None:
        report_json.parent.mkdir(parents=True, exist_ok=True)
        report_json.write_text(json.dumps(result.report(), indent=2, default=str), encoding="utf-8")
        console.print(f"Report written to {report_json}")


@app.command("promote")
def promote_command(
    force: Annotated[bool, typer.Option("--force", help="Promote even if the checks fail (admins).")] = False,
) -> None:
    """Make the challenger the champion if it is not worse.

    Compares precision@5 % and calibration (ECE) on the same test period; prints why when refused
    (exit code 1).
    """
    from mlflow.tracking import MlflowClient
    from rich.markup import escape
    from rich.table import Table

    from doudi.settings import Settings
    from models.registry import promote

    settings = Settings()
    uri = settings.resolved_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        decision = promote(client, force=force, model_name=settings.model_name)
    except LookupError as error:
        err_console.print(f"[red]{error}[/red]", markup=False)
        raise typer.Exit(1) from None
    if decision.checks:
        versions = f"challenger v{decision.challenger_version} vs champion v{decision.champion_version}"
        table = Table(title=versions)
        for name in ("check", "result", "why"):
            table.add_column(name)
        for check in decision.checks:
            verdict = "[green]pass[/green]" if check.passed else "[red]fail[/red]"
            table.add_row(escape(check.name), verdict, escape(check.reason))
        console.print(table)
    if decision.promoted:
        done = f"Promoted v{decision.challenger_version} to champion"
        console.print(f"[green]{done}[/green]: {escape(decision.reason)}.")
    else:
        console.print(f"[red]Not promoted[/red]: {escape(decision.reason)}")
        raise typer.Exit(1)
