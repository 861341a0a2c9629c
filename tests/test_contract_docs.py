"""docs/data-contract.md is generated from doudi.contract and must not go stale."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

import doudi.docs
from doudi.cli import app
from doudi.contract import TABLES
from doudi.docs import is_stale, render_contract, write_contract_docs
from doudi.validate import RULES

PAGE = Path(__file__).resolve().parents[1] / "docs" / "data-contract.md"


def test_committed_page_matches_the_contract() -> None:
    assert PAGE.read_text(encoding="utf-8") == render_contract(), (
        "docs/data-contract.md is stale: run `doudi contract-docs` and commit it")


def test_page_documents_every_table_column_and_rule() -> None:
    text = render_contract()
    for name, table in TABLES.items():
        section = text.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        assert table.description in section
        for column in table.columns:
            assert f"| `{column.name}` |" in section, (name, column.name)
        for fk in table.foreign_keys:
            assert f"`{fk.ref_table}.{fk.ref_column}`" in section
    for rule in RULES:
        assert f"| `{rule}` |" in text
    assert "recorded_at < T" in text and "11010519491231002X" in text


def test_a_contract_change_makes_the_page_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "contract.md"
    assert write_contract_docs(page) is True
    assert write_contract_docs(page) is False and not is_stale(page)
    changed = dict(TABLES)
    changed["regions"] = dataclasses.replace(TABLES["regions"], description="Villages, renamed.")
    monkeypatch.setattr(doudi.docs, "TABLES", changed)
    assert is_stale(page)


def test_cli_check_and_write(tmp_path: Path) -> None:
    runner = CliRunner()
    page = tmp_path / "docs" / "contract.md"
    assert runner.invoke(app, ["contract-docs", "--check", "--out", str(page)]).exit_code == 1
    assert runner.invoke(app, ["contract-docs", "--out", str(page)]).exit_code == 0
    assert runner.invoke(app, ["contract-docs", "--check", "--out", str(page)]).exit_code == 0
    page.write_text(page.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    result = runner.invoke(app, ["contract-docs", "--check", "--out", str(page)])
    assert result.exit_code == 1 and "stale" in result.output
