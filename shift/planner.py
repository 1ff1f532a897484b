"""The planner: a task-aware query plus catalog facts in, content-hashed tasks out.

Pure functions, no broker imports. :func:`plan` turns a :class:`~shift.ql.nodes.TaskSelect`,
its candidate models (already filtered by WHERE / OTHER THAN) and the dataset entries into
``embed`` tasks (one per model, dataset and feature block) and ``classify`` tasks (one per
model, classifier and (train, test) pair) with exactly the payloads ``workers.embed`` and
``workers.classify`` read. :func:`rankings` turns classify results into one ranking per
classifier; :func:`explain` describes a plan against the tasks already known.

Evaluation pairs: without ``BENCHMARK`` the train sets are concatenated and every test set
is scored against them; several test sets are pooled (errors and rows summed, which is the
error on the concatenated test set). With ``BENCHMARK`` train set ``i`` (or the single one)
is paired with test set ``i`` and the per-pair scores are combined by the ORDER BY
aggregate (``avg`` by default). Searches are exhaustive: ``CHUNK``/``BUDGET`` (successive
halving) are noted and ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shift.errors import SchedulerError
from shift.proxies import CLASSIFIERS
from shift.ql import nodes as n
from shift.specs import DatasetSpec, ModelSpec
from shift.tasks import TaskSpec

BLOCK_ROWS = 256
"""Rows per feature block (the worker feature store's layout, ``workers.features``)."""

RESULT_COLUMNS = ("name", "err", "acc", "train_rows", "test_rows")
"""Columns of a ranking row."""


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset as the planner needs it: its spec and measured size.

    A ``max_rows`` reader parameter caps the rows a query uses to the first ``max_rows``
    (the reader's fixed, seeded order mixes the classes, so a prefix is a fair sample).
    """

    spec: DatasetSpec
    size: int

    @property
    def cap(self) -> int | None:
        """The ``max_rows`` cap when it cuts the dataset, else ``None``."""
        cap = self.spec.params.get("max_rows")
        if isinstance(cap, int) and not isinstance(cap, bool) and 0 <= cap < self.size:
            return cap
        return None

    @property
    def rows(self) -> int:
        """Rows a query uses."""
        cap = self.cap
        return self.size if cap is None else cap


def _train_rows(entries: Sequence[DatasetEntry]) -> int | None:
    """The classify ``train_rows`` prefix of concatenated train sets (None: all rows)."""
    if all(e.cap is None for e in entries):
        return None
    if any(e.cap is not None for e in entries[:-1]):
        raise SchedulerError(
            "max_rows may only cut the last dataset of a TRAINED ON list "
            "(training rows are a prefix of the concatenation)"
        )
    return sum(e.rows for e in entries)


@dataclass(frozen=True)
class Pair:
    """One evaluation: train sets (concatenated) scored on one test set."""

    train: tuple[str, ...]
    test: str


@dataclass(frozen=True)
class ClassifyTask:
    """A planned classify task and what it scores."""

    spec: TaskSpec
    model: str
    classifier: str
    pair: int


@dataclass(frozen=True)
class Plan:
    """The tasks of one task-aware query.

    Attributes:
        models: Candidate model names, in catalog order.
        pairs: The evaluations each model gets per classifier.
        classifiers: Canonical classifier names with their parameters.
        embeds: ``embed`` tasks, grouped by model.
        classifies: ``classify`` tasks.
        rows: Per model, (training rows, test rows) of one classifier's evaluations.
        notes: Things the user should know (ignored clauses, skipped models).
    """

    models: tuple[str, ...]
    pairs: tuple[Pair, ...]
    classifiers: tuple[tuple[str, dict[str, Any]], ...]
    embeds: tuple[TaskSpec, ...]
    classifies: tuple[ClassifyTask, ...]
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def tasks(self) -> tuple[TaskSpec, ...]:
        """Every task, embeds first."""
        return self.embeds + tuple(c.spec for c in self.classifies)


def dataset_names(items: Sequence[n.DatasetItem]) -> list[str]:
    """Names of plain datasets in a TRAINED ON / TESTED ON list.

    Raises:
        SchedulerError: a mutation (``CHANGE ... TO``), which this planner does not run yet.
    """
    names = []
    for item in items:
        if isinstance(item, n.Mutation):
            raise SchedulerError(
                "not supported yet by this broker: dataset mutations (CHANGE ... TO)"
            )
        names.append(item.name)
    return names


def pairs_of(statement: n.TaskSelect) -> tuple[Pair, ...]:
    """The (train, test) evaluations of a statement (see the module docstring)."""
    train, test = dataset_names(statement.train), dataset_names(statement.test)
    if not statement.benchmark:
        return tuple(Pair(tuple(train), t) for t in test)
    if len(train) == 1:
        return tuple(Pair((train[0],), t) for t in test)
    if len(train) != len(test):
        raise SchedulerError(
            f"BENCHMARK pairs {len(train)} training sets with {len(test)} test sets"
        )
    return tuple(Pair((a,), b) for a, b in zip(train, test, strict=True))


def _payload_store(payload: dict[str, Any], store: str | None) -> dict[str, Any]:
    return payload if store is None else {**payload, "store": store}


def plan(
    statement: n.TaskSelect,
    models: Sequence[ModelSpec],
    datasets: Mapping[str, DatasetEntry],
    store: str | None = None,
    block_rows: int = BLOCK_ROWS,
) -> Plan:
    """Plan an exhaustive task-aware query.

    Args:
        statement: The query.
        models: Candidate models (after WHERE and OTHER THAN), in the order to list them.
        datasets: Every dataset the statement names, by name.
        store: Feature store path for the payloads (``None``: each worker's default).
        block_rows: Rows per feature block.

    Raises:
        SchedulerError: a dataset is missing from ``datasets`` or a mutation is used.
    """
    pairs = pairs_of(statement)
    used = list(dict.fromkeys(name for p in pairs for name in (*p.train, p.test)))
    missing = [name for name in used if name not in datasets]
    if missing:
        raise SchedulerError(f"the planner was given no entry for dataset(s) {missing}")
    notes = []
    if statement.chunk is not None or statement.budget is not None:
        notes.append(
            "CHUNK/BUDGET ignored: every model was scored on all training rows "
            "(successive halving is not supported yet by this broker)"
        )
    classifiers = tuple(
        (m.name, {p.name: p.value.value for p in m.params}) for m in statement.classifiers
    )
    embeds: list[TaskSpec] = []
    classifies: list[ClassifyTask] = []
    rows: dict[str, tuple[int, int]] = {}
    for model in models:
        for name in used:
            entry = datasets[name]
            for block in range(-(-entry.rows // block_rows)):
                payload = {
                    "model": model.to_json(),
                    "dataset": entry.spec.to_json(),
                    "block": block,
                }
                embeds.append(TaskSpec("embed", _payload_store(payload, store), model.key))
        for classifier, params in classifiers:
            for index, pair in enumerate(pairs):
                payload = {
                    "model": model.to_json(),
                    "train": [datasets[t].spec.to_json() for t in pair.train],
                    "train_rows": _train_rows([datasets[t] for t in pair.train]),
                    "test": datasets[pair.test].spec.to_json(),
                    "test_rows": datasets[pair.test].cap,
                    "classifier": classifier,
                    "params": params,
                }
                spec = TaskSpec("classify", _payload_store(payload, store), model.key)
                classifies.append(ClassifyTask(spec, model.name, classifier, index))
        rows[model.name] = (
            sum(datasets[t].rows for p in pairs for t in p.train),
            sum(datasets[p.test].rows for p in pairs),
        )
    return Plan(
        tuple(m.name for m in models),
        pairs,
        classifiers,
        tuple(embeds),
        tuple(classifies),
        rows,
        tuple(notes),
    )


def _avg(values: list[float]) -> float:
    return sum(values) / len(values)


_AGGREGATES: dict[n.Aggregate, Callable[[list[float]], float]] = {
    n.Aggregate.SUM: sum,
    n.Aggregate.AVG: _avg,
    n.Aggregate.MIN: min,
    n.Aggregate.MAX: max,
}


@dataclass(frozen=True)
class Ranking:
    """One classifier's ranking: rows of :data:`RESULT_COLUMNS`, best first."""

    classifier: str
    title: str
    rows: tuple[dict[str, Any], ...]


def _score(statement: n.TaskSelect, results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    train_rows = sum(int(r["train_rows"]) for r in results)
    test_rows = sum(int(r["test_rows"]) for r in results)
    if not statement.benchmark:
        errors = sum(float(r["err"]) * int(r["test_rows"]) for r in results)
        err = errors / test_rows if test_rows else 0.0
        return {"err": err, "acc": 1.0 - err, "train_rows": train_rows, "test_rows": test_rows}
    combine = _AGGREGATES[statement.order.aggregate or n.Aggregate.AVG]
    return {
        "err": combine([float(r["err"]) for r in results]),
        "acc": combine([float(r["acc"]) for r in results]),
        "train_rows": train_rows,
        "test_rows": test_rows,
    }


def rankings(
    statement: n.TaskSelect, planned: Plan, results: Mapping[str, Mapping[str, Any]]
) -> list[Ranking]:
    """One ranking per classifier from classify results (by task id).

    Rows are ordered by the statement's metric (``err`` ascending unless it says
    otherwise), ties broken by model name; ``LIMIT`` is applied.

    Raises:
        SchedulerError: a classify task of the plan has no result.
    """
    out = []
    metric, descending = statement.order.column.value, statement.order.descending
    for classifier, _ in planned.classifiers:
        per_model: dict[str, list[Mapping[str, Any]]] = {}
        for task in planned.classifies:
            if task.classifier != classifier:
                continue
            result = results.get(task.spec.task_id)
            if result is None:
                raise SchedulerError(f"no result for {classifier} on model {task.model}")
            per_model.setdefault(task.model, []).append(result)
        rows = [{"name": name, **_score(statement, found)} for name, found in per_model.items()]
        rows.sort(key=lambda r: r["name"])
        rows.sort(key=lambda r: r[metric], reverse=descending)
        if statement.limit is not None:
            rows = rows[: statement.limit]
        spec = CLASSIFIERS.get(classifier)
        title = spec.display if spec is not None else classifier
        out.append(Ranking(classifier, title, tuple(rows)))
    return out


def explain(
    planned: Plan,
    known: Mapping[str, str],
    timings: Mapping[tuple[str, str], float] | None = None,
) -> dict[str, Any]:
    """Describe a plan: tasks known versus to run, per model, with an estimated cost.

    Args:
        planned: The plan.
        known: States of the plan's tasks the broker already has (task id -> state).
        timings: Mean seconds of past tasks by (kind, model key); ``(kind, "")`` is the
            mean over every model of that kind. Missing timings leave the estimate null.
    """
    timings = timings or {}

    def seconds(spec: TaskSpec) -> float | None:
        return timings.get((spec.kind, spec.model or ""), timings.get((spec.kind, "")))

    models: dict[str, dict[str, Any]] = {}
    by_key: dict[str, str] = {}
    for task in planned.classifies:
        by_key[task.spec.model or ""] = task.model
    total: float | None = 0.0
    for spec in planned.tasks:
        name = by_key.get(spec.model or "", spec.model or "")
        entry = models.setdefault(
            name,
            {"model": name, "tasks": 0, "known": 0, "to_run": 0, "estimated_s": 0.0},
        )
        entry["tasks"] += 1
        if known.get(spec.task_id) == "succeeded":
            entry["known"] += 1
            continue
        entry["to_run"] += 1
        cost = seconds(spec)
        if cost is None:
            entry["estimated_s"] = None
            total = None
        elif entry["estimated_s"] is not None:
            entry["estimated_s"] += cost
            total = None if total is None else total + cost
    for name, entry in models.items():
        entry["train_rows"], entry["test_rows"] = planned.rows.get(name, (0, 0))
    tasks = len(planned.tasks)
    done = sum(1 for s in planned.tasks if known.get(s.task_id) == "succeeded")
    return {
        "models": list(models.values()),
        "tasks": tasks,
        "known": done,
        "to_run": tasks - done,
        "estimated_s": total,
        "pairs": [{"train": list(p.train), "test": p.test} for p in planned.pairs],
        "classifiers": [c for c, _ in planned.classifiers],
        "notes": list(planned.notes),
    }
