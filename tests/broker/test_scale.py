"""Statements over catalogs of thousands of models, and a halving search of hundreds of arms.

Answers are checked, never wall time (``scripts/bench_scale`` prints the timings). As in
``test_statement_handlers``, a real SQLite file holds the search state and an in-memory
runner answers tasks: classify errors depend only on the model's name and the training
rows, so a resumed search must end exactly where an uninterrupted one does.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from broker.catalog import Entry, EntryStatus
from broker.context import Context, Session, Stage
from broker.evaluator import Evaluator
from broker.handlers import execute
from broker.searchstate import SearchState
from broker.store import Store
from broker.tables import Tables
from shift.halving import SuccessiveHalving
from shift.payloads import ClassifyPayload
from shift.ql import parse
from shift.registration import unknown_name
from shift.specs import DatasetSpec, Modality, ModelSpec
from shift.tasks import TaskSpec

MODELS = 3000
TRAIN_ROWS, TEST_ROWS = 2048, 512


def _params(i: int) -> int | None:
    """Distinct parameter counts in a scrambled order; every 97th model is not measured."""
    return None if i % 97 == 0 else 1_000_000 + (i * 7919) % MODELS * 10_000


class ManyModels:
    """A measured catalog of ``count`` vision models and two datasets (the Catalog's reads)."""

    def __init__(self, count: int) -> None:
        self._entries: dict[str, dict[str, Entry]] = {"model": {}, "dataset": {}}
        for i in range(count):
            spec = ModelSpec(
                f"m{i:05d}",
                "timm",
                Modality.VISION,
                {"arch": "resnet18", "pretrained": False, "seed": i},
                info={"gflops": float(i + 1)},
            )
            params = _params(i)
            measured = None if params is None else {"num_params": params, "feature_dim": 512}
            self._add("model", spec, i, measured)
        for seq, (name, size) in enumerate((("train", TRAIN_ROWS), ("test", TEST_ROWS))):
            spec = DatasetSpec(name, "npz", {"path": f"{name}.npz"}, Modality.VISION)
            measured = {"size": size, "num_classes": 10, "modality": "vision"}
            self._add("dataset", spec, seq, {**measured, "classes": list(range(10))})

    def _add(self, kind: str, spec: Any, seq: int, measured: dict[str, Any] | None) -> None:
        entry = Entry(kind, spec, EntryStatus.READY, "2026-12-01", seq, measured)
        entry.ready.set()
        self._entries[kind][spec.name] = entry

    def rows(self, kind: str) -> list[dict[str, Any]]:
        return [{**e.row, "status": "ready", "error": None} for e in self._entries[kind].values()]

    def get(self, kind: str, name: str) -> Entry:
        if name not in self._entries[kind]:
            raise unknown_name(kind, name, self._entries[kind])
        return self._entries[kind][name]

    async def settle(self, kind: str, names: list[str] | None = None) -> None:
        return None


def _error_rate(name: str, train_rows: int) -> float:
    return 0.05 + (zlib.crc32(name.encode()) % 10_000) / 20_000 + 2.0 / train_rows**0.5


class Answers:
    """An in-memory task runner whose results outlive a "broker restart" (like the tasks
    table); ``stop_after`` classifies, it stops answering (the broker went away)."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}
        self.created: list[TaskSpec] = []
        self.asked = 0  # classify tasks asked for, answered from the results or not
        self.stop_after: int | None = None
        self.stopped = asyncio.Event()

    def report_stage(self, stage: Stage) -> None:
        return None

    async def run(self, specs: Sequence[TaskSpec]) -> dict[str, Any]:
        out = {}
        for spec in specs:
            self.asked += spec.kind == "classify"
            if spec.task_id not in self.results:
                stop = self.stop_after
                if spec.kind == "classify" and stop is not None and self.classifies() >= stop:
                    self.stopped.set()
                    await asyncio.Event().wait()  # never answered: cancelled with the run
                self.created.append(spec)
                self.results[spec.task_id] = self._compute(spec)
            out[spec.task_id] = self.results[spec.task_id]
        await asyncio.sleep(0)
        return out

    def classifies(self) -> int:
        return sum(s.kind == "classify" for s in self.created)

    def _compute(self, spec: TaskSpec) -> Any:
        if spec.kind == "embed":
            return {"rows": 256, "cached": False}
        task = ClassifyPayload.from_json(spec.payload)
        train = task.train_rows if task.train_rows is not None else TRAIN_ROWS
        test = task.test_rows if task.test_rows is not None else TEST_ROWS
        errors = round(min(1.0, _error_rate(task.model.name, train)) * test)
        return {
            "classifier": task.classifier,
            "params": task.params,
            "err": errors / test,
            "acc": 1 - errors / test,
            "errors": errors,
            "train_rows": train,
            "test_rows": test,
            "num_classes": 10,
        }

    def state(self, task_id: str) -> str | None:
        return "succeeded" if task_id in self.results else None

    async def result(self, task_id: str) -> Any:
        return self.results.get(task_id)

    async def forget(self, kind: str) -> int:
        return 0

    async def timings(self) -> dict[tuple[str, str], float]:
        return {}


async def _context(path: Path, catalog: ManyModels, answers: Answers) -> tuple[Context, Store]:
    store = Store(path)
    await store.open()
    memory = SearchState(Tables(store))
    await memory.open()
    variables: dict[str, list[str]] = {}

    async def persist(name: str, names: list[str]) -> None:
        return None

    evaluator = Evaluator(answers, memory)
    ctx = Context(catalog, Session(variables, persist), answers, evaluator, memory)  # type: ignore[arg-type]
    return ctx, store


@pytest.fixture(scope="module")
def catalog() -> ManyModels:
    return ManyModels(MODELS)


async def test_select_over_thousands_of_rows_answers_as_a_plain_scan(catalog, tmp_path):
    ctx, store = await _context(tmp_path / "shift.sqlite", catalog, Answers())
    try:
        text = (
            "SELECT name, num_params FROM models WHERE num_params < 20M AND num_params > 5M "
            "ORDER BY num_params DESC LIMIT 10"
        )
        (table,) = (await execute(parse(text), ctx)).tables
        rows = [r for r in catalog.rows("model") if r["num_params"] is not None]
        kept = [r for r in rows if 5_000_000 < r["num_params"] < 20_000_000]
        kept.sort(key=lambda r: r["num_params"], reverse=True)
        assert [list(r) for r in table.rows] == [[r["name"], r["num_params"]] for r in kept[:10]]
        # NULLs: not kept by a comparison, kept by IS NULL, and ordered last
        text = "SELECT name FROM models WHERE num_params IS NULL OR gflops <= 3 ORDER BY num_params"
        (table,) = (await execute(parse(text), ctx)).tables
        nulls = [f"m{i:05d}" for i in range(MODELS) if _params(i) is None]
        assert [r[0] for r in table.rows] == sorted(
            ["m00001", "m00002"], key=lambda n: _params(int(n[1:])) or 0
        ) + nulls
        text = "SELECT name FROM models WHERE NOT num_params >= 1.5M LIMIT 100000"
        (table,) = (await execute(parse(text), ctx)).tables
        small = [r["name"] for r in rows if r["num_params"] < 1_500_000]
        assert [r[0] for r in table.rows] == small
    finally:
        await store.close()


async def test_explain_over_a_thousand_models_counts_every_task(catalog, tmp_path):
    ctx, store = await _context(tmp_path / "shift.sqlite", catalog, Answers())
    try:
        search = (
            "SELECT name FROM models WHERE gflops <= 1000 ORDER BY err ASC "
            'TRAINED ON "train" TESTED ON "test" CLASSIFIED BY "Linear" LIMIT 5'
        )
        body = json.loads((await execute(parse("EXPLAIN JSON " + search), ctx)).message)
        blocks = TRAIN_ROWS // 256 + TEST_ROWS // 256
        assert body["tasks"] == 1000 * (blocks + 1)
        assert (body["known"], body["to_run"]) == (0, 1000 * (blocks + 1))
        assert sorted(r["model"] for r in body["models"]) == [f"m{i:05d}" for i in range(1000)]
        assert {r["tasks"] for r in body["models"]} == {blocks + 1}
        # After the search ran, every task is known
        await execute(parse(search), ctx)
        body = json.loads((await execute(parse("EXPLAIN JSON " + search), ctx)).message)
        assert (body["known"], body["to_run"]) == (1000 * (blocks + 1), 0)
    finally:
        await store.close()


HALVING = (
    "SELECT name FROM models WHERE gflops <= 300 ORDER BY err ASC "
    'TRAINED ON "train" TESTED ON "test" CLASSIFIED BY "Linear" LIMIT 300 '
    "CHUNK AUTO BUDGET AUTO"
)


def _ranking(result: Any) -> list[tuple[Any, ...]]:
    (table,) = result.tables
    return [tuple(row) for row in table.rows]


async def test_a_resumed_halving_search_of_300_arms_equals_an_uninterrupted_one(catalog, tmp_path):
    whole_answers = Answers()
    ctx, store = await _context(tmp_path / "whole.sqlite", catalog, whole_answers)
    try:
        whole = _ranking(await execute(parse(HALVING), ctx))
    finally:
        await store.close()
    evaluations = whole_answers.classifies()
    assert len(whole) == 300 and evaluations > 300  # later rounds ran

    answers = Answers()
    answers.stop_after = evaluations // 2
    path = tmp_path / "resumed.sqlite"
    ctx, store = await _context(path, catalog, answers)
    run = asyncio.ensure_future(execute(parse(HALVING), ctx))
    await asyncio.wait({run, asyncio.ensure_future(answers.stopped.wait())}, timeout=60)
    assert answers.stopped.is_set() and not run.done()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    await store.barrier()
    appended = await store.fetch("SELECT COUNT(*) FROM halving_results")
    ((key, state),) = await store.fetch("SELECT key, state FROM halving")
    await store.close()
    # transitions were appended to the state written when the search started
    assert json.loads(state)["results"] == [] and appended[0][0] > 0

    answers.stop_after = None
    before = answers.classifies()
    ctx, store = await _context(path, catalog, answers)
    try:
        assert ctx.machines is not None
        stored = await ctx.machines.load_machine(key)
        assert stored is not None
        restored = SuccessiveHalving.from_json(stored)
        assert restored.recorded == appended[0][0] > 0
        answers.asked = 0
        resumed = _ranking(await execute(parse(HALVING), ctx))
        # the finished state is written whole, with no appended rows left
        assert (await store.fetch("SELECT COUNT(*) FROM halving_results"))[0][0] == 0
    finally:
        await store.close()
    assert resumed == whole
    # the resumed search asked for the same evaluations as the uninterrupted one (no new
    # task), and only for those its restored machine lacked
    assert answers.classifies() == evaluations and before < evaluations
    assert 0 < answers.asked <= evaluations - restored.recorded
