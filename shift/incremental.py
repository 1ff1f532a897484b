"""Incremental 1-NN: which stored nearest-neighbour state a new classify task continues from.

Pure functions, no broker imports. Every classify result of a 1-NN proxy holds, per test
row, its nearest training row and the distance (``nn_index``, ``nn_distance``). The broker
records each result as an :class:`NnRecord`: its *lineage* (model, test set, classifier
and parameters: what must be equal for the neighbours to be comparable), the training
items it saw (:func:`describe_items`) and how many rows. :func:`choose_prior` picks, for
a new evaluation, the record that leaves the least to compute:

- the same lineage, items and rows: the stored result is the answer (no task);
- a *prefix*: the record's rows are the first rows of the new training set (a smaller
  halving round, or ``TRAINED ON "a"`` before ``["a", "b"]``; a label-only mutation has
  the same rows as its base): only distances to the rows after it are computed;
- a *source*: the record saw rows of the same datasets in another arrangement (the base
  of a ``CHANGE ... TO`` mutation): the worker matches rows by identity and recomputes
  only the test rows whose neighbour left, plus distances to the new rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shift.hashing import content_hash
from shift.payloads import ClassifyResult, Mutation, PayloadError, Prior, TrainItem, parse_items


def evaluation_key(lineage: str, items: Sequence[Mapping[str, Any]], rows: int | None) -> str:
    """The identity of one evaluation, whatever prior its task was given."""
    return content_hash({"lineage": lineage, "items": list(items), "rows": rows})


def describe_items(train: Sequence[TrainItem], sizes: Mapping[str, int]) -> list[dict[str, Any]]:
    """Describe training items by dataset key and rows (see the module docstring).

    Args:
        train: The payload's training items.
        sizes: Rows of each dataset, by dataset key.
    """
    out: list[dict[str, Any]] = []
    for item in train:
        if isinstance(item, Mutation):
            base, target = item.base.key, item.target.key
            out.append(
                {
                    "base": base,
                    "base_rows": item.base_rows or sizes.get(base, 0),
                    "from": list(item.from_labels),
                    "target": target,
                    "target_rows": item.target_rows or sizes.get(target, 0),
                    "to": list(item.to_labels),
                }
            )
        else:
            out.append({"dataset": item.key, "rows": sizes.get(item.key, 0)})
    return out


def segments(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]] | None:
    """The feature rows of described items as (dataset key, rows) runs, in order.

    ``None`` when a mutation replaces rows (its row count depends on labels); a label-only
    mutation has its base's rows.
    """
    out: list[tuple[str, int]] = []
    for item in items:
        if "dataset" in item:
            out.append((item["dataset"], int(item["rows"])))
        elif item["base"] == item["target"]:
            out.append((item["base"], int(item["base_rows"])))
        else:
            return None
    return out


def rows_of(items: Sequence[Mapping[str, Any]], train_rows: int | None) -> int | None:
    """Rows an evaluation fits on (``None`` when a mutation makes it depend on labels)."""
    runs = segments(items)
    if runs is None:
        return None
    total = sum(rows for _, rows in runs)
    return total if train_rows is None else min(train_rows, total)


def _cut(runs: list[tuple[str, int]], rows: int) -> list[tuple[str, int]]:
    out = []
    for key, count in runs:
        if rows <= 0:
            break
        out.append((key, min(count, rows)))
        rows -= count
    return out


def datasets_of(items: Sequence[Mapping[str, Any]]) -> set[str]:
    """Dataset keys whose features described items use."""
    out: set[str] = set()
    for item in items:
        out |= {item["dataset"]} if "dataset" in item else {item["base"], item["target"]}
    return out


@dataclass(frozen=True)
class NnRecord:
    """A stored classify result that later evaluations may continue from.

    Attributes:
        lineage: :meth:`~shift.payloads.ClassifyPayload.lineage` of its payload.
        items: :func:`describe_items` of its train items.
        rows: Rows it was fitted on (``None``: all rows of a mutated set).
        task_id: The task holding the result.
        train: Its payload's train items as JSON (a source prior names them).
        train_rows: Its payload's ``train_rows``.
    """

    lineage: str
    items: tuple[dict[str, Any], ...]
    rows: int | None
    task_id: str
    train: tuple[Any, ...] = ()
    train_rows: int | None = None

    @property
    def key(self) -> str:
        """Its :func:`evaluation_key`."""
        return evaluation_key(self.lineage, self.items, self.rows)


@dataclass(frozen=True)
class PriorChoice:
    """Where a new evaluation starts: a stored record, as a prefix or as a source."""

    record: NnRecord
    prefix: bool

    def prior(self, result: ClassifyResult) -> Prior:
        """The classify prior built from the record's stored result.

        Raises:
            PayloadError: the result carries no nearest-neighbour state, or the record's
                training items do not parse.
        """
        if result.nn_index is None or result.nn_distance is None:
            raise PayloadError(f"result {self.record.task_id} has no nearest-neighbour state")
        if self.prefix:
            return Prior(result.train_rows, result.nn_index, result.nn_distance)
        train = parse_items(list(self.record.train), "prior train")
        return Prior(self.record.train_rows, result.nn_index, result.nn_distance, train)


def choose_prior(
    items: Sequence[Mapping[str, Any]], rows: int | None, candidates: Iterable[NnRecord]
) -> PriorChoice | None:
    """The best stored record to continue from (``None``: start from scratch).

    A prefix of the new rows is preferred (most rows first), then a source over the same
    datasets (most rows first). Records over rows the new set does not start with, or
    over datasets it does not use, are never chosen.
    """
    runs = segments(items)
    used = datasets_of(items)
    best_prefix: NnRecord | None = None
    best_source: NnRecord | None = None
    for record in candidates:
        theirs = segments(record.items)
        if (
            runs is not None
            and rows is not None
            and theirs is not None
            and record.rows is not None
            and 0 < record.rows <= rows
            and _cut(theirs, record.rows) == _cut(runs, record.rows)
        ):
            if best_prefix is None or (record.rows, record.task_id) > (
                best_prefix.rows or 0,
                best_prefix.task_id,
            ):
                best_prefix = record
        elif runs is None and datasets_of(record.items) <= used:
            size = record.rows or 0
            if best_source is None or (size, record.task_id) > (
                best_source.rows or 0,
                best_source.task_id,
            ):
                best_source = record
    if best_prefix is not None:
        return PriorChoice(best_prefix, prefix=True)
    if best_source is not None:
        return PriorChoice(best_source, prefix=False)
    return None
