"""Task records for the cost model, read from a real task store and a real broker's REST API.

The store is written through :class:`broker.store.Store` (as the broker writes it); the
simulator reads it back through the same class (``--from-state``) and through ``GET
/v1/tasks`` of a broker process started on that state directory (``--from-url``). Both
must give the same records: only succeeded embed and classify tasks, in submission order.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from broker.server import DB_NAME
from broker.store import Store
from shift.dispatch import Change
from shift.tasks import TaskSpec, TaskState
from simulator.measure import MeasureError, measure_costs, read_state, read_url
from tests.broker.broker_helpers import BrokerProcess

EMBED = {"rows": 64, "load_s": 1.5, "read_s": 0.1, "embed_s": 3.2, "write_s": 0.2}
CLASSIFY = {"train_rows": 64, "test_rows": 32, "read_s": 0.05, "fit_s": 0.02}


def _task(kind: str, model: str, rows: int) -> TaskSpec:
    return TaskSpec(kind, {"model": {"name": f"{model}-name"}, "rows": [0, rows]}, model)


TASKS: list[tuple[TaskSpec, TaskState, dict[str, Any] | None]] = [
    (_task("embed", "m1", 64), TaskState.SUCCEEDED, EMBED),
    (_task("describe", "m1", 1), TaskState.SUCCEEDED, {"num_params": 10}),
    (_task("embed", "m2", 64), TaskState.FAILED, None),
    (_task("classify", "m1", 64), TaskState.SUCCEEDED, CLASSIFY),
    (_task("embed", "m2", 128), TaskState.SUCCEEDED, {**EMBED, "rows": 128, "load_s": 0.5}),
]


async def _write(path: Path) -> None:
    store = Store(path)
    await store.open()
    try:
        for spec, state, value in TASKS:
            error = None if state is TaskState.SUCCEEDED else "boom"
            change = Change(spec.task_id, state, 1, "w1", spec, value, error)
            await store.write([change])
    finally:
        await store.close()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    asyncio.run(_write(tmp_path / DB_NAME))
    return tmp_path


def test_read_state_keeps_succeeded_embed_and_classify_tasks_in_order(state_dir: Path) -> None:
    records = read_state(state_dir)
    assert [(r.kind, r.model, r.model_name) for r in records] == [
        ("embed", "m1", "m1-name"),
        ("classify", "m1", "m1-name"),
        ("embed", "m2", "m2-name"),
    ]
    assert records[0].worker == "w1"
    assert records[0].elapsed_s == pytest.approx(1.5 + 0.1 + 3.2 + 0.2)
    measured = measure_costs(records)
    assert measured.load_s == {"m1-name": 1.5, "m2-name": 0.5}
    assert measured.embed_s_per_row["m1-name"] == pytest.approx(3.5 / 64)
    assert measured.proxy_s_per_pair == pytest.approx(0.02 / (64 * 32))


@pytest.mark.slow
def test_read_url_gives_the_records_read_state_gives(state_dir: Path, tmp_path: Path) -> None:
    broker = BrokerProcess(state_dir, tmp_path / "broker.log").start()
    try:
        from_url = read_url(broker.http)
        assert from_url == read_state(state_dir)
        assert read_url(broker.http, limit=1) == from_url  # one task per page
    finally:
        broker.stop()


def test_a_missing_store_is_a_measure_error(tmp_path: Path) -> None:
    with pytest.raises(MeasureError, match=f"no broker store at {tmp_path / DB_NAME}"):
        read_state(tmp_path)


def test_a_file_that_is_not_sqlite_is_a_measure_error(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"not a database at all, just bytes " * 64)
    with pytest.raises(MeasureError, match="cannot read the broker's tasks"):
        read_state(tmp_path)


def test_an_unreachable_broker_is_a_measure_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(MeasureError, match=f"cannot read tasks from http://127.0.0.1:{port}"):
        read_url(f"http://127.0.0.1:{port}")


@pytest.mark.slow
def test_read_url_sends_the_token_a_broker_requires(state_dir: Path, tmp_path: Path) -> None:
    broker = BrokerProcess(state_dir, tmp_path / "broker.log", token="s3cret").start()
    try:
        with pytest.raises(MeasureError, match="broker answered 401"):
            read_url(broker.http)
        assert len(read_url(broker.http, "s3cret")) == 3
    finally:
        broker.stop()
