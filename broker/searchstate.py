"""Search state the broker keeps besides tasks: nearest-neighbour records and halving machines.

Two SQLite tables (:mod:`broker.schema`), written through :class:`broker.tables.Tables`:

- ``nn_state``: one :class:`~shift.incremental.NnRecord` per classify result a search
  used, so a later evaluation finds the same evaluation's result (whatever prior its task
  had) or the best one to continue from (:func:`shift.incremental.choose_prior`). An
  in-memory index answers lookups without a read.
- ``halving``: the JSON of every successive-halving machine
  (:meth:`shift.halving.SuccessiveHalving.to_json`), keyed by the search's content, written
  at every transition. A resumed query, the same query again, and ``EXPLAIN`` after a run
  all find it.

``PURGE RESULTS`` clears both (their results are gone).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from broker.tables import Tables
from shift.incremental import NnRecord


def _record_json(record: NnRecord) -> str:
    return json.dumps(
        {
            "lineage": record.lineage,
            "items": list(record.items),
            "rows": record.rows,
            "task_id": record.task_id,
            "train": list(record.train),
            "train_rows": record.train_rows,
        },
        sort_keys=True,
    )


def _record(text: str) -> NnRecord:
    data = json.loads(text)
    return NnRecord(
        data["lineage"],
        tuple(data["items"]),
        data["rows"],
        data["task_id"],
        tuple(data["train"]),
        data["train_rows"],
    )


class SearchState:
    """The ``nn_state`` and ``halving`` tables with an in-memory index of the former.

    Args:
        tables: The broker's tables.
    """

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self._by_key: dict[str, NnRecord] = {}
        self._by_lineage: dict[str, dict[str, NnRecord]] = defaultdict(dict)

    async def open(self) -> None:
        """Load the records."""
        for text in await self.tables.nn_records():
            self._index(_record(text))

    def _index(self, record: NnRecord) -> None:
        self._by_key[record.key] = record
        self._by_lineage[record.lineage][record.key] = record

    def exact(self, key: str) -> NnRecord | None:
        """The record of one evaluation (:func:`shift.incremental.evaluation_key`)."""
        return self._by_key.get(key)

    def candidates(self, lineage: str) -> list[NnRecord]:
        """Every record of a lineage."""
        return list(self._by_lineage.get(lineage, {}).values())

    async def add(self, record: NnRecord) -> None:
        """Index and persist a record (replacing one of the same evaluation)."""
        self._index(record)
        await self.tables.save_nn_record(record.key, record.lineage, _record_json(record))

    async def drop(self, record: NnRecord) -> None:
        """Forget a record whose result is gone."""
        self._by_key.pop(record.key, None)
        self._by_lineage.get(record.lineage, {}).pop(record.key, None)
        await self.tables.delete_nn_record(record.key)

    async def load_machine(self, key: str) -> str | None:
        """The stored JSON of a halving machine, or ``None``."""
        return await self.tables.machine(key)

    async def save_machine(self, key: str, classifier: str, state: str) -> None:
        """Persist a halving machine whole (when a search starts and ends)."""
        await self.tables.save_machine(key, classifier, state)

    async def append_machine_results(self, key: str, start: int, results: list[Any]) -> None:
        """Persist the results a saved machine recorded since (every transition)."""
        await self.tables.append_machine_results(key, start, results)

    async def clear(self) -> None:
        """Forget every record and machine (``PURGE RESULTS``)."""
        self._by_key.clear()
        self._by_lineage.clear()
        await self.tables.clear_search()
