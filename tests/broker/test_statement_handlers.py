"""Statement handlers and the evaluator without sockets or workers.

A real SQLite file holds the search state (:class:`broker.tables.Tables`); tasks go to an
in-memory runner that scores a classify task from a table of errors per model and records
every task it was given, so a test can say which work a statement created.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from broker.catalog import Entry, EntryStatus
from broker.context import Context, Session, Stage
from broker.evaluator import Evaluator
from broker.handlers import execute
from broker.searchstate import SearchState
from broker.store import Store
from broker.tables import Tables
from shift.errors import CatalogError, QueryError
from shift.payloads import ClassifyPayload, PurgeFeaturesPayload, RankPayload
from shift.ql import parse
from shift.registration import unknown_name
from shift.specs import DatasetSpec, Modality, ModelSpec
from shift.tasks import TaskSpec

ERRORS = {"good": 0.1, "fair": 0.3, "poor": 0.6}
"""Every model's error at any number of training rows (the fake proxy's answer)."""


def model(name: str) -> ModelSpec:
    return ModelSpec(name, "timm", Modality.VISION, {"arch": f"arch_{name}"})


def dataset(name: str, modality: Modality = Modality.VISION) -> DatasetSpec:
    return DatasetSpec(name, "npz", {"path": f"{name}.npz"}, modality)


class FakeCatalog:
    """Measured entries of three models and two datasets (the Catalog's read methods)."""

    def __init__(self) -> None:
        sizes = {"train": 1000, "test": 200, "letters": 200, "reviews": 200}
        labels = {"letters": ["a", "b"], "reviews": ["fresh", "rotten"]}
        self._entries: dict[str, dict[str, Entry]] = {"model": {}, "dataset": {}}
        for seq, name in enumerate(ERRORS):
            self._add("model", model(name), seq, {"num_params": 1000, "feature_dim": 8})
        for seq, (name, size) in enumerate(sizes.items()):
            modality = Modality.TEXT if name == "reviews" else Modality.VISION
            classes = labels.get(name, [0, 1])
            measured = {
                "size": size,
                "num_classes": 2,
                "modality": modality.value,
                "classes": classes,
            }
            self._add("dataset", dataset(name, modality), seq, measured)

    def _add(self, kind: str, spec: Any, seq: int, measured: dict[str, Any]) -> None:
        entry = Entry(kind, spec, EntryStatus.READY, "2026-12-01", seq, measured)
        entry.ready.set()
        self._entries[kind][spec.name] = entry

    def rows(self, kind: str) -> list[dict[str, Any]]:
        return [e.row for e in self._entries[kind].values()]

    def get(self, kind: str, name: str) -> Entry:
        if name not in self._entries[kind]:
            raise unknown_name(kind, name, self._entries[kind])
        return self._entries[kind][name]

    async def settle(self, kind: str, names: list[str] | None = None) -> None:
        return None


class FakeTasks:
    """An in-memory task runner: every task it is given, and results computed on the spot."""

    def __init__(self) -> None:
        self.submitted: list[TaskSpec] = []
        self.results: dict[str, Any] = {}
        self.stages: list[Stage] = []

    def report_stage(self, stage: Stage) -> None:
        self.stages.append(stage)

    async def run(self, specs: Sequence[TaskSpec]) -> dict[str, Any]:
        out = {}
        for spec in specs:
            if spec.task_id not in self.results:
                self.submitted.append(spec)
                self.results[spec.task_id] = self._compute(spec)
            out[spec.task_id] = self.results[spec.task_id]
        await asyncio.sleep(0)
        return out

    def _compute(self, spec: TaskSpec) -> Any:
        if spec.kind == "embed":
            return {"rows": 256, "cached": False}
        if spec.kind == "rank":
            task = RankPayload.from_json(spec.payload)
            score = 1 - ERRORS[task.model.name]
            return {
                "ranker": task.ranker,
                "params": task.params,
                "score": score,
                "train_rows": 1000,
                "num_classes": 2,
                "ci_low": score - 0.05,
                "ci_high": score + 0.05,
                "resamples": task.resamples,
            }
        if spec.kind == "purge_features":
            PurgeFeaturesPayload.from_json(spec.payload)
            return {"existed": True, "files": 3, "path": "/state/features"}
        task = ClassifyPayload.from_json(spec.payload)
        train_rows = task.train_rows if task.train_rows is not None else 1000
        test_rows = task.test_rows if task.test_rows is not None else 200
        err = ERRORS[task.model.name]
        return {
            "classifier": task.classifier,
            "params": task.params,
            "err": err,
            "acc": 1 - err,
            "errors": round(err * test_rows),
            "train_rows": train_rows,
            "test_rows": test_rows,
            "num_classes": 2,
            "nn_index": [0] * test_rows,
            "nn_distance": [0.0] * test_rows,
            "distance_pairs": train_rows * test_rows,
        }

    def kinds(self) -> list[str]:
        return [s.kind for s in self.submitted]

    def state(self, task_id: str) -> str | None:
        return "succeeded" if task_id in self.results else None

    async def result(self, task_id: str) -> Any:
        return self.results.get(task_id)

    async def forget(self, kind: str) -> int:
        gone = [s.task_id for s in self.submitted if s.kind == kind]
        for task_id in gone:
            self.results.pop(task_id, None)
        return len(gone)

    async def timings(self) -> dict[tuple[str, str], float]:
        return {}


@pytest.fixture
async def memory(tmp_path):
    store = Store(tmp_path / "shift.sqlite")
    await store.open()
    state = SearchState(Tables(store))
    await state.open()
    yield state
    await store.close()


@pytest.fixture
def tasks() -> FakeTasks:
    return FakeTasks()


@pytest.fixture
def ctx(tasks: FakeTasks, memory: SearchState) -> Context:
    variables: dict[str, list[str]] = {}

    async def persist(name: str, names: list[str]) -> None:
        return None

    evaluator = Evaluator(tasks, memory)
    return Context(FakeCatalog(), Session(variables, persist), tasks, evaluator, memory)  # type: ignore[arg-type]


SEARCH = (
    'SELECT * FROM models ORDER BY err ASC TRAINED ON "train" TESTED ON "test" '
    'CLASSIFIED BY ["Cosine NN"]'
)


async def test_exhaustive_search_ranks_through_the_evaluator(ctx, tasks):
    result = await execute(parse(SEARCH), ctx)
    (table,) = result.tables
    assert [row[0] for row in table.rows] == ["good", "fair", "poor"]
    assert result.names == ("good", "fair", "poor")
    # 1000 training rows = 4 blocks, 200 test rows = 1 block, per model; one classify each.
    assert tasks.kinds().count("embed") == 3 * 5
    assert tasks.kinds().count("classify") == 3


async def test_a_repeated_search_creates_no_task(ctx, tasks):
    await execute(parse(SEARCH), ctx)
    before = len(tasks.submitted)
    again = await execute(parse(SEARCH), ctx)
    assert len(tasks.submitted) == before
    assert again.names == ("good", "fair", "poor")


async def test_a_grown_evaluation_continues_from_the_smaller_one(ctx, tasks):
    evaluator: Evaluator = ctx.evaluator
    train, test = dataset("train"), dataset("test")
    sizes = {train.key: 1000, test.key: 200}
    small = ClassifyPayload(model("good"), (train,), 256, test, None, "cosine_nn")
    grown = ClassifyPayload(model("good"), (train,), 512, test, None, "cosine_nn")
    await evaluator.classify(small, sizes)
    result = await evaluator.classify(grown, sizes)
    assert result.train_rows == 512
    last = ClassifyPayload.from_json(tasks.submitted[-1].payload)
    assert last.prior is not None and last.prior.train_rows == 256 and last.prior.train is None
    # The same evaluation again is answered from the memory: no task.
    count = len(tasks.submitted)
    assert (await evaluator.classify(grown, sizes)).train_rows == 512
    assert len(tasks.submitted) == count


async def test_halving_keeps_the_winner_and_embeds_less(ctx, tasks):
    result = await execute(parse(SEARCH + " CHUNK 128 BUDGET AUTO"), ctx)
    (table,) = result.tables
    names = [row[0] for row in table.rows]
    assert names[0] == "good"
    eliminated = table.columns.index("eliminated_in")
    assert table.rows[0][eliminated] is None
    # Halving embeds fewer training blocks than the exhaustive 3 models x 4 blocks.
    embeds = [s for s in tasks.submitted if s.kind == "embed"]
    train_blocks = [s for s in embeds if s.payload["dataset"]["name"] == "train"]
    assert len(train_blocks) < 3 * 4
    # The progress followed the rounds: 3 models on 128 rows, then the finalists.
    assert tasks.stages[0] == Stage(0, 2, 3, 128, 200)
    assert tasks.stages[-1].round == 1


async def test_purge_features_is_work_for_a_worker(ctx, tasks):
    result = await execute(parse("PURGE FEATURES"), ctx)
    assert tasks.kinds() == ["purge_features"]
    assert "deleted the feature store (3 file(s))" in result.message
    second = await execute(parse("PURGE FEATURES"), ctx)
    assert tasks.kinds() == ["purge_features", "purge_features"]  # never answered by a cache
    assert "deleted 0 embed tasks" in second.message


async def test_declare_then_search_the_variable(ctx, tasks):
    await execute(parse("DECLARE top AS SELECT * FROM models WHERE name != 'poor'"), ctx)
    assert ctx.variables["top"] == ["good", "fair"]
    result = await execute(parse(SEARCH.replace("FROM models", "FROM top")), ctx)
    assert result.names == ("good", "fair")


async def test_errors_before_any_task(ctx, tasks):
    with pytest.raises(CatalogError, match="did you mean 'train'"):
        await execute(parse(SEARCH.replace('"train"', '"trian"')), ctx)
    with pytest.raises(CatalogError, match="variable"):
        await execute(parse("PRINT nothing_declared"), ctx)
    with pytest.raises(CatalogError, match=r"mixes text and vision data.*'reviews' is text"):
        await execute(parse(SEARCH.replace('"test"', '"reviews"')), ctx)
    with pytest.raises(CatalogError, match="no label of test set 'letters'"):
        await execute(parse(SEARCH.replace('"test"', '"letters"')), ctx)
    with pytest.raises(QueryError, match="did you mean"):
        await execute(parse('RANK * FROM models TRAINED ON "train" BY "logmee"'), ctx)
    with pytest.raises(CatalogError, match="did you mean 'train'"):
        await execute(parse('RANK * FROM models TRAINED ON "trian" BY "logme"'), ctx)
    assert tasks.submitted == []


RANK = 'RANK * FROM models TRAINED ON "train" BY ["logme", "knn(k=3)"]'


async def test_rank_after_a_search_embeds_nothing_and_again_runs_nothing(ctx, tasks):
    await execute(parse(SEARCH), ctx)
    embeds = tasks.kinds().count("embed")
    result = await execute(parse(RANK), ctx)
    assert tasks.kinds().count("embed") == embeds  # the search's blocks serve the rankers
    assert tasks.kinds().count("rank") == 3 * 2
    assert [t.title for t in result.tables] == [
        "logme (score: higher is better)",
        "knn (score: higher is better)",
    ]
    table = result.tables[0]
    assert [row[0] for row in table.rows] == ["good", "fair", "poor"]
    tied = table.columns.index("tied_with_first")
    assert [row[tied] for row in table.rows] == [True, False, False]
    count = len(tasks.submitted)
    await execute(parse(RANK), ctx)
    assert len(tasks.submitted) == count
    assert result.names == ("good", "fair", "poor")
