"""``Broker.outcome``: a task's committed result, from the write that committed it.

An in-process broker on a real SQLite file and one real worker process on loopback.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from broker.service import Broker, BrokerConfig
from broker.store import Store
from shift.errors import SchedulerError
from shift.tasks import TaskSpec, TaskState

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


async def test_outcome_carries_the_committed_value(tmp_path, monkeypatch):
    store = Store(tmp_path / "shift.sqlite")
    await store.open()
    broker = Broker(BrokerConfig("tcp://127.0.0.1:0"), store)
    await broker.start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers", "--broker", broker.bound_endpoint, "--id", "w1",
         "--log-level", "warning"],
        cwd=ROOT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(60):
            while not broker.dispatcher.workers:
                await asyncio.sleep(0.05)
        spec = TaskSpec("sleep", {"seconds": 1.0, "value": {"answer": 42}})
        await broker.submit([spec])
        reads = []
        original = store.get

        async def counted(task_id: str):
            reads.append(task_id)
            return await original(task_id)

        monkeypatch.setattr(store, "get", counted)
        outcome = await asyncio.wait_for(broker.outcome(spec.task_id), 60)
        assert outcome.state is TaskState.SUCCEEDED
        assert outcome.value == {"slept_s": 1.0, "value": {"answer": 42}}
        assert reads == []  # the value came with the commit, not from a read
        again = await broker.outcome(spec.task_id)  # final already: read once from the store
        assert again == outcome and reads == [spec.task_id]
        failing = TaskSpec("fail", {"message": "no such luck"})
        await broker.submit([failing])
        failed = await asyncio.wait_for(broker.outcome(failing.task_id), 60)
        assert failed.state is TaskState.FAILED and "no such luck" in (failed.error or "")
        with pytest.raises(SchedulerError, match="not in the store"):
            broker.dispatcher.forget([spec.task_id])
            await store.delete([spec.task_id])
            monkeypatch.setattr(broker.dispatcher, "state_of", lambda _: TaskState.SUCCEEDED)
            await broker.outcome(spec.task_id)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        await broker.close()
