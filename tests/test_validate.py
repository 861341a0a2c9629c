"""Validation, loading and ingest of a world against the data contract (doudi/validate.py, CLI)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from doudi.cli import app
from doudi.contract import TABLES
from doudi.io import ContractError, UnreadableData, Violation, read_raw, write_world
from doudi.pseudonym import PseudonymKeyMissing, id_check_char
from doudi.validate import IngestTargetError, check_world, ingest, load_world, stray_files

KEY = "test-only-key-0123456789abcdef"


def ident(region: str, birth: str, sequence: str) -> str:
    """A valid resident ID number (check character computed by ISO 7064 MOD 11-2)."""
    first = f"{region}{birth}{sequence}"
    return first + id_check_char(first)


def clean_tables() -> dict[str, pd.DataFrame]:
    """A small hand-made world that follows the contract, every table present, all cells as text."""
    standards = pd.DataFrame([
        {"county_code": county, "month": month, "urban_rural": ur, "dibao_standard": std,
         "monitoring_line": "8700", "disposable_income_last_year": "30000", "consumption_last_year": "20000",
         "cpi_yoy": "0.4", "food_cpi_yoy": "-1.2", "recorded_at": "2023-12-20"}
        for county in ("530102", "530103") for month in ("2024-01", "2024-02", "2024-03")
        for ur, std in (("urban", "800"), ("rural", "650"))
    ])
    return {
        "regions": pd.DataFrame({"region_code": ["530102001001", "530102001002", "530103002001"],
                                 "name": ["东风社区", "新村", "河口村"],
                                 "urban_rural": ["urban", "rural", "rural"]}),
        "standards": standards,
        "households": pd.DataFrame({
            "household_id": ["H1", "H2", "H3"],
            "village_code": ["530102001001", "530102001002", "530103002001"],
            "urban_rural": ["urban", "rural", "rural"], "lifted_out_year": [None, "2019", None],
            "registered_at": ["2020-03-01", "2019-06-30", None]}),
        "members": pd.DataFrame({
            "person_id": ["P1", "P2", "P3", "P4"], "household_id": ["H1", "H1", "H2", "H3"],
            "id_number": [ident("530102", "19800115", "001"), ident("530102", "19820304", "002"),
                          "11010519491231002X", None],
            "birth_date": ["1980-01-15", "1982-03-04", "1949-12-31", "2001-07-09"],
            "sex": ["M", "F", "F", "M"], "ethnic_minority": ["false", "true", "0", "1"],
            "relation": ["head", "spouse", "head", "head"], "disability_grade": ["0", "0", "2", "0"],
            "disability_certified_at": [None, None, "2015-05-05", None],
            "labour_capacity": ["full", "full", "none", "partial"],
            "in_school": ["false", "false", "false", "true"],
            "recorded_at": ["2023-01-01"] * 4}),
        "income": pd.DataFrame({
            "household_id": ["H1", "H1", "H2", "H2", "H3"], "person_id": ["P1", "P1", None, "P3", "P4"],
            "month": ["2024-01", "2024-02", "2024-01", "2024-01", "2024-02"],
            "source": ["wage", "wage", "farming", "pension", "wage"],
            "amount": ["3200.5", "3100", "450", "180", "1500"],
            "recorded_at": ["2024-02-05", "2024-03-05", "2024-02-10", "2024-02-10", "2024-03-01"]}),
        "medical_claims": pd.DataFrame({
            "claim_id": ["C1"], "household_id": ["H2"], "person_id": ["P3"], "admission_date": ["2024-01-10"],
            "discharge_date": ["2024-01-20"], "diagnosis_group": ["stroke"], "serious_illness": ["true"],
            "inpatient": ["true"], "total_cost": ["30000"], "insurance_paid": ["18000"],
            "assistance_paid": ["4000"], "out_of_pocket": ["8000.4"], "recorded_at": ["2024-02-01"]}),
        "disasters": pd.DataFrame({
            "disaster_id": ["D1"], "region_code": ["530103000000"], "disaster_type": ["flood"],
            "start_date": ["2024-06-01"], "end_date": ["2024-06-05"], "severity": ["3"],
            "recorded_at": ["2024-06-02"]}),
        "disaster_losses": pd.DataFrame({
            "loss_id": ["L1"], "disaster_id": ["D1"], "household_id": ["H3"], "assessed_date": ["2024-06-20"],
            "crop_loss": ["4000"], "housing_damage": ["minor"], "amount": ["6000"],
            "recorded_at": ["2024-07-01"]}),
        "employment_events": pd.DataFrame({
            "event_id": ["E1"], "household_id": ["H1"], "person_id": ["P2"], "event_date": ["2024-02-15"],
            "event_type": ["job_loss"], "unemployment_insured": ["false"], "recorded_at": ["2024-03-01"]}),
        "assistance": pd.DataFrame({
            "assistance_id": ["A1"], "household_id": ["H2"], "person_id": [None], "programme": ["medical"],
            "start_date": ["2024-02-01"], "end_date": ["2024-02-01"], "amount": ["4000"],
            "recorded_at": ["2024-02-03"]}),
        "assets": pd.DataFrame({
            "household_id": ["H1"], "reported_date": ["2023-11-01"], "deposits": ["12000"], "vehicles": ["1"],
            "houses": ["1"], "registered_business": ["false"], "recorded_at": ["2023-11-15"]}),
    }


def write_tables(tables: dict[str, pd.DataFrame], directory: Path, *, fmt: str = "csv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(directory / f"{name}.csv", index=False)
        else:
            frame.to_parquet(directory / f"{name}.parquet", index=False)
    return directory


def violations_in(tmp_path: Path, change: Callable[[dict[str, pd.DataFrame]], None]) -> list[Violation]:
    tables = clean_tables()
    change(tables)
    return check_world(read_raw(write_tables(tables, tmp_path / "world")))


def located(violations: list[Violation]) -> set[tuple[str, int | None, str | None, str]]:
    return {(v.table, v.row, v.column, v.rule) for v in violations}


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DOUDI_ID_HMAC_KEY", KEY)
    return KEY


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# --- a clean world -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_clean_world_has_no_violations(tmp_path: Path, fmt: str) -> None:
    directory = write_tables(clean_tables(), tmp_path / "world", fmt=fmt)
    assert check_world(read_raw(directory)) == []


def test_load_world_types_every_table_and_pseudonymizes_ids(tmp_path: Path, key: str) -> None:
    tables = clean_tables()
    del tables["assets"], tables["disasters"], tables["disaster_losses"]
    directory = write_tables(tables, tmp_path / "world")
    world = load_world(directory)
    assert list(world) == list(TABLES)
    for name, table in TABLES.items():
        expected = [c for c in table.column_names if c != "id_number"]
        assert list(world[name].columns) == expected, name
    assert world["assets"].empty and world["assets"]["deposits"].dtype == "float64"
    assert world["disasters"]["start_date"].dtype == "datetime64[ns]"
    assert world["income"]["recorded_at"].dtype == "datetime64[ns]"
    assert world["income"]["amount"].tolist() == [3200.5, 3100.0, 450.0, 180.0, 1500.0]
    assert world["households"]["lifted_out_year"].tolist()[1] == 2019
    assert world["members"]["ethnic_minority"].tolist() == [False, True, False, True]
    members = world["members"]
    assert "id_number" not in members
    hashed = members["id_hash"].str.fullmatch(r"[0-9a-f]{64}").fillna(False)
    assert hashed.tolist() == [True, True, True, False]
    assert members["id_last4"].tolist()[2] == "002X"
    assert members["id_hash"].nunique() == 3
    for name, frame in load_world(directory).items():
        pd.testing.assert_frame_equal(frame, world[name])


def test_ids_require_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOUDI_ID_HMAC_KEY", raising=False)
    directory = write_tables(clean_tables(), tmp_path / "world")
    with pytest.raises(PseudonymKeyMissing, match="DOUDI_ID_HMAC_KEY"):
        load_world(directory)
    tables = clean_tables()
    tables["members"] = tables["members"].drop(columns="id_number")
    assert load_world(write_tables(tables, tmp_path / "no_ids"))["members"]["id_hash"].isna().all()


# --- each kind of violation, located -----------------------------------------------------------------------


def _set(table: str, row: int, column: str, value: object) -> Callable[[dict[str, pd.DataFrame]], None]:
    def change(tables: dict[str, pd.DataFrame]) -> None:
        tables[table].loc[row - 1, column] = value
    return change


def _duplicate(table: str, row: int) -> Callable[[dict[str, pd.DataFrame]], None]:
    def change(tables: dict[str, pd.DataFrame]) -> None:
        tables[table] = pd.concat([tables[table], tables[table].iloc[[row - 1]]], ignore_index=True)
    return change


CASES = {
    "missing table": (lambda t: t.pop("standards"), ("standards", None, None, "missing_table")),
    "missing column": (lambda t: t.__setitem__("assets", t["assets"].drop(columns="deposits")),
                       ("assets", None, "deposits", "missing_column")),
    "text in a number": (_set("income", 3, "amount", "abc"), ("income", 3, "amount", "type")),
    "bad date": (_set("members", 2, "disability_certified_at", "2015-02-30"),
                 ("members", 2, "disability_certified_at", "type")),
    "bad flag": (_set("members", 1, "in_school", "maybe"), ("members", 1, "in_school", "type")),
    "missing value": (_set("members", 4, "sex", None), ("members", 4, "sex", "null")),
    "negative amount": (_set("income", 2, "amount", "-5"), ("income", 2, "amount", "range")),
    "year out of range": (_set("households", 1, "lifted_out_year", "2001"),
                          ("households", 1, "lifted_out_year", "range")),
    "unknown code": (_set("households", 2, "urban_rural", "town"),
                     ("households", 2, "urban_rural", "allowed")),
    "bad month": (_set("income", 4, "month", "2024-13"), ("income", 4, "month", "pattern")),
    "short region code": (_set("regions", 3, "region_code", "5301030020"),
                          ("regions", 3, "region_code", "pattern")),
    "wrong check char": (_set("members", 1, "id_number", ident("530102", "19800115", "001")[:-1] + "0"),
                         ("members", 1, "id_number", "resident_id")),
    "id of wrong length": (_set("members", 1, "id_number", "5301021980011500"),
                           ("members", 1, "id_number", "resident_id")),
    "id with impossible birth date": (_set("members", 1, "id_number", ident("530102", "19801315", "001")),
                                      ("members", 1, "id_number", "resident_id")),
    "id birth date differs": (_set("members", 2, "birth_date", "1982-03-05"), ("members", 2, "id_number",
                                                                                 "resident_id")),
    "id sex differs": (_set("members", 1, "sex", "F"), ("members", 1, "id_number", "resident_id")),
    "duplicate key": (_duplicate("income", 1), ("income", 6, "household_id", "duplicate_key")),
    "same id number twice": (_set("members", 4, "id_number", "11010519491231002x"),
                             ("members", 4, "id_number", "unique")),
    "unknown village": (_set("households", 3, "village_code", "530103002009"),
                        ("households", 3, "village_code", "foreign_key")),
    "unknown person": (_set("employment_events", 1, "person_id", "P9"),
                       ("employment_events", 1, "person_id", "foreign_key")),
    "unknown disaster": (_set("disaster_losses", 1, "disaster_id", "D9"),
                         ("disaster_losses", 1, "disaster_id", "foreign_key")),
    "disaster area without villages": (_set("disasters", 1, "region_code", "530199000000"),
                                       ("disasters", 1, "region_code", "foreign_key")),
    "person in another household": (_set("income", 5, "household_id", "H1"),
                                    ("income", 5, "household_id", "household_mismatch")),
    "discharge before admission": (_set("medical_claims", 1, "discharge_date", "2024-01-01"),
                                   ("medical_claims", 1, "discharge_date", "not_before")),
    "end before start": (_set("assistance", 1, "end_date", "2024-01-31"),
                         ("assistance", 1, "end_date", "not_before")),
    "known before it happened": (_set("income", 1, "recorded_at", "2023-12-31"),
                                 ("income", 1, "recorded_at", "known_before_event")),
    "out of pocket does not add up": (_set("medical_claims", 1, "out_of_pocket", "9000"),
                                      ("medical_claims", 1, "out_of_pocket", "balance")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_violation_is_named_with_table_row_and_column(tmp_path: Path, case: str) -> None:
    change, expected = CASES[case]
    violations = violations_in(tmp_path, change)
    assert expected in located(violations)
    errors = [v for v in violations if v.severity == "error"]
    assert all(v.file == ("" if v.rule == "missing_table" else f"{v.table}.csv") for v in errors)


def test_known_at_is_compared_with_the_event_day_or_the_first_of_the_month(tmp_path: Path) -> None:
    assert violations_in(tmp_path, _set("income", 1, "recorded_at", "2024-01-01")) == []
    # Standards are published ahead of the month they apply to: not a violation.
    assert violations_in(tmp_path, _set("standards", 12, "recorded_at", "2020-01-01")) == []
    late = violations_in(tmp_path, _set("medical_claims", 1, "recorded_at", "2024-01-19"))
    assert located(late) == {("medical_claims", 1, "recorded_at", "known_before_event")}


def test_repeats_name_the_first_row(tmp_path: Path) -> None:
    def change(tables: dict[str, pd.DataFrame]) -> None:
        income = tables["income"]
        tables["income"] = pd.concat([income, income.iloc[[2, 0, 2]]], ignore_index=True)

    violations = [v for v in violations_in(tmp_path, change) if v.rule == "duplicate_key"]
    assert [(v.row, v.reason.rsplit(" ", 1)[1]) for v in violations] == [(6, "3"), (7, "1"), (8, "3")]
    # Row 3 is a household-level income (no person): missing counts as a value in the key.
    assert "('H2', empty, '2024-01', 'farming')" in violations[0].reason


def test_unknown_columns_are_warnings_and_left_out(tmp_path: Path, key: str) -> None:
    tables = clean_tables()
    tables["households"]["nickname"] = "x"
    directory = write_tables(tables, tmp_path / "world")
    violations = check_world(read_raw(directory))
    assert [(v.table, v.column, v.rule, v.severity) for v in violations] == [
        ("households", "nickname", "extra_column", "warning")]
    assert "nickname" not in load_world(directory)["households"]


def test_stray_files_are_warnings(tmp_path: Path) -> None:
    directory = write_tables(clean_tables(), tmp_path / "world")
    (directory / "people.csv").write_text("a\n1\n", encoding="utf-8")
    clean_tables()["regions"].to_parquet(directory / "regions.parquet", index=False)
    (directory / "_faults.json").write_text("[]", encoding="utf-8")
    found = {(v.file, v.rule, v.severity) for v in stray_files(directory)}
    assert found == {("people.csv", "stray_file", "warning"), ("regions.csv", "stray_file", "warning")}


ALL_AT_ONCE = [
    "text in a number", "bad date", "bad flag", "missing value", "year out of range", "unknown code",
    "bad month", "short region code", "wrong check char", "id birth date differs", "unknown person",
    "unknown disaster", "person in another household", "discharge before admission", "end before start",
    "out of pocket does not add up", "known before it happened", "duplicate key",
]
"""Cases touching different cells (the duplicate last, so it copies a finished row)."""


def test_every_violation_is_reported_at_once(tmp_path: Path, key: str) -> None:
    tables = clean_tables()
    for case in ALL_AT_ONCE:
        CASES[case][0](tables)
    directory = write_tables(tables, tmp_path / "world")
    violations = check_world(read_raw(directory))
    assert {CASES[case][1] for case in ALL_AT_ONCE} <= located(violations)
    with pytest.raises(ContractError) as raised:
        load_world(directory)
    assert raised.value.violations == violations
    order = [(list(TABLES).index(v.table), v.row or 0) for v in violations]
    assert order == sorted(order)


def test_sensitive_values_are_never_shown(tmp_path: Path, runner: CliRunner) -> None:
    secrets = {"bad_id": "530102198001150019", "birth": "1982-02-30", "amount": "-98765.4",
               "cost": "77777777", "diagnosis": "syphilis"}

    def change(tables: dict[str, pd.DataFrame]) -> None:
        tables["members"].loc[0, "id_number"] = secrets["bad_id"]
        tables["members"].loc[1, "birth_date"] = secrets["birth"]
        tables["income"].loc[0, "amount"] = secrets["amount"]
        tables["medical_claims"].loc[0, "total_cost"] = secrets["cost"]
        tables["medical_claims"].loc[0, "diagnosis_group"] = secrets["diagnosis"]

    tables = clean_tables()
    change(tables)
    directory = write_tables(tables, tmp_path / "world")
    violations = check_world(read_raw(directory))
    assert {("members", 1, "id_number"), ("members", 2, "birth_date"), ("income", 1, "amount"),
            ("medical_claims", 1, "total_cost"), ("medical_claims", 1, "diagnosis_group")} <= {
        (v.table, v.row, v.column) for v in violations}
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["validate", str(directory), "--json", str(report)])
    assert result.exit_code == 1
    shown = "\n".join([str(v) for v in violations] + [result.output, report.read_text(encoding="utf-8")])
    for value in secrets.values():
        assert value not in shown
    assert "'town'" in str(violations_in(tmp_path / "other", _set("households", 2, "urban_rural", "town"))[0])


def test_factories_random_world_is_valid(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    factories = pytest.importorskip("factories")
    write_world(factories.random_world(150, 8, 5), tmp_path / "world")
    assert [v for v in check_world(read_raw(tmp_path / "world")) if v.severity == "error"] == []


# --- unreadable input --------------------------------------------------------------------------------------


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    directory = write_tables(clean_tables(), tmp_path / "world")
    gbk = "region_code,name,urban_rural\n530102001001,东风,urban\n".encode("gbk")
    (directory / "regions.csv").write_bytes(gbk)
    (directory / "income.csv").write_text("household_id,month\nH1,2024-01,extra,cells\n", encoding="utf-8")
    (directory / "assets.csv").unlink()
    (directory / "assets.parquet").write_bytes(b"not parquet at all")
    (directory / "disasters.csv").write_text("", encoding="utf-8")
    with pytest.raises(UnreadableData) as raised:
        read_raw(directory)
    reasons = {v.file: v.reason for v in raised.value.violations}
    assert set(reasons) == {"regions.csv", "income.csv", "assets.parquet", "disasters.csv"}
    assert "UTF-8" in reasons["regions.csv"]
    assert "line 2" in reasons["income.csv"]
    assert "empty" in reasons["disasters.csv"]


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    directory = write_tables(clean_tables(), tmp_path / "world")
    text = (directory / "regions.csv").read_text(encoding="utf-8")
    (directory / "regions.csv").write_text(text, encoding="utf-8-sig")
    assert check_world(read_raw(directory)) == []


# --- the CLI -----------------------------------------------------------------------------------------------


def test_validate_cli_exit_codes_and_report(tmp_path: Path, runner: CliRunner) -> None:
    clean = write_tables(clean_tables(), tmp_path / "clean")
    result = runner.invoke(app, ["validate", str(clean)])
    assert result.exit_code == 0, result.output
    assert "follows the data contract" in result.output

    tables = clean_tables()
    for change in (_set("households", 2, "urban_rural", "town"), _set("income", 2, "amount", "-5"),
                   _duplicate("income", 1)):
        change(tables)
    bad = write_tables(tables, tmp_path / "bad")
    report = tmp_path / "out" / "violations.json"
    result = runner.invoke(app, ["validate", str(bad), "--json", str(report), "--max-rows", "1"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for text in ("households.csv", "allowed", "duplicate_key", "range", "First 1 of 3", "3 error(s)"):
        assert text in result.output
    payload = json.loads(report.read_text(encoding="utf-8"))
    assert payload["errors"] == 3
    assert {(v["table"], v["row"], v["column"], v["rule"]) for v in payload["violations"]} == {
        ("households", 2, "urban_rural", "allowed"), ("income", 2, "amount", "range"),
        ("income", 6, "household_id", "duplicate_key")}


@pytest.mark.parametrize("damage", ["missing folder", "bad encoding", "broken csv", "not parquet"])
def test_validate_cli_unreadable_input_exits_2_without_traceback(
    tmp_path: Path, runner: CliRunner, damage: str
) -> None:
    directory = write_tables(clean_tables(), tmp_path / "world")
    if damage == "missing folder":
        directory = tmp_path / "nowhere"
    elif damage == "bad encoding":
        gb18030 = "region_code,name,urban_rural\n1,东风,urban\n".encode("gb18030")
        (directory / "regions.csv").write_bytes(gb18030)
    elif damage == "broken csv":
        (directory / "members.csv").write_text('person_id,household_id\n"P1,H1\n', encoding="utf-8")
    else:
        (directory / "income.csv").unlink()
        (directory / "income.parquet").write_bytes(b"PAR1 garbage")
    result = runner.invoke(app, ["validate", str(directory)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    output = " ".join(result.output.split())
    assert ("not a folder" if damage == "missing folder" else "cannot read") in output


# --- ingest ------------------------------------------------------------------------------------------------


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_ingest_writes_pseudonymized_parquet_that_loads_the_same(tmp_path: Path, key: str) -> None:
    source = write_tables(clean_tables(), tmp_path / "extract")
    report = ingest(source, tmp_path / "store")
    store = tmp_path / "store"
    assert report.rows_written["members"] == 4 and report.rejected == []
    assert {p.suffix for p in store.iterdir()} == {".parquet", ".json"}
    members = pd.read_parquet(store / "members.parquet")
    assert "id_number" not in members
    assert not any("11010519491231002X" in str(value) for value in members.to_numpy().ravel())
    original, stored = load_world(source), load_world(store)
    for name in TABLES:
        pd.testing.assert_frame_equal(original[name], stored[name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extract", "store"]  # no temp folders left


def test_failed_ingest_leaves_the_store_intact(tmp_path: Path, key: str, runner: CliRunner,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    ingest(write_tables(clean_tables(), tmp_path / "good"), store)
    before = _snapshot(store)
    tables = clean_tables()
    _set("households", 2, "urban_rural", "town")(tables)
    bad = write_tables(tables, tmp_path / "bad")

    with pytest.raises(ContractError):
        ingest(bad, store)
    result = runner.invoke(app, ["ingest", str(bad), "--out", str(store)])
    assert result.exit_code == 1 and "unchanged" in result.output
    monkeypatch.delenv("DOUDI_ID_HMAC_KEY")
    result = runner.invoke(app, ["ingest", str(tmp_path / "good"), "--out", str(store)])
    assert result.exit_code == 2 and "DOUDI_ID_HMAC_KEY" in result.output
    monkeypatch.setenv("DOUDI_ID_HMAC_KEY", key)

    def broken_write(world, directory, *, fmt="parquet"):  # the disk fills up half-way
        directory.mkdir(parents=True)
        (directory / "regions.parquet").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("doudi.validate.write_world", broken_write)
    result = runner.invoke(app, ["ingest", str(tmp_path / "good"), "--out", str(store)])
    assert result.exit_code == 2 and "No space left" in result.output
    assert _snapshot(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "good", "store"]


def test_ingest_drop_invalid_drops_rows_and_their_dependants(tmp_path: Path, key: str,
                                                              runner: CliRunner) -> None:
    tables = clean_tables()
    _set("households", 2, "urban_rural", "town")(tables)  # H2: members P3, income rows 3-4, claim, assistance
    _set("income", 1, "amount", "-1")(tables)
    source = write_tables(tables, tmp_path / "extract")
    store = tmp_path / "store"
    result = runner.invoke(app, ["ingest", str(source), "--out", str(store), "--drop-invalid"])
    assert result.exit_code == 0, result.output
    world = load_world(store)
    assert world["households"]["household_id"].tolist() == ["H1", "H3"]
    assert world["members"]["person_id"].tolist() == ["P1", "P2", "P4"]
    assert len(world["income"]) == 2 and world["medical_claims"].empty and world["assistance"].empty
    rejects = pd.read_csv(store / "_rejects.csv")
    assert {(t, r) for t, r in zip(rejects["table"], rejects["row"], strict=True)} == {
        ("households", 2), ("income", 1), ("members", 3), ("income", 3), ("income", 4),
        ("medical_claims", 1), ("assistance", 1)}
    assert "_rejects.csv" in result.output


def test_ingest_refuses_unsafe_targets_and_whole_table_errors(tmp_path: Path, key: str) -> None:
    source = write_tables(clean_tables(), tmp_path / "extract")
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.docx").write_bytes(b"precious")
    with pytest.raises(IngestTargetError, match="thesis.docx"):
        ingest(source, other)
    with pytest.raises(IngestTargetError, match="source"):
        ingest(source, source)
    tables = clean_tables()
    tables["assets"] = tables["assets"].drop(columns="deposits")
    with pytest.raises(ContractError) as raised:
        ingest(write_tables(tables, tmp_path / "no_deposits"), tmp_path / "store", drop_invalid=True)
    assert [(v.table, v.column, v.rule) for v in raised.value.violations] == [
        ("assets", "deposits", "missing_column")]
    assert not (tmp_path / "store").exists()


# --- the synthetic world's injected faults -----------------------------------------------------------------


def test_messy_world_names_every_injected_fault(tmp_path: Path, key: str) -> None:
    world_module = pytest.importorskip("doudi.world")
    world = world_module.generate_world(200, 13, 21)
    write_world(world, tmp_path / "clean")
    assert check_world(read_raw(tmp_path / "clean")) == []
    assert len(load_world(tmp_path / "clean")["members"]) == len(world["members"])

    messy, faults = world_module.inject_faults(world, seed=21)
    write_world(messy, tmp_path / "messy")
    manifest = json.loads(world_module.faults_manifest_text(faults, seed=21))["faults"]
    seen = [f for f in manifest if f["rule"] is not None]
    assert {f["rule"] for f in seen} >= {"duplicate_key", "resident_id", "range", "foreign_key", "allowed",
                                          "not_before", "known_before_event"}
    violations = check_world(read_raw(tmp_path / "messy"))
    missed = [f for f in seen if (f["table"], f["row"], f["column"], f["rule"]) not in located(violations)]
    assert missed == []
    faulted_rows = {(f["table"], f["row"]) for f in manifest}
    assert [v for v in violations if (v.table, v.row) not in faulted_rows] == []


@pytest.mark.parametrize("damage", ["missing folder", "bad encoding"])
def test_ingest_cli_unreadable_input_exits_2(tmp_path: Path, key: str, runner: CliRunner,
                                             damage: str) -> None:
    source = write_tables(clean_tables(), tmp_path / "extract")
    if damage == "missing folder":
        source = tmp_path / "nowhere"
    else:
        (source / "members.csv").write_bytes("person_id,household_id\nP1,户1\n".encode("gbk"))
    result = runner.invoke(app, ["ingest", str(source), "--out", str(tmp_path / "store")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "Not ingested" in result.output
    assert not (tmp_path / "store").exists()
