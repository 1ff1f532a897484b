"""The ``classify`` task kind: fit a proxy on stored features and score it on a test set.

TASK body: ``{"model": ModelSpec JSON, "train": [DatasetSpec JSON, ...] (or one),
"train_rows": int | null (a prefix of the concatenated train sets; null = all),
"test": DatasetSpec JSON, "test_rows": int | null, "classifier": "euclidean_nn" |
"cosine_nn" | "linear", "params": {...}, "prior": {"train_rows", "nn_index",
"nn_distance"} (optional, 1-NN only: continue from an earlier, smaller prefix),
"embed_missing": bool (default true: compute missing feature blocks here),
"store": path (optional)}``.

RESULT: ``{"classifier", "params", "err", "acc", "errors", "train_rows", "test_rows",
"num_classes", "nn_index", "nn_distance" (1-NN only), "embedded_blocks", "read_s",
"fit_s", "embed_s"}``. Labels of the train and test sets are matched by value (any strings
or numbers), not by per-dataset ids.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from shift.errors import CatalogError, WorkerError
from shift.specs import DatasetSpec, ModelSpec
from workers.embed import embed_block, feature_store, read, specs
from workers.features import FeatureStore
from workers.kinds import TaskContext, task_kind
from workers.proxies import get_proxy


def _int_or_none(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise WorkerError(f"{name!r} must be a non-negative integer or null, got {value!r}")
    return value


def load_rows(
    model: ModelSpec,
    dataset: DatasetSpec,
    rows: int | None,
    store: FeatureStore,
    embed_missing: bool,
    device: str,
    ctx: TaskContext | None,
) -> tuple[np.ndarray, list[Any], int]:
    """Features and label values of the first ``rows`` rows (embedding missing blocks)."""
    size = len(read(dataset))
    stop = size if rows is None else min(rows, size)
    missing = store.missing_blocks(model.key, dataset.key, 0, stop)
    if missing and not embed_missing:
        raise WorkerError(f"features of {model.name} on {dataset.name} lack blocks {missing}")
    for block in missing:
        embed_block(model, dataset, block, store, device, ctx)
    if stop == 0:
        return np.zeros((0, 0), dtype=np.float32), [], 0
    features, ids = store.read_rows(model.key, dataset.key, 0, stop)
    classes = store.meta(model.key, dataset.key)["classes"]
    return features, [classes[i] for i in ids], len(missing)


def classify_features(payload: dict[str, Any], ctx: TaskContext | None = None) -> dict[str, Any]:
    """Run the ``classify`` kind (see the module docstring)."""
    (model,) = specs(payload, "model")
    (test,) = specs(payload, "test")
    trains = payload.get("train")
    trains = trains if isinstance(trains, list) else [trains]
    try:
        train_specs = [DatasetSpec.from_json(t) for t in trains]
    except CatalogError as error:
        raise WorkerError(f"payload 'train': {error}") from None
    if not train_specs:
        raise WorkerError("'train' names no dataset")
    proxy, params = get_proxy(str(payload.get("classifier")), dict(payload.get("params") or {}))
    store = feature_store(payload)
    embed_missing = bool(payload.get("embed_missing", True))
    device = str(payload.get("device", "cpu"))
    want = _int_or_none(payload, "train_rows")

    t0 = time.perf_counter()
    parts, values, embedded = [], [], 0
    left = want
    for spec in train_specs:
        if left == 0:
            break
        features, labels, blocks = load_rows(model, spec, left, store, embed_missing, device, ctx)
        parts.append(features)
        values.extend(labels)
        embedded += blocks
        left = None if left is None else left - len(labels)
    test_x, test_values, blocks = load_rows(
        model, test, _int_or_none(payload, "test_rows"), store, embed_missing, device, ctx
    )
    embedded += blocks
    t1 = time.perf_counter()
    train_x = np.concatenate([p for p in parts if len(p)]) if values else np.zeros((0, 0))
    if not values or not test_values:
        raise WorkerError("classify needs at least one train row and one test row")
    classes = sorted(set(values) | set(test_values), key=lambda v: (isinstance(v, str), v))
    ids = {v: i for i, v in enumerate(classes)}
    train_y = np.array([ids[v] for v in values], dtype=np.int64)
    test_y = np.array([ids[v] for v in test_values], dtype=np.int64)

    prior, prior_rows = None, 0
    raw_prior = payload.get("prior")
    if raw_prior and payload.get("classifier") in ("euclidean_nn", "cosine_nn"):
        prior_rows = int(raw_prior["train_rows"])
        if not 0 < prior_rows <= len(train_x) or len(raw_prior["nn_index"]) != len(test_x):
            raise WorkerError("'prior' does not fit this train prefix and test set")
        prior = (np.asarray(raw_prior["nn_index"]), np.asarray(raw_prior["nn_distance"]))
    if ctx is not None:
        ctx.check_cancelled()
    t2 = time.perf_counter()
    result = proxy(
        train_x,
        train_y,
        test_x,
        test_y,
        prior=prior,
        prior_rows=prior_rows,
        num_classes=len(classes),
        **params,
    )
    t3 = time.perf_counter()
    out: dict[str, Any] = {
        "classifier": payload.get("classifier"),
        "params": params,
        "err": result.err,
        "acc": result.acc,
        "errors": round(result.err * result.test_rows),
        "train_rows": result.train_rows,
        "test_rows": result.test_rows,
        "num_classes": len(classes),
        "embedded_blocks": embedded,
        "read_s": t1 - t0,
        "fit_s": t3 - t2,
    }
    if result.nn_index is not None and result.nn_distance is not None:
        out["nn_index"] = result.nn_index.tolist()
        out["nn_distance"] = result.nn_distance.tolist()
    return out


@task_kind("classify")
def classify(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Fit a proxy (1-NN or linear) on stored features and return its exact test error."""
    return classify_features(payload, ctx)
