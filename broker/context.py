"""What a statement handler may use: a few named services.

- ``catalog``: registered models and datasets (:class:`broker.catalog.Catalog`);
- ``session``: the session's DECLAREd variables (:class:`Session`);
- ``tasks``: the broker's task queue as a query sees it (:class:`TaskRunner`): submit
  content-hashed tasks and wait for their results, task states, stored results, past
  timings, forgetting finished tasks, and reporting a search's stage to the progress;
- ``evaluator``: "this model's score on these rows" (:class:`broker.evaluator.Evaluator`),
  shared by exhaustive search and successive halving;
- ``machines``: stored successive-halving machines (:class:`MachineStore`).

Handlers get these from :class:`Context` and never reach into the broker, the store or the
query service themselves, so a handler is unit-tested with an in-memory task runner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shift.registration import unknown_name
from shift.strategies import DEFAULT_STRATEGY
from shift.tasks import TaskSpec

if TYPE_CHECKING:
    from broker.catalog import Catalog
    from broker.evaluator import Evaluator


@dataclass(frozen=True)
class Stage:
    """Where a multi-round search stands, for the query's progress events.

    Attributes:
        round: The current successive-halving round, from 0.
        rounds: Rounds planned.
        arms: Models playing the round.
        train_rows: Training rows each is fitted on.
        test_rows: Test rows each is scored on.
    """

    round: int
    rounds: int
    arms: int
    train_rows: int
    test_rows: int

    def to_json(self) -> dict[str, int]:
        """The ``stage`` of a progress event."""
        return {
            "round": self.round,
            "rounds": self.rounds,
            "arms": self.arms,
            "train_rows": self.train_rows,
            "test_rows": self.test_rows,
        }


class TaskRunner(Protocol):
    """The task queue as a statement sees it."""

    def report_stage(self, stage: Stage) -> None:
        """Publish where the statement's search stands (progress events carry it)."""

    async def run(self, specs: Sequence[TaskSpec]) -> dict[str, Any]:
        """Submit tasks, wait for them, return their results by task id.

        Raises:
            WorkerError: a task failed or was cancelled (the message names its model).
        """

    def state(self, task_id: str) -> str | None:
        """The current state of a task (``None``: unknown)."""

    async def result(self, task_id: str) -> Any:
        """The stored result of a succeeded task (``None`` otherwise)."""

    async def forget(self, kind: str) -> int:
        """Delete the finished tasks of a kind; returns how many."""

    async def timings(self) -> dict[tuple[str, str], float]:
        """Mean seconds of past tasks by (kind, model key); see :mod:`broker.explain`."""


class MachineStore(Protocol):
    """Where successive-halving machines persist (JSON, keyed by the search's content)."""

    async def load_machine(self, key: str) -> str | None:
        """The stored JSON of a machine, or ``None``."""

    async def save_machine(self, key: str, classifier: str, state: str) -> None:
        """Persist a machine whole (when its search starts and ends)."""

    async def append_machine_results(self, key: str, start: int, results: list[Any]) -> None:
        """Persist the results a saved machine recorded since (every transition): result
        ``start + i`` is ``results[i]``; :meth:`load_machine` returns the state with them."""


@dataclass
class Session:
    """A session's variables (name -> names) and how to persist a new one."""

    variables: dict[str, list[str]]
    persist: Callable[[str, list[str]], Awaitable[None]]

    async def declare(self, name: str, names: list[str]) -> None:
        """Bind ``name`` to ``names`` and persist it."""
        self.variables[name] = names
        await self.persist(name, names)

    def get(self, name: str) -> list[str]:
        """The names bound to a variable.

        Raises:
            CatalogError: unknown variable, naming the closest declared one.
        """
        if name not in self.variables:
            raise unknown_name("variable", name, self.variables)
        return self.variables[name]


@dataclass(frozen=True)
class Context:
    """The services a statement handler may use (see the module docstring).

    Attributes:
        catalog: Registered models and datasets.
        session: The session's variables.
        tasks: Task submission, states, stored results and timings.
        evaluator: Cached, incremental model scoring.
        machines: Stored halving machines (``None``: nothing persists).
        racing: Successive halving races on a test prefix (the ``halving`` setting);
            false: plain halving, every round on the whole test set.
        rank_strategy: The strategy of a RANK without BY (the ``rank_strategy`` setting).
    """

    catalog: Catalog
    session: Session
    tasks: TaskRunner
    evaluator: Evaluator
    machines: MachineStore | None = None
    racing: bool = True
    rank_strategy: str = DEFAULT_STRATEGY

    @property
    def variables(self) -> dict[str, list[str]]:
        """The session's variables."""
        return self.session.variables
