"""FINETUNE on the broker: one ``finetune`` task per model, results registered as models.

``FINETUNE models WITH datasets (options) [WAIT]`` resolves the models (a table, a list or
a variable) and the training sets, resolves the hyperparameters per model family
(:mod:`shift.finetuning`), runs the tasks (content-hashed: a repeated statement reuses
finished fine-tunes; a worker that dies mid-way is replaced by another that resumes from the
last checkpoint) and registers every result in the catalog as a model tagged
``finetuned`` — searchable like any other, and found by ``WHERE FINETUNED``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from broker.catalog import CatalogConflict, EntryStatus
from broker.context import Context
from broker.explain import Step, explain_steps, explains, forward_row_seconds
from broker.results import Result, Table
from broker.sources import source_rows
from broker.statements import handles
from shift import evaluate
from shift.errors import CatalogError, SchedulerError, ShiftError
from shift.finetuning import (
    estimate_seconds,
    finetune_task,
    finetuned_name,
    finetuned_spec,
    hyperparameters,
)
from shift.left_out import left_out_note
from shift.planner import DatasetEntry
from shift.ql import nodes as n
from shift.specs import ModelSpec
from shift.tasks import TaskSpec

RESULT_COLUMNS = (
    "name", "base_model", "val_acc", "test_acc", "best_epoch", "epochs", "learning_rate",
    "batch_size", "train_rows", "val_rows", "test_rows", "resumed_from_epoch", "seconds",
)  # fmt: skip
"""Columns of FINETUNE's result table."""


@dataclass(frozen=True)
class Planned:
    """One model's fine-tune."""

    model: ModelSpec
    hparams: dict[str, Any]
    task: TaskSpec


@dataclass(frozen=True)
class FinetunePlan:
    """The fine-tunes of one statement."""

    planned: tuple[Planned, ...]
    datasets: tuple[str, ...]
    test: str | None
    train_rows: int
    test_rows: int
    notes: tuple[str, ...]


async def _entry(ctx: Context, name: str) -> DatasetEntry:
    entry = ctx.catalog.get("dataset", name)
    await ctx.catalog.settle("dataset", [name])
    if entry.status is EntryStatus.FAILED:
        raise CatalogError(f"dataset {name!r} could not be read: {entry.error}")
    return DatasetEntry(entry.spec, int((entry.measured or {}).get("size") or 0))  # type: ignore[arg-type]


async def plan_finetune(statement: n.Finetune, ctx: Context) -> FinetunePlan:
    """Resolve models, datasets and hyperparameters (nothing is run).

    Raises:
        CatalogError: an unknown or unreadable model or dataset (with the closest name).
        SchedulerError: a mutation after WITH, an invalid option, or no model left.
    """
    names = []
    for item in statement.datasets:
        if isinstance(item, n.Mutation):
            raise SchedulerError(
                "FINETUNE trains on registered datasets; CHANGE ... TO is for ranking "
                "queries. Register the relabelled data as a dataset to fine-tune on it"
            )
        names.append(item.name)
    train = [await _entry(ctx, name) for name in names]
    options = {p.name: p.value.value for p in statement.params}
    test_name = options.get("test")
    test = None if test_name is None else await _entry(ctx, str(test_name))
    modalities = {ctx.catalog.get("dataset", d).row["modality"] for d in names} - {None}
    if test is not None and modalities:
        tested = ctx.catalog.get("dataset", str(test_name)).row["modality"]
        if tested not in modalities:
            raise SchedulerError(
                f"test dataset {test_name!r} holds {tested} data; the training data is "
                f"{'/'.join(sorted(modalities))}"
            )
    _, rows = source_rows(statement.models, ctx, expect="model")
    pool = n.Select((), statement.models, None, (), None, None)
    chosen = evaluate.select(pool, rows, dict(ctx.variables))
    await ctx.catalog.settle("model", [r["name"] for r in chosen])
    planned, failed, other = [], [], {}
    for row in chosen:
        entry = ctx.catalog.get("model", row["name"])
        if entry.status is EntryStatus.FAILED:
            failed.append(row["name"])
            continue
        if modalities and row["modality"] not in modalities:
            other.setdefault(str(row["modality"]), []).append(row["name"])
            continue
        model: ModelSpec = entry.spec  # type: ignore[assignment]
        hparams = hyperparameters(model, options)
        task = finetune_task(model, train, test, hparams)
        planned.append(Planned(model, hparams, task))
    data = "/".join(sorted(modalities)) or None
    note = left_out_note("model", statement.models, None, None, failed, other, data)
    notes = [note] if note else []
    if not planned:
        raise SchedulerError("FINETUNE has no model to train" + "".join(f"; {m}" for m in notes))
    return FinetunePlan(
        tuple(planned),
        tuple(names),
        None if test_name is None else str(test_name),
        sum(e.rows for e in train),
        0 if test is None else test.rows,
        tuple(notes),
    )


async def _register(ctx: Context, plan: FinetunePlan, item: Planned, result: Any) -> dict[str, Any]:
    name = finetuned_name(item.model.name, plan.datasets, item.task.task_id)
    spec = finetuned_spec(item.model, name, result, plan.datasets, plan.test)
    try:
        entry, _ = await ctx.catalog.register("model", spec)
    except CatalogConflict:
        entry = ctx.catalog.get("model", name)
        if entry.spec.key != spec.key:
            raise
    await entry.ready.wait()
    if entry.status is EntryStatus.FAILED:
        raise CatalogError(f"fine-tuned model {name!r} could not be registered: {entry.error}")
    return {
        "name": name,
        "base_model": item.model.name,
        **{k: result.get(k) for k in RESULT_COLUMNS if k in result},
        "learning_rate": item.hparams["learning_rate"],
        "batch_size": item.hparams["batch_size"],
    }


@handles(n.Finetune)
async def run_finetune(statement: n.Finetune, ctx: Context) -> Result:
    """FINETUNE: fine-tune every model and register the results as catalog models."""
    plan = await plan_finetune(statement, ctx)
    outcomes = await asyncio.gather(
        *(ctx.tasks.run([p.task]) for p in plan.planned), return_exceptions=True
    )
    rows, failures = [], []
    for item, outcome in zip(plan.planned, outcomes, strict=True):
        try:
            if isinstance(outcome, BaseException):
                raise outcome
            rows.append(await _register(ctx, plan, item, outcome[item.task.task_id]))
        except ShiftError as error:
            failures.append(f"{item.model.name}: {error}")
    if failures:
        done = f"; fine-tuned and registered: {', '.join(r['name'] for r in rows)}" if rows else ""
        raise SchedulerError(f"fine-tuning failed for {'; '.join(failures)}{done}")
    data = ", ".join(plan.datasets)
    message = f"fine-tuned {len(rows)} model(s) on {data} and registered them (WHERE FINETUNED)"
    names = tuple(r["name"] for r in rows)
    table = Table.of("fine-tuned models", RESULT_COLUMNS, rows)
    return Result((table,), "; ".join([message, *plan.notes]), names)


STEP_COLUMNS = (
    "model", "epochs", "learning_rate", "batch_size", "train_rows", "test_rows", "task",
    "state", "estimated_s",
)  # fmt: skip


@explains(n.Finetune)
async def explain_finetune(
    statement: n.Finetune, ctx: Context
) -> tuple[dict[str, Any], list[Table]]:
    """FINETUNE's tasks, whether they already ran, and their estimated cost."""
    plan = await plan_finetune(statement, ctx)
    timings = await ctx.tasks.timings()
    steps = [
        Step(
            {
                "model": p.model.name,
                "epochs": p.hparams["epochs"],
                "learning_rate": p.hparams["learning_rate"],
                "batch_size": p.hparams["batch_size"],
                "train_rows": plan.train_rows,
                "test_rows": plan.test_rows,
            },
            p.task,
            estimate_seconds(
                plan.train_rows,
                plan.test_rows,
                p.hparams,
                forward_row_seconds(timings, p.model.key),
            ),
        )
        for p in plan.planned
    ]
    body = explain_steps("fine-tuning", steps, ctx)
    body["notes"] = list(plan.notes)
    if body["estimated_s"] is None:
        body["notes"].append(
            "cost unknown: estimates scale a model's measured forward time per row, and no "
            "model has run an embed task yet"
        )
    return body, [Table.of("plan", STEP_COLUMNS, body["steps"])]
