"""The SQL of every table besides ``tasks`` (declared in :mod:`broker.schema`).

:class:`Tables` wraps the broker's :class:`~broker.store.Store`: writes are queued on the
store's one writer (each returns a future that resolves once committed), reads see committed
state. The query service, the catalog and the search state call these methods and run no
SQL of their own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from broker.schema import CATALOG_EXTRA, CATALOG_TABLES, QUERY_COLUMNS

_QUERY_COLUMNS = ", ".join(QUERY_COLUMNS)


class Tables:
    """Typed access to the ``queries``, ``variables``, catalog, ``nn_state`` and ``halving``
    tables.

    Args:
        store: The opened store (``execute``, ``fetch``, ``barrier``).
        wall: Wall clock for ``updated_at``.
    """

    def __init__(self, store: Any, wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self._wall = wall

    # ---- queries and variables ------------------------------------------------------------

    def save_query(self, values: Sequence[Any]) -> asyncio.Future[None]:
        """Insert or replace one query row (values in :data:`~broker.schema.QUERY_COLUMNS`
        order)."""
        marks = ", ".join("?" for _ in values)
        return self.store.execute(  # type: ignore[no-any-return]
            f"INSERT OR REPLACE INTO queries ({_QUERY_COLUMNS}) VALUES ({marks})", tuple(values)
        )

    async def query(self, query_id: str) -> tuple[Any, ...] | None:
        """One query row, or ``None``."""
        rows = await self.store.fetch(
            f"SELECT {_QUERY_COLUMNS} FROM queries WHERE id = ?", (query_id,)
        )
        return rows[0] if rows else None

    async def recent_queries(self, session: str | None, limit: int) -> list[tuple[Any, ...]]:
        """The newest query rows (of one session, or all), newest first."""
        where, args = ("WHERE session = ?", [session]) if session is not None else ("", [])
        return await self.store.fetch(  # type: ignore[no-any-return]
            f"SELECT {_QUERY_COLUMNS} FROM queries {where} ORDER BY seq DESC LIMIT ?",
            (*args, limit),
        )

    async def unfinished_queries(self) -> list[tuple[Any, ...]]:
        """Query rows still queued or running, in creation order (resumed at start)."""
        return await self.store.fetch(  # type: ignore[no-any-return]
            f"SELECT {_QUERY_COLUMNS} FROM queries WHERE status IN ('queued', 'running') "
            "ORDER BY seq"
        )

    async def last_query_seq(self) -> int:
        """The highest query sequence number (0 when none)."""
        ((top,),) = await self.store.fetch("SELECT COALESCE(MAX(seq), 0) FROM queries")
        return int(top)

    def save_variable(self, session: str, name: str, names: list[str]) -> asyncio.Future[None]:
        """Persist a DECLAREd variable."""
        return self.store.execute(  # type: ignore[no-any-return]
            "INSERT OR REPLACE INTO variables (session, name, names) VALUES (?, ?, ?)",
            (session, name, json.dumps(names)),
        )

    async def variables(self) -> list[tuple[str, str, list[str]]]:
        """Every ``(session, name, names)``."""
        rows = await self.store.fetch("SELECT session, name, names FROM variables")
        return [(s, n, json.loads(v)) for s, n, v in rows]

    # ---- catalog ----------------------------------------------------------------------------

    async def catalog_entries(self, kind: str) -> list[tuple[Any, ...]]:
        """``(spec, status, measured, error, date_added, seq)`` of a kind, in seq order."""
        table, _ = CATALOG_TABLES[kind]
        return await self.store.fetch(  # type: ignore[no-any-return]
            f"SELECT spec, status, measured, error, date_added, seq FROM {table} ORDER BY seq"
        )

    def save_catalog_entry(
        self, kind: str, row: dict[str, Any], extra: Sequence[Any]
    ) -> asyncio.Future[None]:
        """Insert or replace one entry: its catalog row and the
        :data:`~broker.schema.CATALOG_EXTRA` values."""
        table, columns = CATALOG_TABLES[kind]
        values = [row[c] for c in columns]
        names = ", ".join(f'"{c}"' for c in (*columns, *CATALOG_EXTRA))
        marks = ", ".join("?" for _ in range(len(values) + len(extra)))
        return self.store.execute(  # type: ignore[no-any-return]
            f"INSERT OR REPLACE INTO {table} ({names}) VALUES ({marks})", [*values, *extra]
        )

    def delete_catalog_entry(self, kind: str, name: str) -> asyncio.Future[None]:
        """Delete one entry's row (``DROP``); nothing else refers to it by foreign key."""
        table, _ = CATALOG_TABLES[kind]
        return self.store.execute(  # type: ignore[no-any-return]
            f"DELETE FROM {table} WHERE name = ?", (name,)
        )

    # ---- search state -------------------------------------------------------------------------

    async def nn_records(self) -> list[str]:
        """The JSON of every nearest-neighbour record."""
        return [text for (text,) in await self.store.fetch("SELECT record FROM nn_state")]

    def save_nn_record(self, key: str, lineage: str, record: str) -> asyncio.Future[None]:
        """Insert or replace a record."""
        return self.store.execute(  # type: ignore[no-any-return]
            "INSERT OR REPLACE INTO nn_state (key, lineage, record) VALUES (?, ?, ?)",
            (key, lineage, record),
        )

    def delete_nn_record(self, key: str) -> asyncio.Future[None]:
        """Forget one record."""
        return self.store.execute(  # type: ignore[no-any-return]
            "DELETE FROM nn_state WHERE key = ?", (key,)
        )

    async def machine(self, key: str) -> str | None:
        """The JSON of a halving machine (its stored state plus the results appended since),
        or ``None``."""
        rows = await self.store.fetch("SELECT state FROM halving WHERE key = ?", (key,))
        if not rows:
            return None
        state = str(rows[0][0])
        appended = await self.store.fetch(
            "SELECT result FROM halving_results WHERE key = ? ORDER BY seq", (key,)
        )
        if not appended:
            return state
        try:
            data = json.loads(state)
            results = [json.loads(text) for (text,) in appended]
        except ValueError:
            return state  # unreadable: the machine refuses it and the search starts again
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            return state
        data["results"] = [*data["results"], *results]
        return json.dumps(data, sort_keys=True)

    def save_machine(self, key: str, classifier: str, state: str) -> asyncio.Future[None]:
        """Persist a halving machine whole (its appended results are in ``state`` now)."""
        self.store.execute("DELETE FROM halving_results WHERE key = ?", (key,))
        return self.store.execute(  # type: ignore[no-any-return]
            "INSERT OR REPLACE INTO halving (key, classifier, state, updated_at) "
            "VALUES (?, ?, ?, ?)",
            (key, classifier, state, self._wall()),
        )

    def append_machine_results(
        self, key: str, start: int, results: Sequence[Any]
    ) -> asyncio.Future[None]:
        """Append results to a saved machine: ``results[i]`` is its result ``start + i``
        (:meth:`shift.halving.SuccessiveHalving.results_since`), so a transition costs a
        write of its own results, not of the whole state."""
        for i, result in enumerate(results):
            self.store.execute(
                "INSERT OR REPLACE INTO halving_results (key, seq, result) VALUES (?, ?, ?)",
                (key, start + i, json.dumps(result, allow_nan=False)),
            )
        return self.store.execute(  # type: ignore[no-any-return]
            "UPDATE halving SET updated_at = ? WHERE key = ?", (self._wall(), key)
        )

    def clear_search(self) -> asyncio.Future[None]:
        """Forget every record and machine (``PURGE RESULTS``)."""
        self.store.execute("DELETE FROM nn_state")
        self.store.execute("DELETE FROM halving_results")
        return self.store.execute(  # type: ignore[no-any-return]
            "DELETE FROM halving"
        )
