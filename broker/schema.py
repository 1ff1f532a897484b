"""The broker's whole SQLite schema, declared once.

- ``tasks``: every task (spec, state, attempt, worker, result), written by
  :class:`broker.store.Store` from the dispatcher's changes;
- ``queries`` and ``variables``: every statement run and the DECLAREd names per session
  (:class:`broker.queries.QueryService`);
- ``models`` and ``datasets``: the catalog (columns, spec, status, measurements;
  :class:`broker.catalog.Catalog`);
- ``nn_state``: nearest-neighbour records of classify results, ``halving``: the
  successive-halving machines, and ``halving_results``: the results each machine recorded
  since its row was last written whole (:class:`broker.searchstate.SearchState`).

Only the store layer (:mod:`broker.store`, :mod:`broker.tables`) runs SQL; every other
module calls their methods.
"""

from __future__ import annotations

from shift.ql.vocabulary import DATASET_COLUMNS, MODEL_COLUMNS

TASKS = """
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    model TEXT,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    worker TEXT,
    result BLOB,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state, seq);
"""

QUERY_COLUMNS = (
    "id", "seq", "session", "tree", "statement", "kind", "status", "wait", "progress",
    "result", "error", "created_at", "finished_at",
)  # fmt: skip
"""Columns of the ``queries`` table, in the order the store reads and writes them."""

QUERIES = (
    "CREATE TABLE IF NOT EXISTS queries (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, "
    "session TEXT NOT NULL, tree TEXT NOT NULL, statement TEXT NOT NULL, kind TEXT NOT NULL, "
    "status TEXT NOT NULL, wait INTEGER NOT NULL, progress TEXT NOT NULL, result TEXT, "
    "error TEXT, created_at REAL NOT NULL, finished_at REAL);\n"
    "CREATE INDEX IF NOT EXISTS queries_seq ON queries(seq);\n"
    "CREATE TABLE IF NOT EXISTS variables (session TEXT NOT NULL, name TEXT NOT NULL, "
    "names TEXT NOT NULL, PRIMARY KEY (session, name));\n"
)

SEARCH = (
    "CREATE TABLE IF NOT EXISTS nn_state (key TEXT PRIMARY KEY, lineage TEXT NOT NULL, "
    "record TEXT NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS halving (key TEXT PRIMARY KEY, classifier TEXT NOT NULL, "
    "state TEXT NOT NULL, updated_at REAL NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS halving_results (key TEXT NOT NULL, seq INTEGER NOT NULL, "
    "result TEXT NOT NULL, PRIMARY KEY (key, seq));\n"
)

CATALOG_TABLES = {"model": ("models", MODEL_COLUMNS), "dataset": ("datasets", DATASET_COLUMNS)}
"""Catalog kind -> (table, its catalog columns)."""

CATALOG_EXTRA = ("key", "spec", "status", "measured", "error", "task_id", "seq")
"""Columns every catalog table has after its catalog columns."""


def _catalog_table(table: str, columns: tuple[str, ...]) -> str:
    quoted = ", ".join(f'"{c}"' for c in columns if c != "name")
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (name TEXT PRIMARY KEY, {quoted}, "
        "key TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL, measured TEXT, "
        "error TEXT, task_id TEXT, seq INTEGER NOT NULL);\n"
    )


SCHEMA = (
    TASKS + QUERIES + SEARCH + "".join(_catalog_table(t, c) for t, c in CATALOG_TABLES.values())
)
"""Every table and index (idempotent)."""
