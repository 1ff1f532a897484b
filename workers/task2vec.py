"""The ``task2vec`` task kind: a dataset's Task2Vec embedding under a probe network.

TASK body: ``{"model": ModelSpec JSON (the probe), "dataset": DatasetSpec JSON, "rows": int
or null (only the first ``rows`` rows are the dataset; null: all), "sample_rows": int,
"seed": int}`` (built by :func:`shift.task_distances.task2vec_task`). RESULT: ``{"embedding":
[float], "dim", "probe_key", "dataset_key", "sample_rows" (rows actually sampled),
"num_classes" (classes in the sample), "layers", "features_s", "fit_s", "fisher_s"}``.

The method (Achille et al., 2019): sample ``min(sample_rows, rows)`` rows (seeded, sorted);
compute the probe's frozen features of the sample and fit linear softmax heads on them
(:func:`workers.training.fit_head`), cross-fitted: row ``i`` is in fold ``i % HEAD_FOLDS``
and is scored by the head fitted on the other folds (a head is near-certain on the rows it
was fitted on, where the Fisher vanishes); then, with the network in eval mode (normalisation
statistics frozen), estimate the diagonal Fisher information of the weights of every
convolution and linear layer of the probe by Monte Carlo: per minibatch, draw labels from
the head's softmax (a seeded generator), back-propagate the cross-entropy and accumulate the
squared gradients; divide by the number of minibatches. Each weight tensor's Fisher is
averaged over every dimension but the first (one value per filter or output unit) and the
layers are concatenated in module order. Layers that the features do not depend on (a text
encoder's unused pooler) get no gradient and are left out. The head, embeddings and
normalisation layers are not part of the embedding.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from shift.errors import WorkerError
from shift.payloads import Task2VecPayload
from shift.task_distances import FISHER_BATCH_ROWS, HEAD_FOLDS, MONTE_CARLO_SAMPLES
from workers.embed import read
from workers.kinds import TaskContext, device_of, task_kind
from workers.models.base import FeatureExtractor, to_device
from workers.readers import Dataset
from workers.training import fit_head, frozen_features, private_model


def _int(payload: dict[str, Any], name: str, default: Any, minimum: int) -> Any:
    value = payload.get(name, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WorkerError(f"{name!r} must be an integer >= {minimum}, got {value!r}")
    return value


def sample_indices(rows: int, sample_rows: int, seed: int) -> np.ndarray:
    """``min(sample_rows, rows)`` distinct row indices below ``rows``, seeded and sorted."""
    count = min(sample_rows, rows)
    picked = np.random.default_rng(seed).choice(rows, size=count, replace=False)
    return np.sort(picked).astype(np.int64)


def _rows(data: Dataset, indices: np.ndarray) -> list[Any]:
    return [data.rows(int(i), int(i) + 1)[0] for i in indices]


def fisher_layers(module: Any) -> list[tuple[str, Any]]:
    """``(name, weight)`` of every convolution and linear layer, in module order."""
    import torch

    kinds = (torch.nn.modules.conv._ConvNd, torch.nn.Linear)
    return [
        (name, layer.weight)
        for name, layer in module.named_modules()
        if isinstance(layer, kinds) and isinstance(getattr(layer, "weight", None), torch.Tensor)
    ]


def fisher_embedding(
    extractor: FeatureExtractor,
    folds: Sequence[tuple[Any, list[Any]]],
    seed: int,
    ctx: TaskContext | None = None,
    batch_rows: int = FISHER_BATCH_ROWS,
    done: int = 0,
    total: int = 0,
) -> tuple[np.ndarray, int]:
    """The per-filter diagonal Fisher of the probe's weights (see the module docstring).

    Args:
        extractor: The probe (a private copy: its ``requires_grad`` flags change).
        folds: ``(head, rows)`` pairs: each head scores its rows.
        seed: Seeds the Monte Carlo labels.
        ctx: Progress and cancellation.
        batch_rows: Rows per minibatch.
        done: Progress steps done before this pass.
        total: Progress steps of the whole task.

    Returns:
        The embedding (float32) and the number of layers it covers.
    """
    import torch

    module = extractor.torch_module()
    module.eval()
    layers = fisher_layers(module)
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    for _, weight in layers:
        weight.requires_grad_(True)
    sums: list[Any] = [None] * len(layers)
    generator = torch.Generator().manual_seed(seed)
    batches = 0
    for head, rows in folds:
        head = head.to(extractor.device).requires_grad_(False)
        for start in range(0, len(rows), batch_rows):
            for _ in range(MONTE_CARLO_SAMPLES):
                if ctx is not None:
                    ctx.check_cancelled()
                    ctx.progress(done + batches, total, "fisher")
                module.zero_grad(set_to_none=True)
                batch = extractor.preprocess(rows[start : start + batch_rows])
                with torch.enable_grad():
                    features = extractor.forward(to_device(batch, extractor.device))
                    logits = head(features.float().reshape(features.shape[0], -1))
                    probabilities = torch.softmax(logits.detach().cpu().double(), dim=1)
                    targets = torch.multinomial(probabilities, 1, generator=generator).squeeze(1)
                    loss = torch.nn.functional.cross_entropy(logits, targets.to(logits.device))
                    loss.backward()
                for i, (_, weight) in enumerate(layers):
                    if weight.grad is not None:
                        square = weight.grad.detach().double() ** 2
                        sums[i] = square if sums[i] is None else sums[i] + square
                batches += 1
    module.zero_grad(set_to_none=True)
    parts = [
        (s / max(batches, 1)).reshape(s.shape[0], -1).mean(dim=1).cpu().numpy()
        for s in sums
        if s is not None
    ]
    if not parts:
        raise WorkerError(f"model {extractor.spec.name!r} has no convolution or linear weights")
    return np.concatenate(parts).astype(np.float32), len(parts)


def cross_fit(
    features: np.ndarray, labels: np.ndarray, num_classes: int, seed: int
) -> tuple[list[Any], list[np.ndarray]]:
    """One head per fold, fitted on the other folds' rows; and each fold's row positions.

    Row ``i`` of the sample is in fold ``i % HEAD_FOLDS``.
    """
    fold = np.arange(len(labels)) % HEAD_FOLDS
    heads, members = [], []
    for k in range(HEAD_FOLDS):
        train = fold != k
        heads.append(fit_head(features[train], labels[train], num_classes, seed))
        members.append(np.flatnonzero(fold == k))
    return heads, members


def task2vec_payload(payload: dict[str, Any], ctx: TaskContext | None = None) -> dict[str, Any]:
    """Run the ``task2vec`` kind (see the module docstring).

    Raises:
        WorkerError: a bad payload, an unreadable dataset, a probe that is not a torch
            module, or a dataset (or sample) with fewer than 2 rows or classes.
    """
    task = Task2VecPayload.from_json(payload)
    probe, dataset = task.model, task.dataset
    cap = task.rows
    sample_rows = _int(payload, "sample_rows", 256, 1)
    seed = task.seed
    device = device_of(payload, ctx)
    data = read(dataset)
    rows = len(data) if cap is None else min(cap, len(data))
    if rows < 2:
        raise WorkerError(f"dataset {dataset.name!r} has {rows} row(s); Task2Vec needs at least 2")
    if len(np.unique(data.labels[:rows])) < 2:
        raise WorkerError(
            f"dataset {dataset.name!r} has a single class in its {rows} row(s); "
            "Task2Vec fits a classifier and needs at least 2"
        )
    indices = sample_indices(rows, sample_rows, seed)
    classes, labels = np.unique(data.labels[indices], return_inverse=True)
    if len(classes) < 2:
        raise WorkerError(
            f"the {len(indices)} rows sampled from dataset {dataset.name!r} hold a single "
            "class; sample more rows"
        )
    extractor = private_model(probe, device)
    sample = _rows(data, indices)
    feature_batches = -(-len(sample) // extractor.batch_size)
    fold_rows = [len(range(k, len(sample), HEAD_FOLDS)) for k in range(HEAD_FOLDS)]
    fisher_batches = sum(-(-n // FISHER_BATCH_ROWS) for n in fold_rows) * MONTE_CARLO_SAMPLES
    total = feature_batches + fisher_batches
    batches = iter(range(feature_batches))

    def check() -> None:
        if ctx is not None:
            ctx.check_cancelled()
            ctx.progress(next(batches, feature_batches), total, "features")

    t0 = time.perf_counter()
    features = frozen_features(extractor, sample, check)
    t1 = time.perf_counter()
    heads, members = cross_fit(features, labels, len(classes), seed)
    t2 = time.perf_counter()
    folds = [(h, [sample[int(i)] for i in m]) for h, m in zip(heads, members, strict=True)]
    embedding, layers = fisher_embedding(
        extractor, folds, seed, ctx, done=feature_batches, total=total
    )
    t3 = time.perf_counter()
    if ctx is not None:
        ctx.progress(total, total, "done")
    return {
        "embedding": [float(v) for v in embedding],
        "dim": int(embedding.shape[0]),
        "probe_key": probe.key,
        "dataset_key": dataset.key,
        "sample_rows": len(indices),
        "num_classes": len(classes),
        "layers": layers,
        "features_s": t1 - t0,
        "fit_s": t2 - t1,
        "fisher_s": t3 - t2,
    }


@task_kind("task2vec")
def task2vec(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Embed a dataset with Task2Vec: the probe's per-filter Fisher on a seeded sample."""
    return task2vec_payload(payload, ctx)


__all__ = [
    "cross_fit",
    "fisher_embedding",
    "fisher_layers",
    "sample_indices",
    "task2vec",
    "task2vec_payload",
]
