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
