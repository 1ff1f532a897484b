"""Search strategies: a registry of functions that pick the models to fine-tune on a task.

A strategy sees the task (its candidate models are the models with a kept run on it), the
other tasks of the same modality, ``k``, a seeded :class:`random.Random` and an optional
:class:`~simulator.ranking.Ranking`. It returns a :class:`Selection` (the models to
fine-tune and the search time spent choosing them), or ``None`` when it does not apply to the
task (a per-task ranking without that task). It never sees the task's test accuracies,
except ``enumeration``, which fine-tunes everything and needs no choice.

Register one with ``@strategy("name")``; :func:`get_strategy` names the valid ones and the
closest match for a typo.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from simulator.ranking import Ranking
from simulator.records import Task
from simulator.simulator_errors import StrategyError


@dataclass(frozen=True)
class Context:
    """What a strategy may look at when it picks models for one task.

    Attributes:
        task: The task to pick for; only its candidate model ids (``task.models``) are fair
            to use, not its accuracies.
        others: The other tasks of the same modality (never ``task`` itself).
        k: How many models to pick (ignored by ``enumeration``).
        rng: Seeded randomness; the only source of randomness a strategy may use.
        ranking: A ranking read from a file, for the ``ranking`` strategy.
    """

    task: Task
    others: tuple[Task, ...]
    k: int
    rng: random.Random
    ranking: Ranking | None = None


@dataclass(frozen=True)
class Selection:
    """The models a strategy fine-tunes on one task.

    Attributes:
        models: Model ids to fine-tune, in the strategy's order, without repeats.
        search_time_s: Seconds spent choosing them (0 when free or unknown).
        skipped: Ranked ids passed over because the task has no run of them.
    """

    models: tuple[str, ...]
    search_time_s: float = 0.0
    skipped: tuple[str, ...] = ()


StrategyFn = Callable[[Context], Selection | None]


@dataclass(frozen=True)
class Strategy:
    """A registered strategy.

    Attributes:
        name: Registry name, as used on the command line.
        pick: The function that picks models.
        randomized: Whether results vary with the seed (the replay repeats these).
        uses_k: Whether ``k`` matters (``enumeration`` takes every model).
        help: One line for ``--help`` and the docs.
    """

    name: str
    pick: StrategyFn
    randomized: bool
    uses_k: bool
    help: str


STRATEGIES: dict[str, Strategy] = {}
"""Strategy name -> strategy, filled by :func:`strategy`."""


def strategy(
    name: str, *, randomized: bool = False, uses_k: bool = True
) -> Callable[[StrategyFn], StrategyFn]:
    """Register a strategy function under ``name`` (its docstring's first line is its help)."""

    def register(pick: StrategyFn) -> StrategyFn:
        if name in STRATEGIES:
            raise StrategyError(f"strategy {name!r} registered twice")
        help_line = (pick.__doc__ or name).strip().splitlines()[0]
        STRATEGIES[name] = Strategy(name, pick, randomized, uses_k, help_line)
        return pick

    return register


def get_strategy(name: str) -> Strategy:
    """The strategy called ``name``.

    Raises:
        StrategyError: No such strategy (the message lists the valid names and the closest).
    """
    try:
        return STRATEGIES[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(STRATEGIES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise StrategyError(
            f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}{hint}"
        ) from None


@strategy("enumeration", uses_k=False)
def enumeration(ctx: Context) -> Selection:
    """Fine-tune every model: the best accuracy, at the highest cost."""
    return Selection(ctx.task.models)


@strategy("random", randomized=True)
def random_k(ctx: Context) -> Selection:
    """Fine-tune k models drawn uniformly without replacement."""
    models = ctx.task.models
    return Selection(tuple(ctx.rng.sample(models, min(ctx.k, len(models)))))


@strategy("meta")
def meta(ctx: Context) -> Selection:
    """Fine-tune the k models with the best mean rank on the other tasks (leave-one-task-out)."""
    scores = mean_ranks(ctx.others)
    order = sorted(ctx.task.models, key=lambda m: (m not in scores, scores.get(m, 0.0), m))
    return Selection(tuple(order[: ctx.k]))


@strategy("ranking")
def ranking(ctx: Context) -> Selection | None:
    """Fine-tune the top k of a ranking file, passing over ids the task never ran."""
    if ctx.ranking is None:
        raise StrategyError("the 'ranking' strategy needs a ranking file (--ranking FILE)")
    ranked = ctx.ranking.for_task(ctx.task.name)
    if ranked is None:
        return None
    chosen: list[str] = []
    skipped: list[str] = []
    for model in ranked.models:
        if len(chosen) == ctx.k:
            break
        (chosen if model in ctx.task.outcomes else skipped).append(model)
    return Selection(tuple(chosen), ranked.search_time_s, tuple(skipped))


def mean_ranks(tasks: Sequence[Task]) -> dict[str, float]:
    """Each model's mean normalised rank over ``tasks`` (0 = best, 1 = worst).

    On each task, models are ranked by test accuracy, best first, ties sharing their mean
    rank; rank ``r`` of ``n`` models becomes ``(r - 1) / (n - 1)`` (0 when ``n == 1``), so
    tasks with different numbers of models weigh the same. A model's score is the mean over
    the tasks it ran on; models that ran on none of ``tasks`` are absent.
    """
    totals: dict[str, list[float]] = {}
    for task in tasks:
        for model, rank in _normalised_ranks(task).items():
            totals.setdefault(model, []).append(rank)
    return {model: sum(ranks) / len(ranks) for model, ranks in totals.items()}


def _normalised_ranks(task: Task) -> dict[str, float]:
    ordered = sorted(task.outcomes.values(), key=lambda o: -o.accuracy)
    n = len(ordered)
    ranks: dict[str, float] = {}
    start = 0
    while start < n:
        end = start
        while end + 1 < n and ordered[end + 1].accuracy == ordered[start].accuracy:
            end += 1
        mean_rank = (start + end) / 2  # 0-based mean rank of the tied block
        for outcome in ordered[start : end + 1]:
            ranks[outcome.model] = mean_rank / (n - 1) if n > 1 else 0.0
        start = end + 1
    return ranks
