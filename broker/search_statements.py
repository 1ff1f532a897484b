"""Task-aware search: ``SELECT ... TRAINED ON ... TESTED ON ... CLASSIFIED BY ...``.

:func:`resolve` turns the statement into candidate models and dataset entries (nothing
runs); the exhaustive search plans every evaluation (:func:`shift.planner.plan`) and hands
them to the evaluator; ``CHUNK``/``BUDGET`` hands the same evaluator to successive-halving
machines (:mod:`broker.halving_search`). ``RANK`` is :mod:`broker.rank_statements`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from broker import halving_search
from broker.catalog import EntryStatus
from broker.context import Context
from broker.evaluator import dataset_sizes
from broker.results import Result, Table
from broker.sources import check_other_than, source_rows
from broker.statements import handles
from shift import evaluate
from shift.errors import CatalogError
from shift.left_out import left_out_note
from shift.methods import CLASSIFIERS
from shift.planner import RESULT_COLUMNS, DatasetEntry, Plan, dataset_names, plan, rankings
from shift.ql import nodes as n
from shift.ql.vocabulary import MODEL_COLUMNS
from shift.specs import ModelSpec
from shift.ties import break_ties
from shift.wording import count_of


@dataclass(frozen=True)
class Resolved:
    """A task-aware query's candidate models and dataset entries, and what was left out."""

    models: tuple[ModelSpec, ...]
    entries: dict[str, DatasetEntry]
    notes: tuple[str, ...]


async def resolve(statement: n.TaskSelect | n.Rank, ctx: Context) -> Resolved:
    """Resolve datasets and candidate models (nothing is run).

    Raises:
        CatalogError: an unknown name (closest match given), a dataset that could not be
            read, or a FROM that names datasets.
    """
    catalog = ctx.catalog
    used = list(dict.fromkeys(dataset_names(statement.train) + dataset_names(statement.test)))
    for name in used:
        catalog.get("dataset", name)
    await catalog.settle("dataset", used)
    entries = {}
    for name in used:
        entry = catalog.get("dataset", name)
        if entry.status is EntryStatus.FAILED:
            raise CatalogError(f"dataset {name!r} could not be read: {entry.error}")
        size = int((entry.measured or {}).get("size") or 0)
        entries[name] = DatasetEntry(entry.spec, size)  # type: ignore[arg-type]
    modalities = _one_modality(statement, ctx, used)
    _check_labels(statement, ctx)
    kind, rows = source_rows(statement.source, ctx)
    if kind != "model":
        raise CatalogError("a task-aware query ranks models; FROM names datasets")
    check_other_than(statement, ctx)
    await catalog.settle("model", [r["name"] for r in rows])
    rows = source_rows(statement.source, ctx)[1]
    pool = n.Select((), statement.source, statement.where, (), None, statement.other_than)
    candidates = evaluate.select(pool, rows, dict(ctx.variables))
    chosen: list[ModelSpec] = []
    failed: list[str] = []
    other: dict[str, list[str]] = {}
    for row in candidates:
        entry = catalog.get("model", row["name"])
        if entry.status is EntryStatus.FAILED:
            failed.append(row["name"])
        elif modalities and row["modality"] not in modalities:
            other.setdefault(str(row["modality"]), []).append(row["name"])
        else:
            chosen.append(entry.spec)  # type: ignore[arg-type]
    data = "/".join(sorted(modalities)) or None
    note = left_out_note(
        "model", statement.source, statement.where, statement.other_than, failed, other, data
    )
    return Resolved(tuple(chosen), entries, (note,) if note else ())


def _names(names: Sequence[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _one_modality(statement: Any, ctx: Context, used: Sequence[str]) -> set[str]:
    """The modality every dataset of the statement shares.

    Raises:
        CatalogError: the training and test data are of different modalities (no model
            could read both), naming each dataset's.
    """
    found = {name: ctx.catalog.get("dataset", name).row["modality"] for name in used}
    modalities = set(found.values()) - {None}
    if len(modalities) > 1:
        listed = ", ".join(f"{name!r} is {modality}" for name, modality in found.items())
        raise CatalogError(
            f"the query mixes {' and '.join(sorted(modalities))} data ({listed}); a model "
            "reads one modality, so train and test on datasets of the same one"
        )
    return modalities


def _check_labels(statement: Any, ctx: Context) -> None:
    """Every test set shares at least one label with the training data.

    Raises:
        CatalogError: a test set none of whose labels occur in the training sets (every
            proxy would get every row wrong).
    """
    train: set[str] = set()
    for name in dataset_names(statement.train):
        listed = _classes(ctx, name)
        if not listed:
            return
        train |= {str(c) for c in listed}
    for item in statement.test:
        if isinstance(item, n.Mutation) or not train:
            continue
        labels = {str(c) for c in _classes(ctx, item.name)}
        if labels and not labels & train:
            raise CatalogError(
                f"no label of test set {item.name!r} ({_names(sorted(labels))}) occurs in the "
                f"training data ({_names(sorted(train))}); test on a dataset with the same labels"
            )


def _classes(ctx: Context, name: str) -> list[Any]:
    """A dataset's labels when its measurement lists all of them (else none: not checked)."""
    measured = ctx.catalog.get("dataset", name).measured or {}
    classes = measured.get("classes")
    if not isinstance(classes, list) or len(classes) != measured.get("num_classes"):
        return []
    return classes


async def plan_statement(statement: n.TaskSelect, ctx: Context) -> tuple[Plan, list[str]]:
    """Resolve datasets and candidate models and plan the exhaustive tasks (nothing runs)."""
    found = await resolve(statement, ctx)
    return plan(statement, found.models, found.entries), list(found.notes)


def is_halving(statement: n.TaskSelect) -> bool:
    """True when the statement asks for successive halving (``CHUNK`` or ``BUDGET``)."""
    return statement.chunk is not None or statement.budget is not None


def _ranking_columns(statement: n.TaskSelect) -> list[str]:
    """The scores (with ``eliminated_in`` for halving, and ``tied``); ``*`` adds every
    catalog column of the model after them."""
    asked = [c.value for c in statement.columns]
    extra = [*(["eliminated_in"] if is_halving(statement) else []), "tied"]
    scores = [*RESULT_COLUMNS, *extra]
    if not asked:
        return scores + [c for c in MODEL_COLUMNS if c not in scores]
    return asked + [c for c in scores if c not in asked]


def _tables(
    statement: n.TaskSelect, ctx: Context, ranked: Sequence[tuple[str, Sequence[dict[str, Any]]]]
) -> tuple[tuple[Table, ...], tuple[str, ...]]:
    """One table per classifier: ties ordered by :data:`shift.ties.TIE_RULE` and marked,
    then ``LIMIT``."""
    catalog_rows = {r["name"]: r for r in ctx.catalog.rows("model")}
    sizes = {name: row.get("num_params") for name, row in catalog_rows.items()}
    columns = _ranking_columns(statement)
    tables = []
    first: list[dict[str, Any]] = []
    for title, found in ranked:
        rows = break_ties(found, statement.order.column.value, sizes)
        rows = rows[: statement.limit] if statement.limit is not None else rows
        first = first or rows
        rows = [{**catalog_rows.get(r["name"], {}), **r} for r in rows]
        tables.append(Table.of(title, columns, rows))
    return tuple(tables), tuple(r["name"] for r in first)


async def rank_exhaustively(statement: n.TaskSelect, ctx: Context) -> Result:
    """Score every candidate on every row: embed everything, then every classify."""
    found = await resolve(statement, ctx)
    planned = plan(statement, found.models, found.entries)
    await ctx.evaluator.embed(planned.embed_payloads)
    sizes = dataset_sizes(found.entries)
    answers = await asyncio.gather(
        *(ctx.evaluator.classify(c.payload, sizes) for c in planned.classifies)
    )
    results = {c.spec.task_id: a for c, a in zip(planned.classifies, answers, strict=True)}
    # LIMIT is applied after ties are ordered (a tie at the cut goes by the tie rule)
    ranked = rankings(replace(statement, limit=None), planned, results)
    tables, names = _tables(statement, ctx, [(r.title, r.rows) for r in ranked])
    message = (
        f"{count_of(len(planned.models), 'model')} ranked on {count_of(len(planned.tasks), 'task')}"
    )
    return Result(tables, "; ".join([message, *planned.notes, *found.notes]), names)


async def rank_by_halving(statement: n.TaskSelect, ctx: Context) -> Result:
    """Successive halving: one machine per classifier, eliminated models below survivors."""
    found = await resolve(statement, ctx)
    searches = halving_search.searches(statement, found.models, found.entries, ctx.racing)
    outcomes = await asyncio.gather(*(halving_search.run_halving(s, ctx) for s in searches))
    ranked = []
    for outcome in outcomes:
        spec = CLASSIFIERS.get(outcome.search.classifier)
        ranked.append((spec.display if spec else outcome.search.classifier, outcome.rows))
    tables, names = _tables(statement, ctx, ranked)
    schedule = outcomes[0].machine.schedule
    message = (
        f"{count_of(len(found.models), 'model')} ranked by successive halving: "
        f"{count_of(len(schedule.rounds), 'round')}, CHUNK {schedule.chunk_rows}, "
        f"BUDGET {schedule.budget_pulls}; finalists scored on {schedule.final_rows} "
        "training rows"
    )
    return Result(tables, "; ".join([message, *found.notes]), names)


@handles(n.TaskSelect)
async def run_task_select(statement: n.TaskSelect, ctx: Context) -> Result:
    """Task-aware query: rank the pool on the user's data."""
    if is_halving(statement):
        return await rank_by_halving(statement, ctx)
    return await rank_exhaustively(statement, ctx)
