"""Model and dataset specs: what a worker needs to load a model or read a dataset.

A spec is boundary data (frozen, JSON values only). Its identity, :attr:`ModelSpec.key` and
:attr:`DatasetSpec.key`, is the content hash of the part that decides the numbers a worker
computes (family and loader parameters; reader kind and its parameters). Names, batch sizes
and catalog extras (license, upstream accuracy, ...) are not part of the identity, so
renaming a model or changing its batch size never invalidates cached features.

Files that ship inside an installed Python distribution are referred to as
``{"distribution": NAME, "path": PATH-INSIDE-IT}`` so that specs, and so their hashes, are
the same on every machine; :func:`resolve_file` turns such a reference into a path.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from shift.errors import CatalogError
from shift.hashing import canonical_bytes, content_hash


class Modality(StrEnum):
    """What a model reads, or what a dataset's rows are."""

    VISION = "vision"
    TEXT = "text"


def _modality(value: Any, what: str) -> Modality:
    try:
        return Modality(value)
    except ValueError:
        known = ", ".join(m.value for m in Modality)
        raise CatalogError(f"{what} has modality {value!r}; known: {known}") from None


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{what} needs a non-empty name, got {value!r}")
    return value


def _params(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogError(f"{what} must be an object, got {type(value).__name__}")
    try:
        canonical_bytes(value)
    except Exception as error:  # SchedulerError from hashing: say it in catalog terms
        raise CatalogError(f"{what}: {error}") from None
    return value


@dataclass(frozen=True)
class ModelSpec:
    """How to load one model and turn inputs into feature vectors.

    Attributes:
        name: Catalog name (``efficientnet-lite0``).
        family: Loader family registered in ``workers.models`` (``timm``, ``huggingface``,
            ``onnx_bert``, ``local``).
        modality: ``vision`` or ``text``.
        loader: Family-specific load parameters (JSON values), e.g. ``{"arch":
            "tf_efficientnet_lite0", "checkpoint": {...}}``.
        batch_size: Rows per forward pass on a worker.
        info: Catalog extras that do not change the features (source, license,
            upstream_accuracy, input_size, tags, ...).
    """

    name: str
    family: str
    modality: Modality
    loader: dict[str, Any]
    batch_size: int = 32
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _name(self.name, "a model spec")
        _name(self.family, f"model {self.name!r}'s family")
        object.__setattr__(self, "modality", _modality(self.modality, f"model {self.name!r}"))
        _params(self.loader, f"model {self.name!r}'s loader")
        _params(self.info, f"model {self.name!r}'s info")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise CatalogError(f"model {self.name!r}: batch_size must be an integer")
        if self.batch_size < 1:
            raise CatalogError(f"model {self.name!r}: batch_size must be positive")

    def identity(self) -> dict[str, Any]:
        """The part of the spec that decides the features (hashed into :attr:`key`)."""
        return {"family": self.family, "modality": self.modality.value, "loader": self.loader}

    @cached_property
    def key(self) -> str:
        """Content hash of :meth:`identity`: names the model's features everywhere (computed
        once per spec: a spec is frozen, and a plan asks for it per task)."""
        return content_hash(self.identity())

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-able form (what task payloads and the catalog carry)."""
        return {
            "name": self.name,
            "family": self.family,
            "modality": self.modality.value,
            "loader": self.loader,
            "batch_size": self.batch_size,
            "info": self.info,
        }

    @classmethod
    def from_json(cls, value: Any) -> ModelSpec:
        """Build a spec from its JSON form.

        Raises:
            CatalogError: a field is missing, unknown or of the wrong type.
        """
        body = _object(value, "a model spec", {"name", "family", "modality", "loader"})
        extra = set(body) - {"name", "family", "modality", "loader", "batch_size", "info"}
        if extra:
            raise CatalogError(f"a model spec has unknown field(s) {', '.join(sorted(extra))}")
        return cls(
            body["name"],
            body["family"],
            body["modality"],
            body["loader"],
            body.get("batch_size", 32),
            body.get("info", {}),
        )

    def __hash__(self) -> int:
        return hash(self.key)


@dataclass(frozen=True)
class DatasetSpec:
    """How to read one dataset (one split) as a fixed, seeded sequence of labelled rows.

    Attributes:
        name: Catalog name (``photos-train``).
        reader: Reader kind registered in ``workers.readers`` (``bundled``,
            ``image_folder``, ``csv``, ``npz``, ``hf_disk``).
        params: Reader parameters (JSON values): paths, columns, split, ``seed``.
        modality: ``vision`` or ``text`` when known in advance.
        info: Catalog extras that do not change the rows (description, license, source).
    """

    name: str
    reader: str
    params: dict[str, Any]
    modality: Modality | None = None
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        _name(self.name, "a dataset spec")
        _name(self.reader, f"dataset {self.name!r}'s reader")
        _params(self.params, f"dataset {self.name!r}'s params")
        _params(self.info, f"dataset {self.name!r}'s info")
        if self.modality is not None:
            object.__setattr__(self, "modality", _modality(self.modality, f"dataset {self.name!r}"))

    def identity(self) -> dict[str, Any]:
        """The part of the spec that decides the rows (hashed into :attr:`key`)."""
        return {"reader": self.reader, "params": self.params}

    @cached_property
    def key(self) -> str:
        """Content hash of :meth:`identity`: names the dataset's rows everywhere (computed
        once per spec)."""
        return content_hash(self.identity())

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        return {
            "name": self.name,
            "reader": self.reader,
            "params": self.params,
            "modality": None if self.modality is None else self.modality.value,
            "info": self.info,
        }

    @classmethod
    def from_json(cls, value: Any) -> DatasetSpec:
        """Build a spec from its JSON form.

        Raises:
            CatalogError: a field is missing, unknown or of the wrong type.
        """
        body = _object(value, "a dataset spec", {"name", "reader", "params"})
        extra = set(body) - {"name", "reader", "params", "modality", "info"}
        if extra:
            raise CatalogError(f"a dataset spec has unknown field(s) {', '.join(sorted(extra))}")
        return cls(
            body["name"], body["reader"], body["params"], body.get("modality"), body.get("info", {})
        )

    def __hash__(self) -> int:
        return hash(self.key)


def _object(value: Any, what: str, required: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogError(f"{what} must be an object, got {type(value).__name__}")
    missing = sorted(required - set(value))
    if missing:
        raise CatalogError(f"{what} lacks field(s) {', '.join(missing)}")
    return value


def packaged(distribution: str, path: str) -> dict[str, str]:
    """A reference to a file inside an installed distribution (see :func:`resolve_file`)."""
    return {"distribution": distribution, "path": path}


def resolve_file(ref: Any) -> Path:
    """Turn a file reference into an existing path.

    A reference is ``{"distribution": NAME, "path": P}`` (a file shipped in an installed
    package), ``{"path": P}`` or a plain string (a file on disk).

    Raises:
        CatalogError: the reference is malformed, the distribution is not installed (the
            message says what to ``pip install``), or the file does not exist.
    """
    if isinstance(ref, str):
        ref = {"path": ref}
    if not isinstance(ref, dict) or not isinstance(ref.get("path"), str):
        raise CatalogError(f"a file reference needs a 'path', got {ref!r}")
    distribution = ref.get("distribution")
    if distribution is None:
        path = Path(ref["path"]).expanduser()
    else:
        try:
            dist = importlib.metadata.distribution(str(distribution))
        except importlib.metadata.PackageNotFoundError:
            raise CatalogError(
                f"package {distribution!r} is not installed; "
                f"install it with `pip install {distribution}` (or shift's 'zoo' extra)"
            ) from None
        path = Path(str(dist.locate_file(ref["path"])))
    if not path.exists():
        where = f" in package {distribution!r}" if distribution else ""
        raise CatalogError(f"file {ref['path']!r}{where} does not exist")
    return path
