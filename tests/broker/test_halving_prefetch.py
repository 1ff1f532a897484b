"""Devices stay busy: a next-round embed starts before its round's last classify result.

The in-memory task runner of ``test_statement_handlers`` with a log of every submission and
every result, and one slow model: ``poor``'s round-0 classify answers late. ``good`` is
certain to survive round 0 once ``good`` and ``fair`` are scored (fewer than the 2 arms
that advance can still beat it), so the machine asks for its round-1 evaluation at once:
round 1's new blocks (training block 1, test blocks 1-3) are submitted while ``poor``'s
round-0 classify is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest

from broker.context import Context
from broker.handlers import execute
from shift.payloads import ClassifyPayload, EmbedPayload
from shift.ql import parse
from shift.tasks import TaskSpec
from tests.broker.test_halving_racing import WideTasks, ctx
from tests.broker.test_statement_handlers import memory

__all__ = ["ctx", "memory"]  # the racing context and its SQLite-backed search state

QUERY = (
    'SELECT * FROM models ORDER BY err ASC TRAINED ON "train" TESTED ON "test" '
    'CLASSIFIED BY ["Euclidean NN"] CHUNK 256 BUDGET AUTO'
)
WAIT_S = 5.0
"""Longest the slow classify waits for a next-round embed (never a timing assertion)."""


class SlowPoorTasks(WideTasks):
    """Logs ``("submit"|"result", kind, model, detail)``; poor's round-0 classify is slow."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str, str, Any]] = []
        self.next_round = asyncio.Event()

    async def run(self, specs: Sequence[TaskSpec]) -> dict[str, Any]:
        for spec in specs:
            self.log.append(("submit", spec.kind, *_describe(spec)))
            if spec.kind == "embed" and _describe(spec)[1][1] >= 1:
                self.next_round.set()  # a block round 0 never reads
        slow = [
            s for s in specs if s.kind == "classify" and _describe(s) == ("poor", ("train", 256))
        ]
        if slow:
            # On a timeout the log's order fails the test.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.next_round.wait(), WAIT_S)
        out = await super().run(specs)
        for spec in specs:
            self.log.append(("result", spec.kind, *_describe(spec)))
        return out


def _describe(spec: TaskSpec) -> tuple[str, tuple[str, int]]:
    if spec.kind == "embed":
        payload = EmbedPayload.from_json(spec.payload)
        return payload.model.name, (payload.dataset.name, payload.block)
    task = ClassifyPayload.from_json(spec.payload)
    return task.model.name, ("train", task.train_rows or 1000)


@pytest.fixture
def tasks() -> SlowPoorTasks:
    return SlowPoorTasks()


async def test_next_round_embeds_start_before_the_round_closes(
    ctx: Context, tasks: SlowPoorTasks
) -> None:
    result = await execute(parse(QUERY), ctx)
    assert [row[0] for row in result.tables[0].rows][:2] == ["good", "fair"]
    log = tasks.log
    last_round_0 = max(
        i for i, e in enumerate(log) if e[:2] == ("result", "classify") and e[3] == ("train", 256)
    )
    assert log[last_round_0][2] == "poor"  # the slow one closed round 0
    early = [e[2:] for e in log[:last_round_0] if e[:2] == ("submit", "embed") and e[3][1] >= 1]
    # good's round-1 blocks: training block 1 and the test blocks past racing's prefix.
    assert ("good", ("train", 1)) in early
    assert {("good", ("test", b)) for b in (1, 2, 3)} <= set(early)
    # and its round-1 classify is submitted before round 0 is decided
    assert ("submit", "classify", "good", ("train", 512)) in log[:last_round_0]
