"""Reading and writing a world: one file per contract table, Parquet or CSV, typed by the contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from doudi.contract import TABLES, Column, Table

World = dict[str, pd.DataFrame]
"""A world: contract table name -> DataFrame in the contract's column names and types."""

SUFFIXES = (".parquet", ".csv")


@dataclass(frozen=True)
class Violation:
    """One broken rule of the contract, located by file, row (1 = first data row) and column."""

    table: str
    row: int | None
    column: str | None
    reason: str
    file: str = ""

    def __str__(self) -> str:
        where = self.file or self.table
        row = f" row {self.row}" if self.row is not None else ""
        col = f" column {self.column}" if self.column else ""
        return f"{where}{row}{col}: {self.reason}"


class ContractError(ValueError):
    """Raised when a world does not follow the data contract; carries every violation found."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        head = "\n".join(f"  {v}" for v in violations[:20])
        more = f"\n  … and {len(violations) - 20} more" if len(violations) > 20 else ""
        super().__init__(f"{len(violations)} data contract violation(s):\n{head}{more}")


def table_file(directory: Path, name: str) -> Path | None:
    """The file holding table ``name`` in ``directory`` (Parquet preferred), or None."""
    for suffix in SUFFIXES:
        path = Path(directory) / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def read_raw(directory: Path) -> dict[str, tuple[Path, pd.DataFrame]]:
    """Read every contract table present in ``directory`` without coercing types.

    CSV cells are read as text (empty cells as missing) so that validation can name each bad cell.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a folder")
    raw: dict[str, tuple[Path, pd.DataFrame]] = {}
    for name in TABLES:
        path = table_file(directory, name)
        if path is None:
            continue
        if path.suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
        else:
            frame = pd.read_parquet(path)
        raw[name] = (path, frame.reset_index(drop=True))
    return raw


def coerce_column(column: Column, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Convert raw values to the contract type.

    Returns:
        The typed series, and a boolean mask of cells that were present but could not be converted.
    """
    present = values.notna()
    if column.dtype in ("str", "month"):
        typed = values.astype("string").str.strip()
        typed = typed.mask(typed == "")
        bad = pd.Series(False, index=values.index)
    elif column.dtype == "date":
        typed = pd.to_datetime(values, errors="coerce", format="mixed" if values.dtype == object else None)
        if getattr(typed.dt, "tz", None) is not None:
            typed = typed.dt.tz_localize(None)
        typed = typed.astype("datetime64[ns]")
        bad = present & typed.isna()
    elif column.dtype == "bool":
        if pd.api.types.is_bool_dtype(values):
            typed = values.astype("boolean")
        else:
            text = values.astype("string").str.strip().str.lower()
            mapping = {"true": True, "1": True, "yes": True, "t": True, "1.0": True,
                       "false": False, "0": False, "no": False, "f": False, "0.0": False}
            typed = text.map(mapping).astype("boolean")
        bad = present & typed.isna()
    elif column.dtype == "int":
        number = pd.to_numeric(values, errors="coerce")
        bad = present & (number.isna() | (number.notna() & (number % 1 != 0)))
        typed = number.where(~bad).round().astype("Int64")
    else:
        typed = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = present & typed.isna()
    return typed, bad


def finalize_dtypes(table: Table, frame: pd.DataFrame) -> pd.DataFrame:
    """Use plain numpy dtypes where a column cannot be missing (faster downstream)."""
    out = frame.copy()
    for column in table.columns:
        if column.name not in out or column.nullable:
            continue
        series = out[column.name]
        if series.isna().any():
            continue
        if column.dtype == "bool":
            out[column.name] = series.astype(bool)
        elif column.dtype == "int":
            out[column.name] = series.astype(np.int64)
    return out


def typed_table(table: Table, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Coerce a raw frame to the contract types; return it and the (row position, column) cells that failed."""
    typed = pd.DataFrame(index=frame.index)
    failures: list[tuple[int, str]] = []
    for column in table.columns:
        if column.name not in frame:
            continue
        typed[column.name], bad = coerce_column(column, frame[column.name])
        failures.extend((int(pos), column.name) for pos in np.flatnonzero(bad.to_numpy()))
    return finalize_dtypes(table, typed), failures


def write_world(world: World, directory: Path, *, fmt: str = "parquet") -> None:
    """Write each table of ``world`` to ``directory/<table>.<fmt>``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in world.items():
        if name not in TABLES:
            raise KeyError(f"{name} is not a contract table")
        for suffix in SUFFIXES:
            (directory / f"{name}{suffix}").unlink(missing_ok=True)
        path = directory / f"{name}.{fmt}"
        if fmt == "parquet":
            frame.to_parquet(path, index=False)
        elif fmt == "csv":
            out = frame.copy()
            for col in out.columns:
                if pd.api.types.is_datetime64_any_dtype(out[col]):
                    out[col] = out[col].dt.strftime("%Y-%m-%d")
            out.to_csv(path, index=False, encoding="utf-8")
        else:
            raise ValueError(f"unknown format {fmt!r}: use parquet or csv")
