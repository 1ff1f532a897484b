"""Racing halving through the statement handlers: test prefixes, embeds, EXPLAIN, progress.

The in-memory task runner of ``test_statement_handlers`` scores classify tasks from a table
of errors per model; here the test set has 1,000 rows, so racing's early round scores on a
prefix of one feature block.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from broker.context import Context, Session, Stage
from broker.evaluator import Evaluator
from broker.handlers import execute
from shift.payloads import ClassifyPayload
from shift.ql import parse
from shift.tasks import TaskSpec
from tests.broker.test_statement_handlers import FakeCatalog, FakeTasks, dataset, memory

__all__ = ["memory"]  # the SQLite-backed search-state fixture

TEST_ROWS = 1000
QUERY = (
    'SELECT * FROM models ORDER BY acc DESC TRAINED ON "train" TESTED ON "test" '
    'CLASSIFIED BY ["Cosine NN"] CHUNK 256 BUDGET AUTO'
)


class WideTasks(FakeTasks):
    """The fake runner with a 1,000-row test set."""

    def _compute(self, spec: TaskSpec) -> Any:
        out = super()._compute(spec)
        if spec.kind == "classify" and ClassifyPayload.from_json(spec.payload).test_rows is None:
            err = out["err"]
            out.update(test_rows=TEST_ROWS, errors=round(err * TEST_ROWS))
        return out


@pytest.fixture
def tasks() -> WideTasks:
    return WideTasks()


@pytest.fixture
def ctx(tasks: WideTasks, memory: Any) -> Context:
    catalog = FakeCatalog()
    measured = {"size": TEST_ROWS, "num_classes": 2, "modality": "vision", "classes": [0, 1]}
    catalog._add("dataset", dataset("test"), 1, measured)

    async def persist(name: str, names: list[str]) -> None:
        return None

    return Context(catalog, Session({}, persist), tasks, Evaluator(tasks, memory), memory)  # type: ignore[arg-type]


def classify_rows(tasks: FakeTasks) -> list[tuple[str, int | None, int | None]]:
    out = []
    for spec in tasks.submitted:
        if spec.kind == "classify":
            payload = ClassifyPayload.from_json(spec.payload)
            out.append((payload.model.name, payload.train_rows, payload.test_rows))
    return out


async def test_racing_scores_round_0_on_a_test_prefix(ctx: Context, tasks: WideTasks) -> None:
    result = await execute(parse(QUERY), ctx)
    (table,) = result.tables
    assert [row[0] for row in table.rows] == ["good", "fair", "poor"]
    # Round 0: 3 models on 256 training rows, scored on the first 256 test rows; fair and
    # poor (0.3 and 0.6 against good's 0.1 on 256 rows) are confidently worse than the
    # leader; good alone plays round 1 (the last) on 512 training rows and the whole test set.
    assert sorted(classify_rows(tasks)) == [
        ("fair", 256, 256),
        ("good", 256, 256),
        ("good", 512, None),
        ("poor", 256, 256),
    ]
    test_blocks = {
        (s.payload["model"]["name"], s.payload["block"])
        for s in tasks.submitted
        if s.kind == "embed" and s.payload["dataset"]["name"] == "test"
    }
    assert ("poor", 0) in test_blocks and ("poor", 1) not in test_blocks
    assert {("good", b) for b in range(4)} <= test_blocks
    assert tasks.stages[0] == Stage(0, 2, 3, 256, 256)
    assert tasks.stages[-1] == Stage(1, 2, 1, 512, 1000)
    columns = table.columns
    poor = table.rows[-1]
    assert poor[columns.index("eliminated_in")] == 0
    assert poor[columns.index("test_rows")] == 256


async def test_the_plain_rule_scores_every_round_on_the_whole_test_set(
    ctx: Context, tasks: WideTasks
) -> None:
    """``halving = plain`` (the setting): the rule before racing, for comparison."""
    plain = dataclasses.replace(ctx, racing=False)
    result = await execute(parse(QUERY), plain)
    assert [row[0] for row in result.tables[0].rows] == ["good", "fair", "poor"]
    rows = classify_rows(tasks)
    assert rows and all(test is None for _, _, test in rows)
    assert sorted((m, train) for m, train, _ in rows) == [
        ("fair", 256),
        ("fair", 512),
        ("good", 256),
        ("good", 512),
        ("poor", 256),
    ]


async def test_explain_shows_the_halving_plan(ctx: Context, tasks: WideTasks) -> None:
    before = await execute(parse(f"EXPLAIN JSON {QUERY}"), ctx)
    body = json.loads(before.message)
    assert body["statement"] == "task-aware query (successive halving)"
    (search,) = body["halving"]
    rounds = search["schedule"]["rounds"]
    assert [(r["arms"], r["train_rows"], r["test_rows"], r["advancing"]) for r in rounds] == [
        (3, 256, 256, 2),
        (2, 512, 1000, "final"),
    ]
    # Round 0: 3 models x (1 test block + 1 train block), 3 classifies. Round 1: 2 models x
    # (3 more test blocks + 1 more train block), 2 classifies.
    assert [(r["embeds"], r["classifies"]) for r in rounds] == [(6, 3), (8, 2)]
    assert (body["tasks"], body["known"], body["to_run"]) == (19, 0, 19)
    assert tasks.submitted == []

    await execute(parse(QUERY), ctx)
    after = json.loads((await execute(parse(f"EXPLAIN JSON {QUERY}"), ctx)).message)
    assert after["to_run"] == 0 and after["known"] == after["tasks"]
    assert after["estimated_s"] == 0.0
    scores = after["halving"][0]["scores"]
    good = [s for s in scores if s["model"] == "good"]
    # Scores in the query's metric (acc, not the machine's negated loss), with their rows.
    assert [(s["round"], s["train_rows"], s["test_rows"]) for s in good] == [
        (0, 256, 256),
        (1, 512, 1000),
    ]
    assert good[-1]["acc"] == pytest.approx(0.9)
    text = await execute(parse(f"EXPLAIN {QUERY}"), ctx)
    assert "0 to run" in text.message
    schedule = next(t for t in text.tables if t.title.startswith("schedule"))
    assert schedule.rows[-1][schedule.columns.index("advancing")] == "final"
