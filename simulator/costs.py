"""The simulator's cost model: what a model, a task and the broker cost, in seconds.

A search's work is the planner's (docs/search.md): ``embed`` tasks per model and block of
``block_rows`` rows of every dataset used, then ``classify`` tasks per model and classifier.
An embed task costs ``rows * embed_s_per_row`` plus ``load_s`` when its worker does not hold
the model; a classify task costs ``classify_s + proxy_s_per_pair * train_rows * test_rows``.
Fixed costs of the shell (planning, waits between phases, the worker's per-task handling,
the broker's per-task work) are :class:`Overheads`, measured from a real run by
:mod:`simulator.measure` or given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator.simulator_errors import SimulatorError

BROKER_TASKS_PER_S = 14_000.0
"""The broker's measured round-trip rate (docs/broker.md, scripts/bench_broker: 13,300-15,500
tasks/s with 1-2 workers on the 2-core machine)."""

BLOCK_ROWS = 256
"""Rows per feature block, as in ``workers.features.BLOCK_ROWS`` (a test checks they agree)."""


class CostError(SimulatorError):
    """A cost, size or overhead is negative, missing or not a number."""

    code = "cost_error"


def _check(where: str, **values: float) -> None:
    for name, value in values.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
            raise CostError(f"{where}: {name} must be a number of seconds, got {value!r}")
        if value < 0:
            raise CostError(f"{where}: {name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class ModelCost:
    """What one candidate model costs.

    Attributes:
        name: The model.
        load_s: Loading it into a worker that does not hold it.
        embed_s_per_row: Inference (read, embed, write) per row.
        classify_s: Fixed part of one classify task (reading features).
        proxy_s_per_pair: Proxy cost per (train row x test row).
        finetune_s: Fine-tuning it once (the baseline "fine-tune everything").
    """

    name: str
    load_s: float
    embed_s_per_row: float
    classify_s: float = 0.0
    proxy_s_per_pair: float = 0.0
    finetune_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise CostError(f"a model needs a non-empty name, got {self.name!r}")
        _check(
            f"model {self.name!r}",
            load_s=self.load_s,
            embed_s_per_row=self.embed_s_per_row,
            classify_s=self.classify_s,
            proxy_s_per_pair=self.proxy_s_per_pair,
            finetune_s=self.finetune_s,
        )

    def embed_s(self, rows: int) -> float:
        """Compute time of one embed task over ``rows`` rows (no load)."""
        return rows * self.embed_s_per_row

    def classify_cost_s(self, train_rows: int, test_rows: int) -> float:
        """Compute time of one classify task."""
        return self.classify_s + self.proxy_s_per_pair * train_rows * test_rows


@dataclass(frozen=True)
class Overheads:
    """Costs of the shell around the tasks (all measured by :mod:`simulator.measure`).

    Attributes:
        start_s: Query created to first task submitted (parsing, planning, catalog).
        phase_s: A batch of tasks finished to the next batch submitted (commit, wake-up).
        end_s: Last task finished to the query finished (ranking, commit).
        task_s: Per task on a worker, outside the task's own timings (frames, decoding).
        broker_task_s: Serial broker work per task (submit, dispatch, commit a result);
            ``1 / dispatch rate``.
    """

    start_s: float = 0.0
    phase_s: float = 0.0
    end_s: float = 0.0
    task_s: float = 0.0
    broker_task_s: float = 1.0 / BROKER_TASKS_PER_S

    def __post_init__(self) -> None:
        _check(
            "overheads",
            start_s=self.start_s,
            phase_s=self.phase_s,
            end_s=self.end_s,
            task_s=self.task_s,
            broker_task_s=self.broker_task_s,
        )


@dataclass(frozen=True)
class Workload:
    """The search to simulate: candidate models and data sizes.

    Attributes:
        models: The candidate models' costs, in pool order (unique names).
        train_rows: Training-set size.
        test_rows: Test-set size.
        block_rows: Rows per embed task (256 like the broker; larger aggregates tasks).
        classifiers: Classify tasks per model and evaluation (one per classifier).
    """

    models: tuple[ModelCost, ...]
    train_rows: int
    test_rows: int
    block_rows: int = BLOCK_ROWS
    classifiers: int = 1
    _by_name: dict[str, ModelCost] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.models:
            raise CostError("a workload needs at least one model")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise CostError(f"model(s) listed twice: {', '.join(twice[:5])}")
        for what in ("train_rows", "test_rows", "block_rows", "classifiers"):
            value = getattr(self, what)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CostError(f"{what} must be a whole number >= 1, got {value!r}")
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "_by_name", {m.name: m for m in self.models})

    def model(self, name: str) -> ModelCost:
        """The cost of model ``name``."""
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        """The models' names in pool order."""
        return tuple(m.name for m in self.models)


def uniform_models(
    count: int,
    load_s: float,
    embed_s_per_row: float,
    classify_s: float = 0.0,
    proxy_s_per_pair: float = 0.0,
    finetune_s: float = 0.0,
) -> tuple[ModelCost, ...]:
    """``count`` identical models named ``m00000``, ``m00001``, ..."""
    if not isinstance(count, int) or count < 1:
        raise CostError(f"the number of models must be >= 1, got {count!r}")
    return tuple(
        ModelCost(f"m{i:05d}", load_s, embed_s_per_row, classify_s, proxy_s_per_pair, finetune_s)
        for i in range(count)
    )
