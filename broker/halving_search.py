"""Successive-halving searches on the broker: the machine decides, the evaluator runs.

:func:`run_halving` drives one :class:`~shift.halving.SuccessiveHalving` machine per
classifier (each classifier ranks the models on its own, so each has its own search). An
evaluation, run by :class:`broker.evaluator.Evaluator`, is: the embed tasks of the test
blocks the round's test prefix needs and of the training blocks its training prefix needs
(blocks of :data:`~shift.payloads.BLOCK_ROWS` rows, so rows beyond either prefix are not
embedded), then a classify task with ``train_rows`` and ``test_rows`` = the prefixes,
continuing from the arm's previous round when that round scored the same test rows.
Every machine transition is persisted before its requests are dispatched (the results
recorded since the last write are appended, so a transition costs its own results and not
a rewrite of the whole state; the state is written whole when the search starts and ends);
a restarted broker restores the machine, which asks only for the losses it lacks (a state
stored by an older machine format is dropped and the search starts again; its tasks are
found by content). Round 0's test blocks of every arm are submitted first, and next-round
evaluations start as soon as the machine is sure of a survivor. The query's progress
carries the current round (:meth:`broker.context.TaskRunner.report_stage`).

A BENCHMARK is one machine over the aggregated score of its (train, test) pairs: each round
scores every surviving arm on every pair, fitted on the round's prefix of each pair's
training set (capped at that set's size, :func:`shift.halving.pair_rows`), and aggregates
the pairs' scores as the ORDER BY says. A mutated training set (``CHANGE ... TO``) is halved
when its size is known (a label-only change has its base's rows); a mutation that replaces
rows from another dataset has a size that depends on its labels and is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from broker.context import Context, Stage
from broker.evaluator import dataset_sizes
from shift.errors import SchedulerError
from shift.halving import (
    Evaluation,
    HalvingConfig,
    RankedArm,
    Schedule,
    Score,
    SuccessiveHalving,
    pair_rows,
)
from shift.hashing import content_hash
from shift.payloads import EmbedPayload, blocks_for, item_json
from shift.planner import (
    DatasetEntry,
    Pair,
    TestItem,
    TrainItem,
    classify_payload,
    embed_payload,
    item_label,
    item_names,
    item_size,
    pair_test_item,
    pair_test_size,
    pairs_of,
    prefix_embeds,
    score_of,
    train_items,
    train_size,
)
from shift.ql import nodes as n
from shift.specs import ModelSpec


def loss_of(statement: n.TaskSelect, score: Mapping[str, Any]) -> float:
    """The machine's loss for a score: the ORDER BY metric, negated when descending."""
    value = float(score[statement.order.column.value])
    return -value if statement.order.descending else value


def metric_of(statement: n.TaskSelect, loss: float) -> float:
    """The ORDER BY metric of a machine loss (the inverse of :func:`loss_of`)."""
    return -loss if statement.order.descending else loss


@dataclass(frozen=True)
class HalvingSearch:
    """One classifier's halving search over resolved models and datasets."""

    statement: n.TaskSelect
    classifier: str
    params: dict[str, Any]
    models: tuple[ModelSpec, ...]
    entries: Mapping[str, DatasetEntry]
    racing: bool = True

    @property
    def pairs(self) -> tuple[Pair, ...]:
        """The (train, test) evaluations of each arm."""
        return pairs_of(self.statement)

    def train_sizes(self) -> tuple[int, ...]:
        """Training rows of each pair.

        Raises:
            SchedulerError: a pair's training size depends on labels (a mutation that
                replaces rows from another dataset).
        """
        sizes = []
        for pair in self.pairs:
            rows = train_size(pair, self.entries)
            if rows is None:
                merged = next(i for i in pair.train if item_size(i, self.entries) is None)
                raise SchedulerError(
                    f"CHUNK/BUDGET needs the training-set size, and {item_label(merged)} has "
                    "as many rows as carry its labels; halve over a label-only change "
                    "(CHANGE ... TO the same dataset), register the merged data as a dataset, "
                    "or drop CHUNK/BUDGET to score every model on all rows"
                )
            sizes.append(rows)
        return tuple(sizes)

    def config(self) -> HalvingConfig:
        """The machine's config (its training-set size: the largest pair's).

        Raises:
            SchedulerError: the search cannot be halved (a training size that depends on
                labels, or CHUNK/BUDGET the schedule refuses).
        """
        chunk = self.statement.chunk if self.statement.chunk is not None else "auto"
        budget = self.statement.budget if self.statement.budget is not None else "auto"
        return HalvingConfig(
            tuple(m.name for m in self.models),
            max(self.train_sizes()),
            chunk,
            budget,
            test_rows=self.test_rows,
            racing=self.racing,
        )

    @property
    def test_rows(self) -> int | None:
        """Rows of the one test set racing samples (``None``: several test sets, a
        BENCHMARK whose loss is not an error count, or a mutated test set whose size depends
        on its labels: every round scores on all rows)."""
        if self.statement.benchmark or len(self.pairs) != 1:
            return None
        return pair_test_size(self.pairs[0], self.entries)

    def _trains(self) -> list[tuple[TrainItem, ...]]:
        return list(dict.fromkeys(p.train for p in self.pairs))

    def _test_key(self, item: TestItem) -> str:
        if isinstance(item, str):
            return self.entries[item].spec.key
        return content_hash(item_json(pair_test_item(Pair((), item), self.entries)))

    def test_keys(self) -> set[str]:
        """Dataset keys of every dataset the test sets read."""
        return {self.entries[d].spec.key for p in self.pairs for d in item_names(p.test)}

    def test_total(self) -> int:
        """Test rows of every pair (a merging mutation: at most its datasets' rows)."""
        total = 0
        for pair in self.pairs:
            size = pair_test_size(pair, self.entries)
            total += (
                size
                if size is not None
                else sum(self.entries[d].rows for d in item_names(pair.test))
            )
        return total

    def key(self) -> str:
        """The content identity of this search (where its machine is stored)."""
        trains = self._trains()
        identity: dict[str, Any] = {
            "classifier": self.classifier,
            "params": self.params,
            "config": self.config().to_dict(),
            "models": [m.key for m in self.models],
            "train": [item_json(i) for i in train_items(self.pairs[0], self.entries)],
            "tests": [self._test_key(p.test) for p in self.pairs],
            "metric": [self.statement.order.column.value, self.statement.order.descending],
            "benchmark": self.statement.benchmark,
        }
        if len(trains) > 1:
            identity["trains"] = [
                [item_json(i) for i in train_items(p, self.entries)] for p in self.pairs
            ]
        return content_hash(identity)

    def test_embeds(self, model: ModelSpec, rows: int | None = None) -> list[EmbedPayload]:
        """Embeds of the test blocks of one arm a test prefix needs (``None``: all rows; a
        prefix of a label-only mutation is a prefix of its base)."""
        out: list[EmbedPayload] = []
        for test in dict.fromkeys(p.test for p in self.pairs):
            prefix = rows if item_size(test, self.entries) is not None else None
            for name in item_names(test):
                entry = self.entries[name]
                take = entry.rows if prefix is None else min(prefix, entry.rows)
                out += [embed_payload(model, entry, b) for b in blocks_for(take)]
        return _unique(out)

    def train_embeds(self, model: ModelSpec, rows: int) -> list[EmbedPayload]:
        """Embeds of the training blocks the first ``rows`` rows of each pair need."""
        out: list[EmbedPayload] = []
        for train in self._trains():
            out += prefix_embeds(model, train, self.entries, rows)
        return _unique(out)


def _unique(payloads: list[EmbedPayload]) -> list[EmbedPayload]:
    return list({p.task().task_id: p for p in payloads}.values())


async def _evaluate(
    search: HalvingSearch, ctx: Context, model: ModelSpec, request: Evaluation, embed: bool
) -> tuple[dict[str, Any], int | None]:
    """One arm's score on the request's prefixes, and its error count (``None``: a
    BENCHMARK aggregate, which is not a count)."""
    if embed:
        await ctx.evaluator.embed(
            search.test_embeds(model, request.test_rows)
            + search.train_embeds(model, request.train_rows)
        )
    sizes = dataset_sizes(search.entries)
    fitted = pair_rows(request.train_rows, search.train_sizes())
    results: list[Any] = await asyncio.gather(
        *(
            ctx.evaluator.classify(
                classify_payload(
                    model,
                    search.classifier,
                    search.params,
                    pair,
                    search.entries,
                    rows,
                    request.test_rows,
                ),
                sizes,
            )
            for pair, rows in zip(search.pairs, fitted, strict=True)
        )
    )
    errors = None if search.statement.benchmark else sum(r.errors for r in results)
    return score_of(search.statement, results), errors


@dataclass(frozen=True)
class HalvingOutcome:
    """A finished halving search: the ranking with each arm's score and every loss."""

    search: HalvingSearch
    machine: SuccessiveHalving
    rows: tuple[dict[str, Any], ...]

    @property
    def scores(self) -> list[Score]:
        """Every recorded loss (EXPLAIN shows them per round)."""
        return self.machine.scores()


async def restore(search: HalvingSearch, ctx: Context) -> SuccessiveHalving:
    """The stored machine of a search, or a new one (a stale or unreadable state is dropped)."""
    config = search.config()
    if ctx.machines is not None:
        text = await ctx.machines.load_machine(search.key())
        if text is not None:
            with contextlib.suppress(SchedulerError):
                machine = SuccessiveHalving.from_json(text)
                if machine.config == config:
                    return machine
    return SuccessiveHalving(config)


def _stage(machine: SuccessiveHalving) -> Stage:
    k = machine.current_round()
    plan = machine.schedule.rounds[k]
    test_rows = plan.test_rows if plan.test_rows is not None else machine.schedule.test_rows
    return Stage(
        k, len(machine.schedule.rounds), machine.round_arms(k), plan.train_rows, test_rows or 0
    )


async def run_halving(search: HalvingSearch, ctx: Context) -> HalvingOutcome:
    """Run (or resume) one classifier's halving search to its ranking."""
    machine = await restore(search, ctx)
    key = search.key()
    by_name = {m.name: m for m in search.models}

    saved = machine.recorded  # results in the stored state

    async def persist() -> None:
        nonlocal saved
        if ctx.machines is not None:
            await ctx.machines.save_machine(key, search.classifier, machine.to_json())
            saved = machine.recorded

    async def persist_new() -> None:
        """Store the results recorded since the last write (a transition's own results)."""
        nonlocal saved
        if ctx.machines is not None and machine.recorded > saved:
            fresh = machine.results_since(saved)
            await ctx.machines.append_machine_results(key, saved, fresh)
            saved += len(fresh)

    await persist()
    ctx.tasks.report_stage(_stage(machine))
    scores: dict[tuple[str, int], dict[str, Any]] = {}

    async def evaluate(request: Evaluation) -> tuple[Evaluation, dict[str, Any], int | None]:
        model = by_name[request.arm]
        score, errors = await _evaluate(search, ctx, model, request, embed=True)
        return request, score, errors

    first = machine.schedule.rounds[0].test_rows
    early = [t for m in search.models for t in search.test_embeds(m, first)]
    prefetch = (
        asyncio.ensure_future(ctx.evaluator.embed(early)) if machine.next_requests() else None
    )
    asked = {r: asyncio.ensure_future(evaluate(r)) for r in machine.next_requests()}
    pending = set(asked.values())
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            requests: list[Evaluation] = []
            for finished in done:
                request, score, errors = finished.result()
                scores[(request.arm, request.train_rows)] = score
                update = machine.record(
                    request.arm,
                    request.train_rows,
                    loss_of(search.statement, score),
                    errors,
                )
                requests += update.requests
                # racing withdrew these early requests: stop waiting for them (tasks already
                # sent run on; their features stay cached)
                for gone in update.withdrawn:
                    future = asked.pop(gone, None)
                    if future is not None and future in pending:
                        future.cancel()
                        pending.discard(future)
            # one write per wakeup, of the new results only, before their requests go out
            await persist_new()
            ctx.tasks.report_stage(_stage(machine))
            for r in requests:
                asked[r] = asyncio.ensure_future(evaluate(r))
                pending.add(asked[r])
        if prefetch is not None:
            await prefetch
        await persist()  # the finished state whole, so a later read needs no appended rows
    finally:
        for task in [*pending, *([prefetch] if prefetch else [])]:
            task.cancel()
    rows = []
    for ranked in machine.ranking():
        known = scores.get((ranked.arm, ranked.train_rows))
        if known is None:  # recorded before a restart: its classify result is stored
            model = by_name[ranked.arm]
            k = machine.schedule.round_of(ranked.train_rows)
            again = Evaluation(ranked.arm, k, ranked.train_rows, ranked.test_rows)
            known, _ = await _evaluate(search, ctx, model, again, embed=False)
        rows.append(_row(ranked, known))
    return HalvingOutcome(search, machine, tuple(rows))


def _row(ranked: RankedArm, score: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": ranked.arm,
        **score,
        "train_rows": ranked.train_rows,
        "eliminated_in": ranked.eliminated_in,
    }


def schedule_of(search: HalvingSearch) -> Schedule:
    """The schedule EXPLAIN shows before running (rounds, arms, train and test rows)."""
    return search.config().schedule()


async def stored_machine(search: HalvingSearch, ctx: Context) -> SuccessiveHalving | None:
    """The stored machine of a search as it is now (``None``: none, or unreadable)."""
    if ctx.machines is None:
        return None
    text = await ctx.machines.load_machine(search.key())
    if text is None:
        return None
    try:
        machine = SuccessiveHalving.from_json(text)
    except SchedulerError:
        return None
    return machine if machine.config == search.config() else None


def stored_scores(search: HalvingSearch, machine: SuccessiveHalving | None) -> list[dict[str, Any]]:
    """Every score the stored machine holds (empty before a run), in the query's metric."""
    if machine is None:
        return []
    metric = search.statement.order.column.value
    return [
        {
            "model": s.arm,
            "round": s.round,
            "train_rows": s.train_rows,
            "test_rows": s.test_rows if s.test_rows is not None else machine.schedule.test_rows,
            metric: metric_of(search.statement, s.loss),
        }
        for s in machine.scores()
    ]


@dataclass(frozen=True)
class RoundTasks:
    """The tasks of one planned round, for EXPLAIN.

    Attributes:
        round: The round.
        arms: Models playing it (actual once known, else planned).
        embeds: Embed tasks the round needs beyond the earlier rounds' (by task id; for
            arms not known yet, ``None`` stands for a block of an unknown arm).
        classifies: Classify evaluations the round runs.
        known_classifies: Those the stored machine already recorded.
        arms_known: Whether the round's arms are known (round 0, or after a run).
    """

    round: int
    arms: int
    embeds: tuple[EmbedPayload | None, ...]
    classifies: int
    known_classifies: int
    arms_known: bool


def round_tasks(search: HalvingSearch, machine: SuccessiveHalving | None) -> list[RoundTasks]:
    """Per round: the embeds it adds and the classifies it runs (EXPLAIN's halving plan).

    The arms of round 0 are the pool; a later round's arms are known from the stored
    machine once the round before it was decided, else counted from the schedule (its
    blocks are then counted as to run).
    """
    machine = machine if machine is not None else SuccessiveHalving(search.config())
    schedule = machine.schedule
    by_name = {m.name: m for m in search.models}
    recorded = {(s.arm, s.round) for s in machine.scores()}
    out = []
    seen: set[str] = set()
    previous: tuple[int, int | None] = (0, 0)
    for k, plan in enumerate(schedule.rounds):
        requests = [e for e in machine.next_requests() if e.round == k]
        members = sorted({a for a, r in recorded if r == k} | {e.arm for e in requests})
        decided_before = k == 0 or machine.current_round() >= k
        arms_known = decided_before and len(members) == machine.round_arms(k)
        embeds: list[EmbedPayload | None] = []
        if arms_known:
            for arm in members:
                model = by_name[arm]
                for payload in search.test_embeds(model, plan.test_rows) + search.train_embeds(
                    model, plan.train_rows
                ):
                    task_id = payload.task().task_id
                    if task_id not in seen:
                        seen.add(task_id)
                        embeds.append(payload)
        else:
            model = search.models[0]
            fresh = len(search.test_embeds(model, plan.test_rows)) + len(
                search.train_embeds(model, plan.train_rows)
            )
            before = len(search.test_embeds(model, previous[1])) + len(
                search.train_embeds(model, previous[0])
            )
            embeds = [None] * (machine.round_arms(k) * max(0, fresh - before))
        previous = (plan.train_rows, plan.test_rows)
        arms = machine.round_arms(k)
        known = sum(1 for a, r in recorded if r == k)
        pairs = len(search.pairs)
        out.append(RoundTasks(k, arms, tuple(embeds), arms * pairs, known * pairs, arms_known))
    return out


def searches(
    statement: n.TaskSelect,
    models: Sequence[ModelSpec],
    entries: Mapping[str, DatasetEntry],
    racing: bool = True,
) -> list[HalvingSearch]:
    """One halving search per classifier of the statement (``racing``: see docs/halving.md)."""
    return [
        HalvingSearch(
            statement,
            m.name,
            {p.name: p.value.value for p in m.params},
            tuple(models),
            entries,
            racing,
        )
        for m in statement.classifiers
    ]
