"""What each SHiFT-QL statement does on the broker: a registry of statement handlers.

:func:`execute` looks up the handler of a statement's node type (``@handles``) and runs it
with a :class:`Context` (the catalog, the session's variables, and ``run_tasks``, which
submits content-hashed tasks through the broker's own queue and returns their results).
Handlers return a :class:`Result` (tables and a message) or raise a :class:`ShiftError`
that fails the query. Catalog queries use :mod:`shift.evaluate`; task-aware queries use
:mod:`shift.planner`; ``EXPLAIN``, ``SELECT vec`` and ``FINETUNE`` live in
:mod:`broker.explain`, :mod:`broker.vectors` and :mod:`broker.finetunes`
(:mod:`broker.handlers` imports them all). ``RANK`` fails with ``not supported yet by this
broker: ...``.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from broker import halving
from broker.catalog import Catalog, EntryStatus
from broker.searchstate import SearchState
from shift import evaluate
from shift.catalog import dataset_spec_from_fields, model_spec_from_fields, unknown_name
from shift.codec import unpack
from shift.errors import CatalogError, SchedulerError, ShiftError
from shift.planner import (
    RESULT_COLUMNS,
    DatasetEntry,
    Plan,
    dataset_names,
    plan,
    rankings,
)
from shift.proxies import CLASSIFIERS
from shift.ql import nodes as n
from shift.ql.vocabulary import DATASET_COLUMNS, MODEL_COLUMNS
from shift.specs import ModelSpec
from shift.tasks import TaskSpec


class NotSupported(SchedulerError):
    """A statement this broker does not run yet (a later issue builds it)."""

    code = "not_supported"

    def __init__(self, what: str) -> None:
        super().__init__(f"not supported yet by this broker: {what}")


@dataclass(frozen=True)
class Table:
    """One result table."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def to_json(self) -> dict[str, Any]:
        """The REST form ``{title, columns, rows}``."""
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
        }

    @classmethod
    def of(cls, title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Table:
        """A table from row dicts (missing columns are null)."""
        return cls(title, tuple(columns), tuple(tuple(r.get(c) for c in columns) for r in rows))


@dataclass(frozen=True)
class Result:
    """What a statement answers: tables and a message."""

    tables: tuple[Table, ...] = ()
    message: str = ""
    names: tuple[str, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        """The REST form ``{tables, message}``."""
        return {"tables": [t.to_json() for t in self.tables], "message": self.message}


RunTasks = Callable[[Sequence[TaskSpec]], Awaitable[dict[str, Any]]]


async def _no_result(task_id: str) -> Any:
    return None


@dataclass
class Context:
    """What a statement handler may use.

    Attributes:
        catalog: Registered models and datasets.
        variables: The session's DECLAREd variables (name -> names).
        declare: Persist a variable of the session.
        run_tasks: Submit tasks, wait for them, return results by task id (raises on a
            failed task).
        task_state: Current state of a task id (``None`` when unknown).
        forget: Delete finished tasks of a kind (PURGE); returns how many.
        timings: Mean seconds of past tasks by (kind, model key).
        features_dir: The feature store path that task payloads name.
        finetune_dir: Where ``finetune`` tasks keep checkpoints and fine-tuned weights.
        search: Nearest-neighbour records and halving machines (``None``: no reuse).
        task_result: The stored result of a succeeded task (``None`` otherwise).
    """

    catalog: Catalog
    variables: dict[str, list[str]]
    declare: Callable[[str, list[str]], Awaitable[None]]
    run_tasks: RunTasks
    task_state: Callable[[str], str | None]
    forget: Callable[[str], Awaitable[int]]
    timings: Callable[[], Awaitable[dict[tuple[str, str], float]]]
    features_dir: str
    search: SearchState | None = None
    task_result: Callable[[str], Awaitable[Any]] = field(default=_no_result)
    finetune_dir: str = ""


Handler = Callable[[Any, Context], Awaitable[Result]]
HANDLERS: dict[type, Handler] = {}
"""Statement node type -> handler."""


def handles(*types: type) -> Callable[[Handler], Handler]:
    """Register a handler for statement node types."""

    def register(handler: Handler) -> Handler:
        for t in types:
            HANDLERS[t] = handler
        return handler

    return register


async def execute(statement: n.Statement, ctx: Context) -> Result:
    """Run one statement.

    Raises:
        ShiftError: the query fails (the error says why and, for names, the closest one).
    """
    handler = HANDLERS.get(type(statement))
    if handler is None:
        raise NotSupported(f"{statement.TAG} statements")
    return await handler(statement, ctx)


# ---- sources -------------------------------------------------------------------------------

MODALITY_OF_TABLE = {"image_models": "vision", "text_models": "text"}


def variable(ctx: Context, name: str) -> list[str]:
    """The names bound to a session variable.

    Raises:
        CatalogError: unknown variable, naming the closest declared one.
    """
    if name not in ctx.variables:
        raise unknown_name("variable", name, ctx.variables)
    return ctx.variables[name]


def source_rows(
    source: n.Source, ctx: Context, expect: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The catalog kind and rows a FROM reads (names checked, closest match on error).

    A table decides the kind; a list or variable is read as datasets when every name is one,
    else as models, unless ``expect`` (``"model"`` or ``"dataset"``) says which it must be.

    Raises:
        CatalogError: an unknown name (with the closest of the kind), a name of the other
            kind than ``expect``, or a table of the other kind.
    """
    if isinstance(source, n.Table):
        if source.name == "readers":
            kind, rows = "dataset", ctx.catalog.rows("dataset")
        else:
            modality = MODALITY_OF_TABLE.get(source.name)
            rows = [
                r
                for r in ctx.catalog.rows("model")
                if modality is None or r["modality"] == modality
            ]
            kind = "model"
        if expect is not None and kind != expect:
            raise CatalogError(f"FROM {source.name} holds {kind}s; this statement needs {expect}s")
        return kind, rows
    names = (
        variable(ctx, source.name)
        if isinstance(source, n.Variable)
        else [str(v.value) for v in source.names]
    )
    models = {r["name"] for r in ctx.catalog.rows("model")}
    datasets = {r["name"] for r in ctx.catalog.rows("dataset")}
    guess = "dataset" if names and not set(names) & models and set(names) <= datasets else "model"
    kind = expect or guess
    known, other = (models, datasets) if kind == "model" else (datasets, models)
    for name in names:
        if name in known:
            continue
        if expect is not None and name in other:
            other_kind = "dataset" if kind == "model" else "model"
            raise CatalogError(f"{name!r} is a {other_kind}; this statement needs {kind}s")
        raise unknown_name(kind, name, known)
    return kind, ctx.catalog.rows(kind)


def _check_other_than(statement: Any, ctx: Context) -> None:
    if isinstance(statement.other_than, n.Variable):
        variable(ctx, statement.other_than.name)


def _variables(ctx: Context) -> dict[str, Sequence[str]]:
    return dict(ctx.variables)


# ---- catalog queries -------------------------------------------------------------------------


async def select_rows(statement: n.Select, ctx: Context) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of a catalog SELECT."""
    kind, rows = source_rows(statement.source, ctx)
    _check_other_than(statement, ctx)
    out = evaluate.select(statement, rows, _variables(ctx))
    all_columns = MODEL_COLUMNS if kind == "model" else DATASET_COLUMNS
    columns = [c.value for c in statement.columns] or list(all_columns)
    return columns, out


@handles(n.Select)
async def run_select(statement: n.Select, ctx: Context) -> Result:
    """Catalog query: one table."""
    columns, rows = await select_rows(statement, ctx)
    return Result(
        (Table.of("results", columns, rows),),
        f"{len(rows)} row(s)",
        tuple(str(r.get("name")) for r in rows),
    )


# ---- task-aware queries ----------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """A task-aware query's candidate models and dataset entries, and what was left out."""

    models: tuple[ModelSpec, ...]
    entries: dict[str, DatasetEntry]
    notes: tuple[str, ...]


async def resolve(statement: n.TaskSelect, ctx: Context) -> Resolved:
    """Resolve datasets and candidate models (nothing is run)."""
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
    modalities = {catalog.get("dataset", d).row["modality"] for d in used} - {None}
    kind, rows = source_rows(statement.source, ctx)
    if kind != "model":
        raise CatalogError("a task-aware query ranks models; FROM names datasets")
    _check_other_than(statement, ctx)
    await catalog.settle("model", [r["name"] for r in rows])
    rows = source_rows(statement.source, ctx)[1]
    pool = n.Select((), statement.source, statement.where, (), None, statement.other_than)
    candidates = evaluate.select(pool, rows, _variables(ctx))
    notes = []
    chosen: list[ModelSpec] = []
    for row in candidates:
        entry = catalog.get("model", row["name"])
        if entry.status is EntryStatus.FAILED:
            notes.append(f"left out {row['name']} (it failed to load: {entry.error})")
        elif modalities and row["modality"] not in modalities:
            notes.append(
                f"left out {row['name']} ({row['modality']} model, {'/'.join(modalities)} data)"
            )
        else:
            chosen.append(entry.spec)  # type: ignore[arg-type]
    return Resolved(tuple(chosen), entries, tuple(notes))


async def plan_statement(statement: n.TaskSelect, ctx: Context) -> tuple[Plan, list[str]]:
    """Resolve datasets and candidate models and plan the tasks (nothing is run)."""
    found = await resolve(statement, ctx)
    return plan(statement, found.models, found.entries, ctx.features_dir), list(found.notes)


def _halving(statement: n.TaskSelect) -> bool:
    return statement.chunk is not None or statement.budget is not None


def _ranking_columns(statement: n.TaskSelect) -> list[str]:
    asked = [c.value for c in statement.columns]
    extra = ["eliminated_in"] if _halving(statement) else []
    if not asked:
        return list(RESULT_COLUMNS) + extra
    return asked + [c for c in (*RESULT_COLUMNS, *extra) if c not in asked]


def _tables(
    statement: n.TaskSelect, ctx: Context, ranked: Sequence[tuple[str, Sequence[dict[str, Any]]]]
) -> tuple[tuple[Table, ...], tuple[str, ...]]:
    catalog_rows = {r["name"]: r for r in ctx.catalog.rows("model")}
    columns = _ranking_columns(statement)
    tables = []
    for title, found in ranked:
        rows = list(found)[: statement.limit] if statement.limit is not None else list(found)
        rows = [{**catalog_rows.get(r["name"], {}), **r} for r in rows]
        tables.append(Table.of(title, columns, rows))
    first = ranked[0][1] if ranked else ()
    limit = statement.limit if statement.limit is not None else len(first)
    return tuple(tables), tuple(r["name"] for r in list(first)[:limit])


async def rank_rows(statement: n.TaskSelect, ctx: Context) -> Result:
    """Run a task-aware query: exhaustive, or successive halving with CHUNK/BUDGET."""
    if _halving(statement):
        return await rank_by_halving(statement, ctx)
    found = await resolve(statement, ctx)
    planned = plan(statement, found.models, found.entries, ctx.features_dir)
    await ctx.run_tasks(planned.embeds)
    sizes = halving.sizes_of(found.entries)
    answers = await asyncio.gather(
        *(halving.classify(ctx, c.spec, sizes) for c in planned.classifies)
    )
    results = {c.spec.task_id: a for c, a in zip(planned.classifies, answers, strict=True)}
    ranked = rankings(statement, planned, results)
    tables, names = _tables(statement, ctx, [(r.title, r.rows) for r in ranked])
    message = f"{len(planned.models)} model(s) ranked on {len(planned.tasks)} task(s)"
    return Result(tables, "; ".join([message, *planned.notes, *found.notes]), names)


async def rank_by_halving(statement: n.TaskSelect, ctx: Context) -> Result:
    """Successive halving: one machine per classifier, eliminated models below survivors."""
    found = await resolve(statement, ctx)
    searches = halving.searches(statement, found.models, found.entries, ctx.features_dir)
    outcomes = await asyncio.gather(*(halving.run_halving(s, ctx) for s in searches))
    ranked = []
    for outcome in outcomes:
        spec = CLASSIFIERS.get(outcome.search.classifier)
        ranked.append((spec.display if spec else outcome.search.classifier, outcome.rows))
    tables, names = _tables(statement, ctx, ranked)
    schedule = outcomes[0].machine.schedule
    message = (
        f"{len(found.models)} model(s) ranked by successive halving: "
        f"{len(schedule.rounds)} round(s), CHUNK {schedule.chunk_rows}, "
        f"BUDGET {schedule.budget_pulls}; finalists scored on {schedule.final_rows} "
        "training rows"
    )
    return Result(tables, "; ".join([message, *found.notes]), names)


@handles(n.TaskSelect)
async def run_task_select(statement: n.TaskSelect, ctx: Context) -> Result:
    """Task-aware query: rank the pool on the user's data."""
    return await rank_rows(statement, ctx)


@handles(n.Rank)
async def run_rank(statement: n.Rank, ctx: Context) -> Result:
    """RANK is a later issue."""
    raise NotSupported("RANK (model rankers such as LogME)")


@handles(n.Use)
async def run_use(statement: n.Use, ctx: Context) -> Result:
    """USE is the client's business."""
    raise SchedulerError("USE is handled by the client (it changes which broker it talks to)")


# ---- set operations, variables ---------------------------------------------------------------


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
    return Result((Table.of("union", columns, rows),), f"{len(rows)} row(s)", names)


@handles(n.Declare)
async def run_declare(statement: n.Declare, ctx: Context) -> Result:
    """DECLARE name AS query: bind the names of the query's rows."""
    result = await execute(statement.query, ctx)
    names = list(dict.fromkeys(result.names))
    await ctx.declare(statement.name, names)
    message = f"{statement.name} = [{', '.join(names)}]"
    return Result(result.tables, message, tuple(names))


@handles(n.Print)
async def run_print(statement: n.Print, ctx: Context) -> Result:
    """PRINT name or PRINT *."""
    if statement.name is None:
        rows = [{"variable": k, "names": ", ".join(v)} for k, v in sorted(ctx.variables.items())]
        return Result(
            (Table.of("variables", ["variable", "names"], rows),), f"{len(rows)} variable(s)"
        )
    names = variable(ctx, statement.name)
    rows = [{"name": name} for name in names]
    return Result(
        (Table.of(statement.name, ["name"], rows),), f"{len(names)} name(s)", tuple(names)
    )


# ---- PURGE, REGISTER -------------------------------------------------------------------------


PURGES: dict[n.PurgeTarget, tuple[str, ...]] = {
    n.PurgeTarget.RESULTS: ("classify",),
    n.PurgeTarget.FEATURES: ("embed", "task2vec"),
    n.PurgeTarget.ALL: ("classify", "embed", "task2vec"),
}
"""Which task kinds each PURGE target forgets (fine-tunes never: their weights are models)."""

PURGED_WHAT = {
    "classify": "cached results (classify tasks)",
    "embed": "embed tasks",
    "task2vec": "Task2Vec embeddings",
}


@handles(n.Purge)
async def run_purge(statement: n.Purge, ctx: Context) -> Result:
    """PURGE RESULTS | FEATURES | ALL: forget cached work (features kept unless asked)."""
    said = []
    for kind in PURGES[statement.target]:
        count = await ctx.forget(kind)
        said.append(f"deleted {count} {PURGED_WHAT[kind]}")
    if statement.target is n.PurgeTarget.RESULTS:
        said.append("features kept")
    else:
        folder = Path(ctx.features_dir)
        existed = folder.exists()
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: shutil.rmtree(folder, ignore_errors=True)
        )
        said.append(f"deleted the feature store {folder}" if existed else "no stored features")
    return Result((), "; ".join(said))


@handles(n.Register)
async def run_register(statement: n.Register, ctx: Context) -> Result:
    """REGISTER MODEL|DATASET: add to the catalog and wait for the measured columns."""
    fields = {p.name: p.value.value for p in statement.fields}
    kind = statement.kind.value
    if statement.kind is n.RegisterKind.MODEL:
        spec: Any = model_spec_from_fields(statement.name, fields)
    else:
        spec = dataset_spec_from_fields(statement.name, fields)
    entry, created = await ctx.catalog.register(kind, spec)
    await entry.ready.wait()
    if entry.status is EntryStatus.FAILED:
        raise CatalogError(f"{kind} {statement.name!r} could not be registered: {entry.error}")
    columns = MODEL_COLUMNS if kind == "model" else DATASET_COLUMNS
    verb = "registered" if created else "already registered"
    return Result(
        (Table.of(kind + "s", columns, [entry.row]),), f"{verb} {kind} {statement.name!r}"
    )


def error_body(error: BaseException) -> dict[str, Any]:
    """The one error shape's inner object for a failed query."""
    if isinstance(error, ShiftError):
        body = {"status": 400, **error.to_dict()}
        return body
    return {
        "status": 500,
        "code": "internal_error",
        "message": "internal error; see the broker log",
    }


def unpack_result(blob: bytes | None) -> Any:
    """A stored task result."""
    return None if blob is None else unpack(blob)
