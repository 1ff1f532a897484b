"""The task store: tasks, attempts and results in one SQLite file (WAL, one writer).

The file holds every table of :mod:`broker.schema`; this module owns ``tasks`` and the
connections, :mod:`broker.tables` the SQL of the other tables.

All writes go through one writer coroutine that batches every change queued since its last
commit into one transaction (one ``executemany`` of an upsert, in order). Callers get a
future that resolves once their change is durable, so the broker tells nobody about a
result before it is on disk. Reads (REST) use a second connection and see committed state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from broker.schema import CATALOG_TABLES, SCHEMA
from shift.codec import pack, unpack
from shift.dispatch import Change
from shift.errors import ProtocolError, SchedulerError
from shift.tasks import TaskSpec, TaskState

log = logging.getLogger(__name__)

UPSERT = """
INSERT INTO tasks (id, kind, payload, model, state, attempt, worker, result, error,
                   created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    state = excluded.state, attempt = excluded.attempt, worker = excluded.worker,
    result = excluded.result, error = excluded.error, updated_at = excluded.updated_at
"""

WAL_AUTOCHECKPOINT_PAGES = 4000
"""WAL size (pages) at which a commit checkpoints inline: a backstop that also lets SQLite
restart the WAL from its start. Above SQLite's default of 1000 so that the background
checkpointer, not a commit, does nearly all of the copying and syncing."""

CHECKPOINT_INTERVAL_S = 0.1
"""How often the background checkpointer copies committed WAL pages into the database."""

COLUMNS = "id, kind, payload, model, state, attempt, worker, result, error, created_at, updated_at"


@dataclass(frozen=True)
class TaskRow:
    """A task as stored.

    Attributes:
        task_id: The content hash.
        spec: What to run.
        state: Where it stands.
        attempt: Attempt number.
        worker: Worker that runs or ran it last.
        result: The result value, for succeeded tasks.
        error: The reason, for failed and cancelled tasks.
        created_at: Wall-clock seconds of the first submission.
        updated_at: Wall-clock seconds of the last change.
    """

    task_id: str
    spec: TaskSpec
    state: TaskState
    attempt: int
    worker: str | None
    result: Any
    error: str | None
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        """Return the REST form."""
        return {
            "id": self.task_id,
            **self.spec.to_json(),
            "state": self.state.value,
            "attempt": self.attempt,
            "worker": self.worker,
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _row(values: tuple[Any, ...]) -> TaskRow:
    task_id, kind, payload, model, state, attempt, worker, result, error, created, updated = values
    spec = TaskSpec(kind, unpack(payload), model)
    if spec.task_id != task_id:
        raise SchedulerError(f"stored task {task_id} does not match its spec's hash")
    return TaskRow(
        task_id,
        spec,
        TaskState(state),
        attempt,
        worker,
        None if result is None else unpack(result),
        error,
        created,
        updated,
    )


class Store:
    """The SQLite task store.

    Args:
        path: The database file (created if missing).
        wall: Wall clock for ``created_at``/``updated_at`` (seconds since the epoch).
    """

    def __init__(self, path: str | Path, wall: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._wall = wall
        self._db: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._checkpointer: aiosqlite.Connection | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._statements: list[tuple[str, tuple[Any, ...]]] = []
        self._committed: asyncio.Future[None] | None = None
        self._inflight: asyncio.Future[None] | None = None
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0

    async def open(self) -> None:
        """Open both connections, enable WAL and create the schema."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        await self._db.executescript(SCHEMA)
        await self._add_new_columns()
        await self._db.commit()
        self._reader = await aiosqlite.connect(self.path)
        await self._reader.execute("PRAGMA query_only=ON")
        self._checkpointer = await aiosqlite.connect(self.path)
        await self._checkpointer.execute("PRAGMA synchronous=NORMAL")
        self._writer = asyncio.create_task(self._write_loop(), name="store-writer")
        self._checkpoints = asyncio.create_task(self._checkpoint_loop(), name="store-checkpoint")

    async def _add_new_columns(self) -> None:
        """Give catalog tables made by an older shift the columns added since (``NULL``
        until a row is registered again), so an existing state directory keeps working."""
        if self._db is None:
            raise RuntimeError("the store is not open")
        for table, columns in CATALOG_TABLES.values():
            rows = await self._db.execute_fetchall(f"PRAGMA table_info({table})")
            present = {str(r[1]) for r in rows}
            for column in columns:
                if column not in present:
                    await self._db.execute(f'ALTER TABLE {table} ADD COLUMN "{column}"')

    async def load(self) -> list[TaskRow]:
        """Every stored task in submission order (used once at startup)."""
        rows = await self._read().execute_fetchall(f"SELECT {COLUMNS} FROM tasks ORDER BY seq")
        loaded = []
        for values in rows:
            try:
                loaded.append(_row(tuple(values)))
            except (ProtocolError, SchedulerError, ValueError) as error:
                log.error("skipping unreadable stored task %s: %s", values[0], error)
        return loaded

    def write(self, changes: Iterable[Change]) -> asyncio.Future[None]:
        """Queue changes for the next commit.

        Returns:
            A future that resolves when the changes are committed (shared by the batch).
        """
        now = self._wall()
        for c in changes:
            spec = c.spec
            self._pending.append(
                (
                    c.task_id,
                    spec.kind if spec else "",
                    pack(spec.payload) if spec else b"",
                    spec.model if spec else None,
                    c.state.value,
                    c.attempt,
                    c.worker,
                    pack(c.value) if c.state is TaskState.SUCCEEDED else None,
                    c.error,
                    now,
                    now,
                )
            )
        if self._committed is None:
            self._committed = asyncio.get_running_loop().create_future()
        self._wake.set()
        return self._committed

    def execute(self, sql: str, params: Iterable[Any] = ()) -> asyncio.Future[None]:
        """Queue one more statement (catalog, queries) for the next commit.

        Statements run in the writer's transaction, in order, before that commit's task
        changes. Returns a future that resolves when the statement is committed.
        """
        self._statements.append((sql, tuple(params)))
        return self.write(())

    async def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query over committed state."""
        return [tuple(row) for row in await self._read().execute_fetchall(sql, tuple(params))]

    def barrier(self) -> asyncio.Future[None]:
        """A future that resolves once everything written so far is committed."""
        if self._committed is not None:
            return self._committed
        if self._inflight is not None and not self._inflight.done():
            return self._inflight
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def get(self, task_id: str) -> TaskRow | None:
        """The committed state of one task, or ``None``."""
        sql = f"SELECT {COLUMNS} FROM tasks WHERE id = ?"
        rows = list(await self._read().execute_fetchall(sql, (task_id,)))
        return _row(tuple(rows[0])) if rows else None

    async def list(
        self,
        *,
        state: TaskState | None = None,
        kind: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> tuple[list[TaskRow], int | None]:
        """A page of committed tasks in submission order.

        Args:
            state: Only tasks in this state.
            kind: Only tasks of this kind.
            after: Cursor from the previous page (0 for the first).
            limit: Page size.

        Returns:
            The tasks and the cursor of the next page (``None`` on the last page).
        """
        where: list[str] = ["seq > ?"]
        args: list[Any] = [after]
        if state is not None:
            where.append("state = ?")
            args.append(state.value)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        sql = f"SELECT seq, {COLUMNS} FROM tasks WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
        rows = list(await self._read().execute_fetchall(sql, (*args, limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        cursor_next = rows[-1][0] if more and rows else None
        return [_row(tuple(r[1:])) for r in rows], cursor_next

    async def finished_ids(self, kind: str) -> list[str]:
        """Ids of the finished (succeeded, failed, cancelled) tasks of a kind."""
        rows = await self.fetch(
            "SELECT id FROM tasks WHERE kind = ? AND state IN ('succeeded', 'failed', 'cancelled')",
            (kind,),
        )
        return [r[0] for r in rows]

    def delete(self, task_ids: list[str]) -> asyncio.Future[None]:
        """Delete tasks (``PURGE``); resolves once committed."""
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            self.execute(f"DELETE FROM tasks WHERE id IN ({marks})", chunk)
        return self.barrier()

    async def recent_results(self, kinds: Iterable[str], limit: int) -> list[tuple[str, str, Any]]:
        """``(kind, model, result)`` of the newest succeeded tasks of some kinds."""
        kinds = tuple(kinds)
        marks = ", ".join("?" for _ in kinds)
        rows = await self.fetch(
            f"SELECT kind, model, result FROM tasks WHERE state = 'succeeded' "
            f"AND kind IN ({marks}) ORDER BY seq DESC LIMIT ?",
            (*kinds, limit),
        )
        return [(k, m, None if blob is None else unpack(blob)) for k, m, blob in rows]

    async def close(self) -> None:
        """Commit what is pending and close (idempotent)."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
        if self._writer is not None:
            await asyncio.shield(self._writer)
        for db in (self._checkpointer, self._reader, self._db):
            if db is not None:
                await db.close()
        self._db = self._reader = self._checkpointer = None

    def _read(self) -> aiosqlite.Connection:
        """The read-only connection.

        Every read goes through ``execute_fetchall``: one call on the connection's thread
        that runs the statement to its end. A cursor left open across an ``await`` would
        keep SQLite's read transaction, and so its snapshot, alive, and other reads
        interleaved meanwhile would not see commits made since (a task reported running
        after its result was committed).
        """
        if self._reader is None:
            raise SchedulerError("the task store is not open")
        return self._reader

    async def _checkpoint_loop(self) -> None:
        """Copy committed WAL pages into the database file off the commit path.

        A checkpoint syncs the WAL and the database file (several ms); done inline it
        would stall whichever commit crossed the threshold, and every round trip waiting
        on that commit. A PASSIVE checkpoint on its own connection (own thread) runs
        beside the writer's commits and never blocks them. It changes nothing about
        durability: a commit is durable once it is in the WAL, checkpointed or not.
        """
        db = self._checkpointer
        if db is None:
            raise SchedulerError("the task store is not open")
        seen = self.commits
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            if self.commits == seen:
                continue
            seen = self.commits
            try:
                await db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as error:  # busy or I/O: the writer's backstop still runs
                log.warning("background checkpoint failed: %s", error)

    async def _write_loop(self) -> None:
        db = self._db
        if db is None:
            raise SchedulerError("the task store is not open")
        while True:
            await self._wake.wait()
            # One more turn of the event loop lets the changes that follow from the same
            # event (a submission's dispatch, the next results of a drained batch) join
            # this commit instead of waiting for the next one.
            await asyncio.sleep(0)
            self._wake.clear()
            batch, self._pending = self._pending, []
            statements, self._statements = self._statements, []
            done, self._committed = self._committed, None
            self._inflight = done
            if batch or statements:
                try:
                    for sql, params in statements:
                        await db.execute(sql, params)
                    await db.executemany(UPSERT, batch)
                    await db.commit()
                    self.commits += 1
                except Exception as error:  # disk full, locked, ...: tell every waiter
                    log.exception("task store commit failed")
                    if done is not None and not done.done():
                        done.set_exception(SchedulerError(f"task store commit failed: {error}"))
                    done = None
            if done is not None and not done.done():
                done.set_result(None)
            if self._closing and not self._pending and not self._statements:
                return
