"""A state directory made by an older shift keeps working: catalog tables gain new columns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from broker.schema import CATALOG_EXTRA, MODEL_COLUMNS
from broker.store import Store
from broker.tables import Tables
from shift.registration import model_row
from shift.zoo import model

OLD_MODEL_COLUMNS = tuple(
    c for c in MODEL_COLUMNS if c not in {"hub_id", "torchvision_name", "tf_image_model_url"}
)
"""The model columns of the release before the upstream identifier columns."""


def _old_database(path: Path) -> None:
    columns = ", ".join(f'"{c}"' for c in OLD_MODEL_COLUMNS if c != "name")
    with sqlite3.connect(path) as db:
        db.execute(
            f"CREATE TABLE models (name TEXT PRIMARY KEY, {columns}, key TEXT NOT NULL, "
            "spec TEXT NOT NULL, status TEXT NOT NULL, measured TEXT, error TEXT, "
            "task_id TEXT, seq INTEGER NOT NULL)"
        )
        values = {c: None for c in OLD_MODEL_COLUMNS} | {"name": "old", "source": "timm"}
        names = ", ".join(f'"{c}"' for c in (*OLD_MODEL_COLUMNS, *CATALOG_EXTRA))
        marks = ", ".join("?" for _ in (*OLD_MODEL_COLUMNS, *CATALOG_EXTRA))
        extra = ["k", "{}", "ready", None, None, None, 1]
        db.execute(
            f"INSERT INTO models ({names}) VALUES ({marks})",
            [values[c] for c in OLD_MODEL_COLUMNS] + extra,
        )


@pytest.mark.asyncio
async def test_an_old_models_table_gains_the_new_columns_and_takes_new_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shift.sqlite"
    _old_database(path)
    store = Store(path)
    await store.open()
    try:
        tables = Tables(store)
        spec = model("efficientnet-lite0")
        await tables.save_catalog_entry(
            "model", model_row(spec, None, "2026-12-02"), ["k2", "{}", "ready", None, None, None, 2]
        )
        rows = await store.fetch("SELECT name, source, hub_id FROM models ORDER BY seq")
    finally:
        await store.close()
    assert [tuple(r) for r in rows] == [("old", "timm", None), ("efficientnet-lite0", "timm", None)]
    with sqlite3.connect(path) as db:
        present = {r[1] for r in db.execute("PRAGMA table_info(models)")}
    assert set(MODEL_COLUMNS) <= present
