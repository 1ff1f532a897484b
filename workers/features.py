"""The feature store: features per (model key, dataset key, block of rows) on disk.

Layout under the store root: ``<model key>/<dataset key>/b<BLOCK_ROWS>/`` holds
``block-<index>.npy`` (float32, rows x feature_dim), ``labels-<index>.npy`` (int64 label ids
of the dataset) and ``meta.json`` (num_rows, classes, feature_dim). The block size is fixed
and independent of any query's chunk size, so every query shares the same blocks. Each file
is written to a temporary name and renamed into place; a block counts as present once its
feature file exists (labels are renamed first).

A worker whose store is not the broker's (another host, no shared path) has a
:class:`RemoteBlocks` attached to its store root (:func:`attach_remote`): a block missing
here is fetched before anyone computes it, and every block written here is uploaded, so
blocks reach wherever later tasks need them. A fetched block is verified
(:func:`shift.blocks.check_block`: digest, sizes, dtypes) before it is written, atomically.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from shift.blockfiles import read_block, read_store_id, write_received
from shift.blocks import BlockData, BlockRef
from shift.errors import ProtocolError, WorkerError
from shift.payloads import BLOCK_ROWS
from workers.atomic import atomic_write

log = logging.getLogger(__name__)


class RemoteBlocks(Protocol):
    """Where blocks this store lacks come from and the blocks it writes go to."""

    def fetch(self, refs: Sequence[BlockRef]) -> list[BlockData]:
        """The blocks the remote side has, of those asked for (called off the event loop)."""
        ...

    def wrote(self, data: BlockData) -> None:
        """A block was written here (called off the event loop)."""
        ...


_REMOTES: dict[Path, RemoteBlocks] = {}


def attach_remote(root: str | Path, remote: RemoteBlocks | None) -> None:
    """Attach (or, with ``None``, detach) the remote side of the store at ``root``."""
    key = Path(root).expanduser().absolute()
    if remote is None:
        _REMOTES.pop(key, None)
    else:
        _REMOTES[key] = remote


def store_id(root: str | Path) -> str:
    """The id of the store at ``root`` (see :func:`shift.blockfiles.read_store_id`)."""
    return read_store_id(Path(root))


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


def _ref(model_key: str, dataset_key: str, block: int) -> BlockRef | None:
    """The block's wire name; ``None`` for keys that cannot travel (not content hashes)."""
    try:
        return BlockRef(model_key, dataset_key, block)
    except ProtocolError:
        return None


class FeatureStore:
    """Blocks of features on disk, shared by every worker that sees the same path.

    Args:
        root: The store's directory (created on first write).
        block_rows: Rows per block (:data:`BLOCK_ROWS`; part of the layout).
    """

    def __init__(self, root: str | Path, block_rows: int = BLOCK_ROWS) -> None:
        self.root = Path(root).expanduser()
        self.block_rows = block_rows
        self.remote = _REMOTES.get(self.root.absolute())

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
        ref = _ref(model_key, dataset_key, block) if self.remote is not None else None
        if self.remote is not None and ref is not None:
            self.remote.wrote(self.read_block(ref))

    def read_block(self, ref: BlockRef) -> BlockData:
        """A stored block's bytes with their digest.

        Raises:
            WorkerError: the block is not stored.
        """
        data = read_block(self.root, ref, self.block_rows)
        if data is None:
            raise WorkerError(f"block {ref} is not in the feature store {self.root}")
        return data

    def write_received(self, data: BlockData) -> bool:
        """Store a block received from elsewhere once it checks out (see
        :func:`shift.blockfiles.write_received`); False when it was already here.

        Raises:
            ProtocolError: the bytes do not match the digest or are not a valid block.
        """
        return write_received(self.root, data, self.block_rows)

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
        """Blocks needed for rows ``[start, stop)`` that are not on disk (fetched first when a
        remote side is attached)."""
        if stop <= start:
            return []
        first, last = start // self.block_rows, (stop - 1) // self.block_rows
        missing = [
            b for b in range(first, last + 1) if not self.has_block(model_key, dataset_key, b)
        ]
        refs = [_ref(model_key, dataset_key, b) for b in missing] if self.remote else []
        if refs and None not in refs:
            self._fetch([r for r in refs if r is not None])
            missing = [b for b in missing if not self.has_block(model_key, dataset_key, b)]
        return missing

    def _fetch(self, refs: list[BlockRef]) -> None:
        if self.remote is None:
            return
        for data in self.remote.fetch(refs):
            try:
                self.write_received(data)
            except ProtocolError as error:
                log.warning("refused a fetched block: %s", error)

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
