"""The ``classify`` task kind: fit a proxy on stored features and score it on a test set.

TASK body: :class:`shift.payloads.ClassifyPayload` (parsed once, here): the model, training
items concatenated in order (datasets or ``CHANGE ... TO`` mutations) and a prefix of them,
a test set and its prefix, the proxy and its parameters, and optionally a 1-NN ``prior``.

A mutation replaces the rows of ``base`` labelled ``from[i]`` by the rows of ``target``
labelled ``to[i]``, relabelled ``from[i]`` (kept base rows first, in order, then the
target's). When ``target`` is ``base`` only labels change: every row stays where it is and
a row labelled ``to[i]`` is relabelled ``from[i]``.

A prior without ``train`` covers the first ``prior.train_rows`` rows of this train set (a
smaller prefix): only distances to the rows after it are computed. A prior with ``train``
(the items it was computed on, cut to ``train_rows``) may cover any rows: rows are matched
by (dataset, row) identity, test rows whose neighbour left are compared again with the
covered rows, and every test row with the new rows. A label-only change computes nothing.

The test set is read like one training item: a dataset, or a mutation of datasets (the
mutated rows, in the same order, with the same relabelling).

RESULT: :class:`shift.payloads.ClassifyResult`. Labels of the train and test sets are
matched by value (any strings or numbers), not by per-dataset ids.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from shift.errors import WorkerError
from shift.methods import NN_CLASSIFIERS
from shift.payloads import ClassifyPayload, ClassifyResult, TrainItem
from shift.specs import DatasetSpec, ModelSpec
from workers.embed import embed_block, feature_store, read
from workers.features import FeatureStore
from workers.kinds import TaskContext, device_of, task_kind
from workers.proxies import get_proxy


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


def load_item(
    model: ModelSpec,
    item: TrainItem,
    rows: int | None,
    store: FeatureStore,
    embed_missing: bool,
    device: str,
    ctx: TaskContext | None,
) -> tuple[np.ndarray, list[Any], list[RowId], int]:
    """Features, label values and row ids of the first ``rows`` rows of one train item."""
    if isinstance(item, DatasetSpec):
        features, labels, blocks = load_rows(model, item, rows, store, embed_missing, device, ctx)
        return features, labels, [(item.key, i) for i in range(len(labels))], blocks
    base, target = item.base, item.target
    sources, to = list(item.from_labels), list(item.to_labels)
    if target.key == base.key:  # label-only: a prefix of the mutation is a prefix of the base
        limit = rows if item.base_rows is None else item.base_rows
        if rows is not None and limit is not None:
            limit = min(rows, limit)
        bx, blabels, blocks = load_rows(model, base, limit, store, embed_missing, device, ctx)
    else:
        bx, blabels, blocks = load_rows(
            model, base, item.base_rows, store, embed_missing, device, ctx
        )
    bids = [(base.key, i) for i in range(len(blabels))]
    if target.key == base.key:
        labels = [v if (i := _label_index(to, v)) < 0 else sources[i] for v in blabels]
        features, ids = bx, bids
    else:
        keep = [i for i, v in enumerate(blabels) if _label_index(sources, v) < 0]
        tx, tlabels, more = load_rows(
            model, target, item.target_rows, store, embed_missing, device, ctx
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
    items: Sequence[TrainItem],
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


def _prior(
    task: ClassifyPayload,
    model: ModelSpec,
    ids: list[RowId],
    test_rows: int,
    store: FeatureStore,
    device: str,
    ctx: TaskContext | None,
) -> dict[str, Any]:
    """Proxy arguments that continue from the payload's ``prior`` (empty without one)."""
    prior = task.prior
    if prior is None or task.classifier not in NN_CLASSIFIERS:
        return {}
    rows = prior.train_rows
    index = np.asarray(prior.nn_index, dtype=np.int64)
    distance = np.asarray(prior.nn_distance, dtype=np.float64)
    if len(index) != test_rows:
        raise WorkerError("'prior' does not fit this test set")
    if prior.train is None:
        if rows is None or not 0 < rows <= len(ids):
            raise WorkerError("'prior' does not fit this train prefix")
        return {"prior": (index, distance), "prior_rows": rows}
    _, _, source, _ = load_train(model, prior.train, rows, store, False, device, ctx)
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


def classify_features(
    payload: dict[str, Any], ctx: TaskContext | None = None, store: FeatureStore | None = None
) -> dict[str, Any]:
    """Run the ``classify`` kind (see the module docstring).

    Args:
        payload: The task's payload (parsed here, once).
        ctx: The running task's context (``None``: a direct call).
        store: Another feature store than this worker's own (tests, benchmarks).
    """
    task = ClassifyPayload.from_json(payload)
    model, test = task.model, task.test
    proxy, params = get_proxy(task.classifier, dict(task.params))
    store = store or feature_store()
    embed_missing = task.embed_missing
    device = device_of(payload, ctx)

    t0 = time.perf_counter()
    train_x, values, ids, embedded = load_train(
        model, task.train, task.train_rows, store, embed_missing, device, ctx
    )
    test_x, test_values, _, blocks = load_item(
        model, test, task.test_rows, store, embed_missing, device, ctx
    )
    embedded += blocks
    t1 = time.perf_counter()
    if not values or not test_values:
        raise WorkerError("classify needs at least one train row and one test row")
    classes = sorted(set(values) | set(test_values), key=lambda v: (isinstance(v, str), v))
    ids_of = {v: i for i, v in enumerate(classes)}
    train_y = np.array([ids_of[v] for v in values], dtype=np.int64)
    test_y = np.array([ids_of[v] for v in test_values], dtype=np.int64)
    continued = _prior(task, model, ids, len(test_x), store, device, ctx)
    if ctx is not None:
        ctx.check_cancelled()
    t2 = time.perf_counter()
    result = proxy(
        train_x, train_y, test_x, test_y, num_classes=len(classes), **continued, **params
    )
    t3 = time.perf_counter()
    neighbours = result.nn_index is not None and result.nn_distance is not None
    return ClassifyResult(
        task.classifier,
        params,
        result.err,
        result.acc,
        round(result.err * result.test_rows),
        result.train_rows,
        result.test_rows,
        len(classes),
        embedded,
        continued.get("prior_rows", 0),
        t1 - t0,
        t3 - t2,
        tuple(result.nn_index.tolist()) if neighbours else None,  # type: ignore[union-attr]
        tuple(result.nn_distance.tolist()) if neighbours else None,  # type: ignore[union-attr]
        result.distance_pairs if neighbours else None,
        result.solver,
        result.iterations,
        result.converged,
        result.grad_norm,
    ).to_json()


@task_kind("classify")
def classify(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Fit a proxy (1-NN or linear) on stored features and return its exact test error."""
    return classify_features(payload, ctx)
