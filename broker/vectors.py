"""``SELECT vec FROM <datasets> WHERE probe = "model"``: Task2Vec distances between datasets.

The probe model comes from the catalog; the datasets from ``readers``, a list of dataset
names or a variable, filtered by the rest of the WHERE. Every dataset must have the probe's
modality (a mixed set is an error with the condition that fixes it, never a silent drop).
One content-hashed ``task2vec`` task per dataset (``workers.task2vec``) computes its
embedding, so a repeated query runs nothing; the answer is the distance matrix of
:func:`shift.task_distances.distance_matrix` with the datasets in catalog (or listed) order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from broker.catalog import EntryStatus
from broker.context import Context
from broker.explain import Step, explain_steps, explains, forward_row_seconds
from broker.results import Result, Table
from broker.sources import probe_name, source_rows, variable
from broker.statements import handles
from shift import evaluate
from shift.errors import CatalogError
from shift.left_out import left_out_note
from shift.planner import DatasetEntry
from shift.ql import nodes as n
from shift.specs import ModelSpec
from shift.task_distances import (
    SAMPLE_ROWS,
    distance_matrix,
    estimate_seconds,
    sample_size,
    task2vec_task,
)
from shift.tasks import TaskSpec

PLAN_COLUMNS = ("dataset", "sample_rows", "task", "state", "estimated_s")
"""Columns of the plan table of ``EXPLAIN SELECT vec``."""

DECIMALS = 6
"""Decimals of the distances in the result table."""


@dataclass(frozen=True)
class VecPlan:
    """A ``SELECT vec``'s probe, datasets (in order) and one task per dataset."""

    probe: ModelSpec
    names: tuple[str, ...]
    entries: tuple[DatasetEntry, ...]
    tasks: tuple[TaskSpec, ...]
    notes: tuple[str, ...] = ()


async def _probe(name: str, ctx: Context) -> ModelSpec:
    """The probe model's spec, once measured.

    Raises:
        CatalogError: an unknown name (with the closest model) or a model that failed to load.
    """
    entry = ctx.catalog.get("model", name)
    await ctx.catalog.settle("model", [name])
    if entry.status is EntryStatus.FAILED:
        raise CatalogError(f"probe model {name!r} could not be loaded: {entry.error}")
    return entry.spec  # type: ignore[return-value]


def _dataset_names(source: n.Source, ctx: Context) -> list[str]:
    """Names of the datasets a FROM reads, in the order given (catalog order for a table).

    Raises:
        CatalogError: a model table, a model name, an unknown dataset or variable.
    """
    _, rows = source_rows(source, ctx, expect="dataset")
    if isinstance(source, n.Table):
        return [r["name"] for r in rows]
    if isinstance(source, n.Variable):
        return list(dict.fromkeys(variable(ctx, source.name)))
    return list(dict.fromkeys(str(v.value) for v in source.names))


async def plan_vec(statement: n.VecSelect, ctx: Context, sample_rows: int = SAMPLE_ROWS) -> VecPlan:
    """Resolve the probe and the datasets and build the tasks (nothing is run).

    Raises:
        CatalogError: an unknown or failed probe or dataset, no dataset left by the WHERE,
            a dataset of another modality than the probe, or one with fewer than 2 rows.
            (Datasets that failed to register are left out of ``FROM readers`` with a
            note; named ones fail the statement.)
    """
    models = {r["name"] for r in ctx.catalog.rows("model")}
    probe = await _probe(probe_name(statement.probe, models, ctx.variables), ctx)
    names = _dataset_names(statement.source, ctx)
    await ctx.catalog.settle("dataset", names)
    chosen = set(names)
    rows = [r for r in ctx.catalog.rows("dataset") if r["name"] in chosen]
    if not isinstance(statement.source, n.Table):
        by_name = {r["name"]: r for r in rows}
        rows = [by_name[name] for name in names]
    query = n.Select((), n.Table("readers"), statement.where)
    kept = evaluate.select(query, rows, dict(ctx.variables))
    if not kept:
        raise CatalogError(
            f"no dataset left to compare: the WHERE keeps none of {len(rows)} dataset(s)"
        )
    want = probe.modality.value
    whole_table = isinstance(statement.source, n.Table)
    entries, used, failed = [], [], []
    for row in kept:
        name = row["name"]
        entry = ctx.catalog.get("dataset", name)
        if entry.status is EntryStatus.FAILED and whole_table:
            failed.append(name)
            continue
        if entry.status is EntryStatus.FAILED:
            raise CatalogError(f"dataset {name!r} could not be read: {entry.error}")
        if row["modality"] != want:
            raise CatalogError(
                f"dataset {name!r} is {row['modality']} data but the probe {probe.name!r} is a "
                f"{want} model; compare datasets of the probe's modality "
                f"(add AND modality = '{want}')"
            )
        size = int((entry.measured or {}).get("size") or 0)
        found = DatasetEntry(entry.spec, size)  # type: ignore[arg-type]
        if found.rows < 2:
            raise CatalogError(
                f"dataset {name!r} has {found.rows} row(s); Task2Vec needs at least 2"
            )
        entries.append(found)
        used.append(name)
    note = left_out_note("dataset", statement.source, statement.where, None, failed, {}, want)
    notes = [note] if note else []
    if not entries:
        raise CatalogError(f"no dataset left to compare: {'; '.join(notes)}")
    tasks = tuple(task2vec_task(probe, e, sample_rows) for e in entries)
    return VecPlan(probe, tuple(used), tuple(entries), tasks, tuple(notes))


def distance_table(probe: str, names: Sequence[str], distances: np.ndarray) -> Table:
    """The result table: one row per dataset, one column per dataset, rounded distances."""
    rows = tuple(
        (name, *(round(float(d), DECIMALS) for d in distances[i])) for i, name in enumerate(names)
    )
    return Table(f"task2vec distances (probe {probe})", ("dataset", *names), rows)


def _closest(names: Sequence[str], distances: np.ndarray) -> str:
    if len(names) < 2:
        return "one dataset: nothing to compare"
    upper = np.triu_indices(len(names), k=1)
    best = int(np.argmin(distances[upper]))
    i, j = int(upper[0][best]), int(upper[1][best])
    return f"closest pair: {names[i]} and {names[j]} ({distances[i, j]:.4f})"


@handles(n.VecSelect)
async def run_vec(statement: n.VecSelect, ctx: Context) -> Result:
    """SELECT vec: the Task2Vec distance matrix of the datasets under the probe."""
    planned = await plan_vec(statement, ctx)
    results = await ctx.tasks.run(planned.tasks)
    embeddings: list[Any] = [
        np.asarray(results[t.task_id]["embedding"], dtype=np.float64) for t in planned.tasks
    ]
    distances = distance_matrix(embeddings)
    sampled = sorted({int(results[t.task_id]["sample_rows"]) for t in planned.tasks})
    message = (
        f"Task2Vec distances between {len(planned.names)} dataset(s), probe "
        f"{planned.probe.name}, {'/'.join(map(str, sampled))} sampled row(s) per dataset; "
        f"{_closest(planned.names, distances)}"
    )
    table = distance_table(planned.probe.name, planned.names, distances)
    return Result((table,), "; ".join([message, *planned.notes]), planned.names)


@explains(n.VecSelect)
async def explain_vec(statement: n.VecSelect, ctx: Context) -> tuple[dict[str, Any], list[Table]]:
    """SELECT vec: one task2vec task per dataset, costed from the probe's forward timings."""
    planned = await plan_vec(statement, ctx)
    timings = await ctx.tasks.timings()
    per_row = forward_row_seconds(timings, planned.probe.key)
    steps = []
    for name, entry, task in zip(planned.names, planned.entries, planned.tasks, strict=True):
        rows = sample_size(entry.rows)
        steps.append(
            Step({"dataset": name, "sample_rows": rows}, task, estimate_seconds(rows, per_row))
        )
    body = explain_steps("task2vec distances", steps, ctx)
    body["probe"] = planned.probe.name
    body["notes"].extend(planned.notes)
    if body["estimated_s"] is None:
        body["notes"].append(
            f"no past timings of {planned.probe.name} to estimate from (any query that "
            "embeds a dataset with it measures its forward seconds per row)"
        )
    return body, [Table.of("plan", PLAN_COLUMNS, body["steps"])]


__all__ = ["PLAN_COLUMNS", "VecPlan", "distance_table", "explain_vec", "plan_vec", "run_vec"]
