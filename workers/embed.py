"""The ``embed`` task kind: one model over one block of a dataset, into the feature store.

TASK body: :class:`shift.payloads.EmbedPayload` ``{"model": ModelSpec JSON, "dataset":
DatasetSpec JSON, "block": int}``. The feature store is the worker's own
``<state_dir>/features`` (its settings), never a path from the payload. RESULT: ``{"model_key",
"dataset_key", "block", "start", "stop", "rows", "num_rows", "num_blocks", "num_classes",
"feature_dim", "num_params", "cached", "load_s", "read_s", "embed_s", "write_s"}``, and
for a computed block ``"wait_s"`` (time the device loop waited for input), ``"batches"``
and ``"precision"``. Rows are read and preprocessed off the device thread
(:mod:`workers.device_loop`), so ``embed_s`` holds their reading too.
A block already on disk is not recomputed (``cached`` is then true).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from shift.errors import CatalogError, WorkerError
from shift.payloads import BLOCK_ROWS, FEATURES_DIR, EmbedPayload
from shift.specs import DatasetSpec, ModelSpec
from workers.device_loop import embed_range
from workers.features import FeatureStore, block_count, block_range
from workers.kinds import TaskContext, device_of, task_kind
from workers.readers import Dataset, open_dataset


def feature_store() -> FeatureStore:
    """This worker's feature store, ``<state_dir>/features`` of its settings."""
    from shift.settings import load_settings

    return FeatureStore(Path(load_settings()["state_dir"]) / FEATURES_DIR)


def specs(payload: dict[str, Any], *names: str) -> list[Any]:
    """Parse the spec fields of a payload (``model`` as a ModelSpec, others as datasets).

    Raises:
        WorkerError: a field is missing or invalid.
    """
    out: list[Any] = []
    for name in names:
        if name not in payload:
            raise WorkerError(f"task payload lacks {name!r}")
        try:
            parse = ModelSpec.from_json if name == "model" else DatasetSpec.from_json
            out.append(parse(payload[name]))
        except CatalogError as error:
            raise WorkerError(f"payload {name!r}: {error}") from None
    return out


def read(spec: DatasetSpec) -> Dataset:
    """Open a dataset, as a worker error when it cannot be read."""
    try:
        return open_dataset(spec)
    except CatalogError as error:
        raise WorkerError(f"dataset {spec.name!r}: {error}") from None


def embed_block(
    model: ModelSpec,
    dataset: DatasetSpec,
    block: int,
    store: FeatureStore,
    device: str = "cpu",
    ctx: TaskContext | None = None,
) -> dict[str, Any]:
    """Compute (unless stored) and store the features of one block; return the figures."""
    from workers.models import MODEL_CACHE

    t0 = time.perf_counter()
    data = read(dataset)
    start, stop = block_range(block, len(data), store.block_rows)
    figures: dict[str, Any] = {
        "model_key": model.key,
        "dataset_key": dataset.key,
        "block": block,
        "start": start,
        "stop": stop,
        "rows": stop - start,
        "num_rows": len(data),
        "num_blocks": block_count(len(data), store.block_rows),
        "num_classes": data.num_classes,
    }
    if store.has_block(model.key, dataset.key, block):
        meta = store.meta(model.key, dataset.key)
        return {
            **figures,
            "feature_dim": meta["feature_dim"],
            "num_params": meta.get("num_params"),
            "cached": True,
            "load_s": 0.0,
            "read_s": time.perf_counter() - t0,
            "embed_s": 0.0,
            "write_s": 0.0,
        }
    t1 = time.perf_counter()
    extractor = MODEL_CACHE.get(model, device)
    t2 = time.perf_counter()
    array, loop = embed_range(extractor, data, start, stop, ctx)
    t4 = time.perf_counter()
    meta = {
        "num_rows": len(data),
        "classes": list(data.classes),
        "feature_dim": extractor.feature_dim,
        "num_params": extractor.num_params,
        "block_rows": store.block_rows,
        "model": model.name,
        "dataset": dataset.name,
    }
    store.write_block(model.key, dataset.key, block, array, data.labels[start:stop], meta)
    t5 = time.perf_counter()
    return {
        **figures,
        "feature_dim": extractor.feature_dim,
        "num_params": extractor.num_params,
        "cached": False,
        "load_s": t2 - t1,
        "read_s": t1 - t0,
        "embed_s": t4 - t2,
        "write_s": t5 - t4,
        "wait_s": loop.wait_s,
        "batches": loop.batches,
        "precision": extractor.precision,
    }


def embed_payload(
    payload: dict[str, Any], ctx: TaskContext | None = None, store: FeatureStore | None = None
) -> dict[str, Any]:
    """Run the ``embed`` kind (``store``: another feature store than this worker's own)."""
    task = EmbedPayload.from_json(payload)
    device = device_of(payload, ctx)
    return embed_block(task.model, task.dataset, task.block, store or feature_store(), device, ctx)


@task_kind("embed")
def embed(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Write one block of a model's features on a dataset to the feature store."""
    return embed_payload(payload, ctx)


__all__ = ["BLOCK_ROWS", "embed", "embed_block", "embed_payload", "feature_store", "read", "specs"]
