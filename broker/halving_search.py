"""Successive-halving searches on the broker: the machine decides, the evaluator runs.

:func:`run_halving` drives one :class:`~shift.halving.SuccessiveHalving` machine per
classifier (each classifier ranks the models on its own, so each has its own search). An
evaluation, run by :class:`broker.evaluator.Evaluator`, is: the embed tasks of the arm's
test blocks and of the training blocks its prefix needs (blocks of
:data:`~shift.payloads.BLOCK_ROWS` rows, so rows beyond the prefix are not embedded), then a
classify task with ``train_rows`` = the prefix, continuing from the arm's previous round.
Every machine transition is persisted before its requests are dispatched; a restarted
broker restores the machine, which asks only for the losses it lacks. The test-set
embeddings of every arm are submitted first (every evaluation needs them), and
next-round evaluations start as soon as the machine is sure of a survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from broker.context import Context
from shift.errors import SchedulerError
from shift.halving import (
    Evaluation,
    HalvingConfig,
    RankedArm,
    Score,
    SuccessiveHalving,
    plan_schedule,
)
from shift.hashing import content_hash
from shift.payloads import EmbedPayload, blocks_for, item_json
from shift.planner import (
    DatasetEntry,
    Pair,
    embed_payload,
    pairs_of,
    train_items,
    train_size,
)
from shift.ql import nodes as n
from shift.specs import ModelSpec


def loss_of(statement: n.TaskSelect, score: Mapping[str, Any]) -> float:
    """The machine's loss for a score: the ORDER BY metric, negated when descending."""
    value = float(score[statement.order.column.value])
    return -value if statement.order.descending else value


@dataclass(frozen=True)
class HalvingSearch:
    """One classifier's halving search over resolved models and datasets."""

    statement: n.TaskSelect
    classifier: str
    params: dict[str, Any]
    models: tuple[ModelSpec, ...]
    entries: Mapping[str, DatasetEntry]

    @property
    def pairs(self) -> tuple[Pair, ...]:
        """The (train, test) evaluations of each arm."""
        return pairs_of(self.statement)

    def config(self) -> HalvingConfig:
        """The machine's config.

        Raises:
            SchedulerError: the search cannot be halved (several training sets, a mutation,
                or CHUNK/BUDGET the schedule refuses).
        """
        pairs = self.pairs
        if len({p.train for p in pairs}) != 1:
            raise SchedulerError(
                "successive halving needs one training set for every test set; "
                "drop CHUNK/BUDGET for a BENCHMARK with several training sets"
            )
        rows = train_size(pairs[0], self.entries)
        if rows is None:
            raise SchedulerError(
                "not supported yet by this broker: CHUNK/BUDGET with a mutated training set "
                "(CHANGE ... TO); drop CHUNK/BUDGET to score every model on all rows"
            )
        chunk = self.statement.chunk if self.statement.chunk is not None else "auto"
        budget = self.statement.budget if self.statement.budget is not None else "auto"
        return HalvingConfig(tuple(m.name for m in self.models), rows, chunk, budget)

    def key(self) -> str:
        """The content identity of this search (where its machine is stored)."""
        pair = self.pairs[0]
        return content_hash(
            {
                "classifier": self.classifier,
                "params": self.params,
                "config": self.config().to_dict(),
                "models": [m.key for m in self.models],
                "train": [item_json(i) for i in train_items(pair, self.entries)],
                "tests": [self.entries[p.test].spec.key for p in self.pairs],
                "metric": [self.statement.order.column.value, self.statement.order.descending],
                "benchmark": self.statement.benchmark,
            }
        )

    def test_embeds(self, model: ModelSpec) -> list[EmbedPayload]:
        """Embeds of every test block of one arm."""
        out = []
        for test in dict.fromkeys(p.test for p in self.pairs):
            entry = self.entries[test]
            out += [embed_payload(model, entry, b) for b in blocks_for(entry.rows)]
        return out

    def train_embeds(self, model: ModelSpec, rows: int) -> list[EmbedPayload]:
        """Embeds of the training blocks the first ``rows`` rows need."""
        out = []
        left = rows
        for name in self.pairs[0].train:
            if left <= 0 or not isinstance(name, str):
                break
            entry = self.entries[name]
            take = min(left, entry.rows)
            out += [embed_payload(model, entry, b) for b in blocks_for(take)]
            left -= take
        return out


async def _evaluate(
    search: HalvingSearch, ctx: Context, model: ModelSpec, rows: int, embed: bool
) -> dict[str, Any]:
    embeds = search.test_embeds(model) + search.train_embeds(model, rows) if embed else []
    return await ctx.evaluator.evaluate(
        search.statement,
        model,
        search.classifier,
        search.params,
        search.pairs,
        search.entries,
        rows,
        embeds,
    )


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


async def run_halving(search: HalvingSearch, ctx: Context) -> HalvingOutcome:
    """Run (or resume) one classifier's halving search to its ranking."""
    machine = await restore(search, ctx)
    key = search.key()
    by_name = {m.name: m for m in search.models}

    async def persist() -> None:
        if ctx.machines is not None:
            await ctx.machines.save_machine(key, search.classifier, machine.to_json())

    await persist()
    scores: dict[tuple[str, int], dict[str, Any]] = {}

    async def evaluate(request: Evaluation) -> tuple[Evaluation, dict[str, Any]]:
        model = by_name[request.arm]
        return request, await _evaluate(search, ctx, model, request.train_rows, embed=True)

    early = [t for m in search.models for t in search.test_embeds(m)]
    prefetch = (
        asyncio.ensure_future(ctx.evaluator.embed(early)) if machine.next_requests() else None
    )
    pending = {asyncio.ensure_future(evaluate(r)) for r in machine.next_requests()}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                request, score = finished.result()
                scores[(request.arm, request.train_rows)] = score
                update = machine.record(
                    request.arm, request.train_rows, loss_of(search.statement, score)
                )
                await persist()
                pending |= {asyncio.ensure_future(evaluate(r)) for r in update.requests}
        if prefetch is not None:
            await prefetch
    finally:
        for task in [*pending, *([prefetch] if prefetch else [])]:
            task.cancel()
    rows = []
    for ranked in machine.ranking():
        known = scores.get((ranked.arm, ranked.train_rows))
        if known is None:  # recorded before a restart: its classify result is stored
            model = by_name[ranked.arm]
            known = await _evaluate(search, ctx, model, ranked.train_rows, embed=False)
        rows.append(_row(ranked, known))
    return HalvingOutcome(search, machine, tuple(rows))


def _row(ranked: RankedArm, score: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": ranked.arm,
        **score,
        "train_rows": ranked.train_rows,
        "eliminated_in": ranked.eliminated_in,
    }


def schedule_of(search: HalvingSearch) -> dict[str, Any]:
    """The schedule EXPLAIN shows before running (rounds, arms, rows per arm)."""
    config = search.config()
    return plan_schedule(
        len(config.arms), config.train_rows, config.chunk, config.budget, config.eta
    ).to_dict()


async def stored_scores(search: HalvingSearch, ctx: Context) -> list[dict[str, Any]]:
    """Every loss the stored machine holds (empty before a run), for EXPLAIN."""
    if ctx.machines is None:
        return []
    text = await ctx.machines.load_machine(search.key())
    if text is None:
        return []
    try:
        machine = SuccessiveHalving.from_json(text)
    except SchedulerError:
        return []
    return [
        {"model": s.arm, "round": s.round, "train_rows": s.train_rows, "loss": s.loss}
        for s in machine.scores()
    ]


def searches(
    statement: n.TaskSelect,
    models: Sequence[ModelSpec],
    entries: Mapping[str, DatasetEntry],
) -> list[HalvingSearch]:
    """One halving search per classifier of the statement."""
    return [
        HalvingSearch(
            statement,
            m.name,
            {p.name: p.value.value for p in m.params},
            tuple(models),
            entries,
        )
        for m in statement.classifiers
    ]
