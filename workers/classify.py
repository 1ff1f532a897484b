"""The ``classify`` task kind: fit a proxy on stored features and score it on a test set.

TASK body: ``{"model": ModelSpec JSON, "train": [item, ...] (or one item),
"train_rows": int | null (a prefix of the concatenated train items; null = all),
"test": DatasetSpec JSON, "test_rows": int | null, "classifier": "euclidean_nn" |
"cosine_nn" | "linear", "params": {...}, "prior": {"train_rows", "nn_index",
"nn_distance", "train"?} (optional, 1-NN only: continue from an earlier result),
"embed_missing": bool (default true: compute missing feature blocks here),
"store": path (optional)}``.

A train item is a DatasetSpec JSON or a mutation ``{"mutation": {"base": DatasetSpec JSON,
"base_rows": int | null, "from": [label, ...], "target": DatasetSpec JSON, "target_rows":
int | null, "to": [label, ...]}}``: the rows of ``base`` labelled ``from[i]`` are replaced
by the rows of ``target`` labelled ``to[i]``, relabelled ``from[i]`` (kept base rows first,
in order, then the target's). When ``target`` is ``base`` only labels change: every row
stays where it is and a row labelled ``to[i]`` is relabelled ``from[i]``.

A prior without ``train`` covers the first ``prior.train_rows`` rows of this train set (a
smaller prefix): only distances to the rows after it are computed. A prior with ``train``
(the items it was computed on, cut to ``train_rows``) may cover any rows: rows are matched
by (dataset, row) identity, test rows whose neighbour left are compared again with the
covered rows, and every test row with the new rows. A label-only change computes nothing.

RESULT: ``{"classifier", "params", "err", "acc", "errors", "train_rows", "test_rows",
"num_classes", "nn_index", "nn_distance" (1-NN only), "distance_pairs" (1-NN only: test x
train distances computed), "prior_rows", "embedded_blocks", "read_s", "fit_s"}``. Labels of
the train and test sets are matched by value (any strings or numbers), not by per-dataset
ids.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from shift.errors import CatalogError, WorkerError
from shift.specs import DatasetSpec, ModelSpec
from workers.embed import embed_block, feature_store, read, specs
from workers.features import FeatureStore
from workers.kinds import TaskContext, device_of, task_kind
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


RowId = tuple[str, int]


def _same_label(a: Any, b: Any) -> bool:
    return bool(a == b) or str(a) == str(b)


def _label_index(wanted: list[Any], value: Any) -> int:
    return next((i for i, w in enumerate(wanted) if _same_label(w, value)), -1)


def _mutation(item: dict[str, Any]) -> dict[str, Any]:
    body = item["mutation"]
    if not isinstance(body, dict) or {"base", "from", "target", "to"} - body.keys():
        raise WorkerError("a mutation needs base, from, target and to")
    if len(body["from"]) != len(body["to"]) or not body["from"]:
        raise WorkerError("a mutation maps as many labels from the base as to the target")
    return body


def _spec(value: Any, what: str) -> DatasetSpec:
    try:
        return DatasetSpec.from_json(value)
    except CatalogError as error:
        raise WorkerError(f"payload {what!r}: {error}") from None


def load_item(
    model: ModelSpec,
    item: Any,
    rows: int | None,
    store: FeatureStore,
    embed_missing: bool,
    device: str,
    ctx: TaskContext | None,
) -> tuple[np.ndarray, list[Any], list[RowId], int]:
    """Features, label values and row ids of the first ``rows`` rows of one train item."""
    if not (isinstance(item, dict) and "mutation" in item):
        spec = _spec(item, "train")
        features, labels, blocks = load_rows(model, spec, rows, store, embed_missing, device, ctx)
        return features, labels, [(spec.key, i) for i in range(len(labels))], blocks
    body = _mutation(item)
    base, target = _spec(body["base"], "base"), _spec(body["target"], "target")
    sources, to = list(body["from"]), list(body["to"])
    bx, blabels, blocks = load_rows(
        model, base, body.get("base_rows"), store, embed_missing, device, ctx
    )
    bids = [(base.key, i) for i in range(len(blabels))]
    if target.key == base.key:
        labels = [v if (i := _label_index(to, v)) < 0 else sources[i] for v in blabels]
        features, ids = bx, bids
    else:
        keep = [i for i, v in enumerate(blabels) if _label_index(sources, v) < 0]
        tx, tlabels, more = load_rows(
            model, target, body.get("target_rows"), store, embed_missing, device, ctx
        )
        blocks += more
        take = [i for i, v in enumerate(tlabels) if _label_index(to, v) >= 0]
        parts = [
            p for p in (bx[keep] if keep else None, tx[take] if take else None) if p is not None
        ]
        features = np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
        labels = [blabels[i] for i in keep] + [sources[_label_index(to, tlabels[i])] for i in take]
        ids = [bids[i] for i in keep] + [(target.key, i) for i in take]
    if rows is not None:
        features, labels, ids = features[:rows], labels[:rows], ids[:rows]
    return features, labels, ids, blocks


def load_train(
    model: ModelSpec,
    items: list[Any],
    want: int | None,
    store: FeatureStore,
    embed_missing: bool,
    device: str,
    ctx: TaskContext | None,
) -> tuple[np.ndarray, list[Any], list[RowId], int]:
    """The first ``want`` rows (all when ``None``) of the concatenated train items."""
    parts, values, ids, embedded = [], [], [], 0
    left = want
    for item in items:
        if left == 0:
            break
        features, labels, rows, blocks = load_item(
            model, item, left, store, embed_missing, device, ctx
        )
        parts.append(features)
        values.extend(labels)
        ids.extend(rows)
        embedded += blocks
        left = None if left is None else left - len(labels)
    train_x = np.concatenate([p for p in parts if len(p)]) if values else np.zeros((0, 0))
    return train_x, values, ids, embedded


def _items(value: Any) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise WorkerError("'train' names no dataset")
    return items


def _prior(
    payload: dict[str, Any],
    model: ModelSpec,
    ids: list[RowId],
    test_rows: int,
    store: FeatureStore,
    device: str,
    ctx: TaskContext | None,
) -> dict[str, Any]:
    """Proxy arguments that continue from the payload's ``prior`` (empty without one)."""
    raw = payload.get("prior")
    if not raw or payload.get("classifier") not in ("euclidean_nn", "cosine_nn"):
        return {}
    rows = _int_or_none(raw, "train_rows")
    index, distance = np.asarray(raw["nn_index"]), np.asarray(raw["nn_distance"])
    if len(index) != test_rows or len(distance) != test_rows:
        raise WorkerError("'prior' does not fit this test set")
    if "train" not in raw:
        if rows is None or not 0 < rows <= len(ids):
            raise WorkerError("'prior' does not fit this train prefix")
        return {"prior": (index, distance), "prior_rows": rows}
    _, _, source, _ = load_train(model, _items(raw["train"]), rows, store, False, device, ctx)
    if len(index) and not 0 <= int(index.min()) <= int(index.max()) < len(source):
        raise WorkerError("'prior' names train rows its 'train' does not have")
    where = {row: i for i, row in enumerate(ids)}
    mapped = np.array([where.get(source[int(i)], -1) for i in index], dtype=np.int64)
    covered = np.zeros(len(ids), dtype=bool)
    for row in source:
        position = where.get(row)
        if position is not None:
            covered[position] = True
    return {"prior": (mapped, distance), "covered": covered, "prior_rows": len(source)}


def classify_features(payload: dict[str, Any], ctx: TaskContext | None = None) -> dict[str, Any]:
    """Run the ``classify`` kind (see the module docstring)."""
    (model,) = specs(payload, "model")
    (test,) = specs(payload, "test")
    items = _items(payload.get("train"))
    proxy, params = get_proxy(str(payload.get("classifier")), dict(payload.get("params") or {}))
    store = feature_store(payload)
    embed_missing = bool(payload.get("embed_missing", True))
    device = device_of(payload, ctx)
    want = _int_or_none(payload, "train_rows")

    t0 = time.perf_counter()
    train_x, values, ids, embedded = load_train(
        model, items, want, store, embed_missing, device, ctx
    )
    test_x, test_values, blocks = load_rows(
        model, test, _int_or_none(payload, "test_rows"), store, embed_missing, device, ctx
    )
    embedded += blocks
    t1 = time.perf_counter()
    if not values or not test_values:
        raise WorkerError("classify needs at least one train row and one test row")
    classes = sorted(set(values) | set(test_values), key=lambda v: (isinstance(v, str), v))
    ids_of = {v: i for i, v in enumerate(classes)}
    train_y = np.array([ids_of[v] for v in values], dtype=np.int64)
    test_y = np.array([ids_of[v] for v in test_values], dtype=np.int64)
    continued = _prior(payload, model, ids, len(test_x), store, device, ctx)
    if ctx is not None:
        ctx.check_cancelled()
    t2 = time.perf_counter()
    result = proxy(
        train_x, train_y, test_x, test_y, num_classes=len(classes), **continued, **params
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
        "prior_rows": continued.get("prior_rows", 0),
        "read_s": t1 - t0,
        "fit_s": t3 - t2,
    }
    if result.nn_index is not None and result.nn_distance is not None:
        out["nn_index"] = result.nn_index.tolist()
        out["nn_distance"] = result.nn_distance.tolist()
        out["distance_pairs"] = result.distance_pairs
    return out


@task_kind("classify")
def classify(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Fit a proxy (1-NN or linear) on stored features and return its exact test error."""
    return classify_features(payload, ctx)
