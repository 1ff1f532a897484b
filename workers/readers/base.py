"""The reader-kind registry and :class:`Dataset`, the fixed, seeded sequence of rows.

A reader kind turns a dataset spec's parameters into a :class:`Dataset`. Row ``i`` is always
the same row: readers enumerate their source in a sorted order and the dataset applies a
permutation seeded by the spec (``seed``, default 0), so prefixes mix the classes and caches
keyed by row ranges stay valid. Label values of any JSON scalar type are mapped to stable
ids by sorting the distinct values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import CatalogError
from shift.parameters import Parameter
from shift.registry import lookup, register_once, summary

ReaderFunction = Callable[[dict[str, Any], tuple[Path, ...]], "Dataset"]


def seeded_order(n: int, seed: int | None) -> np.ndarray:
    """The row order of ``n`` source rows: a permutation seeded by ``seed`` (None: as is)."""
    if seed is None:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng(int(seed)).permutation(n).astype(np.int64)


def label_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value))


def python_label(value: Any) -> Any:
    """A label as a plain JSON scalar (numpy scalars become Python ones).

    Raises:
        CatalogError: the label is missing (None or NaN) or not a scalar.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and value != value):
        raise CatalogError("a row has no label; every row needs one")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, bool | int | float | str):
        raise CatalogError(f"labels must be strings or numbers, got {type(value).__name__}")
    return value


class Dataset:
    """A labelled dataset whose row ``i`` is always the same row.

    Args:
        modality: ``vision`` (rows are RGB ``PIL.Image`` s) or ``text`` (rows are strings).
        load: Loads source row ``j`` (before reordering).
        raw_labels: The label of every source row.
        order: Source index of each row (see :func:`seeded_order`); a split may use a
            subset of the source rows.
    """

    def __init__(
        self,
        modality: str,
        load: Callable[[int], Any],
        raw_labels: Sequence[Any],
        order: np.ndarray,
    ) -> None:
        if len(order) and not 0 <= int(order.min()) <= int(order.max()) < len(raw_labels):
            raise CatalogError("a dataset's order points outside its source rows")
        values = [python_label(raw_labels[int(j)]) for j in order]
        self.modality = modality
        self.classes: tuple[Any, ...] = tuple(sorted(set(values), key=label_key))
        ids = {value: i for i, value in enumerate(self.classes)}
        self.order = order
        self.labels: np.ndarray = np.array([ids[v] for v in values], dtype=np.int64)
        self._load = load

    def __len__(self) -> int:
        return len(self.order)

    @property
    def num_classes(self) -> int:
        """Number of distinct labels."""
        return len(self.classes)

    def rows(self, start: int, stop: int) -> list[Any]:
        """Rows ``start`` to ``stop`` (exclusive), in the dataset's fixed order.

        Raises:
            CatalogError: the range is outside the dataset.
        """
        if not 0 <= start <= stop <= len(self):
            raise CatalogError(f"rows {start}:{stop} are outside a dataset of {len(self)} rows")
        return [self._load(int(j)) for j in self.order[start:stop]]

    def describe(self) -> dict[str, Any]:
        """Measured facts: size, number of classes, class values, modality."""
        return {
            "num_rows": len(self),
            "num_classes": self.num_classes,
            "classes": list(self.classes),
            "modality": self.modality,
        }


@dataclass(frozen=True)
class ReaderKind:
    """A registered reader kind.

    Attributes:
        name: The name dataset specs use in their ``reader`` field.
        read: ``read(params, roots) -> Dataset``.
        help: One line for the docs and ``shift sources``.
        params: The parameters it reads (``shift sources`` and docs/sources.md show them).
    """

    name: str
    read: ReaderFunction
    help: str
    params: tuple[Parameter, ...] = ()


READERS: dict[str, ReaderKind] = {}
"""Every registered reader kind by name."""


def register_reader(
    name: str, params: tuple[Parameter, ...] = ()
) -> Callable[[ReaderFunction], ReaderFunction]:
    """Register a function as the reader kind ``name``, reading the declared ``params``.

    Raises:
        CatalogError: ``name`` is already registered.
    """

    def register(function: ReaderFunction) -> ReaderFunction:
        register_once(
            READERS,
            name,
            ReaderKind(name, function, summary(function), params),
            "reader kind",
            CatalogError,
        )
        return function

    return register


def get_reader(name: str) -> ReaderKind:
    """Look up a reader kind.

    Raises:
        CatalogError: unknown kind; the message lists the known ones and the closest.
    """
    return lookup(READERS, name, "reader", CatalogError)


def param(
    params: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...
) -> Any:
    """Read one reader parameter, checking its type.

    Raises:
        CatalogError: the parameter is missing (and has no default) or has the wrong type.
    """
    if name not in params:
        if default is ...:
            raise CatalogError(f"reader parameter {name!r} is required")
        return default
    value = params[name]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise CatalogError(f"reader parameter {name!r} has the wrong type: {value!r}")
    return value
