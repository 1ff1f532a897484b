"""``RANK ... CHUNK n|AUTO BUDGET n|AUTO``: successive halving over training prefixes.

One :class:`~shift.halving.SuccessiveHalving` machine per ranker (each ranker orders the
models on its own). The arms are the models; round ``k`` scores each surviving arm with a
``rank`` task on the first ``train_rows`` training rows (the embeds of the blocks that
prefix needs first); the loss is the negated score (rankers: higher is better). There is no
test set, so the machine runs plain halving (``racing`` off): each round keeps exactly its
top ``ceil(|S_k| / 2)`` (docs/halving.md, "RANK"). The finalists' round uses the exhaustive
RANK's very payload, so their scores are the exhaustive scores and a RANK without CHUNK
afterwards creates no task for them.

The machine is persisted at every transition, keyed by the search's content, so a
restarted broker resumes it and a repeated query finds every task done.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.context import Context, Stage
from broker.explain import task_seconds
from shift.errors import SchedulerError
from shift.halving import Evaluation, HalvingConfig, SuccessiveHalving
from shift.hashing import content_hash
from shift.payloads import EmbedPayload, RankPayload, RankResult, item_json
from shift.payloads import TrainItem as PayloadItem
from shift.planner import (
    DatasetEntry,
    Pair,
    item_label,
    item_size,
    prefix_embeds,
    train_items,
    train_prefix,
    train_size,
)
from shift.ql import nodes as n
from shift.specs import ModelSpec


@dataclass(frozen=True)
class RankSearch:
    """One ranker's halving search over resolved models and training data.

    Attributes:
        statement: The RANK.
        ranker: The ranker's canonical name; ``params`` its parameters.
        models: The candidates, in pool order.
        entries: Every dataset the statement reads, by name.
    """

    statement: n.Rank
    ranker: str
    params: dict[str, Any]
    models: tuple[ModelSpec, ...]
    entries: Mapping[str, DatasetEntry]

    @property
    def pair(self) -> Pair:
        """The training items (RANK has no test set)."""
        return Pair(
            tuple(i if isinstance(i, n.Mutation) else i.name for i in self.statement.train), ""
        )

    @property
    def items(self) -> tuple[PayloadItem, ...]:
        """The typed training items every rank payload reads."""
        return train_items(self.pair, self.entries)

    def train_rows(self) -> int:
        """Rows of the training set.

        Raises:
            SchedulerError: a mutation that replaces rows (its size depends on labels).
        """
        rows = train_size(self.pair, self.entries)
        if rows is None:
            merged = next(i for i in self.pair.train if item_size(i, self.entries) is None)
            raise SchedulerError(
                f"RANK with CHUNK/BUDGET needs the training-set size, and {item_label(merged)} "
                "has as many rows as carry its labels; register the merged data as a dataset, "
                "or drop CHUNK/BUDGET to score every training row"
            )
        return rows

    def config(self) -> HalvingConfig:
        """Plain halving (no test set to race on) over the training rows.

        Raises:
            SchedulerError: the training size is unknown, or CHUNK/BUDGET are refused.
        """
        chunk = self.statement.chunk if self.statement.chunk is not None else "auto"
        budget = self.statement.budget if self.statement.budget is not None else "auto"
        return HalvingConfig(
            tuple(m.name for m in self.models),
            self.train_rows(),
            chunk,
            budget,
            racing=False,
        )

    def key(self) -> str:
        """The content identity of this search (where its machine is stored)."""
        return content_hash(
            {
                "statement": "rank",
                "ranker": self.ranker,
                "params": self.params,
                "config": self.config().to_dict(),
                "models": [m.key for m in self.models],
                "train": [item_json(i) for i in self.items],
            }
        )

    def payload(self, model: ModelSpec, rows: int) -> RankPayload:
        """The rank task of one arm on the first ``rows`` rows (all rows: the exhaustive
        RANK's payload, so its result is shared)."""
        whole = rows >= self.train_rows()
        prefix = train_prefix(self.pair, self.entries) if whole else rows
        return RankPayload(model, self.items, prefix, self.ranker, self.params)

    def embeds(self, model: ModelSpec, rows: int) -> list[EmbedPayload]:
        """Embeds of the training blocks the first ``rows`` rows need, items in order."""
        return prefix_embeds(model, self.pair.train, self.entries, rows)


def loss_of(result: RankResult) -> float:
    """The machine's loss: the negated score (a score that is not finite sorts last)."""
    return -result.score if math.isfinite(result.score) else math.inf


@dataclass(frozen=True)
class RankedRow:
    """One model's line of a halving RANK: its last round's result."""

    name: str
    result: RankResult
    eliminated_in: int | None


@dataclass(frozen=True)
class RankOutcome:
    """A finished RANK halving search: the machine and every arm's last result, ranked."""

    search: RankSearch
    machine: SuccessiveHalving
    rows: tuple[RankedRow, ...]


async def restore(search: RankSearch, ctx: Context) -> SuccessiveHalving:
    """The stored machine of a search, or a new one (a stale or unreadable state is dropped)."""
    stored = await stored_machine(search, ctx)
    return stored if stored is not None else SuccessiveHalving(search.config())


async def stored_machine(search: RankSearch, ctx: Context) -> SuccessiveHalving | None:
    """The stored machine of a search as it is now (``None``: none, or unreadable)."""
    if ctx.machines is None:
        return None
    text = await ctx.machines.load_machine(search.key())
    if text is None:
        return None
    with contextlib.suppress(SchedulerError):
        machine = SuccessiveHalving.from_json(text)
        if machine.config == search.config():
            return machine
    return None


def _stage(machine: SuccessiveHalving) -> Stage:
    k = machine.current_round()
    plan = machine.schedule.rounds[k]
    return Stage(k, len(machine.schedule.rounds), machine.round_arms(k), plan.train_rows, 0)


async def run_rank_halving(search: RankSearch, ctx: Context) -> RankOutcome:
    """Run (or resume) one ranker's halving search to its ranking."""
    machine = await restore(search, ctx)
    key = search.key()
    by_name = {m.name: m for m in search.models}

    async def persist() -> None:
        if ctx.machines is not None:
            await ctx.machines.save_machine(key, search.ranker, machine.to_json())

    async def evaluate(request: Evaluation, embed: bool = True) -> tuple[Evaluation, RankResult]:
        model = by_name[request.arm]
        embeds = search.embeds(model, request.train_rows) if embed else []
        payload = search.payload(model, request.train_rows)
        return request, await ctx.evaluator.rank(payload, embeds)

    await persist()
    ctx.tasks.report_stage(_stage(machine))
    results: dict[tuple[str, int], RankResult] = {}
    pending = {asyncio.ensure_future(evaluate(r)) for r in machine.next_requests()}
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                request, result = finished.result()
                results[(request.arm, request.train_rows)] = result
                update = machine.record(request.arm, request.train_rows, loss_of(result))
                await persist()
                ctx.tasks.report_stage(_stage(machine))
                pending |= {asyncio.ensure_future(evaluate(r)) for r in update.requests}
    finally:
        for task in pending:
            task.cancel()
    rows = []
    for ranked in machine.ranking():
        known = results.get((ranked.arm, ranked.train_rows))
        if known is None:  # recorded before a restart: the stored task answers, no new one
            k = machine.schedule.round_of(ranked.train_rows)
            _, known = await evaluate(Evaluation(ranked.arm, k, ranked.train_rows), embed=False)
        rows.append(RankedRow(ranked.arm, known, ranked.eliminated_in))
    return RankOutcome(search, machine, tuple(rows))


def searches(
    statement: n.Rank, models: tuple[ModelSpec, ...], entries: Mapping[str, DatasetEntry]
) -> list[RankSearch]:
    """One halving search per ranker of the statement."""
    return [
        RankSearch(statement, m.name, {p.name: p.value.value for p in m.params}, models, entries)
        for m in statement.rankers
    ]


@dataclass(frozen=True)
class RankRound:
    """One planned round of a RANK halving search, for EXPLAIN."""

    round: int
    arms: int
    train_rows: int
    advancing: int | str
    embeds: int
    ranks: int
    known: int
    to_run: int
    estimated_s: float | None


def round_plan(
    search: RankSearch,
    machine: SuccessiveHalving | None,
    state: Any,
    timings: Mapping[tuple[str, str], float],
) -> list[RankRound]:
    """Per round: the embeds it adds, its rank tasks, those done and the cost of the rest.

    A round whose arms are known (round 0, or a round the stored machine reached) counts
    its arms' tasks exactly; a later one counts the planned number of arms with the first
    model's blocks and costs (``state(task_id)``: a task's state, ``None`` when unknown).
    """
    machine = machine if machine is not None else SuccessiveHalving(search.config())
    by_name = {m.name: m for m in search.models}
    recorded = {(s.arm, s.round) for s in machine.scores()}
    waiting = {(e.arm, e.round) for e in machine.next_requests()}
    seen: set[str] = set()
    out = []
    before = 0

    def seconds(kind: str, model: ModelSpec) -> float | None:
        return task_seconds(timings, kind, model.key)

    for plan in machine.schedule.rounds:
        k = plan.index
        members = sorted(a for a, r in recorded | waiting if r == k)
        arms = machine.round_arms(k)
        known_arms = len(members) == arms
        models = [by_name[a] for a in members] if known_arms else [search.models[0]] * arms
        embeds = ranks = known = 0
        cost: float | None = 0.0
        for model in models:
            specs = [e.task() for e in search.embeds(model, plan.train_rows)]
            # Blocks an earlier round embedded are not this round's work.
            specs = [s for s in specs if s.task_id not in seen] if known_arms else specs[before:]
            seen |= {s.task_id for s in specs}
            embeds += len(specs)
            rank = search.payload(model, plan.train_rows).task()
            ranks += 1
            for spec in [*specs, rank]:
                if known_arms and state(spec.task_id) == "succeeded":
                    known += 1
                    continue
                step = seconds(spec.kind, model)
                cost = None if cost is None or step is None else cost + step
        before = len(search.embeds(search.models[0], plan.train_rows))
        out.append(
            RankRound(
                k,
                arms,
                plan.train_rows,
                "final" if plan.final else plan.advancing,
                embeds,
                ranks,
                known,
                embeds + ranks - known,
                cost,
            )
        )
    return out
