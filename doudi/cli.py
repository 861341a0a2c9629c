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

AsOf = Annotated[
    str, typer.Option("--as-of", help="As-of date T, YYYY-MM-DD: only records known before T count.")
]
WorldDir = Annotated[Path, typer.Argument(help="Folder with one CSV or Parquet file per contract table.")]


@app.callback()
def _main() -> None:
    disable_telemetry()


def _as_of(value: str):
    import pandas as pd

    try:
        return pd.Timestamp(pd.to_datetime(value, format="%Y-%m-%d"))
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
    "brier", "ece", "caught_before_event_share", "lead_time_median_months", "lead_time_median_caught_months",
    "warning_months_per_event", "lead_gain_vs_rules_months",
)


@app.command("train")
def train_command(directory: WorldDir, config: ConfigFile = None, report_json: ReportJson = None) -> None:
    """Train the relapse-risk model and compare it with the baselines.

    Builds monthly snapshots, fits the rule baseline, logistic regression and LightGBM, compares them on
    the test period, logs everything to MLflow and registers the model (alias challenger; the first
    version ever is also champion).
    """
    import json

    import pandas as pd
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
        splits.add_row(*("" if pd.isna(v) else str(v) for v in row))
    console.print(splits)
    test_dates = ", ".join(d.strftime("%Y-%m-%d") for d in cfg.test.as_of_dates())
    comparison = Table(title=f"Test period {test_dates} (horizon {cfg.horizon_months} months)")
    comparison.add_column("metric")
    for model in result.metrics:
        comparison.add_column(model, justify="right")
    for metric in COMPARISON_COLUMNS:
        values = [result.metrics[m].get(metric, float("nan")) for m in result.metrics]
        comparison.add_row(metric, *("–" if v != v else f"{v:.4f}" for v in values))
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


# ---------------------------------------------------------------------------------------------------------
# CONTRACT engineer: `doudi validate`, `doudi ingest`, `doudi contract-docs` (doudi/validate.py, docs.py)
MaxRows = Annotated[
    int, typer.Option("--max-rows", min=0, help="Show at most this many violations (--json gets all).")
]
ShownRows = Annotated[int, typer.Option("--max-rows", min=0, help="Show at most this many violations.")]
JsonReport = Annotated[Path | None, typer.Option("--json", help="Write every violation to this JSON file.")]
SourceDir = Annotated[Path, typer.Argument(help="Folder with an extract: one CSV or Parquet per table.")]
IngestOut = Annotated[Path, typer.Option("--out", help="Folder for the validated, pseudonymized Parquet.")]
DropInvalid = Annotated[bool, typer.Option(
    "--drop-invalid", help="Drop bad rows (and rows referencing them), list them in _rejects.csv.")]
DocsPage = Annotated[Path, typer.Option("--out", help="The page to write or check.")]
# Help texts as single-line paragraphs: Typer keeps a docstring's line breaks.
VALIDATE_HELP = (
    "Check a world folder (CSV or Parquet) against the data contract and report every violation.\n\n"
    "Prints the violations grouped by table and rule, then the first --max-rows of them (file, row, "
    "column, reason). Exit code 0 when there are no errors (warnings allowed), 1 when there are, 2 when the "
    "folder or a file cannot be read."
)
INGEST_HELP = (
    "Validate an extract, replace resident ID numbers by keyed pseudonyms, and store it as Parquet.\n\n"
    "Refuses (exit code 1, OUT untouched) when the extract breaks the contract, unless --drop-invalid. OUT "
    "is replaced only once the new world is completely written. Needs DOUDI_ID_HMAC_KEY when the extract "
    "holds resident ID numbers. Exit code 2 when a folder, a file or the key is unusable."
)


def _contract_say(*parts, error: bool = False) -> None:
    """Print one message unwrapped (paths stay whole) and without rich's automatic highlighting."""
    (err_console if error else console).print(*parts, highlight=False, soft_wrap=True)


def _contract_read(directory: Path, stage: str):
    """Read a world folder with a progress bar; a bad folder or unreadable file exits with code 2."""
    from rich.progress import Progress
    from rich.text import Text

    from doudi.contract import TABLES
    from doudi.io import UnreadableData, read_raw, table_file

    if not directory.is_dir():
        _contract_say(f"[red]{directory}: not a folder[/red]", error=True)
        raise typer.Exit(2)
    present = [name for name in TABLES if table_file(directory, name) is not None]
    try:
        with Progress(console=err_console, transient=True) as progress:
            task = progress.add_task(f"{stage}: reading", total=len(present))
            return read_raw(directory, on_table=lambda _: progress.advance(task))
    except UnreadableData as error:
        count = len(error.violations)
        _contract_say(f"[red]{directory}: cannot read {count} file(s)[/red]", error=True)
        for violation in error.violations:
            _contract_say(Text(f"  {violation}"), error=True)
        raise typer.Exit(2) from None


def _contract_report(violations, *, max_rows: int) -> None:
    """Print violations grouped by table and rule (with counts), then the first ``max_rows`` of them."""
    from rich.table import Table
    from rich.text import Text

    from doudi.validate import violations_frame

    frame = violations_frame(violations)
    frame["file"] = frame["file"].where(frame["file"] != "", frame["table"])
    grouped = frame.groupby(["file", "rule", "severity"], sort=False).agg(
        count=("reason", "size"), example=("reason", "first"))
    summary = Table(title="Violations by table and rule", title_justify="left")
    for name in ("file", "rule", "level", "count", "example"):
        summary.add_column(name, justify="right" if name == "count" else "left", no_wrap=name != "example",
                           overflow="fold")
    for (file, rule, severity), row in grouped.iterrows():
        level = Text(severity, style="yellow" if severity == "warning" else "red")
        summary.add_row(Text(file), rule, level, f"{row['count']:,}", Text(str(row["example"])))
    _contract_say(summary)
    if max_rows == 0:
        return
    shown = violations[:max_rows]
    detail = Table(title=f"First {len(shown):,} of {len(violations):,}", title_justify="left")
    for name in ("file", "row", "column", "reason"):
        detail.add_column(name, justify="right" if name == "row" else "left", overflow="fold")
    for violation in shown:
        row = "" if violation.row is None else str(violation.row)
        detail.add_row(Text(violation.file or violation.table), row, Text(violation.column or ""),
                       Text(violation.reason))
    _contract_say(detail)


@app.command("validate", help=VALIDATE_HELP)
def validate_command(directory: WorldDir, json_file: JsonReport = None, max_rows: MaxRows = 50) -> None:
    """Check a world folder against the data contract (see VALIDATE_HELP)."""
    import json

    from rich.progress import Progress

    from doudi.validate import check_world, stray_files, violations_frame

    raw = _contract_read(directory, "validate")
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("validate: checking", total=len(raw))
        violations = check_world(raw, on_table=lambda _: progress.advance(task)) + stray_files(directory)
    errors = sum(v.severity == "error" for v in violations)
    warnings = len(violations) - errors
    if violations:
        _contract_report(violations, max_rows=max_rows)
    if json_file is not None:
        records = violations_frame(violations).astype(object)
        payload = {
            "directory": str(directory),
            "rows": {name: len(frame) for name, (_, frame) in raw.items()},
            "errors": errors,
            "warnings": warnings,
            "violations": records.where(records.notna(), None).to_dict(orient="records"),
        }
        try:
            json_file.parent.mkdir(parents=True, exist_ok=True)
            json_file.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        except OSError as error:
            _contract_say(f"[red]cannot write {json_file}[/red]: {error}", error=True)
            raise typer.Exit(2) from None
    rows = sum(len(frame) for _, frame in raw.values())
    checked = f"{len(raw)} tables, {rows:,} rows in {directory}"
    if errors:
        _contract_say(f"[red]✗ {errors:,} error(s)[/red], {warnings:,} warning(s): {checked}")
        raise typer.Exit(1)
    extra = f" ({warnings:,} warning(s))" if warnings else ""
    _contract_say(f"[green]✓ follows the data contract[/green]: {checked}{extra}")


@app.command("ingest", help=INGEST_HELP)
def ingest_command(source: SourceDir, out: IngestOut, drop_invalid: DropInvalid = False,
                   max_rows: ShownRows = 20) -> None:
    """Validate, pseudonymize and store an extract (see INGEST_HELP)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn
    from rich.table import Table
    from rich.text import Text

    from doudi.io import ContractError, UnreadableData
    from doudi.pseudonym import PseudonymKeyMissing
    from doudi.validate import IngestTargetError, ingest

    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err_console,
                      transient=True) as progress:
            task = progress.add_task("ingest")
            report = ingest(source, out, drop_invalid=drop_invalid,
                            on_step=lambda step: progress.update(task, description=f"ingest: {step}"))
    except (PseudonymKeyMissing, UnreadableData, IngestTargetError, FileNotFoundError) as error:
        lines = [str(v) for v in error.violations] if isinstance(error, UnreadableData) else [
            error.violations[0].reason if isinstance(error, PseudonymKeyMissing) else str(error)]
        _contract_say("[red]Not ingested[/red]:", Text("\n  ".join(lines)), error=True)
        raise typer.Exit(2) from None
    except ContractError as error:
        _contract_report(error.violations, max_rows=max_rows)
        hint = "" if drop_invalid else "; fix the extract, or use --drop-invalid to drop the bad rows"
        count = len(error.violations)
        _contract_say(f"[red]Not ingested[/red]: {count:,} error(s); {out} is unchanged{hint}.", error=True)
        raise typer.Exit(1) from None
    except OSError as error:
        _contract_say("[red]Not ingested[/red]:", Text(f"{error}; {out} is unchanged."), error=True)
        raise typer.Exit(2) from None
    table = Table(title=f"Ingested into {out}", title_justify="left")
    for name in ("table", "read", "written", "dropped"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for name, written in report.rows_written.items():
        read = report.rows_read.get(name)
        dropped = report.rows_dropped.get(name, 0)
        table.add_row(name, "-" if read is None else f"{read:,}", f"{written:,}",
                      f"{dropped:,}" if dropped else "")
    _contract_say(table)
    for warning in report.warnings:
        _contract_say("[yellow]warning[/yellow]", Text(str(warning)))
    if report.rejected:
        _contract_say(f"{len(report.rejected):,} violation(s) dropped rows: see {out / '_rejects.csv'}")


@app.command("contract-docs")
def contract_docs_command(
    check: Annotated[bool, typer.Option("--check", help="Only check: exit 1 if the page is stale.")] = False,
    path: DocsPage = Path("docs/data-contract.md"),
) -> None:
    """Generate docs/data-contract.md from the data contract (doudi/contract.py)."""
    from doudi.docs import is_stale, write_contract_docs

    if check:
        if is_stale(path):
            _contract_say(f"[red]{path} is stale[/red]: run doudi contract-docs", error=True)
            raise typer.Exit(1)
        _contract_say(f"{path} is up to date")
        return
    changed = write_contract_docs(path)
    _contract_say(f"{'Wrote' if changed else 'Unchanged:'} {path}")


# --- features (FEATURES engineer) -------------------------------------------------------------------

FeaturesOut = Annotated[Path, typer.Option("--out", help="Parquet file to write (one row per household).")]
AllHouseholds = Annotated[bool, typer.Option(
    "--all-households", help="Every household of the world, not only the cohort at T.")]


FEATURES_HELP = (
    "Build point-in-time features at T for the cohort (or every household) and write them to Parquet.\n\n"
    "Only records known before T count (recorded_at before T and dated before T). The file has household_id, "
    "as_of and one column per registered feature, in registry order."
)


@app.command("features", help=FEATURES_HELP)
def features_command(directory: WorldDir, as_of: AsOf, out: FeaturesOut,
                     all_households: AllHouseholds = False) -> None:
    """Write the features of the cohort at T (see FEATURES_HELP)."""
    import time

    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table
    from rich.text import Text

    from features import REGISTRY, REGISTRY_VERSION, build_features, encode_world

    timestamp = _as_of(as_of)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    world = _load(directory)
    timings["load and validate"] = time.perf_counter() - clock
    households = None
    if not all_households:
        from doudi.labels import cohort

        clock = time.perf_counter()
        try:
            households = cohort(world, timestamp)
        except ValueError as error:
            err_console.print(Text.assemble((f"cannot build the cohort at {timestamp.date()}: ", "red"),
                                            str(error)))
            raise typer.Exit(1) from None
        timings["cohort"] = time.perf_counter() - clock
    clock = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description:<32}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("encoding the world", total=len(REGISTRY))
        try:
            encoded = encode_world(world)
            frame = build_features(
                encoded, timestamp, households=households,
                progress=lambda done, _total, name: progress.update(task, completed=done, description=name),
            )
        except (KeyError, ValueError) as error:
            err_console.print(Text.assemble(("cannot build features: ", "red"), str(error)))
            raise typer.Exit(1) from None
    timings["features"] = time.perf_counter() - clock
    clock = time.perf_counter()
    table = frame.rename_axis("household_id").reset_index()
    table.insert(1, "as_of", timestamp.to_datetime64())
    table["as_of"] = table["as_of"].astype("datetime64[ns]")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out, index=False)
    except OSError as error:
        err_console.print(Text.assemble((f"cannot write {out}: ", "red"), str(error)))
        raise typer.Exit(1) from None
    timings["write"] = time.perf_counter() - clock
    who = "households" if all_households else "cohort households"
    summary = Table(title=f"Features at {timestamp.date()} → {out}", title_justify="left", show_header=False)
    summary.add_column("")
    summary.add_column("", justify="right")
    summary.add_row(f"rows ({who})", f"{len(table):,} of {len(encoded.ids):,}")
    summary.add_row("feature columns", f"{frame.shape[1]} (registry {REGISTRY_VERSION})")
    for step, seconds in timings.items():
        summary.add_row(f"time: {step}", f"{seconds:.1f} s")
    console.print(summary)


# --- serving (SERVING engineer): score, serve, users, db ---------------------------------------------------
ScoreOut = Annotated[Path | None, typer.Option(
    "--out", help="Where to write the alerts (Parquet); default <DOUDI_DATA_DIR>/alerts.parquet.")]
TopPerTownship = Annotated[int | None, typer.Option(
    "--top-per-township", min=1,
    help="Visiting capacity: at most K alerts per township by rank; triggered households are always kept.")]
users_app = typer.Typer(help="Users and bearer tokens of the scoring service.", no_args_is_help=True)
db_app = typer.Typer(help="The service database (SQLite by default, PostgreSQL via DOUDI_DATABASE_URL).",
                     no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(db_app, name="db")


def _serving_model(settings):
    """The champion, or a clear message and exit code 1."""
    from serving.champion import load_champion
    from serving.errors import NotReady

    try:
        return load_champion(settings)
    except NotReady as error:
        err_console.print(f"[red]{error.message}[/red]", markup=False)
        raise typer.Exit(1) from None


@app.command("score")
def score_command(directory: WorldDir, as_of: AsOf, top_per_township: TopPerTownship = None,
                  out: ScoreOut = None) -> None:
    """Score every cohort household with the champion model; store the run and alerts; write alerts.parquet.

    Alerts: households with a risk tier or a fired policy trigger (not those whose open case already
    covers their tier). Prints a summary per county.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from doudi.policy import load_policy
    from doudi.settings import Settings
    from serving.db import make_engine, session_factory, upgrade
    from serving.errors import DoudiError
    from serving.service import alerts_table, county_summary, score_world

    settings = Settings()
    when = _as_of(as_of)
    world = _load(directory)
    model = _serving_model(settings)
    engine = make_engine(settings.resolved_database_url())
    upgrade(engine)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("scoring", total=None)
            batch = score_world(
                world, when, model, load_policy(settings.policy_file), sessions=session_factory(engine),
                top_per_township=top_per_township,
                progress=lambda done, total, step: bar.update(task, completed=done, total=total,
                                                              description=step),
            )
    except DoudiError as error:
        err_console.print(f"[red]{error.message}[/red]", markup=False)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    path = out or settings.data_dir / "alerts.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    alerts_table(batch).to_parquet(path, index=False)

    summary = county_summary(batch)
    table = Table(title=f"Run {batch.run_id}: {model.name} v{model.version}, as of {when.date()}")
    for name in ("county", *summary.columns):
        table.add_column(name.replace("_", " "), justify="left" if name == "county" else "right")
    for county, row in summary.iterrows():
        table.add_row(str(county), *(f"{int(v):,}" for v in row))
    table.add_row("total", *(f"{int(v):,}" for v in summary.sum()), style="bold")
    console.print(table)
    console.print(f"{int(summary['alerts'].sum()):,} alerts written to {path}")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    reference: Annotated[Path | None, typer.Option(
        "--reference", help="World folder whose regions, standards and disasters serve score requests "
                            "that do not send them.")] = None,
) -> None:
    """Run the scoring API (OpenAPI at /docs); pins the champion model version at start-up."""
    import uvicorn

    from doudi.settings import Settings
    from serving.app import create_app
    from serving.schemas import REFERENCE_TABLES

    regions = None
    if reference is not None:
        world = _load(reference)
        regions = {name: world[name] for name in REFERENCE_TABLES}
    uvicorn.run(create_app(Settings(), reference=regions), host=host, port=port, log_level="info")


@users_app.command("add")
def users_add_command(
    name: Annotated[str, typer.Argument(help="User name (a person or a calling system).")],
    role: Annotated[str, typer.Option(
        "--role", help="platform, worker, supervisor, modeler or admin.")],
    region: Annotated[list[str] | None, typer.Option(
        "--region", help="Region code (2, 4, 6, 9 or 12 digits) the user may see; repeat for several.",
    )] = None,
) -> None:
    """Create a user and print its bearer token once (only its hash is stored)."""
    from doudi.settings import Settings
    from serving.auth import add_user
    from serving.db import make_engine, session_factory, transaction, upgrade
    from serving.errors import DoudiError

    engine = make_engine(Settings().resolved_database_url())
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as session:
            user, token = add_user(session, name, role, region_codes=region or [])
            regions = ", ".join(user.region_codes) or "all"
    except DoudiError as error:
        err_console.print(f"[red]{error.message}[/red]", markup=False)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(f"User [bold]{name}[/bold] ({role}; regions: {regions}). Token, shown only now:")
    print(token)


@users_app.command("list")
def users_list_command() -> None:
    """List users with their role and regions (never tokens)."""
    import sqlalchemy as sa
    from rich.table import Table

    from doudi.settings import Settings
    from serving.db import make_engine, session_factory, upgrade
    from serving.orm import User

    engine = make_engine(Settings().resolved_database_url())
    upgrade(engine)
    table = Table(title="Users")
    for name in ("name", "role", "regions", "active", "created"):
        table.add_column(name)
    with session_factory(engine)() as session:
        for user in session.scalars(sa.select(User).order_by(User.name)):
            table.add_row(user.name, user.role, ", ".join(user.region_codes) or "all", str(user.active),
                          user.created_at.strftime("%Y-%m-%d %H:%M"))
    engine.dispose()
    console.print(table)


@users_app.command("revoke")
def users_revoke_command(
    name: Annotated[str, typer.Argument(help="User whose token stops working.")],
) -> None:
    """Deactivate a user's token."""
    from doudi.settings import Settings
    from serving.auth import revoke_user
    from serving.db import make_engine, session_factory, transaction, upgrade

    engine = make_engine(Settings().resolved_database_url())
    upgrade(engine)
    with transaction(session_factory(engine)) as session:
        found = revoke_user(session, name)
    engine.dispose()
    if not found:
        err_console.print(f"[red]no user named {name!r}[/red]", markup=False)
        raise typer.Exit(1)
    console.print(f"Token of {name} revoked.")


@db_app.command("upgrade")
def db_upgrade_command(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or migrate the service database to the latest schema."""
    from doudi.settings import Settings
    from serving.db import current_revision, make_engine, upgrade

    settings = Settings()
    engine = make_engine(settings.resolved_database_url())
    before = current_revision(engine)
    after = upgrade(engine, revision)
    engine.dispose()
    url = settings.resolved_database_url().split("@")[-1]
    console.print(f"Database {url}: revision {before or '(empty)'} -> {after}")


# ---------------------------------------------------------------------------------------------------------
# WORLD engineer: `doudi generate`, `doudi labels` (doudi/world.py, doudi/labels.py)

GENERATE_HELP = (
    "Simulate a synthetic multi-department world month by month and write one file per contract table.\n\n"
    "Five counties in two provinces; illness, jobs, migration, disasters, savings and assistance with "
    "lags and reporting delays. Deterministic per seed. With --messy a few rows are broken the way real "
    "extracts break (duplicates, late and missing months, bad ID numbers, negative amounts, unknown "
    "codes, dangling persons) and _faults.json lists them. The members table holds synthetic resident ID "
    "numbers: loading the world needs DOUDI_ID_HMAC_KEY."
)
LABELS_HELP = (
    "Compute the cohort at T and its labels: does a household fall into hardship within the horizon?\n\n"
    "Cohort: not below the monitoring line and not on dibao/特困 at T, judged from records known before "
    "T. Label 1: within the horizon the trailing 12-month per-capita net income (income minus "
    "out-of-pocket medical spending) falls below the monitoring line, or the household newly enters "
    "dibao/特困, or receives temporary assistance (ground truth, by event date). See doudi/labels.py."
)


@app.command("generate", help=GENERATE_HELP)
def generate_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the tables to.")],
    households: Annotated[int, typer.Option("--households", min=1, help="Number of households.")] = 20000,
    months: Annotated[int, typer.Option("--months", min=1, help="Number of simulated months.")] = 36,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same world).")] = 7,
    messy: Annotated[bool, typer.Option("--messy", help="Inject faults and write _faults.json.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    start_month: Annotated[str, typer.Option("--start-month", help="First month, YYYY-MM.")] = "2023-01",
) -> None:
    """Generate a synthetic world (see GENERATE_HELP)."""
    import re
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table
    from rich.text import Text

    from doudi.io import write_world
    from doudi.labels import hardship_events
    from doudi.world import COUNTIES, faults_manifest_text, generate_world, inject_faults

    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter(f"{fmt!r}: use parquet or csv", param_hint="--format")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", start_month):
        raise typer.BadParameter(f"{start_month!r} is not a month (YYYY-MM)", param_hint="--start-month")
    clock = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("simulating months", total=months)
        world = generate_world(households, months, seed, start_month=start_month,
                               on_month=lambda done: bar.update(task, completed=done))
        simulated = time.perf_counter() - clock
        bar.update(task, description="counting events")
        events = hardship_events(world)
        written = world
        faults = None
        if messy:
            bar.update(task, description="injecting faults")
            written, faults = inject_faults(world, seed=seed)
        bar.update(task, description=f"writing {fmt}")
        try:
            write_world(written, out, fmt=fmt)
            manifest = out / "_faults.json"
            if faults is not None:
                manifest.write_text(faults_manifest_text(faults, seed=seed), encoding="utf-8")
            else:
                manifest.unlink(missing_ok=True)  # a stale manifest would describe another world
        except OSError as error:
            err_console.print(Text.assemble((f"cannot write {out}: ", "red"), str(error)))
            raise typer.Exit(1) from None
    total = time.perf_counter() - clock
    title = f"World {out} ({households:,} households x {months} months from {start_month}, seed {seed})"
    rows = Table(title=title, title_justify="left")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for name, frame in written.items():
        rows.add_row(name, f"{len(frame):,}")
    console.print(rows)
    names = {info.code: info.name for info in COUNTIES}
    members = world["members"]["household_id"].value_counts()
    county_of = world["households"].set_index("household_id")["village_code"].str.slice(0, 6)
    people = members.groupby(county_of.reindex(members.index).to_numpy()).sum()
    table = Table(title="Relapse-like events per county over the whole period (households)",
                  title_justify="left")
    for name in ("county", "households", "members", "fell below the line", "entered dibao/特困",
                 "temporary assistance"):
        table.add_column(name, justify="left" if name == "county" else "right")
    for code, row in events.iterrows():
        table.add_row(f"{code} {names.get(str(code), '')}", f"{row['households']:,}",
                      f"{int(people.get(code, 0)):,}", f"{row['fell_below_line']:,}",
                      f"{row['entered_dibao_or_tekun']:,}", f"{row['temporary_assistance']:,}")
    console.print(table)
    if faults is not None:
        counts = faults.groupby(["table", "fault"]).size()
        listed = ", ".join(f"{fault} {n}" for (_, fault), n in counts.items())
        console.print(f"Injected {len(faults):,} faults ({listed}); manifest {out / '_faults.json'}")
    console.print(f"Simulated in {simulated:.1f} s, written in {total - simulated:.1f} s. "
                  "Loading needs DOUDI_ID_HMAC_KEY (members hold synthetic resident ID numbers).")


@app.command("labels", help=LABELS_HELP)
def labels_command(
    directory: WorldDir,
    as_of: AsOf,
    horizon_months: Annotated[int, typer.Option("--horizon-months", min=1, help="Label horizon H.")] = 6,
    out: Annotated[Path | None, typer.Option("--out", help="Parquet file for the labels.")] = None,
) -> None:
    """Compute the cohort and labels at T (see LABELS_HELP)."""
    from rich.table import Table
    from rich.text import Text

    from doudi.labels import build_labels

    timestamp = _as_of(as_of)
    world = _load(directory)
    try:
        labels = build_labels(world, timestamp, horizon_months=horizon_months)
    except ValueError as error:
        err_console.print(Text.assemble((f"cannot label at {timestamp.date()}: ", "red"), str(error)))
        raise typer.Exit(1) from None
    homes = world["households"].set_index("household_id")
    county = homes["village_code"].str.slice(0, 6).reindex(labels.index).to_numpy()
    positives = int(labels["label"].sum())
    rate = labels["label"].mean() if len(labels) else float("nan")
    console.print(f"As of {timestamp.date()}, horizon {horizon_months} months: cohort {len(labels):,} of "
                  f"{len(homes):,} households, {positives:,} positives, base rate {rate:.2%}")
    by_county = labels.groupby(county)["label"].agg(["size", "sum", "mean"])
    table = Table(title="Per county", title_justify="left")
    for name in ("county", "cohort", "positives", "base rate"):
        table.add_column(name, justify="left" if name == "county" else "right")
    for code, row in by_county.iterrows():
        table.add_row(str(code), f"{int(row['size']):,}", f"{int(row['sum']):,}", f"{row['mean']:.2%}")
    console.print(table)
    reasons = Table(title="Reason (first condition to fire)", title_justify="left")
    reasons.add_column("reason")
    reasons.add_column("households", justify="right")
    for reason, n in labels["reason"].value_counts().items():
        reasons.add_row(str(reason), f"{n:,}")
    console.print(reasons)
    if out is not None:
        frame = labels.reset_index()
        frame.insert(1, "as_of", timestamp.to_datetime64())
        frame["as_of"] = frame["as_of"].astype("datetime64[ns]")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(out, index=False)
        except OSError as error:
            err_console.print(Text.assemble((f"cannot write {out}: ", "red"), str(error)))
            raise typer.Exit(1) from None
        console.print(f"Labels written to {out}")


# --- pages and casework (PAGES engineer): feedback export, page passwords --------------------------------
feedback_app = typer.Typer(
    help="Case outcomes flowing back to modelers (verified alerts with their features).", no_args_is_help=True
)
app.add_typer(feedback_app, name="feedback")
FeedbackOut = Annotated[Path, typer.Option("--out", help="Parquet file to write (created or replaced).")]
FeedbackRegion = Annotated[str | None, typer.Option(
    "--region", help="Only alerts in this region code prefix (2-12 digits); default: all regions.")]
FeedbackSince = Annotated[str | None, typer.Option(
    "--since", help="Only alerts of scoring runs as of this date or later (YYYY-MM-DD).")]


@feedback_app.command("export")
def feedback_export_command(
    out: FeedbackOut, region: FeedbackRegion = None, since: FeedbackSince = None
) -> None:
    """Write verified case outcomes (confirmed hardship, not in hardship, false alarm, ...) with each alert's
    model version and the features it was scored on, for the next retraining and for monitoring.

    label: 1 = hardship confirmed at the home visit, 0 = not in hardship or closed as a false alarm,
    empty = no usable outcome (could not reach, moved).
    """
    import re

    from doudi.settings import Settings
    from serving.auth import Scope
    from serving.db import make_engine, session_factory, upgrade
    from serving.worklists import feedback_frame

    if region is not None and not re.fullmatch(r"\d{2,12}", region):
        raise typer.BadParameter(
            f"{region!r} is not a region code prefix (2-12 digits)", param_hint="--region"
        )
    when = _as_of(since).date() if since is not None else None
    engine = make_engine(Settings().resolved_database_url())
    try:
        upgrade(engine)
        with session_factory(engine)() as session:
            frame = feedback_frame(session, Scope(None if region is None else (region,)), since=when)
    finally:
        engine.dispose()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out, index=False)
    except OSError as error:
        err_console.print(f"[red]cannot write {out}: {error}[/red]", markup=False)
        raise typer.Exit(1) from None
    from rich.table import Table

    table = Table(title=f"Feedback: {len(frame):,} alerts with an outcome", title_justify="left")
    for name in ("outcome", "alerts", "label"):
        table.add_column(name, justify="left" if name == "outcome" else "right")
    outcome = frame["verification_outcome"].fillna("(closed: " + frame["close_reason"].fillna("?") + ")")
    for value, group in frame.groupby(outcome.to_numpy(), sort=True):
        labels = group["label"].dropna().unique()
        table.add_row(str(value), f"{len(group):,}", ",".join(str(int(v)) for v in labels) or "-")
    console.print(table)
    versions = ", ".join(sorted(frame["model_version"].dropna().unique())) or "-"
    console.print(f"Model versions: {versions}. Written to {out}")


@users_app.command("password")
def users_password_command(
    name: Annotated[str, typer.Argument(help="User who signs in to the pages.")],
) -> None:
    """Set a user's password for the social workers' pages (asked twice, never echoed; 10+ characters)."""
    from doudi.settings import Settings
    from serving.db import make_engine, session_factory, transaction, upgrade
    from serving.errors import DoudiError
    from serving.websession import set_password

    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(Settings().resolved_database_url())
    try:
        upgrade(engine)
        with transaction(session_factory(engine)) as session:
            set_password(session, name, password)
    except DoudiError as error:
        err_console.print(f"[red]{error.message}[/red]", markup=False)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(f"Password of {name} set: sign in at /login.")


# --- monitoring (MONITORING engineer): doudi monitor drift | performance | fairness | reports ---------------
monitor_app = typer.Typer(
    help="Monitoring of the risk model: data and score drift, matured performance of past runs, fairness by "
         "group. Reports are saved under <DOUDI_DATA_DIR>/monitoring and listed at "
         "GET /v1/monitoring/reports.",
    no_args_is_help=True,
)
app.add_typer(monitor_app, name="monitor")
MonitorConfig = Annotated[Path | None, typer.Option(
    "--config", help="Monitoring config YAML (default: the packaged monitoring/monitoring.yaml).")]
FailOnFlag = Annotated[bool, typer.Option(
    "--fail-on-flag", help="Exit with code 3 when the report is flagged (for scheduled jobs).")]
MONITOR_DRIFT_HELP = (
    "Compare a scoring run (or a features file or world) with the training snapshot of the champion: "
    "per-feature drift (Evidently, method and threshold from the config), share of drifted features, score "
    "distribution shift, missing values and the data-contract check.\n\n"
    "SPEC is champion, challenger or model:VERSION (the model's training snapshot), run:ID (a stored "
    "scoring run; its features are rebuilt from --world), a .parquet features file, or a world folder (with "
    "--as-of). "
    "Saves drift.html and drift.json, records a report row, and flags the run when drift passes the "
    "configured level."
)


def _monitor_config(path: Path | None):
    """The monitoring config, or a clear message and exit code 1."""
    import yaml
    from pydantic import ValidationError

    from monitoring.config import load_config

    try:
        return load_config(path)
    except (ValidationError, OSError, yaml.YAMLError) as error:
        err_console.print(f"[red]{path or 'monitoring config'}: not a valid monitoring config.[/red]")
        err_console.print(str(error), markup=False)
        raise typer.Exit(1) from None


def _monitor_flags(flags: list[str], *, fail_on_flag: bool, what: str, warnings: list[str] | None = None
                   ) -> None:
    from rich.markup import escape

    for warning in warnings or []:
        console.print(f"  [yellow]warning[/yellow]: {escape(warning)}")
    if not flags:
        console.print(f"[green]{what}: not flagged[/green]")
        return
    console.print(f"[bold red]{what}: FLAGGED[/bold red]")
    for flag in flags:
        console.print(f"  • {escape(flag)}")
    if fail_on_flag:
        raise typer.Exit(3)


def _monitor_progress():
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                    console=err_console, transient=True)


@monitor_app.command("drift", help=MONITOR_DRIFT_HELP)
def monitor_drift_command(
    current: Annotated[str, typer.Option("--current", help="What to check: run:ID, a .parquet file, a world "
                                                           "folder (with --as-of), or a model.")],
    reference: Annotated[str, typer.Option(
        "--reference", help="What to compare with (default: the champion's training snapshot)."
    )] = "champion",
    world: Annotated[Path | None, typer.Option("--world", help="World folder to rebuild a run's features "
                                                               "from.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="As-of date for a world folder, "
                                                              "YYYY-MM-DD.")] = None,
    config: MonitorConfig = None,
    fail_on_flag: FailOnFlag = False,
) -> None:
    """Drift of a scoring run against the training snapshot (see MONITOR_DRIFT_HELP)."""
    from rich.markup import escape
    from rich.table import Table

    from doudi.io import ContractError
    from doudi.settings import Settings
    from monitoring.jobs import run_drift
    from monitoring.sources import SourceError

    cfg = _monitor_config(config)
    when = _as_of(as_of) if as_of else None
    try:
        with _monitor_progress() as progress:
            progress.add_task(f"drift: {reference} vs {current} (Evidently)", total=None)
            result, saved = run_drift(reference, current, settings=Settings(), config=cfg, world_dir=world,
                                      as_of=when)
    except SourceError as error:
        err_console.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(1) from None
    except ContractError as error:
        err_console.print(f"[red]{world}: the data does not follow the contract.[/red]")
        err_console.print(str(error), markup=False)
        raise typer.Exit(1) from None
    summary = result.summary()
    head = Table(title=f"Drift: {escape(result.current.label)} vs {escape(result.reference.label)}",
                 title_justify="left", show_header=False)
    head.add_column("")
    head.add_column("", justify="right")
    head.add_row("households (reference / current)", f"{result.rows[0]:,} / {result.rows[1]:,}")
    head.add_row("drifted features (calendar ones not counted)",
                 f"{result.n_drifted} of {len(result.counted)} ({result.drifted_share:.0%})")
    if result.score is not None:
        s = result.score
        head.add_row(f"score drift ({s['method']}, threshold {s['threshold']})",
                     f"{s['value']:.3f} ({'drifted' if s['drifted'] else 'stable'})")
        head.add_row("mean risk (reference -> current)",
                     f"{s['reference_mean']:.3f} -> {s['current_mean']:.3f}")
    contract = summary["contract"]
    if contract is not None:
        head.add_row("data contract (errors / warnings)",
                     f"{contract['errors']:,} / {contract['warnings']:,}")
    console.print(head)
    drifted = result.features[result.features["drifted"]].sort_values("score", ascending=False)
    if len(drifted):
        table = Table(title="Drifted features", title_justify="left")
        for name in ("feature", "group", "method", "score", "threshold", "missing ref -> cur", "note"):
            left = name in ("feature", "group", "method", "note")
            table.add_column(name, justify="left" if left else "right")
        for name, row in drifted.head(20).iterrows():
            note = "; ".join(n for n in (row["note"], "strong" if row["strong"] else "",
                                         "calendar" if row["calendar"] else "") if n)
            table.add_row(name, row["group"], row["method"], f"{row['score']:.3f}", f"{row['threshold']:g}",
                          f"{row['missing_reference']:.0%} -> {row['missing_current']:.0%}", note)
        console.print(table)
    console.print(f"Report {saved.report_id}: {saved.html} and {saved.json}")
    _monitor_flags(result.flags, fail_on_flag=fail_on_flag, what="drift", warnings=result.warnings)


@monitor_app.command("performance")
def monitor_performance_command(
    directory: Annotated[Path, typer.Argument(help="The newer world folder: records that arrived since the "
                                                   "runs.")],
    run: Annotated[list[int] | None, typer.Option("--run", help="Only this scoring run (repeat for "
                                                                "several).")] = None,
    feedback: Annotated[Path | None, typer.Option(
        "--feedback", help="Verified case outcomes (doudi feedback export), added to the database's."
    )] = None,
    config: MonitorConfig = None,
    fail_on_flag: FailOnFlag = False,
) -> None:
    """Matured performance of past scoring runs whose label window has passed.

    Labels come from the newer world (doudi.labels) and from verified case outcomes; per run:
    precision@k, recall@k, PR-AUC, calibration (reliability table), the alerts' confirmed-hardship rate.
    Stores one report per run, prints the trend, flags drops beyond the configured margins.
    """
    import pandas as pd
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from doudi.settings import Settings
    from models.evaluate import k_label
    from monitoring.jobs import run_performance

    cfg = _monitor_config(config)
    extra = None
    if feedback is not None:
        try:
            extra = pd.read_parquet(feedback)
        except (OSError, ValueError) as error:
            err_console.print(f"[red]cannot read {feedback}: {escape(str(error))}[/red]")
            raise typer.Exit(1) from None
    world = _load(directory)
    with _monitor_progress() as progress:
        task = progress.add_task("matured performance", total=None)
        try:
            saved, pending, history = run_performance(
                world, settings=Settings(), config=cfg, run_ids=run or None, feedback=extra,
                progress=lambda step: progress.update(task, description=f"matured performance: {step}"))
        except ValueError as error:
            err_console.print(f"[red]{escape(str(error))}[/red]")
            raise typer.Exit(1) from None
    fraction = 0.05 if 0.05 in cfg.performance.k_values else cfg.performance.k_values[0]
    k = k_label(fraction)
    columns = {f"precision_at_{k}": f"P@{fraction:.0%}", f"precision_at_{k}_change": "Δ",
               f"recall_at_{k}": f"R@{fraction:.0%}", "pr_auc": "PR-AUC", "ece": "ECE",
               "alert_label_rate": "hit", "alert_confirmed_rate": "conf."}
    if len(history):
        caption = (f"Δ: P@{fraction:.0%} change since the previous run; hit: share of alerts that fell into "
                   "hardship; conf.: share of verified alerts confirmed in hardship at home")
        table = Table(title="Matured performance by scoring run", title_justify="left", box=box.SIMPLE_HEAD,
                      show_edge=False, collapse_padding=True, caption=caption, caption_justify="left")
        for name in ("run", "as of", "ver.", *columns.values(), "flag"):
            left = name in ("as of", "ver.", "flag")
            table.add_column(name, justify="left" if left else "right", no_wrap=True)
        for run_id, row in history.iterrows():
            cells = []
            for name in columns:
                value = row.get(name)
                signed = "+" if name.endswith("_change") else ""
                cells.append("" if value is None or pd.isna(value) else f"{value:{signed}.3f}")
            table.add_row(str(run_id), f"{row['as_of']:%Y-%m-%d}", f"v{row['model_version']}", *cells,
                          "[red]flagged[/red]" if row["flagged"] else "")
        console.print(table)
    if len(pending):
        waiting = ", ".join(f"{r.run_id} (needs data through {r.needs_data_through})"
                            for r in pending.itertuples())
        console.print(f"Not matured yet (data through {pending['data_through'].iloc[0]}): {waiting}")
    if not saved:
        console.print("No scoring run has matured yet." if not len(history) else "No newly matured run.")
        return
    flags = [f"run {result.run_id}: {flag}" for result, _ in saved for flag in result.flags]
    for result, where in saved:
        console.print(f"Run {result.run_id}: report {where.report_id} in {where.directory}")
    _monitor_flags(flags, fail_on_flag=fail_on_flag, what="matured performance")


SHORT_ATTRIBUTES = {
    "county_code": "county", "urban_rural": "urban/rural", "ethnic_minority": "minority",
    "disabled_member": "disabled", "female_head": "female head", "elderly_head": "elderly head",
}


@monitor_app.command("fairness")
def monitor_fairness_command(
    directory: Annotated[Path, typer.Argument(help="World folder (newer than the run for precision, FNR and "
                                                   "FPR).")],
    run: Annotated[int | None, typer.Option("--run", help="Scoring run to audit (default: the latest batch "
                                                          "run).")] = None,
    config: MonitorConfig = None,
    fail_on_flag: FailOnFlag = False,
) -> None:
    """Fairness of a scoring run by group: county, urban/rural, ethnic-minority household, household with a
    disabled member, female-headed, elderly-headed.

    Per group: size, alert rate, precision, false-negative and false-positive rates with Wilson intervals, and
    the FNR ratio to the reference group; outside the configured band it is flagged (small groups show their
    size and interval only).
    """
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from doudi.settings import Settings
    from monitoring.fairness import audit_records, describe_ratio
    from monitoring.jobs import run_fairness
    from monitoring.sources import SourceError

    cfg = _monitor_config(config)
    world = _load(directory)
    try:
        with _monitor_progress() as progress:
            progress.add_task("fairness audit", total=None)
            table, summary, saved = run_fairness(world, run, settings=Settings(), config=cfg)
    except (SourceError, ValueError) as error:
        err_console.print(f"[red]{escape(str(error))}[/red]")
        raise typer.Exit(1) from None
    low, high = cfg.fairness.band
    title = f"Fairness of run {summary['run_id']} ({summary['as_of']})"
    caption = (f"alert: share alerted by the run or under an open case; prec.: of those, in hardship; "
               f"FNR: in hardship but not "
               f"alerted, with its {cfg.fairness.confidence:.0%} interval; ratio: FNR / the reference "
               f"group's, flagged outside [{low}, {high}]; small n: under {cfg.fairness.min_support} "
               "households")
    out = Table(title=title, title_justify="left", caption=caption, caption_justify="left",
                box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True)
    for name in ("attribute", "group", "size", "alert", "prec.", "FNR [CI]", "ratio", "FPR", "flag"):
        left = name in ("attribute", "group", "flag")
        out.add_column(name, justify="left" if left else "right", no_wrap=True)

    def percent(row, rate: str, *, interval: bool = False) -> str:
        value = row[rate]
        if value is None:
            return "—"
        if not interval:
            return f"{value:.0%}"
        return f"{value:.0%} [{row[rate + '_low'] * 100:.0f}–{row[rate + '_high'] * 100:.0f}]"

    for row in audit_records(table):
        ratio = describe_ratio(row, "fnr").replace("reference", "ref.").replace("n too small", "small n")
        out.add_row(SHORT_ATTRIBUTES.get(row["attribute"], row["attribute"]), escape(str(row["group"])),
                    f"{row['size']:,}", percent(row, "alert_rate"), percent(row, "precision"),
                    percent(row, "fnr", interval=True), ratio, percent(row, "fpr"),
                    "[red]FLAG[/red]" if row["flagged"] else "")
    console.print(out)
    console.print("Full table with every interval: " + escape(str(saved.html)))
    if not summary["labelled"]:
        console.print("The run's label window has not passed yet: only sizes and alert rates are known.")
    console.print(f"Report {saved.report_id}: {saved.json}")
    flags = [f"{item}" for item in summary["flagged_groups"]]
    _monitor_flags(flags, fail_on_flag=fail_on_flag, what="fairness")


@monitor_app.command("reports")
def monitor_reports_command(
    kind: Annotated[str | None, typer.Option("--kind", help="drift, performance or fairness.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 20,
) -> None:
    """List the stored monitoring reports, newest first."""
    from rich.markup import escape
    from rich.table import Table

    from doudi.settings import Settings
    from serving.db import make_engine, session_factory, upgrade
    from serving.monitoring_routes import list_reports

    engine = make_engine(Settings().resolved_database_url())
    upgrade(engine)
    with session_factory(engine)() as session:
        total, rows = list_reports(session, kind=kind, limit=limit)
    engine.dispose()
    table = Table(title=f"Monitoring reports ({len(rows)} of {total})", title_justify="left")
    for name in ("id", "kind", "created", "run", "as of", "model", "flagged", "file"):
        table.add_column(name)
    for row in rows:
        table.add_row(str(row.id), row.kind, f"{row.created_at:%Y-%m-%d %H:%M}", str(row.run_id or ""),
                      str(row.as_of or ""), f"{row.model_name or ''} v{row.model_version or ''}",
                      "[red]yes[/red]" if row.flagged else "no", escape(row.html_path or ""))
    console.print(table)
