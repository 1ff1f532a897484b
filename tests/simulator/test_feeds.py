"""``shift simulate scale --feeds``: how many workers one broker feeds, from given costs and
from costs measured in a real task store (written through :class:`broker.store.Store`)."""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

import pytest

from broker.server import DB_NAME
from broker.store import Store
from shift.dispatch import Change
from shift.tasks import TaskSpec, TaskState
from simulator import simulate_command as command
from simulator.costs import Workload, uniform_models
from simulator.scale import feeds_line, mean_task_s


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.configure(parser)
    return parser.parse_args(["scale", *argv])


def _workers(line: str) -> int:
    found = re.search(r"feeds about ([\d,]+) workers", line)
    assert found is not None, line
    return int(found.group(1).replace(",", ""))


def test_the_fed_workers_are_the_broker_rate_times_the_mean_task() -> None:
    workload = Workload(uniform_models(1, 2.0, 0.02, 0.05), 1000, 500)
    # 1,500 rows in 4 + 2 blocks: 30 s of embedding, one 0.05 s classify, one 2 s load, 7 tasks
    assert mean_task_s(workload) == pytest.approx((30.0 + 0.05 + 2.0) / 7)
    line = feeds_line(workload, 1000.0, "given costs")
    assert _workers(line) == round(1000 * (32.05 / 7))
    assert "given costs" in line


def test_feeds_prints_one_line_per_cost_and_no_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.run(_parse("--feeds", "--embed-s-per-row", "0.02", "0.0002")) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    lines = [line for line in lines if line]
    assert [_workers(line) for line in lines] == [64_200, 4_800]
    assert command.run(_parse("--feeds", "--broker-rate", "1400")) == 0
    assert _workers(capsys.readouterr().out) == 6_420  # a tenth of the rate, a tenth fed
    assert command.run(_parse("--feeds", "--broker-rate", "0")) == 1


async def _write(path: Path) -> None:
    store = Store(path)
    await store.open()
    try:
        embed = {"rows": 256, "load_s": 0.0, "read_s": 0.0, "embed_s": 2.56, "write_s": 0.0}
        spec = TaskSpec("embed", {"model": {"name": "m1"}, "block": 0}, "m1")
        await store.write([Change(spec.task_id, TaskState.SUCCEEDED, 1, "w1", spec, embed, None)])
    finally:
        await store.close()


def test_feeds_from_a_stored_state_uses_its_measured_embed_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_write(tmp_path / DB_NAME))
    assert command.run(_parse("--feeds", "--from-state", str(tmp_path), "--load-s", "0")) == 0
    out = capsys.readouterr().out
    # 10 ms/row measured (2.56 s over 256 rows), not the default 20 ms/row
    assert "embed 10 ms/row" in out and "1 task records, 1 models" in out
    workload = Workload(uniform_models(1, 0.0, 0.01, 0.05), 1000, 500)
    assert _workers(out) == round(14_000 * mean_task_s(workload))
