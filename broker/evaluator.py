"""The evaluator: "this model's score on these rows", for every statement that ranks models.

Searches decide what to evaluate (exhaustive plans, successive-halving machines in
:mod:`shift.halving`); the evaluator runs it. For one evaluation it

1. submits the ``embed`` tasks of the feature blocks it reads (content-hashed: blocks any
   earlier query embedded cost nothing),
2. looks the evaluation up in the nearest-neighbour memory (:mod:`broker.searchstate`): the
   same evaluation done before answers at once, whatever prior its task had,
3. otherwise continues from the best stored 1-NN state (:func:`shift.incremental.choose_prior`)
   so that a grown training set costs only distances to its new rows,
4. submits the ``classify`` task, waits, parses the result once
   (:class:`~shift.payloads.ClassifyResult`) and records it in the memory.

Exhaustive search, halving and the statements that come (RANK) call it; none of them
builds a prior, reads a stored result or waits on a task itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from broker.context import TaskRunner
from broker.searchstate import SearchState
from shift.errors import WorkerError
from shift.incremental import NnRecord, choose_prior, describe_items, evaluation_key, rows_of
from shift.methods import NN_CLASSIFIERS
from shift.payloads import (
    ClassifyPayload,
    ClassifyResult,
    EmbedPayload,
    PayloadError,
    RankPayload,
    RankResult,
    item_json,
)
from shift.planner import DatasetEntry, Pair, classify_payload, score_of
from shift.ql import nodes as n
from shift.specs import ModelSpec


def dataset_sizes(entries: Mapping[str, DatasetEntry]) -> dict[str, int]:
    """Rows a query uses of each dataset, by dataset key."""
    return {e.spec.key: e.rows for e in entries.values()}


class Evaluator:
    """Runs evaluations through the task queue, reusing and continuing stored 1-NN state.

    Args:
        tasks: The task queue as the running query sees it.
        memory: Nearest-neighbour records (``None``: no reuse, every evaluation is a task).
    """

    def __init__(self, tasks: TaskRunner, memory: SearchState | None = None) -> None:
        self.tasks = tasks
        self.memory = memory

    async def embed(self, payloads: Sequence[EmbedPayload]) -> None:
        """Make sure the feature blocks exist (one batch of ``embed`` tasks)."""
        if payloads:
            await self.tasks.run([p.task() for p in payloads])

    async def classify(self, payload: ClassifyPayload, sizes: Mapping[str, int]) -> ClassifyResult:
        """The result of one classify evaluation (steps 2 to 4 of the module docstring).

        Args:
            payload: The evaluation, without a prior.
            sizes: Rows of each dataset the evaluation reads, by dataset key.

        Raises:
            WorkerError: the task failed, or its result is malformed.
        """
        lineage = payload.lineage()
        items = describe_items(payload.train, sizes)
        rows = rows_of(items, payload.train_rows)
        memory = self.memory
        spec = payload.task()
        if memory is not None:
            hit = memory.exact(evaluation_key(lineage, items, rows))
            if hit is not None:
                found = _parsed(await self.tasks.result(hit.task_id))
                if found is not None:
                    return found
                await memory.drop(hit)
            if self.tasks.state(spec.task_id) is None and payload.classifier in NN_CLASSIFIERS:
                choice = choose_prior(items, rows, memory.candidates(lineage))
                if choice is not None:
                    prior = _parsed(await self.tasks.result(choice.record.task_id))
                    if prior is not None and prior.has_neighbours:
                        spec = payload.with_prior(choice.prior(prior)).task()
                    else:
                        await memory.drop(choice.record)
        results = await self.tasks.run([spec])
        result = _parsed(results[spec.task_id])
        if result is None:
            raise WorkerError(
                f"classify task {spec.task_id} for model {payload.model.name} "
                "returned a malformed result"
            )
        if memory is not None:
            train = tuple(item_json(i) for i in payload.train)
            await memory.add(
                NnRecord(lineage, tuple(items), rows, spec.task_id, train, payload.train_rows)
            )
        return result

    async def rank(self, payload: RankPayload, embeds: Sequence[EmbedPayload] = ()) -> RankResult:
        """One model's ranker score: its feature blocks first, then the content-hashed
        ``rank`` task (a repeated one is answered by the stored result, no new task).

        Raises:
            WorkerError: the task failed, or its result is malformed.
        """
        await self.embed(embeds)
        spec = payload.task()
        value = (await self.tasks.run([spec]))[spec.task_id]
        try:
            return RankResult.from_json(value)
        except PayloadError as error:
            raise WorkerError(
                f"rank task {spec.task_id} for model {payload.model.name}: {error}"
            ) from None

    async def evaluate(
        self,
        statement: n.TaskSelect,
        model: ModelSpec,
        classifier: str,
        params: Mapping[str, Any],
        pairs: Sequence[Pair],
        entries: Mapping[str, DatasetEntry],
        train_rows: int | None,
        embeds: Sequence[EmbedPayload] = (),
    ) -> dict[str, Any]:
        """One model's score (``err acc train_rows test_rows``) on every pair.

        Args:
            statement: The query (its metric and BENCHMARK aggregate).
            model: The model.
            classifier: The proxy's canonical name; ``params`` its parameters.
            pairs: The (train, test) evaluations to combine.
            entries: Every dataset the pairs read, by name.
            train_rows: A prefix of the training rows (``None``: all).
            embeds: Feature blocks to make sure of first.
        """
        await self.embed(embeds)
        sizes = dataset_sizes(entries)
        results = await asyncio.gather(
            *(
                self.classify(
                    classify_payload(model, classifier, params, pair, entries, train_rows), sizes
                )
                for pair in pairs
            )
        )
        return score_of(statement, results)


def _parsed(value: Any) -> ClassifyResult | None:
    if value is None:
        return None
    try:
        return ClassifyResult.from_json(value)
    except PayloadError:
        return None
