"""``docs/data-contract.md``, generated from ``doudi.contract`` (the contract is the source).

``doudi contract-docs`` rewrites the page; ``doudi contract-docs --check`` (and a test) fail when the
committed page no longer matches the contract.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from doudi import contract, pseudonym
from doudi.contract import TABLES, Balance, Column, ForeignKey, NotBefore, Table
from doudi.validate import PATTERN_HINTS, RULES, format_number

DOC_PATH = Path("docs") / "data-contract.md"
"""Where the page lives, relative to the repository root."""

TYPE_NAMES = {
    "str": "text",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "date": "date (YYYY-MM-DD)",
    "month": "month (YYYY-MM)",
}


def render_contract() -> str:
    """The whole Markdown page for the current contract (deterministic: same contract, same text)."""
    parts = [
        "# Data contract",
        "",
        "<!-- Generated from doudi/contract.py by `doudi contract-docs`: edit the contract, not this. -->",
        "",
        "A bureau maps its department extracts onto these tables; `doudi validate DIR` checks a folder "
        "against them and `doudi ingest DIR --out STORE` stores a validated, pseudonymized copy. This page "
        "is generated from the machine-readable contract in `doudi/contract.py`.",
        "",
        "## Conventions",
        "",
        _conventions(),
        "",
        "## Point in time",
        "",
        "Every time-varying table says when a record *happened* (its event column) and when it became "
        "*known* to the platform (`recorded_at`). Features at an as-of date T see a record only when "
        "`recorded_at < T`, whatever its event date; labels use the event date (what really happened). "
        "A record cannot be known before it happened, except where the table is known in advance.",
        "",
        "| table | happened | known | known in advance |",
        "| --- | --- | --- | --- |",
        *(f"| `{t.name}` | `{t.event}` | `{t.known}` | {'yes' if t.known_in_advance else 'no'} |"
          for t in TABLES.values() if t.known),
        "",
        "## Tables",
        "",
        "| table | required | primary key | source | description |",
        "| --- | --- | --- | --- | --- |",
        *(f"| [`{t.name}`](#{t.name}) | {'yes' if t.required else 'no'} | {_codes(t.primary_key)} | "
          f"{_cell(t.source)} | {_cell(t.description)} |" for t in TABLES.values()),
        "",
        "## What `doudi validate` checks",
        "",
        "Every violation is reported at once, as file, row (1 = the first data row), column and reason, "
        "grouped by rule. Errors make the world unusable (exit code 1); warnings are reported and the "
        "world still loads. Values of sensitive columns are never repeated in a message.",
        "",
        "| rule | meaning |",
        "| --- | --- |",
        *(f"| `{rule}` | {_cell(meaning)} |" for rule, meaning in RULES.items()),
        "",
        "## Resident ID numbers",
        "",
        _markdown(inspect.cleandoc(pseudonym.__doc__ or "").split("\n\n", 1)[1]),
        "",
    ]
    for table in TABLES.values():
        parts.extend(_table_section(table))
    return "\n".join(parts).rstrip() + "\n"


def write_contract_docs(path: Path = DOC_PATH) -> bool:
    """Write the page to ``path``; True when its content changed."""
    path = Path(path)
    text = render_contract()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def is_stale(path: Path = DOC_PATH) -> bool:
    """Whether the page at ``path`` is missing or differs from what the contract generates."""
    path = Path(path)
    return not path.exists() or path.read_text(encoding="utf-8") != render_contract()


def _table_section(table: Table) -> list[str]:
    facts = [
        f"- **Source:** {table.source}",
        f"- **Required:** {'yes' if table.required else 'no (empty when absent)'}",
        f"- **Primary key:** {_codes(table.primary_key)}",
    ]
    if table.unique:
        facts.append("- **Unique:** " + "; ".join(_codes(key) + " (when present)" for key in table.unique))
    if table.foreign_keys:
        facts.append("- **Foreign keys:** " + "; ".join(_foreign_key(fk) for fk in table.foreign_keys))
    if table.known:
        facts.append(f"- **Happened:** `{table.event}`; **known:** `{table.known}`")
    else:
        facts.append("- **Time:** static table (no event date)")
    rules = [_rule(rule) for rule in table.rules]
    if table.known and table.event and not table.known_in_advance:
        first_day = " (its first day)" if table.column(table.event).dtype == "month" else ""
        rules.append(f"`{table.known}` ≥ `{table.event}`{first_day}")
    persons = any(fk.column == "person_id" and fk.ref_table == "members" for fk in table.foreign_keys)
    if persons and "household_id" in table.column_names:
        rules.append("a person's `household_id` is the one `members` gives them")
    if any(column.semantic == "resident_id" for column in table.columns):
        rules.append("a resident ID number agrees with the row's `birth_date` and `sex`")
    if rules:
        facts.append("- **Rules:** " + "; ".join(rules))
    header = ("column", "type", "required", "nullable", "unit", "allowed / range / format", "sensitive",
              "description")
    lines = [f"### {table.name}", "", table.description, "", *facts, "", _row(header),
             _row(("---",) * len(header))]
    for column in table.columns:
        lines.append(_row((
            f"`{column.name}`", TYPE_NAMES[column.dtype], _yes(column.required), _yes(column.nullable),
            column.unit or "", _constraint(column), _yes(column.sensitive), _cell(column.description),
        )))
    lines.append("")
    return lines


def _constraint(column: Column) -> str:
    parts = []
    if column.allowed is not None:
        parts.append("one of " + ", ".join(f"`{code}`" for code in column.allowed))
    if column.ge is not None and column.le is not None:
        parts.append(f"{format_number(column.ge)} to {format_number(column.le)}")
    elif column.ge is not None:
        parts.append(f"≥ {format_number(column.ge)}")
    elif column.le is not None:
        parts.append(f"≤ {format_number(column.le)}")
    if column.semantic == "resident_id":
        parts.append("GB 11643 resident ID number (check character ISO 7064 MOD 11-2)")
    elif column.pattern is not None:
        hint = PATTERN_HINTS.get(column.pattern)
        parts.append(f"{hint} (`{column.pattern}`)" if hint else f"`{column.pattern}`")
    return _cell("; ".join(parts))


def _foreign_key(fk: ForeignKey) -> str:
    target = f"`{fk.ref_table}.{fk.ref_column}`"
    if fk.area:
        return f"`{fk.column}` → an area (village, township, county, city or province) holding a {target}"
    if fk.prefix is not None:
        return f"`{fk.column}` → the first {fk.prefix} characters of {target}"
    return f"`{fk.column}` → {target}"


def _rule(rule: NotBefore | Balance) -> str:
    if isinstance(rule, NotBefore):
        return f"`{rule.later}` ≥ `{rule.earlier}`"
    minus = " − ".join(f"`{name}`" for name in rule.minus)
    return f"`{rule.column}` = `{rule.total}` − {minus} (± {format_number(rule.tolerance)})"


def _conventions() -> str:
    doc = inspect.cleandoc(contract.__doc__ or "")
    _, _, conventions = doc.partition("Conventions:")
    return _markdown(inspect.cleandoc(conventions))


def _markdown(text: str) -> str:
    """A docstring's reST bits as Markdown: ``code`` to `code`, ``*`` bullets to ``-`` bullets."""
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("* "):
            lines.append("- " + stripped[2:])
        elif lines and lines[-1].startswith("- ") and stripped:
            lines[-1] += " " + stripped
        else:
            lines.append(stripped)
    return "\n".join(lines)


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _codes(names: tuple[str, ...]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
