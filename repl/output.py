"""Printing query results as aligned tables, JSON or CSV, with a stable column order.

Values print the same way in the table and in CSV: booleans as ``true``/``false``, lists
joined. A null is ``NULL`` in a table and an empty field in CSV (what CSV readers take for a
missing value); CSV keeps floats at full precision. JSON is the broker's answer itself. Several
tables in CSV are separated by a blank line, each opened by a ``# table: TITLE`` line (a
data cell that starts with ``#`` is quoted, so only markers start a line with ``#``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from shift.wording import count_of

FORMATS = ("table", "json", "csv")


def cell(value: Any) -> str:
    """One value as table text: NULL for None, compact floats, lists joined."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    return str(value)


def csv_cell(value: Any) -> Any:
    """One value as a CSV field: ``true``/``false``, empty for None, full-precision floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def rows_text(count: int) -> str:
    """A table's row count as its footer says it: ``3 rows``."""
    return count_of(count, "row")


def _is_numeric(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    )


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> str:
    """An aligned text table; numbers right-aligned, a row count at the end."""
    text = [[cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in text:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    numeric = [_is_numeric([row[i] for row in rows]) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return " | ".join(parts).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line(list(columns)))
    out.append("-+-".join("-" * w for w in widths))
    out.extend(line(row) for row in text)
    out.append(f"({rows_text(len(rows))})")
    return "\n".join(out)


def render_result(result: dict[str, Any] | None, fmt: str) -> str:
    """Render a query result (``{"tables": [...], "message": ...}``) in ``fmt``."""
    result = result or {}
    tables = result.get("tables") or []
    message = result.get("message") or ""
    if fmt == "json":
        return json.dumps(result, indent=2, sort_keys=True)
    if fmt == "csv":
        return "\n\n".join(_csv_table(t, marked=len(tables) > 1) for t in tables)
    parts = [table(t.get("columns", []), t.get("rows", []), t.get("title", "")) for t in tables]
    # the footer already says "(3 rows)": a message that only restates it is not repeated
    if message and not (len(tables) == 1 and message == rows_text(len(tables[0].get("rows", [])))):
        parts.append(message)
    return "\n\n".join(parts)


def _csv_table(t: dict[str, Any], marked: bool) -> str:
    buffer = io.StringIO()
    if marked:
        title = " ".join(str(t.get("title", "")).split())
        buffer.write(f"# table: {title}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(t.get("columns", []))
    for row in t.get("rows", []):
        buffer.write(_csv_line(row))
    return buffer.getvalue().rstrip("\n")


def _csv_line(row: Sequence[Any]) -> str:
    """One CSV line; a first field starting with ``#`` is quoted (only markers start with it)."""
    values = [csv_cell(v) for v in row]
    buffer = io.StringIO()
    first = values[0] if values else None
    if isinstance(first, str) and first.startswith("#"):
        buffer.write('"' + first.replace('"', '""') + '"' + ("," if len(values) > 1 else ""))
        values = values[1:]
        if not values:
            return buffer.getvalue() + "\n"
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()
