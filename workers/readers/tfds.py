"""The ``tfds`` reader kind: TensorFlow Datasets already prepared on disk, read without
TensorFlow.

A prepared dataset lives in ``<data_dir>/<name>[/<config>]/<version>/``: a
``dataset_info.json`` that lists its splits and ``<name>-<split>.tfrecord-XXXXX-of-YYYYY``
shards of serialised ``tf.train.Example`` records (:mod:`workers.readers.tfrecord`). A split
is a TFDS split expression: ``train``, ``train[:800]``, ``test[50%:]``,
``train[:800]+validation[:200]``; percentages round to the closest record as TFDS does.
Images are the encoded PNG or JPEG bytes of the image feature, decoded when a row is read.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import CatalogError
from shift.parameters import REQUIRED, Parameter
from shift.paths import confine
from workers.readers.base import Dataset, param, register_reader, seeded_order
from workers.readers.tfrecord import Feature, check_record, parse_example, read_framed

DEFAULT_DATA_DIR = "tensorflow_datasets"
"""Where a dataset is looked for when no ``data_dir`` is given: this folder under each data
root (TFDS's own default is ``~/tensorflow_datasets``)."""

_PART = re.compile(r"^\s*([\w.-]+)\s*(?:\[\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*\])?\s*$")


@dataclass(frozen=True)
class Prepared:
    """A prepared dataset folder: its path and split sizes (records per split)."""

    folder: Path
    splits: dict[str, int]

    def shards(self, split: str) -> list[Path]:
        """The split's shard files in order."""
        return sorted(self.folder.glob(f"*-{split}.tfrecord-*-of-*"))


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".")) if re.fullmatch(r"\d+(\.\d+)*", name) else ()


def find_prepared(name: str, data_dir: Path, roots: tuple[Path, ...]) -> Prepared:
    """The folder of ``name`` (``cifar10``, ``cifar10:3.0.2``, ``eurosat/rgb:2.0.0``) in
    ``data_dir``, confined to the data roots.

    Without a version the highest prepared one is used.

    Raises:
        CatalogError: the dataset, the version or its ``dataset_info.json`` is missing, or
            the folder resolves outside the data roots.
    """
    base, _, version = name.partition(":")
    if ".." in Path(base).parts or Path(base).is_absolute():
        raise CatalogError(f"TFDS name {name!r} must be a dataset name, not a path")
    home = data_dir / base
    how = (
        f"prepare it with TensorFlow Datasets elsewhere (tfds.builder({base!r}, "
        f"data_dir=...).download_and_prepare()) and copy the folder there; shift never "
        "downloads at run time"
    )
    versions = sorted(
        (p.name for p in home.iterdir() if p.is_dir() and _version_key(p.name))
        if home.is_dir()
        else [],
        key=_version_key,
    )
    if not versions:
        raise CatalogError(f"TFDS dataset {base!r} is not prepared in {str(home)!r}; {how}")
    version = version or versions[-1]
    if version not in versions:
        raise CatalogError(
            f"TFDS dataset {base!r} has no version {version} in {str(home)!r} (prepared: "
            f"{', '.join(versions)}); {how}"
        )
    folder = confine(home / version, roots)
    info_path = folder / "dataset_info.json"
    if not info_path.is_file():
        raise CatalogError(f"{str(folder)!r} has no dataset_info.json; {how}")
    try:
        info = json.loads(info_path.read_text())
        splits = {
            str(s["name"]): sum(int(n) for n in s.get("shardLengths", []))
            for s in info.get("splits", [])
        }
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise CatalogError(f"{str(info_path)!r} is not a TFDS dataset_info.json: {error}") from None
    return Prepared(folder, splits)


def _boundary(text: str | None, size: int, default: int) -> int:
    if text is None:
        return default
    value = round(int(text[:-1]) * size / 100) if text.endswith("%") else int(text)
    if value < 0:
        value += size
    return min(max(value, 0), size)


def split_ranges(expression: str, sizes: dict[str, int]) -> list[tuple[str, int, int]]:
    """A TFDS split expression as ``(split, start, stop)`` record ranges.

    Raises:
        CatalogError: a malformed expression or a split the dataset lacks.
    """
    ranges = []
    for part in expression.split("+"):
        match = _PART.match(part)
        if match is None:
            raise CatalogError(
                f"split {expression!r}: {part!r} is not a TFDS split such as 'train', "
                "'train[:800]' or 'test[50%:]'"
            )
        split, start, stop = match.groups()
        if split not in sizes:
            raise CatalogError(
                f"split {expression!r}: the dataset has no split {split!r} "
                f"(splits: {', '.join(sizes)})"
            )
        size = sizes[split]
        ranges.append((split, _boundary(start, size, 0), _boundary(stop, size, size)))
    return ranges


LabelFunction = Callable[[dict[str, Feature]], int]
ImageFunction = Callable[[Any], Any]


def scalar_feature(features: dict[str, Feature], key: str) -> int:
    value = features.get(key)
    if not isinstance(value, np.ndarray) or value.size != 1:
        keys = ", ".join(sorted(features))
        raise CatalogError(f"records have no one-value feature {key!r} (features: {keys})")
    return int(value.reshape(-1)[0])


def decode_image(features: dict[str, Feature], key: str) -> Any:
    """The image feature ``key`` of a record as a PIL image (RGB, or as stored for gray).

    Raises:
        CatalogError: the feature is missing or not an encoded image.
    """
    from PIL import Image, UnidentifiedImageError

    value = features.get(key)
    if not isinstance(value, list) or len(value) != 1:
        keys = ", ".join(sorted(features))
        raise CatalogError(f"records have no encoded image feature {key!r} (features: {keys})")
    try:
        with Image.open(io.BytesIO(value[0])) as image:
            image.load()
            return image.copy()
    except (OSError, UnidentifiedImageError) as error:
        raise CatalogError(f"feature {key!r} is not an encoded image: {error}") from None


def read_prepared(
    folder: Prepared,
    roots: tuple[Path, ...],
    expression: str,
    image_key: str,
    label: LabelFunction,
    image: ImageFunction,
    seed: int | None,
    verify: bool = True,
) -> Dataset:
    """The rows of ``expression`` in a prepared dataset, as a :class:`Dataset`.

    Args:
        folder: The prepared dataset.
        roots: The data roots every shard must resolve into.
        expression: A TFDS split expression.
        image_key: The encoded image feature.
        label: The label of a decoded record.
        image: Applied to each decoded image (a VTAB task's pixel scaling).
        seed: Row order seed (see :func:`workers.readers.base.seeded_order`).
        verify: Check every selected record's data checksum now; when false, a record's
            checksum is checked when its image is read (labels are read unchecked).

    Raises:
        CatalogError: a split, shard, record or feature is missing or malformed.
    """
    records: list[tuple[bytes, int, str]] = []
    for split, start, stop in split_ranges(expression, folder.splits):
        if stop <= start:
            continue
        shards = [confine(shard, roots) for shard in folder.shards(split)]
        if not shards:
            raise CatalogError(f"{str(folder.folder)!r} has no TFRecord shards of split {split!r}")
        seen: list[tuple[bytes, int, str]] = []
        for shard in shards:
            if len(seen) >= stop:
                break
            framed = read_framed(shard, stop - len(seen))
            seen.extend((b, c, f"{shard.name} record {i}") for i, (b, c) in enumerate(framed))
        if len(seen) < stop:
            raise CatalogError(
                f"split {split!r} of {str(folder.folder)!r} has {len(seen)} records, "
                f"fewer than the {stop} that {expression!r} needs"
            )
        records.extend(seen[start:stop])
    if verify:
        for body, crc, where in records:
            check_record(body, crc, where)
    labels = [label(parse_example(body)) for body, _, _ in records]

    def load(j: int) -> Any:
        body, crc, where = records[j]
        decoded = parse_example(body if verify else check_record(body, crc, where))
        return image(decode_image(decoded, image_key)).convert("RGB")

    return Dataset("vision", load, labels, seeded_order(len(records), seed))


def data_dir(value: str, roots: tuple[Path, ...]) -> Path:
    """A ``data_dir`` parameter confined to the data roots (relative: under each root)."""
    return confine(value, roots)


TFDS_PARAMS = (
    Parameter(
        "name",
        "str",
        REQUIRED,
        "TFDS name with optional config and version (cifar10, eurosat/rgb:2.0.0).",
    ),
    Parameter(
        "split",
        "str",
        "train",
        "A TFDS split expression: train, train[:800], test[50%:], train[:800]+validation[:200].",
    ),
    Parameter("image_key", "str", "image", "The encoded image feature."),
    Parameter("label_key", "str", "label", "The integer label feature."),
    Parameter(
        "data_dir",
        "path",
        "tensorflow_datasets",
        "The TFDS data directory (relative: under each data root).",
    ),
    Parameter(
        "verify_checksums",
        "bool",
        True,
        "Check each selected record's checksum when opened (false: when its image is read).",
    ),
    Parameter("seed", "int", 0, "Seed of the row order (prefixes mix the classes)."),
)


@register_reader("tfds", TFDS_PARAMS)
def tfds(params: dict[str, Any], roots: tuple[Path, ...]) -> Dataset:
    """A TensorFlow Datasets dataset prepared on disk (TFRecord shards), read without
    TensorFlow."""
    name = param(params, "name", str)
    image_key = param(params, "image_key", str, "image")
    label_key = param(params, "label_key", str, "label")
    prepared = find_prepared(
        name, data_dir(param(params, "data_dir", str, DEFAULT_DATA_DIR), roots), roots
    )
    return read_prepared(
        prepared,
        roots,
        param(params, "split", str, "train"),
        image_key,
        lambda f: scalar_feature(f, label_key),
        lambda image: image,
        param(params, "seed", int, 0),
        param(params, "verify_checksums", bool, True),
    )
