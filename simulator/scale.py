"""Scale study: simulated makespan and broker load from 10 to 10,000 models, 1 to 512 devices.

Every cell is one exhaustive search simulated by :mod:`simulator.engine` (the broker's own
dispatcher, 256-row embed tasks unless ``block_rows`` aggregates them). Broker load is the
dispatch decisions and frames per second of makespan. The single broker becomes the
bottleneck when the devices ask for more round trips per second than it serves: with a mean
task of ``t`` seconds, ``D`` devices ask for ``D / t`` tasks/s, so the limit is
``D* = rate * t`` devices (:func:`bottleneck_devices`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.costs import Overheads, Workload
from simulator.engine import Cluster, SimResult, simulate
from simulator.searches import Exhaustive

MODELS = (10, 100, 1000, 10_000)
DEVICES = (1, 8, 64, 512)


@dataclass(frozen=True)
class Cell:
    """One (models, devices) simulation and how long it took to simulate."""

    models: int
    devices: int
    result: SimResult
    wall_s: float


def mean_task_s(workload: Workload) -> float:
    """Mean device time per broker task (``block_rows`` units), one load per model
    included."""
    tasks = 0
    busy = 0.0
    for m in workload.models:
        for size in (workload.train_rows, workload.test_rows):
            tasks += -(-size // workload.block_rows)
            busy += m.embed_s(size)
        tasks += workload.classifiers
        busy += workload.classifiers * m.classify_cost_s(workload.train_rows, workload.test_rows)
        busy += m.load_s
    return busy / tasks


def bottleneck_devices(workload: Workload, broker_tasks_per_s: float) -> float:
    """Devices at which the broker's round-trip rate is used up: ``rate * mean task s``."""
    return broker_tasks_per_s * mean_task_s(workload)


def feeds_line(workload: Workload, broker_tasks_per_s: float, where: str) -> str:
    """The sentence saying how many workers one broker can feed, and from which costs.

    A worker busy on tasks of ``t`` seconds asks for ``1 / t`` tasks per second; the
    broker serves ``rate`` per second, so it keeps ``rate * t`` workers busy
    (:func:`bottleneck_devices`); beyond that, workers wait on the broker.

    Args:
        workload: The search (its models' costs decide the mean task).
        broker_tasks_per_s: Tasks the broker handles per second.
        where: Where the costs come from (printed).
    """
    mean = mean_task_s(workload)
    models = workload.models
    embed_ms = 1000 * sum(m.embed_s_per_row for m in models) / len(models)
    load_s = sum(m.load_s for m in models) / len(models)
    classify_s = sum(m.classify_s for m in models) / len(models)
    return (
        f"One broker feeds about {bottleneck_devices(workload, broker_tasks_per_s):,.0f} "
        f"workers: it serves {broker_tasks_per_s:,.0f} tasks/s and a busy worker asks for "
        f"{1 / mean:,.2f} tasks/s (mean task {mean:.3f} s: embed {embed_ms:.3g} ms/row, "
        f"load {load_s:.3g} s, classify {classify_s:.3g} s per model; {where})."
    )


def scale(
    make: Callable[[int], Workload],
    models: Sequence[int] = MODELS,
    devices: Sequence[int] = DEVICES,
    overheads: Overheads | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[Cell]:
    """Simulate every (models, devices) cell; ``make(n)`` builds the workload of ``n`` models."""
    cells = []
    for count in models:
        workload = make(count)
        for d in devices:
            start = clock()
            result = simulate(
                workload, Exhaustive(workload), Cluster(d), overheads, keep_segments=False
            )
            cells.append(Cell(count, d, result, clock() - start))
    return cells


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def markdown(cells: Sequence[Cell]) -> str:
    """The cells as a Markdown table."""
    lines = [
        "| models | devices | tasks | makespan | device util | dispatch/s | messages/s "
        "| broker util | sim wall s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        r = c.result
        lines.append(
            f"| {c.models:,} | {c.devices} | {r.dispatches:,} | {_duration(r.makespan_s)} "
            f"| {r.utilisation:.0%} | {r.dispatch_rate:,.1f} | {r.message_rate:,.1f} "
            f"| {r.broker_utilisation:.2%} | {c.wall_s:.1f} |"
        )
    return "\n".join(lines)
