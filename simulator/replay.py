"""Replay search strategies on recorded fine-tuning results, task by task.

For every task, each strategy returns models to fine-tune (:mod:`simulator.strategies`); a
:class:`Trial` then looks up their recorded outcomes:

- ``best_accuracy``: the best test accuracy among the returned models;
- ``regret``: enumeration's best accuracy on the task minus ``best_accuracy`` (>= 0);
- ``cost_s``: the strategy's search time plus the fine-tuning time of each returned model,
  each model counted exactly once per task.

Randomised strategies are repeated with seeds derived from ``seed``, the task, ``k`` and
the repeat, and reported as min/mean/max over the repeats; the others run once.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.ranking import Ranking, unknown_ids
from simulator.records import Modality, Records, Task
from simulator.simulator_errors import SimulatorError, StrategyError
from simulator.strategies import Context, Selection, Strategy, get_strategy

DEFAULT_STRATEGIES = ("enumeration", "random", "meta")
"""Strategies replayed unless others are named (``ranking`` is added with a ranking)."""


@dataclass(frozen=True)
class Stats:
    """Minimum, mean and maximum of a figure over repeats."""

    min: float
    mean: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        """Stats of a non-empty sequence."""
        return cls(min(values), statistics.fmean(values), max(values))


@dataclass(frozen=True)
class Trial:
    """One strategy's pick on one task, evaluated on the records.

    Attributes:
        models: The fine-tuned models (the selection without repeats).
        best_accuracy: Best test accuracy among them.
        regret: Enumeration's best accuracy minus ``best_accuracy``.
        cost_s: Search time plus the fine-tuning time of each model, once each.
    """

    models: tuple[str, ...]
    best_accuracy: float
    regret: float
    cost_s: float


@dataclass(frozen=True)
class Result:
    """A strategy's figures on one task, over its repeats.

    Attributes:
        strategy: Strategy name.
        k: Models asked for (``None`` for ``enumeration``).
        repeats: Number of trials behind the stats.
        accuracy: Best accuracy reached.
        regret: Regret against enumeration.
        cost_s: Total cost, seconds of one GPU.
        models: The fine-tuned models of a deterministic strategy that picks ``k``, else
            ``()`` (random picks vary by repeat; enumeration picks every model).
        skipped: Ranked ids passed over because the task has no run of them.
    """

    strategy: str
    k: int | None
    repeats: int
    accuracy: Stats
    regret: Stats
    cost_s: Stats
    models: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``enumeration``, ``random-2``, ``meta-1``, ..."""
        return self.strategy if self.k is None else f"{self.strategy}-{self.k}"


@dataclass(frozen=True)
class TaskReplay:
    """Every strategy's result on one task.

    Attributes:
        task: Task name.
        modality: The task's modality.
        models: Number of candidate models (models with a kept run).
        results: One result per (strategy, k), enumeration first.
    """

    task: str
    modality: Modality
    models: int
    results: tuple[Result, ...]

    def get(self, label: str) -> Result | None:
        """The result labelled ``label`` (``random-1``, ...), or ``None`` if not replayed."""
        return next((r for r in self.results if r.label == label), None)

    @property
    def enumeration(self) -> Result:
        """Enumeration's result (always replayed)."""
        result = self.get("enumeration")
        if result is None:
            raise SimulatorError(f"task {self.task!r} has no enumeration result")
        return result


@dataclass(frozen=True)
class Replay:
    """A whole replay: per-task results and what was asked.

    Attributes:
        source: The records file.
        tasks: Per-task results, vision tasks first.
        labels: Result labels in column order (``enumeration``, ``random-1``, ...).
        repeats: Repeats of randomised strategies.
        seed: Base seed.
        warnings: Things a person should know (ranked ids without any run, ...).
    """

    source: str
    tasks: tuple[TaskReplay, ...]
    labels: tuple[str, ...]
    repeats: int
    seed: int
    warnings: tuple[str, ...] = ()


def evaluate(task: Task, selection: Selection) -> Trial:
    """Look up a selection's outcomes on ``task``.

    Raises:
        StrategyError: The selection is empty or names a model with no run on the task.
    """
    models = tuple(dict.fromkeys(selection.models))
    if not models:
        raise StrategyError(f"task {task.name!r}: the strategy returned no model")
    missing = [m for m in models if m not in task.outcomes]
    if missing:
        raise StrategyError(f"task {task.name!r}: no run of {', '.join(missing)}")
    best = max(task.outcomes[m].accuracy for m in models)
    cost_s = selection.search_time_s + sum(task.outcomes[m].cost_s for m in models)
    return Trial(models, best, task.best_accuracy - best, cost_s)


def replay(
    records: Records,
    *,
    modality: Modality | None = None,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    ks: Sequence[int] = (1, 2),
    repeats: int = 100,
    seed: int = 0,
    ranking: Ranking | None = None,
) -> Replay:
    """Replay strategies on every task of ``records`` (of one modality, or all).

    Args:
        records: Cleaned records.
        modality: Only tasks of this modality; ``None`` for all.
        strategies: Strategy names; ``enumeration`` is always replayed (it is the reference)
            and ``ranking`` is added when a ranking is given.
        ks: Numbers of models for the strategies that take ``k``.
        repeats: Repeats of randomised strategies.
        seed: Base seed of randomised strategies.
        ranking: Ranking for the ``ranking`` strategy.

    Returns:
        The :class:`Replay`.

    Raises:
        SimulatorError: A ``k`` or ``repeats`` below 1, no task of ``modality``, or a strategy
            error (an unknown name, ``ranking`` without a ranking file).
    """
    if not ks or any(k < 1 for k in ks):
        raise SimulatorError(f"every k must be at least 1, got {list(ks)}")
    if repeats < 1:
        raise SimulatorError(f"repeats must be at least 1, got {repeats}")
    names = list(dict.fromkeys(["enumeration", *strategies]))
    if ranking is not None and "ranking" not in names:
        names.append("ranking")
    chosen = [get_strategy(name) for name in names]
    tasks = records.of_modality(modality)
    if not tasks:
        raise SimulatorError(f"{records.source}: no {modality} task")
    plan = [(s, k) for s in chosen for k in (sorted(set(ks)) if s.uses_k else [None])]
    results = tuple(_replay_task(task, records, plan, repeats, seed, ranking) for task in tasks)
    warnings = []
    if ranking is not None:
        unknown = unknown_ids(ranking, records.models())
        if unknown:
            warnings.append(
                f"{ranking.source}: {len(unknown)} ranked id(s) have no run in "
                f"{records.source} and were passed over: {', '.join(unknown)}"
            )
        unranked = [t.task for t in results if not any(r.strategy == "ranking" for r in t.results)]
        if unranked:
            warnings.append(
                f"{ranking.source}: no ranked model has a run on {len(unranked)} task(s), "
                f"left out of the ranking figures: {', '.join(unranked)}"
            )
    labels = tuple(s.name if k is None else f"{s.name}-{k}" for s, k in plan)
    return Replay(records.source, results, labels, repeats, seed, tuple(warnings))


def _replay_task(
    task: Task,
    records: Records,
    plan: Sequence[tuple[Strategy, int | None]],
    repeats: int,
    seed: int,
    ranking: Ranking | None,
) -> TaskReplay:
    others = tuple(t for t in records.of_modality(task.modality) if t.name != task.name)
    results = []
    for strategy, k in plan:
        times = repeats if strategy.randomized else 1
        trials: list[Trial] = []
        skipped: tuple[str, ...] = ()
        for repeat in range(times):
            rng = random.Random(f"{seed}/{task.name}/{strategy.name}/{k}/{repeat}")
            selection = strategy.pick(Context(task, others, k or 0, rng, ranking))
            if selection is None:
                break
            if not selection.models:
                break  # a ranking none of whose ids ran on this task: no result
            trials.append(evaluate(task, selection))
            skipped = selection.skipped
        if trials:
            results.append(
                Result(
                    strategy=strategy.name,
                    k=k,
                    repeats=len(trials),
                    accuracy=Stats.of([t.best_accuracy for t in trials]),
                    regret=Stats.of([t.regret for t in trials]),
                    cost_s=Stats.of([t.cost_s for t in trials]),
                    models=trials[0].models if _lists_models(strategy) else (),
                    skipped=skipped,
                )
            )
    return TaskReplay(task.name, task.modality, len(task.outcomes), tuple(results))


def _lists_models(strategy: Strategy) -> bool:
    return strategy.uses_k and not strategy.randomized


@dataclass(frozen=True)
class Summary:
    """One strategy's figures over the tasks of one modality.

    Attributes:
        modality: The modality.
        label: Result label (``random-1``, ...).
        tasks: Tasks it has a result on.
        mean_regret: Mean over those tasks of the (mean) regret.
        max_regret: Worst (mean) regret over those tasks.
        cost_s: Summed (mean) cost over those tasks.
        cost_ratio: ``cost_s`` over enumeration's cost on the same tasks.
    """

    modality: Modality
    label: str
    tasks: int
    mean_regret: float
    max_regret: float
    cost_s: float
    cost_ratio: float


def summarize(result: Replay) -> tuple[Summary, ...]:
    """Per modality and strategy: mean regret, worst regret, cost and cost vs enumeration."""
    rows = []
    for modality in Modality:
        tasks = [t for t in result.tasks if t.modality == modality]
        for label in result.labels:
            pairs = [(t.get(label), t.enumeration) for t in tasks]
            present = [(r, e) for r, e in pairs if r is not None]
            if not present:
                continue
            regrets = [r.regret.mean for r, _ in present]
            cost_s = sum(r.cost_s.mean for r, _ in present)
            enumeration_s = sum(e.cost_s.mean for _, e in present)
            rows.append(
                Summary(
                    modality=modality,
                    label=label,
                    tasks=len(present),
                    mean_regret=statistics.fmean(regrets),
                    max_regret=max(regrets),
                    cost_s=cost_s,
                    cost_ratio=cost_s / enumeration_s if enumeration_s else 0.0,
                )
            )
    return tuple(rows)
