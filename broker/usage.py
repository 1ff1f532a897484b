"""Which catalog rows a statement reads while it runs, so ``DROP`` can refuse to remove them.

:func:`names_used` is pure: it takes the statement, the catalog rows and the session's
variables, and names the models or datasets the statement reads. A pool written as a
table (``FROM models WHERE ...``) is resolved the way the search resolves it (the table's
modality, the WHERE, OTHER THAN), so dropping a model the running query left out is
allowed. Catalog queries, REGISTER and the session statements read nothing for long and
use no row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from broker.sources import MODALITY_OF_TABLE, probe_name
from shift import evaluate
from shift.errors import ShiftError
from shift.planner import dataset_names
from shift.ql import nodes as n

Rows = Mapping[str, Sequence[dict[str, Any]]]
"""Catalog kind (``model``, ``dataset``) -> its rows."""


def names_used(
    statement: n.Statement, kind: str, rows: Rows, variables: Mapping[str, list[str]]
) -> set[str]:
    """The names of ``kind`` (``model`` or ``dataset``) a running statement reads."""
    if isinstance(statement, n.Explain):
        return names_used(statement.statement, kind, rows, variables)
    if isinstance(statement, n.Declare):
        return names_used(statement.query, kind, rows, variables)
    if isinstance(statement, n.Union):
        return {name for p in statement.parts for name in names_used(p, kind, rows, variables)}
    if isinstance(statement, n.TaskSelect | n.Rank):
        if kind == "dataset":
            return set(dataset_names(statement.train + statement.test))
        where, other = statement.where, statement.other_than
        return _pool(statement.source, where, other, rows.get("model", ()), variables)
    if isinstance(statement, n.VecSelect):
        if kind == "model":
            models = {str(r["name"]) for r in rows.get("model", ())}
            try:
                return {probe_name(statement.probe, models, variables)}
            except ShiftError:  # the query fails on this probe: count the name, to be safe
                return {statement.probe}
        return _pool(statement.source, statement.where, None, rows.get("dataset", ()), variables)
    if isinstance(statement, n.Finetune):
        if kind == "dataset":
            tested = {str(p.value.value) for p in statement.params if p.name == "test"}
            return set(dataset_names(statement.datasets)) | tested
        return _pool(statement.models, None, None, rows.get("model", ()), variables)
    return set()


def _pool(
    source: n.Source,
    where: n.Condition | None,
    other_than: n.Source | None,
    rows: Sequence[dict[str, Any]],
    variables: Mapping[str, list[str]],
) -> set[str]:
    """The names a FROM (with its WHERE and OTHER THAN) picks from ``rows``."""
    if isinstance(source, n.Table):
        modality = MODALITY_OF_TABLE.get(source.name)
        rows = [r for r in rows if modality is None or r.get("modality") == modality]
    select = n.Select((), source, where, (), None, other_than)
    try:
        return {str(r["name"]) for r in evaluate.select(select, rows, dict(variables))}
    except ShiftError:
        # a name or variable the query will fail on: count what it names, to be safe
        return _named(source, variables)


def _named(source: n.Source, variables: Mapping[str, list[str]]) -> set[str]:
    try:
        return set(evaluate.source_names(source, dict(variables)) or ())
    except ShiftError:
        return set()
