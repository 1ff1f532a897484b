"""Catalog statements: ``SELECT ... FROM models|readers|...`` without a task, and ``UNION``."""

from __future__ import annotations

from typing import Any

from broker.context import Context
from broker.registry_statements import run_browse
from broker.results import Result, Table
from broker.sources import check_other_than, source_rows
from broker.statements import execute, handles
from shift import evaluate
from shift.model_registry import is_browse
from shift.ql import nodes as n
from shift.ql.vocabulary import DATASET_COLUMNS, MODEL_COLUMNS, STATE_COLUMNS
from shift.wording import count_of


async def select_rows(statement: n.Select, ctx: Context) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of a catalog SELECT."""
    kind, rows = source_rows(statement.source, ctx)
    check_other_than(statement, ctx)
    out = evaluate.select(statement, rows, dict(ctx.variables))
    all_columns = (MODEL_COLUMNS if kind == "model" else DATASET_COLUMNS) + STATE_COLUMNS
    columns = [c.value for c in statement.columns] or list(all_columns)
    return columns, out


@handles(n.Select)
async def run_select(statement: n.Select, ctx: Context) -> Result:
    """Catalog query: one table (a registry's browse table asks a worker)."""
    if is_browse(statement):
        return await run_browse(statement, ctx)
    columns, rows = await select_rows(statement, ctx)
    return Result(
        (Table.of("results", columns, rows),),
        count_of(len(rows), "row"),
        tuple(str(r.get("name")) for r in rows),
    )


@handles(n.Union)
async def run_union(statement: n.Union, ctx: Context) -> Result:
    """UNION [ALL]: the models of every part (distinct by name unless ALL)."""
    parts: list[list[dict[str, Any]]] = []
    columns: list[str] = []
    for part in statement.parts:
        result = await execute(part, ctx)
        table = result.tables[0] if result.tables else Table("", (), ())
        parts.append([dict(zip(table.columns, row, strict=True)) for row in table.rows])
        columns += [c for c in table.columns if c not in columns]
    rows = evaluate.union(parts, statement.all)
    names = tuple(str(r.get("name")) for r in rows)
    return Result((Table.of("union", columns, rows),), count_of(len(rows), "row"), names)
