"""The feature store: features per (model key, dataset key, block of rows) on disk.

Layout under the store root: ``<model key>/<dataset key>/b<BLOCK_ROWS>/`` holds
``block-<index>.npy`` (float32, rows x feature_dim), ``labels-<index>.npy`` (int64 label ids
of the dataset) and ``meta.json`` (num_rows, classes, feature_dim). The block size is fixed
and independent of any query's chunk size, so every query shares the same blocks. Each file
is written to a temporary name and renamed into place; a block counts as present once its
feature file exists (labels are renamed first).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import WorkerError
from shift.payloads import BLOCK_ROWS
from workers.atomic import atomic_write


def block_count(num_rows: int, block_rows: int = BLOCK_ROWS) -> int:
    """Number of blocks that cover ``num_rows`` rows."""
    return -(-num_rows // block_rows)


def block_range(block: int, num_rows: int, block_rows: int = BLOCK_ROWS) -> tuple[int, int]:
    """The rows ``[start, stop)`` of one block.

    Raises:
        WorkerError: the block is outside the dataset.
    """
    if not 0 <= block < block_count(num_rows, block_rows):
        raise WorkerError(
            f"block {block} is outside a dataset of {num_rows} rows "
            f"({block_count(num_rows, block_rows)} blocks of {block_rows})"
        )
    start = block * block_rows
    return start, min(start + block_rows, num_rows)


class FeatureStore:
    """Blocks of features on disk, shared by every worker that sees the same path.

    Args:
        root: The store's directory (created on first write).
        block_rows: Rows per block (:data:`BLOCK_ROWS`; part of the layout).
    """

    def __init__(self, root: str | Path, block_rows: int = BLOCK_ROWS) -> None:
        self.root = Path(root).expanduser()
        self.block_rows = block_rows

    def folder(self, model_key: str, dataset_key: str) -> Path:
        """The folder of one (model, dataset) pair."""
        return self.root / model_key / dataset_key / f"b{self.block_rows}"

    def _paths(self, model_key: str, dataset_key: str, block: int) -> tuple[Path, Path]:
        folder = self.folder(model_key, dataset_key)
        return folder / f"block-{block:06d}.npy", folder / f"labels-{block:06d}.npy"

    def has_block(self, model_key: str, dataset_key: str, block: int) -> bool:
        """True when the block is complete on disk."""
        return self._paths(model_key, dataset_key, block)[0].exists()

    def write_block(
        self,
        model_key: str,
        dataset_key: str,
        block: int,
        features: np.ndarray,
        labels: np.ndarray,
        meta: dict[str, Any],
    ) -> None:
        """Store one block (labels, meta, then features; each atomically)."""
        if len(features) != len(labels):
            raise WorkerError(f"block {block}: {len(features)} feature rows, {len(labels)} labels")
        feature_path, label_path = self._paths(model_key, dataset_key, block)
        atomic_write(label_path, lambda h: np.save(h, np.asarray(labels, dtype=np.int64)))
        body = json.dumps(meta, sort_keys=True).encode()
        atomic_write(feature_path.parent / "meta.json", lambda h: h.write(body))
        atomic_write(feature_path, lambda h: np.save(h, np.asarray(features, dtype=np.float32)))

    def meta(self, model_key: str, dataset_key: str) -> dict[str, Any]:
        """The pair's ``meta.json`` (num_rows, classes, feature_dim).

        Raises:
            WorkerError: nothing has been stored for the pair.
        """
        path = self.folder(model_key, dataset_key) / "meta.json"
        if not path.exists():
            raise WorkerError(f"no features stored for model {model_key} on dataset {dataset_key}")
        value: dict[str, Any] = json.loads(path.read_text())
        return value

    def missing_blocks(self, model_key: str, dataset_key: str, start: int, stop: int) -> list[int]:
        """Blocks needed for rows ``[start, stop)`` that are not on disk."""
        if stop <= start:
            return []
        first, last = start // self.block_rows, (stop - 1) // self.block_rows
        return [b for b in range(first, last + 1) if not self.has_block(model_key, dataset_key, b)]

    def read_rows(
        self, model_key: str, dataset_key: str, start: int, stop: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features and label ids of rows ``[start, stop)``.

        Raises:
            WorkerError: a needed block is missing (the message lists them).
        """
        missing = self.missing_blocks(model_key, dataset_key, start, stop)
        if missing:
            raise WorkerError(
                f"features of model {model_key} on dataset {dataset_key} lack blocks {missing}"
            )
        features: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        for block in range(start // self.block_rows, -(-stop // self.block_rows)):
            feature_path, label_path = self._paths(model_key, dataset_key, block)
            lo = max(start - block * self.block_rows, 0)
            hi = min(stop - block * self.block_rows, self.block_rows)
            features.append(np.load(feature_path, mmap_mode="r")[lo:hi])
            labels.append(np.load(label_path)[lo:hi])
        if not features:
            return np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=np.int64)
        return np.ascontiguousarray(np.concatenate(features)), np.concatenate(labels)
