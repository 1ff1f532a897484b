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
from shift.model_registry import is_browse
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
    """A catalog query runs no task; a registry listing runs one on a worker."""
    if is_browse(statement):
        note = "one model_registry task lists the registry (and measures rows it needs)"
        body = {"statement": "registry listing", "table": statement.source.name, "tasks": 1,
                "known": 0, "to_run": 1, "models": [], "notes": [note]}  # fmt: skip
        return body, [Table.of("plan", PLAN_COLUMNS, [])]
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
    if is_halving(statement):
        return await _explain_halving(statement, ctx)
    planned, notes = await plan_statement(statement, ctx)
    known = {t.task_id: ctx.tasks.state(t.task_id) for t in planned.tasks}
    states = {k: v for k, v in known.items() if v is not None}
    body = {"statement": "task-aware query", **explain(planned, states, await ctx.tasks.timings())}
    body["notes"] = [*body["notes"], *notes]
    return body, [Table.of("plan", PLAN_COLUMNS, body["models"])]


ROUND_COLUMNS = (
    "round",
    "arms",
    "train_rows",
    "test_rows",
    "advancing",
    "embeds",
    "classifies",
    "known",
    "to_run",
    "estimated_s",
)
"""Columns of a halving search's schedule table."""


async def _explain_halving(
    statement: n.TaskSelect, ctx: Context
) -> tuple[dict[str, Any], list[Table]]:
    """A halving query: per classifier, the rounds (train and test rows, tasks known and to
    run, estimated cost) and, after a run, every model's score per round."""
    found = await resolve(statement, ctx)
    timings = await ctx.tasks.timings()
    per_model: dict[str, dict[str, Any]] = {}
    counted: set[str] = set()
    totals = {"tasks": 0, "known": 0, "to_run": 0}
    estimate: float | None = 0.0

    def cost(kind: str, model_key: str) -> float | None:
        return task_seconds(timings, kind, model_key)

    def add(seconds: float | None) -> float | None:
        nonlocal estimate
        if seconds is None or estimate is None:
            estimate = None
        else:
            estimate += seconds
        return seconds

    body_searches: list[dict[str, Any]] = []
    tables: list[Table] = []
    found_searches = halving_search.searches(statement, found.models, found.entries, ctx.racing)
    tests = found_searches[0].test_keys() if found_searches else set()
    test_total = found_searches[0].test_total() if found_searches else 0

    def plan_rows_of(plan: Any, key: str) -> int:
        if key == "train_rows":
            return int(plan.train_rows)
        return int(plan.test_rows if plan.test_rows is not None else test_total)

    for search in found_searches:
        machine = await halving_search.stored_machine(search, ctx)
        schedule = halving_search.schedule_of(search)
        rounds = []
        for plan, work in zip(
            schedule.rounds, halving_search.round_tasks(search, machine), strict=True
        ):
            known = to_run = 0
            seconds: float | None = 0.0
            for payload in work.embeds:
                if payload is not None:
                    task_id = payload.task().task_id
                    if task_id in counted:
                        continue
                    counted.add(task_id)
                    entry = per_model.setdefault(payload.model.name, _plan_row(payload))
                    entry["tasks"] += 1
                    rows_key = "test_rows" if payload.dataset.key in tests else "train_rows"
                    entry[rows_key] = max(entry[rows_key], plan_rows_of(plan, rows_key))
                    if ctx.tasks.state(task_id) == "succeeded":
                        known += 1
                        entry["known"] += 1
                        continue
                    entry["to_run"] += 1
                step = add(cost("embed", payload.model.key if payload else ""))
                if payload is not None:
                    entry = per_model[payload.model.name]
                    entry["estimated_s"] = (
                        None
                        if step is None or entry["estimated_s"] is None
                        else entry["estimated_s"] + step
                    )
                to_run += 1
                seconds = None if step is None or seconds is None else seconds + step
            fresh = work.classifies - work.known_classifies
            for _ in range(fresh):
                step = add(cost("classify", ""))
                seconds = None if step is None or seconds is None else seconds + step
            known += work.known_classifies
            to_run += fresh
            totals["tasks"] += known + to_run
            totals["known"] += known
            totals["to_run"] += to_run
            test_rows = plan.test_rows if plan.test_rows is not None else schedule.test_rows
            rounds.append(
                {
                    "round": plan.index,
                    "arms": work.arms,
                    "train_rows": plan.train_rows,
                    "test_rows": test_rows,
                    "advancing": "final" if plan.final else plan.advancing,
                    "embeds": len(work.embeds),
                    "classifies": work.classifies,
                    "known": known,
                    "to_run": to_run,
                    "estimated_s": seconds,
                }
            )
        scores = halving_search.stored_scores(search, machine)
        body_searches.append(
            {
                "classifier": search.classifier,
                "schedule": {**schedule.to_dict(), "rounds": rounds},
                "scores": scores,
            }
        )
        tables.append(Table.of(f"schedule ({search.classifier})", ROUND_COLUMNS, rounds))
        if scores:
            tables.append(Table.of(f"scores ({search.classifier})", list(scores[0]), scores))
    plan_rows = [{**entry, "estimated_s": entry.get("estimated_s")} for entry in per_model.values()]
    body: dict[str, Any] = {
        "statement": "task-aware query (successive halving)",
        **totals,
        "estimated_s": estimate,
        "models": plan_rows,
        "halving": body_searches,
        "notes": [
            *found.notes,
            "halving: rounds whose models are not known yet count the planned number of "
            "models; racing may keep more (docs/halving.md)",
        ],
    }
    return body, [Table.of("plan", PLAN_COLUMNS, plan_rows), *tables]


def _plan_row(payload: Any) -> dict[str, Any]:
    return {
        "model": payload.model.name,
        "tasks": 0,
        "known": 0,
        "to_run": 0,
        "train_rows": 0,
        "test_rows": 0,
        "estimated_s": 0.0,
    }


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


def task_seconds(
    timings: Mapping[tuple[str, str], float], kind: str, model_key: str
) -> float | None:
    """A model's measured seconds of one task of ``kind`` (any model's mean when it has
    none yet; ``None`` when the kind never ran)."""
    return timings.get((kind, model_key), timings.get((kind, "")))


def forward_row_seconds(timings: Mapping[tuple[str, str], float], model_key: str) -> float | None:
    """A model's measured forward seconds per row (any model's mean when it has none yet)."""
    return task_seconds(timings, EMBED_ROW, model_key)
