"""BENCHMARK with CHUNK/BUDGET and mutations in TESTED ON, through the statement handlers.

The in-memory task runner of ``test_statement_handlers`` scores a classify task from a table
of errors per (model, test set), so one model wins one pair and another the average; a
real SQLite file holds the search state. Two training sets of 1,000 and 300 rows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker.context import Context, Session
from broker.evaluator import Evaluator
from broker.handlers import execute
from shift.errors import SchedulerError
from shift.halving import pair_rows
from shift.payloads import ClassifyPayload, Mutation
from shift.ql import parse
from shift.tasks import TaskSpec
from tests.broker.test_statement_handlers import FakeCatalog, FakeTasks, dataset, memory

__all__ = ["memory"]  # the SQLite-backed search-state fixture

PAIR_ERRORS = {
    "test": {"good": 0.1, "fair": 0.3, "poor": 0.6},
    "test2": {"good": 0.3, "fair": 0.2, "poor": 0.6},
}
"""Errors per test set: fair wins test2, good wins the average (0.2 against 0.25)."""

BENCH = (
    'SELECT * FROM models ORDER BY avg(err) ASC TRAINED ON ["train", "small"] '
    'TESTED ON BENCHMARK ["test", "test2"] CLASSIFIED BY ["Cosine NN"]'
)


class PairTasks(FakeTasks):
    """The fake runner with an error per (model, test set); a mutated test set reads its
    base's errors plus 0.05 (any change that a cached plain score would hide)."""

    def _compute(self, spec: TaskSpec) -> Any:
        out = super()._compute(spec)
        if spec.kind != "classify":
            return out
        task = ClassifyPayload.from_json(spec.payload)
        test = task.test
        name = test.base.name if isinstance(test, Mutation) else test.name
        err = PAIR_ERRORS.get(name, {}).get(task.model.name, out["err"])
        if isinstance(test, Mutation):
            err += 0.05
        out.update(err=err, acc=1 - err, errors=round(err * out["test_rows"]))
        return out


@pytest.fixture
def tasks() -> PairTasks:
    return PairTasks()


@pytest.fixture
def ctx(tasks: PairTasks, memory: Any) -> Context:
    catalog = FakeCatalog()
    for seq, (name, size) in enumerate({"small": 300, "test2": 200}.items(), start=10):
        measured = {"size": size, "num_classes": 2, "modality": "vision", "classes": [0, 1]}
        catalog._add("dataset", dataset(name), seq, measured)

    async def persist(name: str, names: list[str]) -> None:
        return None

    return Context(catalog, Session({}, persist), tasks, Evaluator(tasks, memory), memory)  # type: ignore[arg-type]


def classifies(tasks: FakeTasks) -> list[tuple[str, str, int | None]]:
    out = []
    for spec in tasks.submitted:
        if spec.kind == "classify":
            payload = ClassifyPayload.from_json(spec.payload)
            train = payload.train[0]
            out.append((payload.model.name, getattr(train, "name", "?"), payload.train_rows))
    return sorted(out)


def names(result: Any) -> list[str]:
    return [row[0] for row in result.tables[0].rows]


@pytest.mark.parametrize(
    ("rows", "sizes", "expected"),
    [
        (256, (1000, 300), (256, 256)),
        (512, (1000, 300), (512, 300)),
        (1000, (1000, 300), (1000, 300)),
        (0, (5,), (0,)),
    ],
)
def test_pair_rows_caps_the_round_at_each_training_set(rows, sizes, expected):
    assert pair_rows(rows, sizes) == expected


def test_pair_rows_refuses_negative_counts():
    with pytest.raises(SchedulerError, match="needs counts"):
        pair_rows(-1, (10,))


async def test_benchmark_with_chunk_halves_over_the_aggregate(ctx: Context, tasks: PairTasks):
    exhaustive = await execute(parse(BENCH), ctx)
    assert names(exhaustive) == ["good", "fair", "poor"]
    tasks.submitted.clear()
    halving = await execute(parse(BENCH + " CHUNK 256 BUDGET AUTO"), ctx)
    assert names(halving) == ["good", "fair", "poor"]
    table = halving.tables[0]
    good = table.rows[0]
    assert good[table.columns.index("err")] == pytest.approx(0.2)
    assert table.rows[-1][table.columns.index("eliminated_in")] == 0
    # One machine: round 0 scores all three on both pairs with 256 rows of each training
    # set; round 1 the two best with 512 rows of "train" and all 300 of "small" (the
    # whole set: the exhaustive search's task, already known, so not submitted again).
    assert classifies(tasks) == [
        ("fair", "small", 256),
        ("fair", "train", 256),
        ("fair", "train", 512),
        ("good", "small", 256),
        ("good", "train", 256),
        ("good", "train", 512),
        ("poor", "small", 256),
        ("poor", "train", 256),
    ]
    before = len(tasks.submitted)
    again = await execute(parse(BENCH + " CHUNK 256 BUDGET AUTO"), ctx)
    assert names(again) == names(halving) and len(tasks.submitted) == before


async def test_explain_of_a_benchmark_halving(ctx: Context, tasks: PairTasks):
    body = json.loads((await execute(parse(f"EXPLAIN JSON {BENCH} CHUNK 256"), ctx)).message)
    (search,) = body["halving"]
    rounds = search["schedule"]["rounds"]
    assert [(r["arms"], r["train_rows"], r["advancing"]) for r in rounds] == [
        (3, 256, 2),
        (2, 512, "final"),
    ]
    # Every arm of a round is scored on both pairs; round 0 embeds one block of each
    # training set and one of each test set per model; round 1 one more block of "train"
    # and the second of "small" per model.
    assert [(r["classifies"], r["embeds"]) for r in rounds] == [(6, 12), (4, 4)]
    assert tasks.submitted == []


async def test_a_mutated_test_set_is_scored_on_its_own(ctx: Context, tasks: PairTasks):
    plain = await execute(parse(BENCH.replace('"test2"', '"test"')), ctx)
    mutated = 'TESTED ON BENCHMARK ["test", ("test2" CHANGE [0] TO "test2" [1])]'
    text = BENCH.replace('TESTED ON BENCHMARK ["test", "test2"]', mutated)
    result = await execute(parse(text), ctx)
    table = result.tables[0]
    # avg of test (0.1) and mutated test2 (0.3 + 0.05) for good
    assert table.rows[0][table.columns.index("err")] == pytest.approx((0.1 + 0.35) / 2)
    assert names(plain) == ["good", "fair", "poor"]
    tests = [
        ClassifyPayload.from_json(s.payload).test for s in tasks.submitted if s.kind == "classify"
    ]
    assert any(isinstance(t, Mutation) and t.from_labels == (0,) for t in tests)
    halved = await execute(parse(text + " CHUNK 256"), ctx)
    assert names(halved)[0] == names(result)[0]


async def test_racing_on_a_label_only_mutated_test_set(ctx: Context, tasks: PairTasks):
    query = (
        'SELECT * FROM models ORDER BY err TRAINED ON ("train" CHANGE [0] TO "train" [1]) '
        'TESTED ON ("test" CHANGE [1] TO "test" [0]) CLASSIFIED BY ["Cosine NN"] CHUNK 256'
    )
    result = await execute(parse(query), ctx)
    assert names(result) == ["good", "fair", "poor"]
    rows = [
        (p.model.name, p.train_rows, p.test_rows)
        for p in (
            ClassifyPayload.from_json(s.payload) for s in tasks.submitted if s.kind == "classify"
        )
    ]
    assert ("good", 512, None) in rows and ("poor", 256, None) in rows
    embedded = {
        (s.payload["dataset"]["name"], s.payload["block"])
        for s in tasks.submitted
        if s.kind == "embed" and s.payload["model"]["name"] == "poor"
    }
    # poor went in round 0: one training block of the relabelled "train", never the rest
    assert embedded == {("train", 0), ("test", 0)}


async def test_halving_over_a_merging_mutation_is_refused(ctx: Context):
    query = (
        'SELECT * FROM models ORDER BY err TRAINED ON ("train" CHANGE [0] TO "small" [0]) '
        'TESTED ON "test" CLASSIFIED BY ["Cosine NN"] CHUNK 256'
    )
    with pytest.raises(SchedulerError, match=r"label-only change .* register the merged data"):
        await execute(parse(query), ctx)
