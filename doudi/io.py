"""Reading and writing a world: one file per contract table, Parquet or CSV, typed by the contract."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from doudi.contract import TABLES, Column, Table

World = dict[str, pd.DataFrame]
"""A world: contract table name -> DataFrame in the contract's column names and types."""

SUFFIXES = (".parquet", ".csv")

# Dates outside these years are typing mistakes (and 9999-12-31 "open end" markers do not fit datetime64[ns]).
FIRST_DATE = pd.Timestamp("1900-01-01")
LAST_DATE = pd.Timestamp("2100-12-31 23:59:59")
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"
_BOOLEANS = {"true": True, "1": True, "yes": True, "t": True, "y": True, "1.0": True,
             "false": False, "0": False, "no": False, "f": False, "n": False, "0.0": False}


@dataclass(frozen=True)
class Violation:
    """One broken rule of the contract, located by file, row (1 = first data row) and column.

    Attributes:
        rule: short name of the broken rule (``type``, ``null``, ``foreign_key``, …), for grouping.
        severity: ``error`` (the world cannot be loaded) or ``warning`` (reported, the world loads).
    """

    table: str
    row: int | None
    column: str | None
    reason: str
    file: str = ""
    rule: str = ""
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = self.file or self.table
        row = f" row {self.row}" if self.row is not None else ""
        col = f" column {self.column}" if self.column else ""
        level = " (warning)" if self.severity == "warning" else ""
        return f"{where}{row}{col}: {self.reason}{level}"


class ContractError(ValueError):
    """Raised when a world does not follow the data contract; carries every violation found."""

    def __init__(self, violations: list[Violation]):
        self.violations = violations
        head = "\n".join(f"  {v}" for v in violations[:20])
        more = f"\n  … and {len(violations) - 20} more" if len(violations) > 20 else ""
        super().__init__(f"{len(violations)} data contract violation(s):\n{head}{more}")


class UnreadableData(ContractError):
    """Raised when a table file cannot be read at all (bad encoding, broken CSV, not Parquet)."""


def table_file(directory: Path, name: str) -> Path | None:
    """The file holding table ``name`` in ``directory`` (Parquet preferred), or None."""
    for suffix in SUFFIXES:
        path = Path(directory) / f"{name}{suffix}"
        if path.exists():
            return path
    return None


def read_raw(
    directory: Path, *, on_table: Callable[[str], None] | None = None
) -> dict[str, tuple[Path, pd.DataFrame]]:
    """Read every contract table present in ``directory`` without coercing types.

    CSV cells are read as text (empty cells as missing, a UTF-8 byte-order mark is allowed) so that
    validation can name each bad cell.

    Args:
        directory: folder with ``<table>.csv`` or ``<table>.parquet`` files.
        on_table: called with each table name after it is read (for progress bars).

    Raises:
        FileNotFoundError: ``directory`` is not a folder.
        UnreadableData: a file cannot be read at all; names every such file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a folder")
    raw: dict[str, tuple[Path, pd.DataFrame]] = {}
    unreadable: list[Violation] = []
    for name in TABLES:
        path = table_file(directory, name)
        if path is None:
            continue
        try:
            frame = _read_file(path)
        except ValueError as error:
            unreadable.append(Violation(name, None, None, str(error), file=path.name, rule="unreadable"))
        else:
            raw[name] = (path, frame.reset_index(drop=True))
        if on_table is not None:
            on_table(name)
    if unreadable:
        raise UnreadableData(unreadable)
    return raw


def _read_file(path: Path) -> pd.DataFrame:
    """Read one table file; any failure becomes a ValueError saying what is wrong with the file."""
    try:
        if path.suffix == ".csv":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                # index_col=False: rows longer than the header must not silently become an index.
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                                    encoding="utf-8-sig", index_col=False)
            if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
                raise ValueError(f"not a well-formed CSV file: {_first_long_line(path)}")
            return frame
        return pd.read_parquet(path)
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text (bad byte at offset {error.start}); save the file as UTF-8 "
                         "(exports in GBK/GB18030 must be converted)") from None
    except pd.errors.EmptyDataError:
        raise ValueError("the file is empty (not even a header row)") from None
    except pd.errors.ParserError as error:
        detail = str(error).strip().removeprefix("Error tokenizing data. C error: ")
        raise ValueError(f"not a well-formed CSV file: {detail}") from None
    except (pa.ArrowException, OSError) as error:
        kind = "Parquet" if path.suffix == ".parquet" else "CSV"
        raise ValueError(f"cannot read the {kind} file: {error}") from None


def _first_long_line(path: Path) -> str:
    """Where a CSV row has more cells than its header (only called once the file is known to be broken)."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        width = len(next(reader, []))
        for cells in reader:
            if len(cells) > width:
                return f"line {reader.line_num} has {len(cells)} cells, the header {width}"
    return "a row has more cells than the header"


def coerce_column(column: Column, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Convert raw values to the contract type.

    Text is stripped; an empty or blank cell is missing. Dates are ISO 8601 (``YYYY-MM-DD``, a time
    of day allowed) between 1900 and 2100; booleans are true/false, 1/0, yes/no, t/f, y/n.

    Returns:
        The typed series, and a boolean mask of cells that were present but could not be converted.
    """
    present = values.notna()
    if column.dtype in ("str", "month"):
        if column.dtype == "month" and pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.strftime("%Y-%m")
        typed = values.astype("string").str.strip()
        typed = typed.mask(typed == "")
        bad = pd.Series(False, index=values.index)
    elif column.dtype == "date":
        typed = _to_dates(values)
        bad = present & typed.isna()
    elif column.dtype == "bool":
        if pd.api.types.is_bool_dtype(values):
            typed = values.astype("boolean")
        elif pd.api.types.is_numeric_dtype(values):
            typed = _via_uniques(values, lambda u: u.eq(1).astype("boolean").where(u.isin([0, 1])))
        else:
            typed = _via_uniques(values, lambda u: u.astype("string").str.strip().str.lower()
                                 .map(_BOOLEANS).astype("boolean"))
        bad = present & typed.isna()
    elif column.dtype == "int":
        number = _to_numbers(values)
        bad = present & (number.isna() | (number % 1 != 0) | (number.abs() > 2**53))
        typed = number.where(~bad).round().astype("Int64")
    else:
        typed = _to_numbers(values)
        bad = present & typed.isna()
    return typed, bad


def _via_uniques(values: pd.Series, convert: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply ``convert`` to the distinct values only (dates, codes and flags repeat a lot)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    converted = pd.array(convert(pd.Series(uniques)))
    return pd.Series(converted.take(codes, allow_fill=True), index=values.index)


def _to_dates(values: pd.Series) -> pd.Series:
    """Dates as datetime64[ns]; NaT where missing, unparsable or outside 1900-2100."""
    if pd.api.types.is_datetime64_any_dtype(values):
        typed = values if getattr(values.dt, "tz", None) is None else values.dt.tz_localize(None)
    else:
        def convert(uniques: pd.Series) -> pd.Series:
            text = uniques.map(lambda value: isinstance(value, str))
            if text.all():
                return pd.to_datetime(uniques.str.strip(), errors="coerce", format="ISO8601")
            return pd.to_datetime(uniques.where(~text), errors="coerce").fillna(
                pd.to_datetime(uniques.where(text), errors="coerce", format="ISO8601"))

        typed = _via_uniques(values, convert)
    typed = typed.where((typed >= FIRST_DATE) & (typed <= LAST_DATE))
    return typed.astype("datetime64[ns]")


def _to_numbers(values: pd.Series) -> pd.Series:
    """Numbers as float64; NaN where missing or not a plain decimal number."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        if values.dtype == object and not values.map(lambda v: isinstance(v, str) or v is None).all():
            return pd.to_numeric(values, errors="coerce").astype("float64")
        try:
            # Arrow parses a million decimal strings in ~30 ms, pandas' to_numeric in ~1 s.
            text = pc.utf8_trim_whitespace(pa.array(values.astype("string").array))
            plain = pc.match_substring_regex(text, _NUMBER)
            parsed = pc.cast(pc.if_else(plain, text, pa.scalar(None, text.type)), pa.float64())
        except (pa.ArrowException, TypeError):
            return pd.to_numeric(values, errors="coerce").astype("float64")
        return pd.Series(parsed.to_numpy(zero_copy_only=False), index=values.index, dtype="float64")
    return pd.Series(values.to_numpy(dtype="float64", na_value=np.nan), index=values.index)


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


def coerce_table(table: Table, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Coerce the contract columns present in a raw frame to their types (other columns are left out).

    Returns:
        The typed frame (same index), and per column a boolean array of the cells that failed.
    """
    typed = pd.DataFrame(index=frame.index)
    failed: dict[str, np.ndarray] = {}
    for column in table.columns:
        if column.name not in frame:
            continue
        typed[column.name], bad = coerce_column(column, frame[column.name])
        failed[column.name] = bad.to_numpy(dtype=bool)
    return finalize_dtypes(table, typed), failed


def typed_table(table: Table, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Coerce a raw frame to the contract types; return it and the (row position, column) failed cells."""
    typed, failed = coerce_table(table, frame)
    failures = [(int(pos), name) for name, bad in failed.items() for pos in np.flatnonzero(bad)]
    return typed, failures


def empty_column(column: Column, length: int, index: pd.Index | None = None) -> pd.Series:
    """An all-missing column of the contract type (for optional columns a file does not have)."""
    typed, _ = coerce_column(column, pd.Series([None] * length, index=index, dtype=object))
    return typed


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
