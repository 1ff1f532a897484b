"""Printing query results as aligned tables, JSON or CSV, with a stable column order."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

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
    count = len(rows)
    out.append(f"({count} row{'s' if count != 1 else ''})")
    return "\n".join(out)


def render_result(result: dict[str, Any] | None, fmt: str) -> str:
    """Render a query result (``{"tables": [...], "message": ...}``) in ``fmt``."""
    result = result or {}
    tables = result.get("tables") or []
    message = result.get("message") or ""
    if fmt == "json":
        return json.dumps(result, indent=2, sort_keys=True)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for t in tables:
            if len(tables) > 1:
                writer.writerow([f"# {t.get('title', '')}"])
            writer.writerow(t.get("columns", []))
            writer.writerows(t.get("rows", []))
        return buffer.getvalue().rstrip("\n")
    parts = [table(t.get("columns", []), t.get("rows", []), t.get("title", "")) for t in tables]
    if message:
        parts.append(message)
    return "\n\n".join(parts)
