"""Task kinds for the block-transfer tests (``--plugin block_kinds``): write and read one
block of the worker's own feature store, as ``embed`` and ``classify`` do."""

from __future__ import annotations

from typing import Any

import numpy as np

from workers.embed import feature_store
from workers.kinds import TaskContext, task_kind


def block_values(seed: int, rows: int = 8, dim: int = 4) -> np.ndarray:
    """The features a ``put_block`` task with ``seed`` writes."""
    return np.arange(rows * dim, dtype=np.float32).reshape(rows, dim) + seed


@task_kind("put_block")
def put_block(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Write block 0 of ``(model_key, dataset_key)``: 8 rows of 4 features."""
    features = block_values(int(payload["seed"]))
    labels = np.arange(len(features), dtype=np.int64) % 2
    meta = {"num_rows": len(features), "classes": ["a", "b"], "feature_dim": 4}
    store = feature_store()
    store.write_block(payload["model_key"], payload["dataset_key"], 0, features, labels, meta)
    return {"rows": len(features)}


@task_kind("get_rows")
def get_rows(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Read block 0 of ``(model_key, dataset_key)`` (fetching it when this store lacks it)."""
    store = feature_store()
    missing = store.missing_blocks(payload["model_key"], payload["dataset_key"], 0, 8)
    if missing:
        return {"missing": missing}
    features, labels = store.read_rows(payload["model_key"], payload["dataset_key"], 0, 8)
    return {"sum": float(features.sum()), "labels": labels.tolist()}
