"""The planner: a task-aware query plus catalog facts in, content-hashed tasks out.

Pure functions, no broker imports. :func:`plan` turns a :class:`~shift.ql.nodes.TaskSelect`,
its candidate models (already filtered by WHERE / OTHER THAN) and the dataset entries into
``embed`` tasks (one per model, dataset and feature block) and ``classify`` evaluations (one
per model, classifier and (train, test) pair) as typed payloads (:mod:`shift.payloads`).
:func:`rankings` turns classify results into one ranking per classifier; :func:`explain`
describes a plan against the tasks already known.

Evaluation pairs: without ``BENCHMARK`` the train sets are concatenated and every test set
is scored against them; several test sets are pooled (errors and rows summed, which is the
error on the concatenated test set). With ``BENCHMARK`` train set ``i`` (or the single one)
is paired with test set ``i`` and the per-pair scores are combined by the ORDER BY
aggregate (``avg`` by default). A test set may be a ``CHANGE ... TO`` mutation: its test
rows are those of the mutated dataset, built exactly as a mutated training set's
(:class:`~shift.payloads.Mutation`). :func:`plan` is the exhaustive plan; successive halving
(``CHUNK``/``BUDGET``) builds its payloads round by round with :func:`embed_payload` and
:func:`classify_payload`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shift.errors import SchedulerError
from shift.methods import CLASSIFIERS
from shift.payloads import (
    BLOCK_ROWS,
    ClassifyPayload,
    EmbedPayload,
    Mutation,
    blocks_for,
)
from shift.payloads import TrainItem as PayloadItem
from shift.ql import nodes as n
from shift.specs import DatasetSpec, ModelSpec
from shift.tasks import TaskSpec

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


TrainItem = str | n.Mutation
"""A training item: a dataset name or a ``CHANGE ... TO`` mutation."""

TestItem = str | n.Mutation
"""A test set: a dataset name or a ``CHANGE ... TO`` mutation."""


@dataclass(frozen=True)
class Pair:
    """One evaluation: train items (concatenated) scored on one test set."""

    train: tuple[TrainItem, ...]
    test: TestItem


def item_names(item: TrainItem) -> tuple[str, ...]:
    """The datasets an item reads (a mutation: its base, then its target if another)."""
    if isinstance(item, str):
        return (item,)
    return tuple(dict.fromkeys((item.base, item.target)))


def item_label(item: TrainItem | TestItem) -> str:
    """How a training item reads in EXPLAIN and messages."""
    if isinstance(item, str):
        return item
    sources = ", ".join(repr(v.value) for v in item.from_labels)
    targets = ", ".join(repr(v.value) for v in item.to_labels)
    return f'("{item.base}" CHANGE [{sources}] TO "{item.target}" [{targets}])'


@dataclass(frozen=True)
class ClassifyTask:
    """A planned classify evaluation and what it scores."""

    payload: ClassifyPayload
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
        embeds: ``embed`` tasks, grouped by model (``embed_payloads``: their payloads).
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
    embed_payloads: tuple[EmbedPayload, ...] = ()

    @property
    def tasks(self) -> tuple[TaskSpec, ...]:
        """Every task, embeds first."""
        return self.embeds + tuple(c.spec for c in self.classifies)


def dataset_names(items: Sequence[n.DatasetItem]) -> list[str]:
    """Names of every dataset a TRAINED ON / TESTED ON list reads (mutations: both)."""
    names = []
    for item in items:
        if isinstance(item, n.Mutation):
            names += [item.base, item.target]
        else:
            names.append(item.name)
    return list(dict.fromkeys(names))


def _items(items: Sequence[n.DatasetItem]) -> list[TrainItem]:
    return [i if isinstance(i, n.Mutation) else i.name for i in items]


def pairs_of(statement: n.TaskSelect) -> tuple[Pair, ...]:
    """The (train, test) evaluations of a statement (see the module docstring).

    Raises:
        SchedulerError: BENCHMARK lists that do not pair up.
    """
    train = _items(statement.train)
    test = _items(statement.test)
    if not statement.benchmark:
        return tuple(Pair(tuple(train), t) for t in test)
    if len(train) == 1:
        return tuple(Pair((train[0],), t) for t in test)
    if len(train) != len(test):
        raise SchedulerError(
            f"BENCHMARK pairs {len(train)} training sets with {len(test)} test sets"
        )
    return tuple(Pair((a,), b) for a, b in zip(train, test, strict=True))


def train_items(pair: Pair, datasets: Mapping[str, DatasetEntry]) -> tuple[PayloadItem, ...]:
    """The typed training items of a pair (datasets, or mutations of them).

    Raises:
        SchedulerError: ``max_rows`` cuts a dataset listed with a mutation, or a mutation
            maps unequal label lists.
    """
    plain = [datasets[i] for i in pair.train if isinstance(i, str)]
    if len(plain) == len(pair.train):
        return tuple(e.spec for e in plain)
    if any(e.cap is not None for e in plain):
        raise SchedulerError(
            "max_rows may not cut a dataset listed with a mutation (CHANGE ... TO); "
            "register it without max_rows"
        )
    return tuple(
        datasets[i].spec if isinstance(i, str) else mutation_of(i, datasets) for i in pair.train
    )


def mutation_of(item: n.Mutation, datasets: Mapping[str, DatasetEntry]) -> Mutation:
    """The typed mutation of a ``CHANGE ... TO`` item (the datasets' ``max_rows`` caps apply).

    Raises:
        SchedulerError: the mutation maps unequal label lists, or takes rows from more than
            one other dataset.
    """
    if item.also:
        raise SchedulerError(
            f"not supported yet by this broker: {item_label(item)} takes rows from "
            f"{len(item.changes)} datasets; a mutation may take rows from one other dataset"
        )
    base, target = datasets[item.base], datasets[item.target]
    if len(item.from_labels) != len(item.to_labels):
        raise SchedulerError(
            f"{item_label(item)} maps {len(item.from_labels)} label(s) to "
            f"{len(item.to_labels)}; give as many labels after TO as after CHANGE"
        )
    return Mutation(
        base.spec,
        base.cap,
        tuple(v.value for v in item.from_labels),
        target.spec,
        target.cap,
        tuple(v.value for v in item.to_labels),
    )


def pair_test_item(pair: Pair, datasets: Mapping[str, DatasetEntry]) -> PayloadItem:
    """The typed test set of a pair (a dataset, or a mutation of datasets).

    Raises:
        SchedulerError: a mutation maps unequal label lists.
    """
    if isinstance(pair.test, str):
        return datasets[pair.test].spec
    return mutation_of(pair.test, datasets)


def item_size(item: TrainItem, datasets: Mapping[str, DatasetEntry]) -> int | None:
    """Rows of one item (``None`` when a mutation replaces rows, so that its size depends on
    how many rows carry each label; a label-only mutation has its base's rows)."""
    if isinstance(item, str):
        return datasets[item].rows
    if item.base == item.target:
        return datasets[item.base].rows
    return None


def train_prefix(pair: Pair, datasets: Mapping[str, DatasetEntry]) -> int | None:
    """The classify ``train_rows`` of a whole pair (``None``: all rows)."""
    if any(not isinstance(i, str) for i in pair.train):
        return None
    return _train_rows([datasets[i] for i in pair.train if isinstance(i, str)])


def train_size(pair: Pair, datasets: Mapping[str, DatasetEntry]) -> int | None:
    """Training rows of a pair (``None`` when a mutation makes it depend on labels)."""
    sizes = [item_size(i, datasets) for i in pair.train]
    if any(s is None for s in sizes):
        return None
    return sum(s for s in sizes if s is not None)


def pair_test_size(pair: Pair, datasets: Mapping[str, DatasetEntry]) -> int | None:
    """Test rows of a pair (``None`` when a mutation makes it depend on labels)."""
    return item_size(pair.test, datasets)


def embed_payload(model: ModelSpec, entry: DatasetEntry, block: int) -> EmbedPayload:
    """The ``embed`` payload of one feature block."""
    return EmbedPayload(model, entry.spec, block)


def prefix_embeds(
    model: ModelSpec,
    items: Sequence[TrainItem],
    datasets: Mapping[str, DatasetEntry],
    rows: int,
) -> list[EmbedPayload]:
    """Embeds of the feature blocks the first ``rows`` rows of ``items`` (in order) read,
    each once; stops at a mutation whose size depends on its labels."""
    out: dict[str, EmbedPayload] = {}
    left = rows
    for item in items:
        size = item_size(item, datasets)
        if left <= 0 or size is None:
            break
        take = min(left, size)
        for name in item_names(item):
            entry = datasets[name]
            for block in blocks_for(min(take, entry.rows)):
                payload = embed_payload(model, entry, block)
                out.setdefault(payload.task().task_id, payload)
        left -= take
    return list(out.values())


def classify_payload(
    model: ModelSpec,
    classifier: str,
    params: Mapping[str, Any],
    pair: Pair,
    datasets: Mapping[str, DatasetEntry],
    train_rows: int | None = None,
    test_rows: int | None = None,
) -> ClassifyPayload:
    """The ``classify`` payload of one evaluation.

    Args:
        train_rows: A prefix of the training rows (``None``: the pair's).
        test_rows: A prefix of the test rows (``None``, or at least the rows the query
            uses: all of them).
    """
    items = train_items(pair, datasets)
    rows = train_prefix(pair, datasets)
    if train_rows is not None and train_rows != train_size(pair, datasets):
        rows = train_rows
    test = pair_test_item(pair, datasets)
    size = pair_test_size(pair, datasets)
    scored = datasets[pair.test].cap if isinstance(pair.test, str) else None
    if test_rows is not None and (size is None or test_rows < size):
        scored = test_rows
    return ClassifyPayload(model, items, rows, test, scored, classifier, dict(params))


def plan(
    statement: n.TaskSelect,
    models: Sequence[ModelSpec],
    datasets: Mapping[str, DatasetEntry],
    block_rows: int = BLOCK_ROWS,
) -> Plan:
    """Plan an exhaustive task-aware query.

    Args:
        statement: The query.
        models: Candidate models (after WHERE and OTHER THAN), in the order to list them.
        datasets: Every dataset the statement names, by name.
        block_rows: Rows per feature block.

    Raises:
        SchedulerError: a dataset is missing from ``datasets``, or a mutation maps unequal
            label lists.
    """
    pairs = pairs_of(statement)
    used = list(dict.fromkeys(dataset_names(statement.train) + dataset_names(statement.test)))
    missing = [name for name in used if name not in datasets]
    if missing:
        raise SchedulerError(f"the planner was given no entry for dataset(s) {missing}")
    classifiers = tuple(
        (m.name, {p.name: p.value.value for p in m.params}) for m in statement.classifiers
    )
    embeds: list[EmbedPayload] = []
    classifies: list[ClassifyTask] = []
    rows: dict[str, tuple[int, int]] = {}
    for model in models:
        for name in used:
            entry = datasets[name]
            embeds += [embed_payload(model, entry, b) for b in blocks_for(entry.rows, block_rows)]
        for classifier, params in classifiers:
            for index, pair in enumerate(pairs):
                payload = classify_payload(model, classifier, params, pair, datasets)
                classifies.append(
                    ClassifyTask(payload, payload.task(), model.name, classifier, index)
                )
        rows[model.name] = (
            sum(train_size(p, datasets) or _base_rows(p, datasets) for p in pairs),
            sum(pair_test_size(p, datasets) or _names_rows(p.test, datasets) for p in pairs),
        )
    return Plan(
        tuple(m.name for m in models),
        pairs,
        classifiers,
        tuple(e.task() for e in embeds),
        tuple(classifies),
        rows,
        (),
        tuple(embeds),
    )


def _base_rows(pair: Pair, datasets: Mapping[str, DatasetEntry]) -> int:
    return sum(datasets[i if isinstance(i, str) else i.base].rows for i in pair.train)


def _names_rows(item: TestItem, datasets: Mapping[str, DatasetEntry]) -> int:
    """Rows of the datasets an item reads (at most the rows of a merging mutation)."""
    return sum(datasets[name].rows for name in item_names(item))


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


class ClassifyFigures(Protocol):
    """What a ranking reads of one classify result (:class:`~shift.payloads.ClassifyResult`)."""

    err: float
    acc: float
    train_rows: int
    test_rows: int


def score_of(statement: n.TaskSelect, results: Sequence[ClassifyFigures]) -> dict[str, Any]:
    """One model's score (``err acc train_rows test_rows``) from its classify results."""
    train_rows = sum(int(r.train_rows) for r in results)
    test_rows = sum(int(r.test_rows) for r in results)
    if not statement.benchmark:
        errors = sum(float(r.err) * int(r.test_rows) for r in results)
        err = errors / test_rows if test_rows else 0.0
        return {"err": err, "acc": 1.0 - err, "train_rows": train_rows, "test_rows": test_rows}
    combine = _AGGREGATES[statement.order.aggregate or n.Aggregate.AVG]
    return {
        "err": combine([float(r.err) for r in results]),
        "acc": combine([float(r.acc) for r in results]),
        "train_rows": train_rows,
        "test_rows": test_rows,
    }


def rankings(
    statement: n.TaskSelect, planned: Plan, results: Mapping[str, ClassifyFigures]
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
        per_model: dict[str, list[ClassifyFigures]] = {}
        for task in planned.classifies:
            if task.classifier != classifier:
                continue
            result = results.get(task.spec.task_id)
            if result is None:
                raise SchedulerError(f"no result for {classifier} on model {task.model}")
            per_model.setdefault(task.model, []).append(result)
        rows = [{"name": name, **score_of(statement, found)} for name, found in per_model.items()]
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
        "pairs": [
            {"train": [item_label(i) for i in p.train], "test": item_label(p.test)}
            for p in planned.pairs
        ],
        "classifiers": [c for c, _ in planned.classifiers],
        "notes": list(planned.notes),
    }
