"""The catalog: registered models and datasets in the broker's SQLite file.

Two tables, ``models`` and ``datasets``, hold each spec's JSON, its content key, the
columns of :mod:`shift.ql.vocabulary` (for SQL readers) and the registration state. The
broker keeps every entry in memory too (it is the only writer), and writes through the
store's one writer. ``num_params``/``feature_dim`` and ``size``/``num_classes`` are
*measured*: registering submits a content-hashed ``describe`` task (``workers.describe``)
and the row is complete (``status`` ``ready``) when its result arrives; a registration whose
task fails is ``failed`` (with the worker's error) and may be registered again.

``DROP`` (:meth:`Catalog.drop`) removes an entry unless a running query uses it (the query
service tells the catalog which do, through :meth:`Catalog.set_usage`). Only the row goes:
the tasks and feature blocks of its spec are content-addressed and stay, so results of past
queries stay readable and registering the same spec again is answered from the cache;
``PURGE FEATURES``/``PURGE ALL`` delete stored work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from broker.service import Broker
from broker.tables import Tables
from shift.errors import CatalogError
from shift.paths import confine, hub_or_path
from shift.payloads import DescribePayload
from shift.ql.vocabulary import DATASET_COLUMNS, MODEL_COLUMNS
from shift.registration import (
    dataset_problem,
    dataset_row,
    local_paths,
    model_row,
    source_values,
    unknown_name,
)
from shift.specs import DatasetSpec, ModelSpec
from shift.tasks import TaskState

log = logging.getLogger(__name__)

Spec = ModelSpec | DatasetSpec


class EntryStatus(StrEnum):
    """Where a registration stands."""

    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


class CatalogConflict(CatalogError):
    """A name is registered with a different spec."""

    code = "conflict"


class CatalogInUse(CatalogError):
    """A row cannot be dropped: a running query uses it, or it is still being measured.

    Attributes:
        kind: ``model`` or ``dataset``.
        name: The row's name.
        queries: Ids of the running queries that use it (empty: its own measurement).
    """

    code = "in_use"

    def __init__(self, kind: str, name: str, message: str, queries: Sequence[str] = ()):
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.queries = tuple(queries)

    def to_dict(self) -> dict[str, Any]:
        """The error object: 409 as ``DELETE`` answers, and the ids of the queries that hold
        the row."""
        return {"status": 409, **super().to_dict(), "queries": list(self.queries)}


Usage = Callable[[str, str], list[tuple[str, str]]]
"""``(kind, name) -> [(query id, statement text), ...]``: the running queries using a row."""


def _no_usage(kind: str, name: str) -> list[tuple[str, str]]:
    return []


@dataclass(frozen=True)
class Kind:
    """A catalog table: its name, row columns, spec parser and row builder."""

    table: str
    columns: tuple[str, ...]
    parse: Callable[[Any], Spec]
    row: Callable[[Any, dict[str, Any] | None, str], dict[str, Any]]
    field: str


KINDS: dict[str, Kind] = {
    "model": Kind("models", MODEL_COLUMNS, ModelSpec.from_json, model_row, "model"),
    "dataset": Kind("datasets", DATASET_COLUMNS, DatasetSpec.from_json, dataset_row, "dataset"),
}
"""The two catalog kinds."""


def _unusable(entry: Entry, measured: dict[str, Any]) -> str | None:
    """Why a measured dataset cannot be used (empty, one class); ``None`` for models.

    Checked here as well as by the worker: a ``describe`` result cached before the worker
    refused such datasets still fails the registration.
    """
    if entry.kind != "dataset":
        return None
    return dataset_problem(entry.spec.name, measured.get("size"), measured.get("num_classes"))


@dataclass
class Entry:
    """One registered model or dataset (mutable: the broker completes it)."""

    kind: str
    spec: Spec
    status: EntryStatus
    date_added: str
    seq: int
    measured: dict[str, Any] | None = None
    error: str | None = None
    task_id: str | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def row(self) -> dict[str, Any]:
        """The catalog row (vocabulary columns) for :mod:`shift.evaluate`."""
        return KINDS[self.kind].row(self.spec, self.measured, self.date_added)

    def to_json(self) -> dict[str, Any]:
        """The REST form: row, status, error, key and spec."""
        return {
            **self.row,
            "status": self.status.value,
            "error": self.error,
            "key": self.spec.key,
            "spec": self.spec.to_json(),
        }


class Catalog:
    """Registered models and datasets.

    Args:
        broker: The started broker (its store and task queue).
        roots: Data roots every local path must lie in.
        wall: Wall clock (seconds since the epoch) for ``date_added``.
        own: Folders shift writes itself (fine-tuned weights): absolute paths in them are
            accepted too.
    """

    def __init__(
        self,
        broker: Broker,
        roots: tuple[Path, ...],
        wall: Callable[[], float] = time.time,
        own: tuple[Path, ...] = (),
    ) -> None:
        self.broker = broker
        self.tables = Tables(broker.store)
        self.roots = roots
        self.own = tuple(p.resolve() for p in own)
        self._wall = wall
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._seq = 0
        self._measuring: set[asyncio.Task[None]] = set()
        self._usage: Usage = _no_usage
        # Registration order and catalog rows of each kind, rebuilt after a change: every
        # statement reads them, and rebuilding 10,000 rows per statement cost ~100 ms.
        self._ordered: dict[str, list[Entry]] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}

    def _changed(self, kind: str) -> None:
        """Forget the cached order and rows of a kind (an entry was added, completed or
        dropped)."""
        self._ordered.pop(kind, None)
        self._rows.pop(kind, None)

    def set_usage(self, usage: Usage) -> None:
        """Say how to find the running queries that use a row (the query service does)."""
        self._usage = usage

    async def open(self) -> None:
        """Load the entries and resume unfinished measurements."""
        for name, kind in KINDS.items():
            for spec, status, measured, error, date_added, seq in await self.tables.catalog_entries(
                name
            ):
                entry = Entry(
                    name,
                    kind.parse(json.loads(spec)),
                    EntryStatus(status),
                    date_added,
                    seq,
                    json.loads(measured) if measured else None,
                    error,
                )
                self._entries[name][entry.spec.name] = entry
                self._changed(name)
                self._seq = max(self._seq, seq)
                if entry.status is EntryStatus.PENDING:
                    self._start_measuring(entry)
                else:
                    entry.ready.set()

    async def close(self) -> None:
        """Stop waiting for measurements (they resume on the next start)."""
        for task in list(self._measuring):
            task.cancel()
        await asyncio.gather(*self._measuring, return_exceptions=True)

    # ---- reads ---------------------------------------------------------------------------

    def entries(self, kind: str) -> list[Entry]:
        """Every entry of a kind in registration order."""
        ordered = self._ordered.get(kind)
        if ordered is None:
            ordered = self._ordered[kind] = sorted(
                self._entries[kind].values(), key=lambda e: e.seq
            )
        return list(ordered)

    def rows(self, kind: str) -> list[dict[str, Any]]:
        """Catalog rows of a kind for :mod:`shift.evaluate`, with ``status`` and ``error``.

        The row dicts are shared between calls until the catalog changes: read them, copy
        before changing one.
        """
        rows = self._rows.get(kind)
        if rows is None:
            rows = self._rows[kind] = [
                {**e.row, "status": e.status.value, "error": e.error} for e in self.entries(kind)
            ]
        return list(rows)

    def get(self, kind: str, name: str) -> Entry:
        """One entry.

        Raises:
            CatalogError: unknown name; the message names the closest registered one.
        """
        entry = self._entries[kind].get(name)
        if entry is None:
            raise unknown_name(kind, name, self._entries[kind])
        return entry

    async def settle(self, kind: str, names: list[str] | None = None) -> None:
        """Wait until the named entries (or all of a kind) are measured or failed."""
        entries = self.entries(kind) if names is None else [self.get(kind, n) for n in names]
        for entry in entries:
            await entry.ready.wait()

    # ---- writes --------------------------------------------------------------------------

    def check_paths(self, spec: Spec) -> None:
        """Refuse local paths outside the data roots, as the workers will read them.

        Raises:
            CatalogError: a path climbs, does not exist or resolves outside every root (and
                outside the folders shift writes itself); a model's hub-or-folder value is
                neither a folder under the roots nor a hub id.
        """
        value = spec.params if isinstance(spec, DatasetSpec) else spec.loader
        for path in local_paths(value):
            confine(path, self.roots, also=self.own)
        if isinstance(spec, ModelSpec):
            for source in source_values(spec.loader):
                hub_or_path(source, self.roots, also=self.own)

    async def register(
        self, kind: str, spec: Spec, measured: dict[str, Any] | None = None
    ) -> tuple[Entry, bool]:
        """Register a spec and start measuring it (or take ``measured`` as its measurement:
        a registry import measured the architecture without loading weights).

        Returns:
            The entry and whether it is new (False: the same spec was registered already).

        Raises:
            CatalogConflict: the name is registered (not failed) with a different spec.
            CatalogError: a local path outside the data roots.
        """
        old = self._entries[kind].get(spec.name)
        if old is not None and old.status is not EntryStatus.FAILED:
            if old.spec.to_json() == spec.to_json():
                return old, False
            raise CatalogConflict(
                f"{kind} {spec.name!r} is already registered with another spec; "
                "register it under another name"
            )
        self.check_paths(spec)
        self._seq += 1
        date = time.strftime("%Y-%m-%d", time.gmtime(self._wall()))
        entry = Entry(kind, spec, EntryStatus.PENDING, date, old.seq if old else self._seq)
        if measured is not None:
            entry.status, entry.measured = EntryStatus.READY, dict(measured)
        self._entries[kind][spec.name] = entry
        self._changed(kind)
        await self._persist(entry)
        if measured is None:
            self._start_measuring(entry)
        else:
            entry.ready.set()
        return entry, True

    async def drop(self, kind: str, name: str, if_exists: bool = False) -> Entry | None:
        """Remove an entry from the catalog (its cached work stays; see the module doc).

        Returns:
            The dropped entry, or ``None`` when ``if_exists`` and there was none.

        Raises:
            CatalogError: unknown name (unless ``if_exists``), with the closest one.
            CatalogInUse: a running query uses the entry, or it is still being measured.
        """
        entry = self._entries[kind].get(name)
        if entry is None:
            if if_exists:
                return None
            raise unknown_name(kind, name, self._entries[kind])
        if entry.status is EntryStatus.PENDING:
            raise CatalogInUse(
                kind,
                name,
                f"{kind} {name!r} is still being measured (task {entry.task_id}); wait until "
                f"its registration is ready or failed (GET /v1/{kind}s/{name} says), then "
                "drop it",
            )
        users = self._usage(kind, name)
        if users:
            message = _in_use_message(kind, name, users)
            raise CatalogInUse(kind, name, message, [qid for qid, _ in users])
        # removed from memory before the first await, so no query starting meanwhile sees it
        del self._entries[kind][name]
        self._changed(kind)
        await self.tables.delete_catalog_entry(kind, name)
        return entry

    def _start_measuring(self, entry: Entry) -> None:
        task = asyncio.create_task(self._measure(entry), name=f"measure-{entry.spec.name}")
        self._measuring.add(task)
        task.add_done_callback(self._measuring.discard)

    async def _measure(self, entry: Entry) -> None:
        described = DescribePayload(
            entry.spec if entry.kind == "model" else None,  # type: ignore[arg-type]
            entry.spec if entry.kind == "dataset" else None,  # type: ignore[arg-type]
        )
        spec = described.task()
        entry.task_id = spec.task_id
        await self.broker.submit([spec])
        state = await self.broker.wait_final(spec.task_id)
        row = await self.broker.store.get(spec.task_id)
        measured = None
        if state is TaskState.SUCCEEDED and row is not None and isinstance(row.result, dict):
            measured = row.result
        problem = None if measured is None else _unusable(entry, measured)
        if measured is not None and problem is None:
            entry.measured = {k: v for k, v in measured.items() if k != "classes"}
            entry.status, entry.error = EntryStatus.READY, None
        else:
            entry.status = EntryStatus.FAILED
            entry.error = (
                problem or (row.error if row is not None else None) or f"describe task {state}"
            )
            log.warning("registering %s %s failed: %s", entry.kind, entry.spec.name, entry.error)
        self._changed(entry.kind)
        if self._entries[entry.kind].get(entry.spec.name) is entry:
            await self._persist(entry)
        entry.ready.set()

    async def _persist(self, entry: Entry) -> None:
        extra = [
            entry.spec.key,
            json.dumps(entry.spec.to_json(), sort_keys=True),
            entry.status.value,
            None if entry.measured is None else json.dumps(entry.measured, sort_keys=True),
            entry.error,
            entry.task_id,
            entry.seq,
        ]
        await self.tables.save_catalog_entry(entry.kind, entry.row, extra)


def _in_use_message(kind: str, name: str, users: Sequence[tuple[str, str]]) -> str:
    """Which running queries hold a row, and how to free it."""
    shown = ", ".join(f"{qid} ({_short(text)})" for qid, text in users[:3])
    more = f" and {len(users) - 3} more" if len(users) > 3 else ""
    one = len(users) == 1
    which, it = ("running query", "it") if one else (f"{len(users)} running queries", "them")
    first = users[0][0] if one else "{id}"
    return (
        f"{kind} {name!r} is in use by {which} {shown}{more}; cancel {it} "
        f"(POST /v1/queries/{first}/cancel) or wait for {it} to finish, then drop it again"
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
