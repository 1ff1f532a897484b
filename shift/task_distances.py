"""Task2Vec (Achille et al., ICCV 2019) as data: task specs, distances and a cost model.

A dataset's Task2Vec embedding is the diagonal Fisher information of a fixed *probe*
network's weights, with a linear head fitted to the dataset, averaged per filter (one value
per output unit of every convolution and linear layer). The ``task2vec`` worker kind
(``workers.task2vec``) computes it on a seeded sample of the dataset's rows; this module
builds its task and compares the embeddings. Pure: numpy only.

Distance (the paper's normalised cosine distance): for embeddings ``a`` and ``b``,
``cos_dist(a / (a + b), b / (a + b))``, element-wise division. Scaling either embedding as
a whole leaves it unchanged, so only the *shape* of the Fisher across filters counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shift.payloads import Task2VecPayload
from shift.planner import DatasetEntry
from shift.specs import ModelSpec
from shift.tasks import TaskSpec

KIND = Task2VecPayload.KIND
"""The worker task kind."""

SAMPLE_ROWS = 256
"""Rows sampled per dataset (fewer when the dataset is smaller)."""

FISHER_BATCH_ROWS = 16
"""Rows per Monte Carlo Fisher minibatch (one backward pass each)."""

HEAD_FOLDS = 2
"""Folds of the sample: each row's Fisher uses a head fitted on the other folds' rows (a head
scores the rows it was fitted on with probability ~1, where the Fisher vanishes into noise)."""

MONTE_CARLO_SAMPLES = 1
"""Labels drawn from the head's softmax per row and Fisher pass."""

FORWARD_PASSES = 1
"""Forward passes per sampled row to compute the frozen features the head is fitted on."""

FISHER_PASSES = 3
"""Forward-pass equivalents per sampled row of the Fisher pass (forward plus backward)."""

EPSILON = 1e-12
"""Denominators below this count as zero."""


METHOD = {
    "version": 1,
    "fisher_batch_rows": FISHER_BATCH_ROWS,
    "head_folds": HEAD_FOLDS,
    "monte_carlo": MONTE_CARLO_SAMPLES,
}
"""The method's settings, carried in every payload (the worker reads the constants above):
changing any of them changes every task's content hash, so no stale embedding is reused."""


def task2vec_task(
    probe: ModelSpec, entry: DatasetEntry, sample_rows: int = SAMPLE_ROWS, seed: int = 0
) -> TaskSpec:
    """The ``task2vec`` task embedding one dataset with one probe model.

    Args:
        probe: The probe network (its Fisher is the embedding).
        entry: The dataset and its measured size; a ``max_rows`` cap limits the rows
            sampled from to the first ``cap`` rows.
        sample_rows: Rows to sample (fewer when the dataset has fewer).
        seed: Seeds the row sample, the head and the Monte Carlo labels.
    """
    payload = Task2VecPayload(
        probe, entry.spec, entry.cap, int(sample_rows), int(seed), dict(METHOD)
    )
    return payload.task()


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``1 - cos(a, b)``, 0 when both vectors are zero and 1 when only one is."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < EPSILON and nb < EPSILON:
        return 0.0
    if na < EPSILON or nb < EPSILON:
        return 1.0
    return float(max(0.0, 1.0 - float(np.dot(a, b)) / (na * nb)))


def task2vec_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The normalised cosine distance of two non-negative Fisher embeddings.

    Where both entries are zero (``a + b == 0``) both normalised entries are 0.

    Raises:
        ValueError: the embeddings differ in length.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embeddings of different lengths: {a.size} and {b.size}")
    total = a + b
    safe = np.where(total > EPSILON, total, 1.0)
    keep = total > EPSILON
    return cosine_distance(np.where(keep, a / safe, 0.0), np.where(keep, b / safe, 0.0))


def distance_matrix(embeddings: Sequence[np.ndarray]) -> np.ndarray:
    """Pairwise :func:`task2vec_distance` of embeddings: exactly symmetric, zero diagonal.

    Raises:
        ValueError: the embeddings differ in length.
    """
    count = len(embeddings)
    out = np.zeros((count, count), dtype=np.float64)
    for i in range(count):
        for j in range(i + 1, count):
            out[i, j] = out[j, i] = task2vec_distance(embeddings[i], embeddings[j])
    return out


def estimate_seconds(sample_rows: int, forward_row_s: float | None) -> float | None:
    """Estimated seconds of one task: a features pass and a Fisher pass over the sample.

    Args:
        sample_rows: Rows the task samples.
        forward_row_s: The probe's measured forward seconds per row (``None``: unknown).
    """
    if forward_row_s is None:
        return None
    passes = FORWARD_PASSES + FISHER_PASSES * MONTE_CARLO_SAMPLES
    return float(sample_rows) * passes * float(forward_row_s)


def sample_size(rows: int, sample_rows: int = SAMPLE_ROWS) -> int:
    """Rows a task samples from a dataset of ``rows`` rows."""
    return max(0, min(int(rows), int(sample_rows)))


__all__ = [
    "FISHER_BATCH_ROWS",
    "HEAD_FOLDS",
    "KIND",
    "MONTE_CARLO_SAMPLES",
    "SAMPLE_ROWS",
    "distance_matrix",
    "estimate_seconds",
    "sample_size",
    "task2vec_distance",
    "task2vec_task",
]
