"""Statements that change what the broker holds: ``REGISTER MODEL|DATASET``, ``DROP
MODEL|DATASET`` and ``PURGE``."""

from __future__ import annotations

import secrets
from typing import Any

from broker.catalog import EntryStatus
from broker.context import Context
from broker.results import Result, Table
from broker.statements import handles
from shift.errors import CatalogError
from shift.payloads import PurgeFeaturesPayload
from shift.ql import nodes as n
from shift.ql.vocabulary import DATASET_COLUMNS, MODEL_COLUMNS, STATE_COLUMNS
from shift.registration import dataset_spec_from_fields, model_spec_from_fields

PURGES: dict[n.PurgeTarget, tuple[str, ...]] = {
    n.PurgeTarget.RESULTS: ("classify",),
    n.PurgeTarget.FEATURES: ("embed", "task2vec"),
    n.PurgeTarget.ALL: ("classify", "embed", "task2vec"),
}
"""Which task kinds each PURGE target forgets (fine-tunes never: their weights are models)."""

PURGED_WHAT = {
    "classify": "cached results (classify tasks)",
    "embed": "embed tasks",
    "task2vec": "Task2Vec embeddings",
}


@handles(n.Purge)
async def run_purge(statement: n.Purge, ctx: Context) -> Result:
    """PURGE RESULTS | FEATURES | ALL: forget cached work (features kept unless asked).

    The feature files belong to the workers: a ``purge_features`` task asks a worker to
    delete its feature store (every worker of a shared store sees it gone).
    """
    said = []
    for kind in PURGES[statement.target]:
        count = await ctx.tasks.forget(kind)
        said.append(f"deleted {count} {PURGED_WHAT[kind]}")
    if statement.target is n.PurgeTarget.RESULTS:
        said.append("features kept")
    else:
        spec = PurgeFeaturesPayload(secrets.token_hex(8)).task()
        done = (await ctx.tasks.run([spec]))[spec.task_id]
        if done.get("existed"):
            said.append(f"deleted the feature store ({done.get('files', 0)} file(s))")
        else:
            said.append("no stored features")
    return Result((), "; ".join(said))


@handles(n.Register)
async def run_register(statement: n.Register, ctx: Context) -> Result:
    """REGISTER MODEL|DATASET: add to the catalog and wait for the measured columns."""
    fields = {p.name: p.value.value for p in statement.fields}
    kind = statement.kind.value
    if statement.kind is n.RegisterKind.MODEL:
        spec: Any = model_spec_from_fields(statement.name, fields)
    else:
        spec = dataset_spec_from_fields(statement.name, fields)
    entry, created = await ctx.catalog.register(kind, spec)
    await entry.ready.wait()
    if entry.status is EntryStatus.FAILED:
        raise CatalogError(f"{kind} {statement.name!r} could not be registered: {entry.error}")
    columns = MODEL_COLUMNS if kind == "model" else DATASET_COLUMNS
    verb = "registered" if created else "already registered"
    return Result(
        (Table.of(kind + "s", columns, [entry.row]),), f"{verb} {kind} {statement.name!r}"
    )


DROP_KEEPS = (
    "results of past queries stay readable; its cached tasks and feature blocks are kept "
    "(registering the same spec again reuses them; PURGE FEATURES deletes stored features)"
)
"""What a DROP leaves behind, said in its message."""


@handles(n.Drop)
async def run_drop(statement: n.Drop, ctx: Context) -> Result:
    """DROP MODEL|DATASET [IF EXISTS] name: remove the catalog row unless a running query
    uses it (:class:`broker.catalog.CatalogInUse` then fails the statement)."""
    kind = statement.kind.value
    entry = await ctx.catalog.drop(kind, statement.name, statement.if_exists)
    if entry is None:
        return Result((), f"no {kind} {statement.name!r}; nothing dropped")
    columns = (MODEL_COLUMNS if kind == "model" else DATASET_COLUMNS) + STATE_COLUMNS
    row = {**entry.row, "status": entry.status.value, "error": entry.error}
    return Result(
        (Table.of("dropped", columns, [row]),),
        f"dropped {kind} {statement.name!r}; {DROP_KEEPS}",
    )
