"""Dataset readers: a registry of reader kinds and the fixed-order :class:`Dataset`.

``open_dataset(spec)`` is what task kinds call: it looks up the spec's reader kind, reads
with the configured data roots and keeps the last few datasets of a worker process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from shift.paths import confine, data_roots
from shift.specs import DatasetSpec
from workers.readers import (  # noqa: F401  (register the reader kinds)
    bundled,
    files,
    tfds,
    torchvision_formats,
    vtab,
)
from workers.readers.base import READERS, Dataset, ReaderKind, get_reader, register_reader

__all__ = [
    "READERS",
    "Dataset",
    "ReaderKind",
    "confine",
    "data_roots",
    "get_reader",
    "open_dataset",
    "register_reader",
]

_CACHE_SIZE = 4
_cache: OrderedDict[tuple[str, tuple[Path, ...]], Dataset] = OrderedDict()
_lock = threading.Lock()


def open_dataset(spec: DatasetSpec, roots: tuple[Path, ...] | None = None) -> Dataset:
    """Read a dataset (cached per process: the last few specs stay open).

    Args:
        spec: The dataset spec.
        roots: Data roots paths must lie in; the ``data_roots`` setting when omitted.

    Raises:
        CatalogError: unknown reader kind, bad parameters, or a path outside the roots.
    """
    roots = data_roots() if roots is None else roots
    key = (spec.key, roots)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    dataset = get_reader(spec.reader).read(spec.params, roots)
    with _lock:
        _cache[key] = dataset
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return dataset
