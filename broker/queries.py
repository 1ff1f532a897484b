"""Queries: SHiFT-QL statements run by the broker, one session at a time, in order.

``POST /v1/queries`` creates one query per statement; each session has one runner that
executes its queries in creation order (:mod:`broker.statements` does the work). Queries,
their results and session variables live in SQLite (``queries`` and ``variables`` tables,
through the store's one writer), so a restarted broker still answers ``GET
/v1/queries/{id}`` and resumes queries that were queued or running when it stopped:
their tasks are content-hashed, so finished work is reused.

Progress (``done``/``total`` tasks, and ``cached``: how many of them had already succeeded
when the query asked for them) is pushed to event subscribers as tasks finish; the
final state is pushed after it is committed. Cancelling a query cancels its unfinished
tasks that no other live query needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from broker import explain
from broker.catalog import Catalog
from broker.context import Context, Session, Stage
from broker.evaluator import Evaluator
from broker.handlers import execute
from broker.results import error_body
from broker.searchstate import SearchState
from broker.service import Broker
from broker.tables import Tables
from broker.usage import names_used
from shift.errors import SchedulerError, ShiftError, WorkerError
from shift.ql import from_json, render, to_json
from shift.ql import nodes as n
from shift.strategies import DEFAULT_STRATEGY
from shift.tasks import Outcome, TaskSpec, TaskState

log = logging.getLogger(__name__)

TIMING_SAMPLE = 2000
"""Most past tasks EXPLAIN reads to estimate costs."""

TIMED_PARTS = ("load_s", "read_s", "embed_s", "write_s", "fit_s", "features_s", "fisher_s")
"""The seconds a task result reports, summed into its duration."""


QueryStatus = TaskState
"""Where a query stands: the states of a task (queued, running, then succeeded, failed or
cancelled, the three final ones)."""


@dataclass
class Query:
    """One statement's run (mutable while it runs)."""

    id: str
    seq: int
    session: str
    statement: n.Statement
    status: QueryStatus
    created_at: float
    done: int = 0
    total: int = 0
    cached: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    finished_at: float | None = None
    task_ids: set[str] = field(default_factory=set)
    stage: dict[str, int] | None = None
    listeners: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = field(default_factory=set)

    @property
    def wait(self) -> bool:
        """The statement's WAIT flag."""
        return bool(getattr(self.statement, "wait", False))

    def to_json(self) -> dict[str, Any]:
        """The REST Query object."""
        return {
            "id": self.id,
            "session": self.session,
            "statement": render(self.statement),
            "kind": self.statement.TAG,
            "status": self.status.value,
            "wait": self.wait,
            "progress": self.progress(),
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }

    def progress(self) -> dict[str, Any]:
        """The ``progress`` body: tasks done of total, found already done (``cached``), and
        the search's ``stage`` when set."""
        out: dict[str, Any] = {"done": self.done, "total": self.total, "cached": self.cached}
        if self.stage is not None:
            out["stage"] = dict(self.stage)
        return out

    def publish(self, event: str, body: dict[str, Any]) -> None:
        """Push an event to every subscriber."""
        for queue in self.listeners:
            queue.put_nowait((event, body))


def _from_row(values: tuple[Any, ...]) -> Query:
    (qid, seq, session, tree, _, _, status, _, progress, result, error, created, finished) = values
    statement = from_json(json.loads(tree))
    if isinstance(statement, n.Script):
        raise SchedulerError(f"stored query {qid} holds a script, not a statement")
    counts = json.loads(progress)
    return Query(
        qid,
        seq,
        session,
        statement,
        QueryStatus(status),
        created,
        counts.get("done", 0),
        counts.get("total", 0),
        counts.get("cached", 0),
        json.loads(result) if result else None,
        json.loads(error) if error else None,
        finished,
    )


class QueryService:
    """Creates, runs, persists and cancels queries.

    Args:
        broker: The started broker.
        catalog: The opened catalog.
        wall: Wall clock for ``created_at``/``finished_at``.
        racing: Successive halving races on a test prefix (the ``halving`` setting).
        rank_strategy: The strategy of a RANK without BY (the ``rank_strategy`` setting).
    """

    def __init__(
        self,
        broker: Broker,
        catalog: Catalog,
        wall: Callable[[], float] = time.time,
        racing: bool = True,
        rank_strategy: str = DEFAULT_STRATEGY,
    ) -> None:
        self.broker = broker
        self.catalog = catalog
        self.tables = Tables(broker.store)
        self.racing = racing
        self.rank_strategy = rank_strategy
        self._wall = wall
        self._live: dict[str, Query] = {}
        self._queues: dict[str, list[Query]] = defaultdict(list)
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._needs: dict[str, set[str]] = defaultdict(set)
        self._variables: dict[str, dict[str, list[str]]] = defaultdict(dict)
        self._seq = 0
        self._closing = False
        self.search = SearchState(self.tables)
        catalog.set_usage(self.users_of)

    @property
    def store(self) -> Any:
        """The broker's store."""
        return self.broker.store

    async def open(self) -> None:
        """Load variables and search state, and resume unfinished queries."""
        await self.search.open()
        for session, name, names in await self.tables.variables():
            self._variables[session][name] = names
        self._seq = await self.tables.last_query_seq()
        for values in await self.tables.unfinished_queries():
            try:
                query = _from_row(values)
            except ShiftError as error:
                log.error("cannot resume stored query %s: %s", values[0], error)
                continue
            log.info("resuming query %s (%s)", query.id, query.status)
            query.status, query.done, query.total, query.cached = QueryStatus.QUEUED, 0, 0, 0
            self._enqueue(query)

    async def close(self) -> None:
        """Stop the runners; unfinished queries stay queued/running and resume next start."""
        self._closing = True
        runners = list(self._runners.values())
        for task in runners:
            task.cancel()
        await asyncio.gather(*runners, return_exceptions=True)

    # ---- REST operations -----------------------------------------------------------------

    async def create(self, statements: Sequence[n.Statement], session: str) -> list[Query]:
        """Create one query per statement and queue them in the session, in order."""
        created = []
        for statement in statements:
            self._seq += 1
            query = Query(
                secrets.token_hex(8),
                self._seq,
                session,
                statement,
                QueryStatus.QUEUED,
                self._wall(),
            )
            created.append(query)
            self._persist(query)
        await self.store.barrier()
        for query in created:
            self._enqueue(query)
        return created

    async def wait(self, query: Query) -> Query:
        """Wait until ``query`` is final (its result or error committed)."""
        if query.status.final:
            return query
        queue = self.subscribe(query)
        try:
            while not query.status.final:
                event, _ = await queue.get()
                if event == "done":
                    break
        finally:
            self.unsubscribe(query, queue)
        return query

    async def get(self, query_id: str) -> Query | None:
        """A query, live or stored."""
        live = self._live.get(query_id)
        if live is not None:
            return live
        row = await self.tables.query(query_id)
        return _from_row(row) if row is not None else None

    async def recent(self, session: str | None, limit: int) -> list[Query]:
        """The most recent queries, newest first."""
        out = []
        for values in await self.tables.recent_queries(session, limit):
            live = self._live.get(values[0])
            out.append(live if live is not None else _from_row(values))
        return out

    async def cancel(self, query: Query) -> None:
        """Cancel a queued or running query and its tasks no other live query needs."""
        if query.status.final:
            return
        running = self._running.get(query.id)
        if running is not None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        elif query in self._queues[query.session]:
            self._queues[query.session].remove(query)
        await self._finish(query, QueryStatus.CANCELLED, error=None)

    def users_of(self, kind: str, name: str) -> list[tuple[str, str]]:
        """``(id, statement text)`` of each running query that reads a catalog row.

        Queued queries do not count: they read the catalog when they start.
        """
        rows = {k: self.catalog.rows(k) for k in ("model", "dataset")}
        return [
            (q.id, render(q.statement))
            for q in sorted(self._live.values(), key=lambda q: q.seq)
            if q.status is QueryStatus.RUNNING
            and name in names_used(q.statement, kind, rows, self._variables[q.session])
        ]

    def subscribe(self, query: Query) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        """A queue of ``(event, body)`` for a live query."""
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        query.listeners.add(queue)
        return queue

    def unsubscribe(self, query: Query, queue: asyncio.Queue[Any]) -> None:
        """Stop pushing events to ``queue``."""
        query.listeners.discard(queue)

    # ---- running -------------------------------------------------------------------------

    def _enqueue(self, query: Query) -> None:
        self._live[query.id] = query
        self._queues[query.session].append(query)
        runner = self._runners.get(query.session)
        if runner is None or runner.done():
            self._runners[query.session] = asyncio.create_task(
                self._run_session(query.session), name=f"session-{query.session}"
            )

    async def _run_session(self, session: str) -> None:
        queue = self._queues[session]
        while queue:
            query = queue.pop(0)
            if query.status.final:
                continue
            task = asyncio.create_task(self._run(query), name=f"query-{query.id}")
            self._running[query.id] = task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if self._closing:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    raise
            finally:
                self._running.pop(query.id, None)

    async def _run(self, query: Query) -> None:
        query.status = QueryStatus.RUNNING
        self._persist(query)
        try:
            result = await execute(query.statement, self._context(query))
        except asyncio.CancelledError:
            await self._release(query)
            raise
        except ShiftError as error:
            await self._release(query)
            await self._finish(query, QueryStatus.FAILED, error=error_body(error))
            return
        except Exception as error:  # a bug must fail one query, not the session runner
            log.exception("query %s failed", query.id)
            await self._release(query)
            await self._finish(query, QueryStatus.FAILED, error=error_body(error))
            return
        await self._release(query)
        query.result = result.to_json()
        await self._finish(query, QueryStatus.SUCCEEDED, error=None)

    async def _finish(
        self, query: Query, status: QueryStatus, error: dict[str, Any] | None
    ) -> None:
        if self._closing and status is QueryStatus.CANCELLED:
            return
        query.status, query.error, query.finished_at = status, error, self._wall()
        await self._persist(query)
        query.publish("done", query.to_json())
        self._live.pop(query.id, None)

    async def _release(self, query: Query) -> None:
        """Drop the query's claim on its tasks; cancel those nobody else needs."""
        for task_id in sorted(query.task_ids):
            needers = self._needs.get(task_id)
            if needers is None:
                continue
            needers.discard(query.id)
            if needers:
                continue
            del self._needs[task_id]
            state = self.broker.dispatcher.state_of(task_id)
            if state is None or state.final or self._closing:
                continue
            with contextlib.suppress(SchedulerError):
                await self.broker.cancel(task_id)

    def _persist(self, query: Query) -> asyncio.Future[None]:
        values = (
            query.id,
            query.seq,
            query.session,
            json.dumps(to_json(query.statement), sort_keys=True),
            render(query.statement),
            query.statement.TAG,
            query.status.value,
            int(query.wait),
            json.dumps(query.progress()),
            None if query.result is None else json.dumps(query.result),
            None if query.error is None else json.dumps(query.error),
            query.created_at,
            query.finished_at,
        )
        return self.tables.save_query(values)

    # ---- the context handed to statements ------------------------------------------------

    def _context(self, query: Query) -> Context:
        session = query.session

        async def persist(name: str, names: list[str]) -> None:
            await self.tables.save_variable(session, name, names)

        tasks = QueryTasks(self, query)
        return Context(
            self.catalog,
            Session(self._variables[session], persist),
            tasks,
            Evaluator(tasks, self.search),
            self.search,
            self.racing,
            self.rank_strategy,
        )

    async def forget(self, kind: str) -> int:
        """Delete the finished tasks of a kind (and, for classify, the search state)."""
        gone = self.broker.dispatcher.forget(await self.store.finished_ids(kind))
        await self.store.delete(gone)
        if kind == "classify":
            await self.search.clear()
        return len(gone)

    async def timings(self) -> dict[tuple[str, str], float]:
        """Mean seconds of past tasks by (kind, model key) and per-row forward seconds."""
        rows = await self.store.recent_results(("embed", "classify", "task2vec"), TIMING_SAMPLE)
        sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for kind, model, value in rows:
            if not isinstance(value, dict) or value.get("cached"):
                continue
            seconds = sum(float(value.get(k) or 0.0) for k in TIMED_PARTS)
            for key in ((kind, model or ""), (kind, "")):
                sums[key][0] += seconds
                sums[key][1] += 1
            forward = {"embed": ("embed_s", "rows"), "task2vec": ("features_s", "sample_rows")}
            seconds_key, rows_key = forward.get(kind, ("", ""))
            if seconds_key and value.get(rows_key):
                per_row = float(value.get(seconds_key) or 0.0) / int(value[rows_key])
                for key in ((explain.EMBED_ROW, model or ""), (explain.EMBED_ROW, "")):
                    sums[key][0] += per_row
                    sums[key][1] += 1
        return {key: total / count for key, (total, count) in sums.items() if count}

    async def task_result(self, task_id: str) -> Any:
        """The stored result of a succeeded task (``None`` otherwise)."""
        row = await self.broker.store.get(task_id)
        return row.result if row is not None and row.state is TaskState.SUCCEEDED else None


class QueryTasks:
    """The task queue as one running query sees it (:class:`broker.context.TaskRunner`).

    Submitting records which tasks the query needs (cancelling the query cancels those no
    other query needs) and pushes ``done``/``total`` progress as they finish; a task the
    query already waits on is counted once however often it is asked for.
    """

    def __init__(self, service: QueryService, query: Query) -> None:
        self.service = service
        self.query = query

    async def run(self, specs: Sequence[TaskSpec]) -> dict[str, Any]:
        """Submit, wait, and return results by task id (see :class:`TaskRunner`)."""
        if not specs:
            return {}
        service, query = self.service, self.query
        broker = service.broker
        submitted = await broker.submit(specs)
        found = {s.task_id for s in submitted if not s.created and s.state is TaskState.SUCCEEDED}
        ids = list(dict.fromkeys(s.task_id for s in specs))
        new = [t for t in ids if t not in query.task_ids]
        for task_id in new:
            query.task_ids.add(task_id)
            service._needs[task_id].add(query.id)
        query.total += len(new)
        query.cached += sum(1 for t in new if t in found)
        query.publish("progress", query.progress())
        counted = set(new)

        async def final(task_id: str) -> tuple[str, Outcome]:
            return task_id, await broker.outcome(task_id)

        outcomes: dict[str, Outcome] = {}
        for future in asyncio.as_completed([final(t) for t in ids]):
            task_id, outcome = await future
            outcomes[task_id] = outcome
            if task_id in counted:
                query.done += 1
                query.publish("progress", query.progress())
        by_id = {s.task_id: s for s in specs}
        for task_id in ids:
            outcome = outcomes[task_id]
            if outcome.state is not TaskState.SUCCEEDED:
                spec = by_id[task_id]
                model = spec.payload.get("model", {}).get("name", "?")
                raise WorkerError(
                    f"{spec.kind} task for model {model} {outcome.state.value}: {outcome.error}"
                )
        return {task_id: outcomes[task_id].value for task_id in ids}

    def report_stage(self, stage: Stage) -> None:
        """Set the query's search stage and publish a progress event that carries it."""
        body = stage.to_json()
        if body != self.query.stage:
            self.query.stage = body
            self.query.publish("progress", self.query.progress())

    def state(self, task_id: str) -> str | None:
        """The current state of a task (``None``: unknown)."""
        state = self.service.broker.dispatcher.state_of(task_id)
        return None if state is None else state.value

    async def result(self, task_id: str) -> Any:
        """The stored result of a succeeded task."""
        return await self.service.task_result(task_id)

    async def forget(self, kind: str) -> int:
        """Delete the finished tasks of a kind."""
        return await self.service.forget(kind)

    async def timings(self) -> dict[tuple[str, str], float]:
        """Mean seconds of past tasks."""
        return await self.service.timings()
