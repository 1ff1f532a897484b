"""EXPLAIN: what a statement would run and what it would cost, without running it.

Every statement kind that runs tasks has an explainer (registered with :func:`explains`)
returning the plan as a JSON body plus the tables of its text form. Every body holds
``statement``, ``tasks``, ``known`` (already succeeded, so free), ``to_run``,
``estimated_s`` (``None`` when no past timings allow an estimate) and ``notes``.

Costs come from the broker's past tasks: mean seconds per task kind and model, and, for the
kinds that train (``task2vec``, ``finetune``), the model's measured forward seconds per row
(:data:`EMBED_ROW`, from its ``embed`` tasks) scaled by the rows and passes they make.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from broker import halving_search
from broker.context import Context
from broker.results import NotSupported, Result, Table
from broker.search_statements import is_halving, plan_statement, resolve
from broker.sources import source_rows
from broker.statements import handles
from shift.planner import explain
from shift.ql import nodes as n
from shift.tasks import TaskSpec

EMBED_ROW = "embed_row"
"""Timings key of a model's mean forward seconds per row (from its ``embed`` tasks)."""

Explainer = Callable[[Any, Context], Awaitable[tuple[dict[str, Any], list[Table]]]]
EXPLAINERS: dict[type, Explainer] = {}
"""Statement node type -> explainer."""


def explains(*types: type) -> Callable[[Explainer], Explainer]:
    """Register an explainer for statement node types."""

    def register(explainer: Explainer) -> Explainer:
        for t in types:
            EXPLAINERS[t] = explainer
        return explainer

    return register


@handles(n.Explain)
async def run_explain(statement: n.Explain, ctx: Context) -> Result:
    """EXPLAIN [JSON]: the plan (tasks known and to run, estimated cost) without running."""
    inner = statement.statement
    explainer = EXPLAINERS.get(type(inner))
    if explainer is None:
        raise NotSupported(f"EXPLAIN of {inner.TAG} statements")
    body, tables = await explainer(inner, ctx)
    if statement.json:
        return Result((), json.dumps(body, indent=2, sort_keys=True))
    estimate = body["estimated_s"]
    cost = "unknown (no past timings)" if estimate is None else f"~{estimate:.1f} s"
    message = (
        f"{body['statement']}: {body['tasks']} task(s), {body['known']} known, "
        f"{body['to_run']} to run, estimated cost {cost}"
    )
    return Result(tuple(tables), "; ".join([message, *body["notes"]]))


PLAN_COLUMNS = ("model", "tasks", "known", "to_run", "train_rows", "test_rows", "estimated_s")
"""Columns of the plan table of a ranking query."""


@explains(n.Select)
async def explain_select(statement: n.Select, ctx: Context) -> tuple[dict[str, Any], list[Table]]:
    """A catalog query runs no task."""
    kind, rows = source_rows(statement.source, ctx)
    body: dict[str, Any] = {
        "statement": "catalog query",
        "table": kind + "s",
        "rows_scanned": len(rows),
        "tasks": 0,
        "known": 0,
        "to_run": 0,
        "estimated_s": 0.0,
        "models": [],
        "notes": [],
    }
    return body, [Table.of("plan", PLAN_COLUMNS, [])]


@explains(n.TaskSelect)
async def explain_task_select(
    statement: n.TaskSelect, ctx: Context
) -> tuple[dict[str, Any], list[Table]]:
    """A ranking query: its embed and classify tasks per model, and halving's schedule."""
    planned, notes = await plan_statement(statement, ctx)
    known = {t.task_id: ctx.tasks.state(t.task_id) for t in planned.tasks}
    states = {k: v for k, v in known.items() if v is not None}
    body = {"statement": "task-aware query", **explain(planned, states, await ctx.tasks.timings())}
    body["notes"] = [*body["notes"], *notes]
    tables = [Table.of("plan", PLAN_COLUMNS, body["models"])]
    if is_halving(statement):
        body["halving"] = await _explain_halving(statement, ctx)
    for search in body.get("halving", []):
        title = f"schedule ({search['classifier']})"
        rounds = search["schedule"]["rounds"]
        tables.append(Table.of(title, list(rounds[0]) if rounds else [], rounds))
        if search["scores"]:
            scores = search["scores"]
            tables.append(Table.of(f"scores ({search['classifier']})", list(scores[0]), scores))
    return body, tables


async def _explain_halving(statement: n.TaskSelect, ctx: Context) -> list[dict[str, Any]]:
    """Per classifier: the halving schedule and, after a run, every model's loss per round."""
    found = await resolve(statement, ctx)
    out = []
    for search in halving_search.searches(statement, found.models, found.entries):
        out.append(
            {
                "classifier": search.classifier,
                "schedule": halving_search.schedule_of(search),
                "scores": await halving_search.stored_scores(search, ctx),
            }
        )
    return out


# ---- task lists (SELECT vec, FINETUNE) -------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One planned task of a statement: its row in the plan table and its estimated cost.

    Attributes:
        row: What the task is for (e.g. ``{"model": ..., "dataset": ...}``).
        spec: The task.
        estimated_s: Its estimated seconds when it must run (``None``: unknown).
    """

    row: Mapping[str, Any]
    spec: TaskSpec
    estimated_s: float | None


def explain_steps(statement: str, steps: Sequence[Step], ctx: Context) -> dict[str, Any]:
    """The EXPLAIN body of a statement that runs one task per step (see the module doc)."""
    rows = []
    total: float | None = 0.0
    known = 0
    for step in steps:
        state = ctx.tasks.state(step.spec.task_id)
        done = state == "succeeded"
        known += done
        cost = 0.0 if done else step.estimated_s
        if cost is None:
            total = None
        elif total is not None:
            total += cost
        rows.append(
            {**step.row, "task": step.spec.kind, "state": state or "new", "estimated_s": cost}
        )
    return {
        "statement": statement,
        "tasks": len(steps),
        "known": known,
        "to_run": len(steps) - known,
        "estimated_s": total,
        "steps": rows,
        "notes": [],
    }


def forward_row_seconds(timings: Mapping[tuple[str, str], float], model_key: str) -> float | None:
    """A model's measured forward seconds per row (any model's mean when it has none yet)."""
    return timings.get((EMBED_ROW, model_key), timings.get((EMBED_ROW, "")))
