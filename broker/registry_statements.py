"""Model registries on the broker: browse (``SELECT ... FROM timm_registry``) and import
(``REGISTER MODELS FROM timm WHERE ...``).

The broker never imports timm: one ``model_registry`` task asks a worker for the rows
(listed and measured there, see :mod:`workers.model_registry`). An import then checks every
row against the catalog (:func:`shift.model_registry.plan_import`) and registers nothing if a
name clashes; the rows it registers are ready at once with the worker's measurements, and
their weights are fetched when a query first embeds with them.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from broker.catalog import EntryStatus
from broker.context import Context
from broker.results import Result, Table
from broker.statements import handles
from shift import model_registry as mr
from shift.errors import CatalogError
from shift.ql import nodes as n
from shift.ql.vocabulary import MODEL_COLUMNS


async def registry_rows(statement: mr.Query, ctx: Context) -> dict[str, Any]:
    """The worker's answer to a browse or import statement (see ``RegistryPayload``)."""
    spec = mr.RegistryPayload(statement, secrets.token_hex(8)).task()
    answer = (await ctx.tasks.run([spec]))[spec.task_id]
    if not isinstance(answer, dict) or not isinstance(answer.get("rows"), list):
        raise CatalogError(f"the worker's registry answer is malformed: {answer!r:.200}")
    return answer


async def run_browse(statement: n.Select, ctx: Context) -> Result:
    """``SELECT ... FROM timm_registry|huggingface_registry``: list without registering."""
    answer = await registry_rows(statement, ctx)
    columns, rows = mr.project(statement, answer["rows"])
    registry = mr.registry_of(statement)
    said = f"{len(rows)} row(s) of {answer.get('listed', '?')} in the {registry} registry"
    if answer.get("measured"):
        said += f"; measured {answer['measured']} architecture(s) without weights"
    return Result(
        (Table.of(f"{registry} registry", columns, rows),),
        said,
        tuple(str(r.get("name")) for r in rows),
    )


@handles(n.RegisterModels)
async def run_register_models(statement: n.RegisterModels, ctx: Context) -> Result:
    """``REGISTER MODELS FROM registry [WHERE ...] [LIMIT n]``: import every matching row.

    Raises:
        CatalogError: nothing matched, or a name is registered with another spec (nothing
            is registered then).
    """
    started = time.monotonic()
    answer = await registry_rows(statement, ctx)
    registered = {
        e.spec.name: e.spec.to_json()
        for e in ctx.catalog.entries("model")
        if e.status is not EntryStatus.FAILED
    }
    plan = mr.plan_import(statement.registry, answer["rows"], registered)
    entries = []
    for spec, measured in plan.new:
        entry, _ = await ctx.catalog.register("model", spec, measured)
        entries.append(entry)
    names = [spec.name for spec, _ in plan.new] + list(plan.same)
    rows = [ctx.catalog.get("model", name).row for name in names]
    seconds = time.monotonic() - started
    said = (
        f"registered {len(plan.new)} model(s) from {statement.registry}"
        + (f", {len(plan.same)} already registered" if plan.same else "")
        + f" in {seconds:.1f} s (measured {answer.get('measured', 0)} architecture(s) "
        f"without weights, the rest from the cache); weights are fetched when first embedded"
    )
    return Result((Table.of("models", MODEL_COLUMNS, rows),), said, tuple(names))
