"""Checking a world against the data contract, loading it, and ingesting bureau extracts.

Every check is derived from the declaration in ``doudi.contract`` (types, nullability, ranges, codes,
patterns, keys, foreign keys, cross-field rules); nothing is declared twice. The checks are vectorised
over whole columns, and each column is hashed once (key, code, format and reference checks are answered
per distinct value), so millions of income rows are checked well within a minute.

Violations name the file, the 1-based data row (row 1 is the first row under the CSV header) and the
column. For columns marked ``sensitive`` a message says what is wrong, never what the value was.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from doudi.contract import (
    COUNTY_CODE,
    ID_NUMBER,
    MONTH,
    REGION_CODE,
    TABLES,
    Balance,
    Column,
    ForeignKey,
    NotBefore,
    Table,
)
from doudi.io import (
    SUFFIXES,
    ContractError,
    Violation,
    World,
    coerce_table,
    empty_column,
    finalize_dtypes,
    read_raw,
    write_world,
)
from doudi.pseudonym import (
    PROBLEMS,
    hmac_key,
    id_birth_dates,
    id_number_problems,
    id_sexes,
    normalize_id_numbers,
    pseudonymize_ids,
)
from doudi.settings import Settings

RawWorld = dict[str, tuple[Path, pd.DataFrame]]
"""Table name -> (file it was read from, frame as read); see ``doudi.io.read_raw``."""

RULES: dict[str, str] = {
    "unreadable": "the file cannot be read (encoding, broken CSV, not Parquet)",
    "missing_table": "a required table has no file",
    "missing_column": "a required column is absent",
    "extra_column": "a column not in the contract (warning: left out of the loaded world)",
    "stray_file": "a file that is not a contract table, or a table given twice (warning)",
    "type": "a value cannot be read as the column's type",
    "null": "a value is missing where the column is not nullable",
    "range": "a number outside the column's range, or not finite",
    "allowed": "a code not among the column's allowed values",
    "pattern": "a value not in the column's format (region codes, months, identifiers)",
    "resident_id": "a resident ID number that is malformed, has no real birth date, a wrong check "
                   "character, or disagrees with the row's birth date or sex",
    "duplicate_key": "a primary key seen in an earlier row",
    "unique": "a value of a unique column seen in an earlier row",
    "foreign_key": "a reference to a row that does not exist in the referenced table",
    "household_mismatch": "a person's household differs from the household in members",
    "not_before": "a date earlier than the date it must follow (discharge before admission, end before "
                  "start)",
    "known_before_event": "recorded_at earlier than the event: a record known before it happened",
    "balance": "an amount that does not add up (out-of-pocket = total - insurance - assistance)",
    "pseudonym_key": "resident ID numbers present but no pseudonym key (DOUDI_ID_HMAC_KEY)",
}
"""Every rule a violation can name, with what it means (shown in the docs and by ``doudi validate``)."""

PATTERN_HINTS = {
    REGION_CODE: "a 12-digit region code",
    COUNTY_CODE: "a 6-digit county code",
    MONTH: "a month (YYYY-MM)",
    ID_NUMBER: "an 18-character resident ID number",
    r"^\S+$": "an identifier without blanks",
}
TYPE_HINTS = {
    "date": "a date (YYYY-MM-DD, years 1900-2100)",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
}
AREA_LEVELS = (2, 4, 6, 9, 12)
"""Lengths of the province, city, county, township and village prefixes of a 12-digit region code."""
INGEST_FILES = ("_rejects.csv", "_ingest.json")
"""Files ``ingest`` writes next to the tables."""


def check_world(
    raw: RawWorld, *, on_table: Callable[[str], None] | None = None
) -> list[Violation]:
    """Every violation of the data contract in a world as read by ``doudi.io.read_raw``.

    Checks missing tables and columns, unknown columns (warnings), types, nulls, ranges, codes,
    patterns, resident ID numbers, primary keys and unique columns, foreign keys, the household of
    each person, and the cross-field rules of each table.

    Args:
        raw: table name -> (path, raw frame). Rows are numbered 1 + the frame's index label, so a
            frame filtered from one ``read_raw`` keeps the row numbers of its file.
        on_table: called with each table name once its own checks are done (for progress bars).

    Returns:
        Violations sorted by table (contract order), row, column and rule.
    """
    violations, _ = _inspect(raw, on_table=on_table)
    return violations


def load_world(directory: Path, *, settings: Settings | None = None) -> World:
    """Read, validate and type a world; pseudonymize resident ID numbers.

    Args:
        directory: folder with one ``<table>.csv`` or ``<table>.parquet`` per contract table.
        settings: where the pseudonym key comes from (``Settings()`` when None).

    Returns:
        Every contract table (absent optional tables empty), every contract column in contract order
        and type; ``members.id_number`` is replaced by ``id_hash`` and ``id_last4``. Columns not in
        the contract are left out.

    Raises:
        FileNotFoundError: ``directory`` is not a folder.
        doudi.io.ContractError: with every error found (``UnreadableData`` when a file cannot be read,
            ``PseudonymKeyMissing`` when ID numbers are present and no key is set).
    """
    violations, typed = _inspect(read_raw(directory))
    errors = [v for v in violations if v.severity == "error"]
    if errors:
        raise ContractError(errors)
    return _complete_world(typed, settings=settings)


def stray_files(directory: Path) -> list[Violation]:
    """Warnings for table-like files ``read_raw`` ignores: unknown names, or a table given twice."""
    directory = Path(directory)
    found: list[Violation] = []
    for path in sorted(directory.iterdir()):
        if path.suffix not in SUFFIXES or path.name.startswith(("_", ".")):
            continue
        if path.stem not in TABLES:
            found.append(Violation(path.stem, None, None, "not a contract table: ignored", file=path.name,
                                   rule="stray_file", severity="warning"))
        elif path.suffix != SUFFIXES[0] and (directory / f"{path.stem}{SUFFIXES[0]}").exists():
            found.append(Violation(path.stem, None, None, f"{path.stem}{SUFFIXES[0]} is also present and is "
                                   "the one read: ignored", file=path.name, rule="stray_file",
                                   severity="warning"))
    return found


def format_number(value: float) -> str:
    """A bound as people write it: 5,000,000 rather than 5e+06."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,g}"


def violations_frame(violations: Iterable[Violation]) -> pd.DataFrame:
    """Violations as a frame (table, file, row, column, rule, severity, reason) for reports and JSON."""
    columns = ["table", "file", "row", "column", "rule", "severity", "reason"]
    frame = pd.DataFrame([{name: getattr(v, name) for name in columns} for v in violations], columns=columns)
    frame["row"] = frame["row"].astype("Int64")
    return frame


# ---------------------------------------------------------------------------------------------------
# Ingest


class IngestTargetError(ValueError):
    """The output folder of an ingest is unsafe to replace (not ours, or the source itself)."""


@dataclass(frozen=True)
class IngestReport:
    """What an ingest read, kept, rejected and wrote."""

    out: Path
    rows_read: dict[str, int]
    rows_written: dict[str, int]
    rejected: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)

    @property
    def rows_dropped(self) -> dict[str, int]:
        return {name: self.rows_read[name] - self.rows_written.get(name, 0) for name in self.rows_read}


def ingest(
    source: Path,
    out: Path,
    *,
    drop_invalid: bool = False,
    settings: Settings | None = None,
    on_step: Callable[[str], None] | None = None,
) -> IngestReport:
    """Validate a bureau extract, pseudonymize it and store it as Parquet in ``out``.

    ``out`` is replaced as a whole, and only once everything is written: the new world is written to
    a temporary folder beside it, then swapped in. A failed ingest leaves ``out`` as it was.

    Args:
        source: folder with the extract (CSV or Parquet, one file per table).
        out: folder for the ingested world; must be new, empty, or a previous ingest.
        drop_invalid: drop rows with errors, then rows referencing dropped rows (repeatedly), and write
            the reasons to ``out/_rejects.csv`` instead of refusing. Errors that are not about a row
            (a missing table or column) still refuse.
        settings: where the pseudonym key comes from.
        on_step: called with a short description of each step (for progress display).

    Returns:
        Row counts read and written per table, the rejected rows' violations and the warnings.

    Raises:
        FileNotFoundError: ``source`` is not a folder.
        IngestTargetError: ``out`` holds files an ingest did not write, or is ``source``.
        doudi.io.ContractError: the extract has errors (and ``drop_invalid`` is off, or they are not
            about rows), a file cannot be read, or ID numbers are present without a pseudonym key.
    """
    step = on_step or (lambda _: None)
    source, out = Path(source), Path(out)
    _check_target(source, out)
    step("reading")
    raw = read_raw(source)
    rows_read = {name: len(frame) for name, (_, frame) in raw.items()}
    step("validating")
    violations, typed = _inspect(raw)
    rejected: list[Violation] = []
    for _ in range(2 * len(TABLES)):
        errors = [v for v in violations if v.severity == "error"]
        if not errors:
            break
        whole = [v for v in errors if v.row is None]
        if not drop_invalid or whole:
            raise ContractError(whole if drop_invalid else errors)
        rejected.extend(errors)
        raw = _drop_rows(raw, errors)
        step("re-validating after dropping invalid rows")
        violations, typed = _inspect(raw)
    else:
        raise ContractError([v for v in violations if v.severity == "error"])
    warnings = [v for v in violations if v.severity == "warning"] + stray_files(source)
    world = _complete_world(typed, settings=settings)
    step("writing")
    _write_swap(world, out, rejected=rejected, manifest={
        "source": str(source.resolve()),
        "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows_read": rows_read,
        "rows_written": {name: len(frame) for name, frame in world.items()},
        "rows_rejected": len(rejected),
    })
    return IngestReport(out=out, rows_read=rows_read, rows_written={n: len(f) for n, f in world.items()},
                        rejected=rejected, warnings=warnings)


def _check_target(source: Path, out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise IngestTargetError(f"{out} exists and is not a folder")
    if out.resolve() == source.resolve():
        raise IngestTargetError(f"{out} is the source folder: write the ingested world somewhere else")
    if not out.exists():
        return
    ours = {f"{name}{suffix}" for name in TABLES for suffix in SUFFIXES} | set(INGEST_FILES)
    foreign = sorted(path.name for path in out.iterdir() if path.name not in ours)
    if foreign:
        shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise IngestTargetError(f"{out} holds files an ingest did not write ({shown}); choose a new or "
                                "empty folder, or a previous ingest's folder")


def _drop_rows(raw: RawWorld, errors: list[Violation]) -> RawWorld:
    """``raw`` without the rows named by ``errors`` (row numbers are index labels + 1)."""
    bad: dict[str, set[int]] = {}
    for violation in errors:
        if violation.row is not None:
            bad.setdefault(violation.table, set()).add(violation.row - 1)
    return {name: (path, frame.drop(index=sorted(bad.get(name, ())))) for name, (path, frame) in raw.items()}


def _write_swap(world: World, out: Path, *, rejected: list[Violation], manifest: dict) -> None:
    """Write ``world`` beside ``out`` and swap it in; on any failure ``out`` is left untouched."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    staging = out.parent / f".{out.name}.ingest-{tag}"
    previous = out.parent / f".{out.name}.previous-{tag}"
    try:
        write_world(world, staging, fmt="parquet")
        if rejected:
            violations_frame(rejected).to_csv(staging / "_rejects.csv", index=False, encoding="utf-8")
        (staging / "_ingest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
        if out.exists():
            out.rename(previous)
        try:
            staging.rename(out)
        except OSError:
            if previous.exists():
                previous.rename(out)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(previous, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------
# The checks


class _Found:
    """Violations found so far, kept as arrays per check (hundreds of thousands stay fast) until the end."""

    _table_order = {name: i for i, name in enumerate(TABLES)}
    _column_order = {(t, c.name): i for t, table in TABLES.items() for i, c in enumerate(table.columns)}
    _rule_order = {rule: i for i, rule in enumerate(RULES)}

    def __init__(self) -> None:
        self.chunks: list[tuple[tuple[str, str, str | None, str, str], np.ndarray, str | np.ndarray]] = []

    def whole(self, table: str, file: str, column: str | None, rule: str, reason: str,
              severity: str = "error") -> None:
        """A violation about a whole table or column, not a row."""
        self.chunks.append(((table, file, column, rule, severity), np.array([-1], dtype=np.int64), reason))

    def rows(self, table: str, file: str, rows: np.ndarray, column: str, rule: str,
             reason: str | pd.Series | np.ndarray, severity: str = "error") -> None:
        """Violations of ``rule`` in the given 1-based ``rows``; ``reason`` one for all or one per row."""
        if len(rows) == 0:
            return
        reasons = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)
        self.chunks.append(((table, file, column, rule, severity), np.asarray(rows, dtype=np.int64), reasons))

    def violations(self) -> list[Violation]:
        """Everything found, sorted by table (contract order), row, column (contract order) and rule."""
        if not self.chunks:
            return []
        sizes = [len(rows) for _, rows, _ in self.chunks]
        chunk = np.repeat(np.arange(len(self.chunks)), sizes)
        rows = np.concatenate([rows for _, rows, _ in self.chunks])
        keys = [(self._table_order.get(t, len(TABLES)), self._column_order.get((t, c), 999),
                 self._rule_order.get(r, len(RULES))) for (t, _, c, r, _), _, _ in self.chunks]
        table_key, column_key, rule_key = (np.array(k)[chunk] for k in zip(*keys, strict=True))
        order = np.lexsort((rule_key, column_key, rows, table_key))
        reasons = np.concatenate([np.full(len(rows), reason, dtype=object) if isinstance(reason, str)
                                  else reason for (_, rows, reason) in self.chunks])
        return [
            Violation(table, None if row < 0 else row, column, text, file=file, rule=rule, severity=severity)
            for (table, file, column, rule, severity), row, text in zip(
                (self.chunks[c][0] for c in chunk[order].tolist()), rows[order].tolist(),
                reasons[order].tolist(), strict=True)
        ]


def _inspect(
    raw: RawWorld, *, on_table: Callable[[str], None] | None = None
) -> tuple[list[Violation], dict[str, pd.DataFrame]]:
    """All violations, and the typed frames of the tables present (contract columns only)."""
    found = _Found()
    typed: dict[str, pd.DataFrame] = {}
    factors: dict[str, _Factors] = {}
    files: dict[str, str] = {}
    for name, table in TABLES.items():
        if name not in raw:
            if table.required:
                found.whole(name, "", None, "missing_table",
                            f"required table is missing: expected {name}.csv or {name}.parquet")
            continue
        path, frame = raw[name]
        files[name] = Path(path).name
        typed[name], factors[name] = _check_table(table, files[name], frame, found)
        if on_table is not None:
            on_table(name)
    for name in typed:
        _check_references(TABLES[name], files[name], factors[name], typed, found)
    return found.violations(), typed


class _Factors:
    """Codes and distinct values of a table's columns, each computed once.

    Hashing millions of strings is the main cost of validation; the key, format, code and reference
    checks all work on a column's distinct values and map the answer back through the codes.
    """

    def __init__(self, typed: pd.DataFrame) -> None:
        self.typed = typed
        self.cache: dict[str, tuple[np.ndarray, pd.Series]] = {}

    def __call__(self, name: str) -> tuple[np.ndarray, pd.Series]:
        """``(codes, uniques)`` of column ``name``: ``uniques[codes]`` is the column, -1 where missing."""
        if name not in self.cache:
            codes, uniques = pd.factorize(self.typed[name], use_na_sentinel=True)
            self.cache[name] = codes.astype(np.int64, copy=False), pd.Series(uniques)
        return self.cache[name]

    def spread(self, name: str, per_unique: np.ndarray, missing: bool = False) -> np.ndarray:
        """A per-distinct-value answer as a per-row array (``missing`` where the value is missing)."""
        codes, _ = self(name)
        return np.append(per_unique, missing)[codes]


def _check_table(
    table: Table, file: str, frame: pd.DataFrame, found: _Found
) -> tuple[pd.DataFrame, _Factors]:
    """Checks within one table; returns its typed frame (index as in ``frame``) and its factors."""
    for column in table.columns:
        if column.required and column.name not in frame.columns:
            found.whole(table.name, file, column.name, "missing_column", "required column is missing")
    for extra in frame.columns:
        if str(extra) not in table.column_names:
            found.whole(table.name, file, str(extra), "extra_column",
                        "column is not in the contract: ignored", severity="warning")
    typed, failed = coerce_table(table, frame)
    for column in table.columns:
        if column.semantic == "resident_id" and column.name in typed:
            typed[column.name] = normalize_id_numbers(typed[column.name])
    factors = _Factors(typed)
    labels = frame.index.to_numpy()
    for column in table.columns:
        if column.name in typed:
            _check_column(table, file, column, frame[column.name], factors, failed[column.name], labels,
                          found)
    for key in (table.primary_key, *table.unique):
        _check_unique(table, file, factors, key, found)
    rules = list(table.rules)
    if table.known and table.event and not table.known_in_advance:
        rules.append(NotBefore(table.known, table.event))
    for rule in rules:
        _check_rule(table, file, factors, rule, labels, found)
    return typed, factors


def _check_column(table: Table, file: str, column: Column, raw: pd.Series, factors: _Factors,
                  failed: np.ndarray, labels: np.ndarray, found: _Found) -> None:
    """Type, null, range, code and format checks of one column."""
    name = column.name
    typed = factors.typed
    values = typed[name]

    def emit(mask: np.ndarray, rule: str, hint: str) -> None:
        if mask.any():
            found.rows(table.name, file, labels[mask] + 1, name, rule, _about(column, values[mask], hint))
    if failed.any():
        hint = f"not {TYPE_HINTS[column.dtype]}"
        found.rows(table.name, file, labels[failed] + 1, name, "type", _about(column, raw[failed], hint))
    present = values.notna().to_numpy(dtype=bool)
    if not column.nullable:
        missing = ~present & ~failed
        found.rows(table.name, file, labels[missing] + 1, name, "null", "missing value")
    if column.semantic == "resident_id":
        _check_resident_ids(table, file, column, typed, present, labels, found)
        return
    if column.ge is not None or column.le is not None:
        number = values.to_numpy(dtype="float64", na_value=np.nan)
        checks = [(present & ~np.isfinite(number), "not a finite number")]
        if column.ge is not None:
            checks.append((present & (number < column.ge), f"below the minimum {format_number(column.ge)}"))
        if column.le is not None:
            checks.append((present & (number > column.le), f"above the maximum {format_number(column.le)}"))
        for mask, hint in checks:
            emit(mask, "range", hint)
    if column.allowed is not None:
        _, uniques = factors(name)
        wrong = ~factors.spread(name, uniques.isin(column.allowed).to_numpy(dtype=bool), missing=True)
        emit(wrong, "allowed", "not one of: " + ", ".join(column.allowed))
    if column.pattern is not None:
        _, uniques = factors(name)
        matches = uniques.astype("string").str.fullmatch(column.pattern).to_numpy(dtype=bool)
        wrong = ~factors.spread(name, matches, missing=True)
        emit(wrong, "pattern", "not " + PATTERN_HINTS.get(column.pattern, f"in the format {column.pattern}"))


def _check_resident_ids(table: Table, file: str, column: Column, typed: pd.DataFrame, present: np.ndarray,
                        labels: np.ndarray, found: _Found) -> None:
    """GB 11643 checks, and agreement with the row's ``birth_date`` and ``sex`` where the table has them."""
    values = typed[column.name]
    problems = id_number_problems(values)
    wrong = problems.notna().to_numpy(dtype=bool)
    if wrong.any():
        reasons = "resident ID number " + problems[wrong].map(PROBLEMS).astype(str)
        found.rows(table.name, file, labels[wrong] + 1, column.name, "resident_id", reasons.to_numpy())
    valid = present & ~wrong
    if not valid.any():
        return
    if "birth_date" in typed:
        birth = typed["birth_date"].dt.normalize()
        differs = (id_birth_dates(values) != birth) & birth.notna()
        differs = valid & differs.fillna(False).to_numpy(dtype=bool)
        found.rows(table.name, file, labels[differs] + 1, column.name, "resident_id",
                   "birth date inside the resident ID number differs from birth_date")
    if "sex" in typed:
        differs = valid & (id_sexes(values) != typed["sex"]).fillna(False).to_numpy(dtype=bool)
        found.rows(table.name, file, labels[differs] + 1, column.name, "resident_id",
                   "sex digit of the resident ID number differs from sex")


def _check_unique(table: Table, file: str, factors: _Factors, key: tuple[str, ...], found: _Found) -> None:
    """Rows repeating an earlier row's key (a primary key, or a unique column group)."""
    typed = factors.typed
    if not all(name in typed for name in key):
        return
    columns = [table.column(name) for name in key]
    is_primary = key == table.primary_key
    # Key cells that are missing where they must not be were reported already; the primary key of a
    # nullable column (income.person_id) treats missing as one value, a unique column ignores them.
    usable = np.ones(len(typed), dtype=bool)
    for column in columns:
        if not is_primary or not column.nullable:
            usable &= typed[column.name].notna().to_numpy(dtype=bool)
    codes = _row_codes(factors, key)[usable]
    ordered = np.sort(codes)  # sorting int64 beats hashing them several times over
    if not (ordered[1:] == ordered[:-1]).any():
        return
    order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    # Stable order puts each key's first row first; every other row of the run repeats it.
    first_of_run = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    repeat_pos, first_pos = order[~starts], first_of_run[~starts]
    by_row = np.argsort(repeat_pos, kind="stable")
    repeat_pos, first_pos = repeat_pos[by_row], first_pos[by_row]
    labels = typed.index.to_numpy()[usable]
    repeated_labels = labels[repeat_pos]
    firsts = pd.Series(labels[first_pos] + 1).astype(str).to_numpy()
    dup = typed.loc[repeated_labels]
    if is_primary:
        shown = [_shown_values(column, dup[column.name]) for column in columns]
        text = shown[0] if len(shown) == 1 else shown[0].str.cat(shown[1:], sep=", ")
        reason = f"duplicate primary key ({', '.join(key)}) = (" + text + "); first in row " + firsts
        rule = "duplicate_key"
    else:
        label = "resident ID number" if columns[0].semantic == "resident_id" else ", ".join(key)
        reason = pd.Series(f"same {label} as row " + firsts)
        rule = "unique"
    found.rows(table.name, file, repeated_labels + 1, key[0], rule, reason.to_numpy())


def _row_codes(factors: _Factors, key: tuple[str, ...]) -> np.ndarray:
    """One int64 per row, equal exactly when the rows hold equal values (missing counts as a value)."""
    codes = np.zeros(len(factors.typed), dtype=np.int64)
    for name in key:
        column_codes, uniques = factors(name)
        size = len(uniques) + 1
        if len(codes) and codes.max() >= np.iinfo(np.int64).max // size:
            codes = np.unique(codes, return_inverse=True)[1].astype(np.int64)
        codes = codes * size + (column_codes.astype(np.int64) + 1)
    return codes


def _check_rule(table: Table, file: str, factors: _Factors, rule: NotBefore | Balance, labels: np.ndarray,
                found: _Found) -> None:
    typed = factors.typed
    if isinstance(rule, NotBefore):
        if rule.later not in typed or rule.earlier not in typed:
            return
        later = _as_time(table.column(rule.later), factors)
        earlier = _as_time(table.column(rule.earlier), factors)
        wrong = (later < earlier).fillna(False).to_numpy(dtype=bool)
        if rule.later == table.known and rule.earlier == table.event:
            found.rows(table.name, file, labels[wrong] + 1, rule.later, "known_before_event",
                       f"{rule.later} is before {rule.earlier}: a record cannot be known before it happened")
        else:
            found.rows(table.name, file, labels[wrong] + 1, rule.later, "not_before",
                       f"{rule.later} is before {rule.earlier}")
        return
    needed = (rule.column, rule.total, *rule.minus)
    if not all(name in typed for name in needed):
        return
    expected = typed[rule.total] - typed[list(rule.minus)].sum(axis=1, min_count=len(rule.minus))
    gap = (typed[rule.column] - expected).abs()
    wrong = (gap > rule.tolerance).fillna(False).to_numpy(dtype=bool)
    formula = f"{rule.total} - " + " - ".join(rule.minus)
    found.rows(table.name, file, labels[wrong] + 1, rule.column, "balance",
               f"{rule.column} differs from {formula} by more than {format_number(rule.tolerance)}")


def _check_references(table: Table, file: str, factors: _Factors, world: dict[str, pd.DataFrame],
                      found: _Found) -> None:
    """Foreign keys, and that each person's household is the household members gives them."""
    typed = factors.typed
    labels = typed.index.to_numpy()
    for fk in table.foreign_keys:
        if fk.column not in typed:
            continue
        if fk.ref_table in world:
            if fk.ref_column not in world[fk.ref_table]:
                continue  # reported as a missing column
            refs = world[fk.ref_table][fk.ref_column].dropna()
        elif TABLES[fk.ref_table].required:
            continue  # reported as a missing table
        else:
            refs = pd.Series([], dtype="string")
        _, uniques = factors(fk.column)
        wrong = ~factors.spread(fk.column, _references_exist(fk, uniques, refs), missing=True)
        if wrong.any():
            where = f"{fk.ref_table}.{fk.ref_column}"
            hint = f"not an area holding any region of {where}" if fk.area else f"not found in {where}"
            found.rows(table.name, file, labels[wrong] + 1, fk.column, "foreign_key",
                       _about(table.column(fk.column), typed[fk.column][wrong], hint))
    person_fk = any(fk.column == "person_id" and fk.ref_table == "members" for fk in table.foreign_keys)
    members = world.get("members")
    if (not person_fk or members is None or "household_id" not in typed or "person_id" not in typed
            or not {"person_id", "household_id"} <= set(members.columns)):
        return
    # Per distinct person: the household members gives them, as a code of this table's households
    # (-1: a household this table does not hold, -2: a person members does not know, reported above).
    people = members.dropna(subset=["person_id"]).drop_duplicates("person_id")
    _, persons = factors("person_id")
    person_codes, _ = factors("person_id")
    home_codes, homes = factors("household_id")
    position = pd.Index(people["person_id"]).get_indexer(persons)
    theirs = pd.Series(people["household_id"].to_numpy(dtype=object)[position], dtype="string")
    theirs = theirs.mask(position < 0)
    theirs_code = pd.Index(homes).get_indexer(theirs.fillna(""))
    theirs_code[(position < 0) | theirs.isna().to_numpy()] = -2
    row_theirs = np.append(theirs_code, -2)[person_codes]
    wrong = (row_theirs != -2) & (home_codes >= 0) & (row_theirs != home_codes)
    if wrong.any():
        reason = ("person " + _quoted(typed["person_id"][wrong]) + " belongs to household "
                  + _quoted(pd.Series(theirs.to_numpy()[person_codes[wrong]], index=typed.index[wrong]))
                  + " in members, not " + _quoted(typed["household_id"][wrong]))
        found.rows(table.name, file, labels[wrong] + 1, "household_id", "household_mismatch",
                   reason.to_numpy())


def _references_exist(fk: ForeignKey, uniques: pd.Series, refs: pd.Series) -> np.ndarray:
    """Whether each distinct value of ``fk.column`` is found among the referenced ``refs``."""
    if fk.prefix is not None:
        return _isin(uniques, refs.str.slice(0, fk.prefix))
    if not fk.area:
        return _isin(uniques, refs)
    # An area code is its shortest prefix followed only by zeros: 530102000000 is county 530102.
    area = uniques.astype("string")
    ok = np.zeros(len(area), dtype=bool)
    settled = np.zeros(len(area), dtype=bool)
    for level in AREA_LEVELS:
        at_level = ~settled & area.str.slice(level).str.fullmatch("0*").fillna(False).to_numpy(dtype=bool)
        prefixes = refs.str.slice(0, level).unique()
        ok |= at_level & area.str.slice(0, level).isin(prefixes).to_numpy(dtype=bool)
        settled |= at_level
    return ok


# ---------------------------------------------------------------------------------------------------
# Helpers


def _complete_world(typed: dict[str, pd.DataFrame], *, settings: Settings | None) -> World:
    """Typed frames with every contract table and column; ID numbers replaced by pseudonyms."""
    world: World = {}
    for name, table in TABLES.items():
        frame = typed.get(name)
        length = 0 if frame is None else len(frame)
        index = pd.RangeIndex(length)
        out = pd.DataFrame(index=index)
        for column in table.columns:
            if frame is not None and column.name in frame:
                out[column.name] = frame[column.name].set_axis(index)
            else:
                out[column.name] = empty_column(column, length, index)
        world[name] = finalize_dtypes(table, out)
    members = world["members"]
    ids = members["id_number"]
    if ids.notna().any():
        members["id_hash"], members["id_last4"] = pseudonymize_ids(ids, hmac_key(settings))
    world["members"] = members.drop(columns="id_number")
    return world


def _arrow(values: pd.Series) -> pa.Array:
    """Values as an Arrow string array (no copy when they are Arrow-backed strings already)."""
    array = pa.array(values.astype("string").array)
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _isin(values: pd.Series, refs: pd.Series) -> np.ndarray:
    """Whether each value is among ``refs`` (Arrow's hash set; pandas' isin on strings is ~20x slower)."""
    array = _arrow(values)
    found = pc.is_in(array, value_set=_arrow(refs.dropna()).cast(array.type))
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def _as_time(column: Column, factors: _Factors) -> pd.Series:
    """Dates as they are; a month as its first day (so an income of 2024-03 may be known from March 1)."""
    values = factors.typed[column.name]
    if column.dtype != "month":
        return values
    codes, uniques = factors(column.name)
    days = pd.to_datetime(uniques.astype("string"), format="%Y-%m", errors="coerce")
    return pd.Series(pd.array(days.astype("datetime64[ns]")).take(codes, allow_fill=True), index=values.index)


def _about(column: Column, values: pd.Series, hint: str) -> np.ndarray | str:
    """``'<value>' is <hint>`` per row, or just ``<hint>`` when the column is sensitive."""
    if column.sensitive:
        return hint
    return (_quoted(values) + " is " + hint).to_numpy()


def _quoted(values: pd.Series) -> pd.Series:
    """Values as short quoted text (dates as YYYY-MM-DD, at most 40 characters)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        text = values.dt.strftime("%Y-%m-%d")
    else:
        text = values.astype("string")
    text = text.fillna("").astype(str).str.replace("\n", " ")
    short = text.str.slice(0, 40).where(text.str.len() <= 40, text.str.slice(0, 39) + "…")
    return "'" + short + "'"


def _shown_values(column: Column, values: pd.Series) -> pd.Series:
    """Key values for a duplicate-key message: quoted, ``empty`` when missing, hidden when sensitive."""
    if column.sensitive:
        return pd.Series("(hidden)", index=values.index)
    return _quoted(values).where(values.notna().to_numpy(dtype=bool), "empty")

