"""RANK with strategies through the handlers and the evaluator, without sockets or workers.

The in-memory runner and catalog are those of ``test_statement_handlers``; here each ranker
scores the models differently, so that a strategy's order, its ties and its tie-break show.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from broker.context import Context
from broker.handlers import execute
from broker.rank_plan import default_strategy
from shift.errors import QueryError, SettingsError
from shift.payloads import RankPayload
from shift.ql import parse
from shift.tasks import TaskSpec
from tests.broker.test_statement_handlers import SEARCH, FakeTasks, memory  # noqa: F401

SCORES = {
    "logme": {"good": 0.9, "fair": 0.88, "poor": 0.4},
    "knn": {"good": 0.6, "fair": 0.72, "poor": 0.2},
    "sfda": {"good": 0.5, "fair": 0.5, "poor": 0.1},
}
"""Each ranker's score of each model; every interval is the score +- 0.05."""


class RankerTasks(FakeTasks):
    """The handlers' fake runner with a score per ranker."""

    def _compute(self, spec: TaskSpec) -> Any:
        if spec.kind != "rank":
            return super()._compute(spec)
        task = RankPayload.from_json(spec.payload)
        score = SCORES[task.ranker][task.model.name]
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


@pytest.fixture
def tasks() -> RankerTasks:
    return RankerTasks()


@pytest.fixture
def ctx(tasks: RankerTasks, memory) -> Context:  # noqa: F811
    from broker.context import Session
    from broker.evaluator import Evaluator
    from tests.broker.test_statement_handlers import FakeCatalog

    async def persist(name: str, names: list[str]) -> None:
        return None

    return Context(FakeCatalog(), Session({}, persist), tasks, Evaluator(tasks, memory), memory)  # type: ignore[arg-type]


RANK = 'RANK * FROM models TRAINED ON "train" BY '


def column(table: Any, name: str) -> list[Any]:
    index = table.columns.index(name)
    return [row[index] for row in table.rows]


async def test_a_rank_average_table_with_ties_and_its_tie_break(ctx, tasks):
    result = await execute(parse(RANK + '"rank:logme+knn"'), ctx)
    (table,) = result.tables
    assert table.title.startswith("rank:logme+knn (rank average")
    assert table.columns[:7] == (
        "name", "score", "tied_with_first", "logme", "logme_rank", "knn", "knn_rank"
    )  # fmt: skip
    # good and fair tie at a mean rank of 2.5; good is first in logme, the first component
    assert column(table, "name") == ["good", "fair", "poor"]
    assert column(table, "score") == [2.5, 2.5, 1.0]
    assert column(table, "logme_rank") == [1, 2, 3]
    assert column(table, "knn") == [0.6, 0.72, 0.2]
    # fair overlaps good under logme but not under knn: not tied with the first
    assert column(table, "tied_with_first") == [True, False, False]
    assert result.names == ("good", "fair", "poor")
    assert "every component" in result.message
    assert tasks.kinds().count("rank") == 3 * 2
    count = len(tasks.submitted)
    again = await execute(parse(RANK + '"rank:logme+knn"'), ctx)
    assert len(tasks.submitted) == count  # a repeated query creates no task
    assert again.tables == result.tables


async def test_a_strategy_after_a_rank_creates_only_the_missing_tasks(ctx, tasks):
    await execute(parse(RANK + '"logme"'), ctx)
    before = list(tasks.submitted)
    result = await execute(parse(RANK + '["logme", "z:logme+knn+sfda"]'), ctx)
    new = tasks.submitted[len(before) :]
    assert {RankPayload.from_json(s.payload).ranker for s in new} == {"knn", "sfda"}
    assert [s.kind for s in new] == ["rank"] * 6  # no embed: the blocks are known
    assert [t.title for t in result.tables] == [
        "logme (score: higher is better)",
        "z:logme+knn+sfda (z-score average; higher is better)",
    ]
    assert sorted(column(result.tables[1], "name")) == ["fair", "good", "poor"]


async def test_a_proxy_component_reuses_the_search(ctx, tasks):
    await execute(parse(SEARCH), ctx)
    before = len(tasks.submitted)
    text = RANK.replace('"train"', '"train" TESTED ON "test"') + '"z:logme+Cosine NN"'
    result = await execute(parse(text), ctx)
    # only the logme tasks are new: the embeds and the Cosine NN classifies are the search's
    assert [s.kind for s in tasks.submitted[before:]] == ["rank"] * 3
    (table,) = result.tables
    assert column(table, "cosine_nn") == pytest.approx([0.9, 0.7, 0.4])
    assert column(table, "name") == ["good", "fair", "poor"]
    assert "test rows" in result.message


async def test_no_by_is_the_default_strategy_of_the_setting(ctx, tasks):
    ctx = replace(ctx, rank_strategy="logme_knn")
    result = await execute(parse('RANK * FROM models TRAINED ON "train"'), ctx)
    (table,) = result.tables
    assert table.title.startswith("logme_knn = rank:logme+knn")
    same = await execute(parse(RANK + "default"), ctx)
    assert same.tables == result.tables
    other = replace(ctx, rank_strategy="rank:logme+sfda")
    (table,) = (await execute(parse('RANK * FROM models TRAINED ON "train"'), other)).tables
    assert table.title.startswith("rank:logme+sfda")


async def test_the_default_strategy_is_explained(ctx, tasks):
    ctx = replace(ctx, rank_strategy="logme_knn")
    result = await execute(parse('EXPLAIN JSON RANK * FROM models TRAINED ON "train"'), ctx)
    body = json.loads(result.message)
    (output,) = body["outputs"]
    assert output["strategy"] == "logme_knn" and output["kind"] == "rank"
    assert [c["method"] for c in output["components"]] == ["logme", "knn"]
    # per model: 4 training blocks and 2 rank tasks
    assert body["tasks"] == 3 * 6 and body["to_run"] == 3 * 6
    assert any("every component" in note for note in body["notes"])
    assert tasks.submitted == []
    await execute(parse('RANK * FROM models TRAINED ON "train"'), ctx)
    body = json.loads(
        (await execute(parse('EXPLAIN JSON RANK * FROM models TRAINED ON "train"'), ctx)).message
    )
    assert body["to_run"] == 0


async def test_bad_strategies_fail_before_any_task(ctx, tasks):
    with pytest.raises(QueryError, match="add TESTED ON"):
        await execute(parse(RANK + '"rank:logme+Cosine NN"'), ctx)
    proxied = replace(ctx, rank_strategy="logme_cosine")
    with pytest.raises(QueryError, match=r"the default strategy .*has the proxy Cosine NN"):
        await execute(parse('RANK * FROM models TRAINED ON "train"'), proxied)
    broken = replace(ctx, rank_strategy="logme_knm")
    with pytest.raises(SettingsError, match="did you mean 'logme_knn'"):
        await execute(parse('RANK * FROM models TRAINED ON "train"'), broken)
    assert tasks.submitted == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("logme", "is not a strategy"),
        ("default", "is not a strategy"),
        ("rank:logme", "at least two"),
        ("rank:logme+lgme", "unknown component 'lgme'"),
        ('rank:logme+knn"', "is not a strategy"),
    ],
)
def test_the_setting_must_name_a_strategy(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        default_strategy(value)
    assert default_strategy("rank:logme+knn").kind == "rank"


def test_the_shipped_default_needs_a_test_set_and_falls_back_without_one() -> None:
    """linear_knn reads the test rows (Linear); a RANK without TESTED ON gets its ranker-only
    fallback, logme_transrate_knn, instead of an error."""
    from broker.rank_plan import outputs
    from shift.strategies import DEFAULT_STRATEGY

    assert DEFAULT_STRATEGY == "linear_knn"
    (tested,) = outputs(parse('RANK * FROM m TRAINED ON "a" TESTED ON "b"'), DEFAULT_STRATEGY)
    assert (tested.name, [c.name for c in tested.components]) == ("linear_knn", ["linear", "knn"])
    (untested,) = outputs(parse('RANK * FROM m TRAINED ON "a"'), DEFAULT_STRATEGY)
    assert untested.name == "logme_transrate_knn"
    assert [c.name for c in untested.components] == ["logme", "transrate", "knn"]
    # an inline setting has no fallback: a proxy without TESTED ON is refused
    with pytest.raises(QueryError, match="has no TESTED ON"):
        outputs(parse('RANK * FROM m TRAINED ON "a"'), "rank:Linear+knn")
