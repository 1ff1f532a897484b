"""Costs and overheads measured from shift's own task records.

Task records come from a broker's task store (``--from-state DIR``: ``DIR/shift.sqlite``,
read through :class:`broker.store.Store`, the owner of the ``tasks`` table) or its REST API
(``--from-url URL``: ``GET /v1/tasks`` through :class:`repl.client.BrokerClient`).
Succeeded ``embed`` results carry ``rows``, ``load_s``, ``read_s``, ``embed_s``,
``write_s``; ``classify`` results carry ``train_rows``, ``test_rows``, ``read_s``,
``fit_s`` (docs/broker.md, workers/). From them:

* per model: ``load_s`` (the mean of the loads it paid), ``embed_s_per_row`` (embed time
  over rows, cached blocks left out), ``classify_s`` (mean ``read_s`` of its classifies);
* one ``proxy_s_per_pair``: ``fit_s`` summed over ``train_rows * test_rows`` summed.

For one query (``created_at``, ``finished_at``) the same records give the shell's
:class:`~simulator.costs.Overheads`: ``start_s`` (query created to its first task
created), ``end_s`` (last task committed to query finished), ``phase_s`` (last embed
committed to first classify created) and ``task_s`` (per task, on the worker that finished
each phase last: the phase's span on it minus its tasks' own timings, over its tasks).
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from repl.client import BrokerClient
from shift.errors import ShiftError
from simulator.costs import Overheads
from simulator.simulator_errors import SimulatorError

if TYPE_CHECKING:
    from broker.store import TaskRow

KINDS = ("embed", "classify")
"""Task kinds whose results carry the timings the cost model needs."""

PAGE_ROWS = 1000
"""Tasks read per page (store or REST)."""


class MeasureError(SimulatorError):
    """Task records are missing, unreadable or hold no usable timings."""

    code = "measure_error"


@dataclass(frozen=True)
class TaskRecord:
    """One succeeded task as the broker stored it."""

    kind: str
    model: str | None
    worker: str | None
    result: Mapping[str, Any]
    created_at: float
    updated_at: float

    @property
    def elapsed_s(self) -> float:
        """The task's own timings on the worker (load included)."""
        keys = ("load_s", "read_s", "embed_s", "write_s", "fit_s")
        return float(sum(self.result.get(k) or 0.0 for k in keys))

    @property
    def model_name(self) -> str:
        """The model's catalog name (from the payload's spec when present)."""
        return str(self.result.get("_model_name") or self.model)


def _record(
    kind: str, payload: Any, model: Any, worker: Any, result: Any, c: Any, u: Any
) -> TaskRecord:
    name = payload.get("model", {}).get("name") if isinstance(payload, dict) else None
    value = dict(result) if isinstance(result, dict) else {}
    if name:
        value["_model_name"] = name
    return TaskRecord(kind, model, worker, value, float(c), float(u))


def read_state(state_dir: str | Path) -> list[TaskRecord]:
    """Succeeded embed/classify tasks from the broker's task store in ``state_dir``.

    The store is opened through its own class (the broker may be running or stopped) and
    read page by page in submission order.

    Raises:
        MeasureError: The file is missing or not a broker store.
    """
    from broker.server import DB_NAME

    path = Path(state_dir) / DB_NAME
    if not path.is_file():
        raise MeasureError(f"no broker store at {path}; pass the broker's --state-dir")
    try:
        rows = asyncio.run(_succeeded_tasks(path))
    except (ShiftError, sqlite3.Error, ValueError) as error:
        raise MeasureError(f"{path}: cannot read the broker's tasks: {error}") from None
    return [_from_row(row) for row in rows if row.spec.kind in KINDS]


def _from_row(row: TaskRow) -> TaskRecord:
    spec = row.spec
    return _record(
        spec.kind, spec.payload, spec.model, row.worker, row.result, row.created_at, row.updated_at
    )


async def _succeeded_tasks(path: Path) -> list[TaskRow]:
    from broker.store import Store
    from shift.tasks import TaskState

    store = Store(path)
    try:
        await store.open()
        out: list[TaskRow] = []
        after: int | None = 0
        while after is not None:
            page, after = await store.list(state=TaskState.SUCCEEDED, after=after, limit=PAGE_ROWS)
            out += page
        return out
    finally:
        await store.close()


def read_url(url: str, token: str = "", limit: int = PAGE_ROWS) -> list[TaskRecord]:
    """Succeeded embed/classify tasks from ``GET URL/v1/tasks`` (every page).

    Raises:
        MeasureError: The broker cannot be reached or answers something else.
    """
    client = BrokerClient(url, token, timeout_s=60.0)
    out: list[TaskRecord] = []
    after = ""
    while True:
        query = {"state": "succeeded", "limit": limit, **({"after": after} if after else {})}
        try:
            page = client.request("GET", f"/v1/tasks?{urlencode(query)}")
        except ShiftError as error:
            raise MeasureError(f"cannot read tasks from {url}: {error}") from None
        tasks = page.get("tasks") if isinstance(page, dict) else None
        if not isinstance(tasks, list):
            raise MeasureError(f"{url}/v1/tasks answered something else: {page!r:.200}")
        for task in tasks:
            if task.get("kind") in KINDS:
                out.append(
                    _record(
                        task["kind"],
                        task.get("payload"),
                        task.get("model"),
                        task.get("worker"),
                        task.get("result"),
                        task["created_at"],
                        task["updated_at"],
                    )
                )
        after = page.get("next") or ""
        if not after:
            return out


@dataclass(frozen=True)
class Measured:
    """Per-model costs and the global proxy cost measured from records.

    Attributes:
        load_s: Model -> mean load time (models never loaded are absent).
        embed_s_per_row: Model -> embed time per row.
        classify_s: Model -> mean fixed classify time (feature reads).
        proxy_s_per_pair: Proxy fit time per train row x test row.
        tasks: Records used.
    """

    load_s: Mapping[str, float]
    embed_s_per_row: Mapping[str, float]
    classify_s: Mapping[str, float]
    proxy_s_per_pair: float
    tasks: int


def measure_costs(records: Sequence[TaskRecord]) -> Measured:
    """Fit the cost model's per-model figures to records.

    Raises:
        MeasureError: No embed task computed anything (all cached, or none).
    """
    loads: dict[str, list[float]] = defaultdict(list)
    embed: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    reads: dict[str, list[float]] = defaultdict(list)
    fit, pairs = 0.0, 0.0
    for r in records:
        model = r.model_name
        if r.kind == "embed" and not r.result.get("cached"):
            if r.result.get("load_s"):
                loads[model].append(float(r.result["load_s"]))
            embed[model][0] += r.elapsed_s - float(r.result.get("load_s") or 0.0)
            embed[model][1] += float(r.result.get("rows") or 0)
        elif r.kind == "classify":
            reads[model].append(float(r.result.get("read_s") or 0.0))
            fit += float(r.result.get("fit_s") or 0.0)
            pairs += float(r.result.get("train_rows") or 0) * float(r.result.get("test_rows") or 0)
    per_row = {m: s / n for m, (s, n) in embed.items() if n}
    if not per_row:
        raise MeasureError("no embed task in the records computed features (all cached?)")
    return Measured(
        {m: statistics.fmean(v) for m, v in loads.items()},
        per_row,
        {m: statistics.fmean(v) for m, v in reads.items()},
        fit / pairs if pairs else 0.0,
        len(records),
    )


def measure_overheads(
    records: Iterable[TaskRecord], created_at: float, finished_at: float, broker_task_s: float
) -> Overheads:
    """The shell's overheads of one query from its task records (see the module docstring).

    Raises:
        MeasureError: The records hold no task of the query's time window.
    """
    mine = [r for r in records if created_at <= r.created_at <= finished_at]
    if not mine:
        raise MeasureError("no task record falls between the query's created_at and finished_at")
    embeds = [r for r in mine if r.kind == "embed"]
    classifies = [r for r in mine if r.kind == "classify"]
    start_s = min(r.created_at for r in mine) - created_at
    end_s = finished_at - max(r.updated_at for r in mine)
    phase_s = 0.0
    if embeds and classifies:
        phase_s = max(
            0.0, min(r.created_at for r in classifies) - max(r.updated_at for r in embeds)
        )
    gaps: list[float] = []
    for phase in (embeds, classifies):
        if not phase:
            continue
        last = max(phase, key=lambda r: r.updated_at)
        on_worker = [r for r in phase if r.worker == last.worker]
        span = last.updated_at - min(r.created_at for r in phase)
        own = sum(r.elapsed_s for r in on_worker)
        gaps.append(max(0.0, span - own) / len(on_worker))
    task_s = statistics.fmean(gaps) if gaps else 0.0
    return Overheads(max(0.0, start_s), phase_s, max(0.0, end_s), task_s, broker_task_s)
