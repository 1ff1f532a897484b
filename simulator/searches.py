"""What a simulated search asks for: the broker's tasks, released as the broker releases them.

A search is a small state machine: :meth:`Search.start` returns the first jobs, and
:meth:`Search.finished` takes a finished job and returns the jobs that became needed. The
engine (:mod:`simulator.engine`) runs the jobs through the broker's dispatcher.

* ``exhaustive``: the broker's planner (``shift/planner.py``, ``broker/statements.py``):
  every embed block of every model on the train and test sets, then, once all are done,
  one classify per model and classifier on all rows.
* ``halving``: the SAME :class:`shift.halving.SuccessiveHalving` machine as the broker. Each
  evaluation it asks for becomes the embed blocks its arm still lacks (train prefix and
  test set) and then one classify per classifier on the prefix; the losses come from a
  seeded :class:`LossModel` (randomness is an input).
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shift.halving import (
    BudgetSetting,
    ChunkSetting,
    Evaluation,
    HalvingConfig,
    HalvingStatus,
    SuccessiveHalving,
)
from simulator.costs import BLOCK_ROWS, ModelCost, Workload
from simulator.simulator_errors import SimulatorError


class SearchError(SimulatorError):
    """An unknown search name or invalid search settings."""

    code = "search_error"


@dataclass(frozen=True)
class Job:
    """One task of the simulated search.

    Attributes:
        key: Unique name of the work (the engine hashes it into a task id).
        kind: ``embed`` or ``classify``.
        model: The model the task needs.
        rows: Rows it processes (embed: block rows; classify: train + test rows).
        compute_s: Its compute time on a worker holding the model.
        units: Broker tasks it stands for (more than 1 when blocks are aggregated).
    """

    key: str
    kind: str
    model: str
    rows: int
    compute_s: float
    units: int = 1


class Search(Protocol):
    """A search the engine drives."""

    def start(self) -> list[Job]:
        """The jobs to submit when the query starts."""
        ...

    def finished(self, job: Job, ok: bool) -> list[Job]:
        """Take a finished (or, ``ok=False``, failed) job; return the newly needed jobs."""
        ...

    @property
    def done(self) -> bool:
        """True when the search needs nothing more."""
        ...


@dataclass(frozen=True)
class LossModel:
    """Seeded proxy losses: arm quality plus noise that shrinks with the training rows.

    Attributes:
        seed: Seed of every draw (the same seed gives the same losses).
        noise: Noise scale at one training row; divided by ``sqrt(rows)``.
    """

    seed: int = 0
    noise: float = 1.0

    def loss(self, arm: str, train_rows: int) -> float:
        """The loss of ``arm`` fitted on ``train_rows`` rows."""
        quality = random.Random(f"{self.seed}:{arm}").uniform(0.1, 0.9)
        draw = random.Random(f"{self.seed}:{arm}:{train_rows}").gauss(0.0, 1.0)
        return max(0.0, quality + self.noise * draw / max(1, train_rows) ** 0.5)


def _embed(key: str, model: ModelCost, rows: int) -> Job:
    """An embed job; aggregated blocks count as that many 256-row broker tasks."""
    units = -(-rows // BLOCK_ROWS)
    return Job(key, "embed", model.name, rows, model.embed_s(rows), units)


def _blocks(rows: int, block_rows: int) -> list[tuple[int, int]]:
    """(block, rows in block) for the first ``rows`` rows."""
    return [(b, min(block_rows, rows - b * block_rows)) for b in range(-(-rows // block_rows))]


class Exhaustive:
    """Every model on all rows: embeds, then classifies (the broker's two phases)."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self._embeds_left = 0
        self._classifies_left = 0
        self._released = False

    def start(self) -> list[Job]:
        """All embed blocks, model by model (the planner's order)."""
        w = self.workload
        jobs = []
        for model in w.models:
            for dataset, size in (("train", w.train_rows), ("test", w.test_rows)):
                for block, rows in _blocks(size, w.block_rows):
                    key = f"embed:{model.name}:{dataset}:{block}"
                    jobs.append(_embed(key, model, rows))
        self._embeds_left = len(jobs)
        return jobs

    def finished(self, job: Job, ok: bool) -> list[Job]:
        """Release the classify phase once the last embed is in."""
        if job.kind == "embed":
            self._embeds_left -= 1
            if self._embeds_left == 0 and not self._released:
                self._released = True
                return self._classifies()
            return []
        self._classifies_left -= 1
        return []

    def _classifies(self) -> list[Job]:
        w = self.workload
        jobs = []
        for model in w.models:
            cost = model.classify_cost_s(w.train_rows, w.test_rows)
            for c in range(w.classifiers):
                key = f"classify:{model.name}:{c}"
                jobs.append(Job(key, "classify", model.name, w.train_rows + w.test_rows, cost))
        self._classifies_left = len(jobs)
        return jobs

    @property
    def done(self) -> bool:
        """All classifies are in."""
        return self._released and self._classifies_left == 0


@dataclass
class _Pending:
    evaluation: Evaluation
    blocks: set[str]
    classifies_left: int = 0


class Halving:
    """Successive halving through :class:`shift.halving.SuccessiveHalving`.

    Args:
        workload: Models and data sizes.
        chunk: ``CHUNK`` rows or ``"auto"``.
        budget: ``BUDGET`` pulls or ``"auto"``.
        losses: Where the proxy losses come from.
    """

    def __init__(
        self,
        workload: Workload,
        chunk: ChunkSetting = "auto",
        budget: BudgetSetting = "auto",
        losses: LossModel | None = None,
    ) -> None:
        self.workload = workload
        config = HalvingConfig(workload.names, workload.train_rows, chunk, budget)
        self.machine = SuccessiveHalving(config)
        self.losses = losses or LossModel()
        self._have: set[str] = set()  # embed keys submitted
        self._done_blocks: set[str] = set()
        self._waiting: dict[str, list[_Pending]] = {}  # embed key -> evaluations
        self._live: dict[str, _Pending] = {}  # classify key prefix -> pending
        self._outstanding = 0

    @property
    def schedule(self) -> object:
        """The machine's schedule (EXPLAIN's plan)."""
        return self.machine.schedule

    def start(self) -> list[Job]:
        """The machine's first evaluations."""
        jobs: list[Job] = []
        for evaluation in self.machine.next_requests():
            jobs += self._request(evaluation)
        return jobs

    def _request(self, evaluation: Evaluation) -> list[Job]:
        w = self.workload
        model = w.model(evaluation.arm)
        pending = _Pending(evaluation, set())
        jobs: list[Job] = []
        wanted = (
            ("train", evaluation.train_rows, w.train_rows),
            ("test", w.test_rows, w.test_rows),
        )
        for dataset, prefix, size in wanted:
            for block in range(-(-prefix // w.block_rows)):
                key = f"embed:{model.name}:{dataset}:{block}"
                if key in self._done_blocks:
                    continue
                pending.blocks.add(key)
                self._waiting.setdefault(key, []).append(pending)
                if key not in self._have:
                    self._have.add(key)
                    rows = min(w.block_rows, size - block * w.block_rows)
                    jobs.append(_embed(key, model, rows))
                    self._outstanding += 1
        if not pending.blocks:
            jobs += self._classifies(pending)
        return jobs

    def _classifies(self, pending: _Pending) -> list[Job]:
        w = self.workload
        e = pending.evaluation
        model = w.model(e.arm)
        cost = model.classify_cost_s(e.train_rows, w.test_rows)
        pending.classifies_left = w.classifiers
        self._live[f"{e.arm}:{e.round}"] = pending
        self._outstanding += w.classifiers
        return [
            Job(
                f"classify:{e.arm}:{e.round}:{c}",
                "classify",
                e.arm,
                e.train_rows + w.test_rows,
                cost,
            )
            for c in range(w.classifiers)
        ]

    def finished(self, job: Job, ok: bool) -> list[Job]:
        """Advance the evaluations waiting on ``job``; record losses into the machine."""
        self._outstanding -= 1
        jobs: list[Job] = []
        if job.kind == "embed":
            self._done_blocks.add(job.key)
            for pending in self._waiting.pop(job.key, []):
                pending.blocks.discard(job.key)
                if not pending.blocks:
                    jobs += self._classifies(pending)
            return jobs
        _, arm, round_, _ = job.key.split(":")
        pending = self._live[f"{arm}:{round_}"]
        pending.classifies_left -= 1
        if pending.classifies_left:
            return jobs
        del self._live[f"{arm}:{round_}"]
        e = pending.evaluation
        loss = self.losses.loss(e.arm, e.train_rows) if ok else float("inf")
        update = self.machine.record(e.arm, e.train_rows, loss)
        for evaluation in update.requests:
            jobs += self._request(evaluation)
        return jobs

    @property
    def done(self) -> bool:
        """The machine is done and no job is outstanding."""
        return self.machine.status is HalvingStatus.DONE and self._outstanding == 0


SearchFactory = Callable[..., Search]
SEARCHES: dict[str, SearchFactory] = {"exhaustive": Exhaustive, "halving": Halving}
"""Search name -> factory taking the workload (and, for halving, chunk, budget, losses)."""


def make_search(name: str, workload: Workload, **settings: object) -> Search:
    """Build a registered search by name.

    Raises:
        SearchError: The name is unknown (the message lists the valid ones).
    """
    factory = SEARCHES.get(name)
    if factory is None:
        close = difflib.get_close_matches(name, list(SEARCHES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SearchError(f"unknown search {name!r}: use one of {', '.join(SEARCHES)}{hint}")
    return factory(workload, **settings)


__all__ = ["SEARCHES", "Exhaustive", "Halving", "Job", "LossModel", "Search", "make_search"]
