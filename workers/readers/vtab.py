"""The ``vtab`` reader kind: the tasks of the Visual Task Adaptation Benchmark (VTAB-1k) on
TensorFlow Datasets prepared on disk.

A task names a TFDS dataset and version, how its splits are cut into VTAB's ``train``,
``val``, ``trainval``, ``test``, ``train800``, ``val200`` and ``train800val200``, and, for
the structured tasks, how the label is derived from the record (CLEVR object distance and
count, dSprites position and orientation bins, KITTI vehicle distance, smallNORB pose).
Task names are upstream SHiFT's ``vtab_name`` values; the slices follow VTAB's
``task_adaptation`` definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import CatalogError
from shift.parameters import REQUIRED, Parameter
from shift.ql.vocabulary import closest
from workers.readers.base import Dataset, param, register_reader
from workers.readers.tfds import (
    DEFAULT_DATA_DIR,
    TFDS_PARAMS,
    LabelFunction,
    data_dir,
    find_prepared,
    read_prepared,
    scalar_feature,
)
from workers.readers.tfrecord import Feature

VTAB_SPLITS = ("train", "val", "trainval", "test", "train800", "val200", "train800val200")
"""The split names every VTAB task has."""

Splits = dict[str, str]


def train_validation_test() -> Splits:
    """Splits of a dataset that has train, validation and test splits."""
    return {
        "train": "train",
        "val": "validation",
        "trainval": "train+validation",
        "test": "test",
        "train800": "train[:800]",
        "val200": "validation[:200]",
        "train800val200": "train[:800]+validation[:200]",
    }


def train_test(train_size: int, train_percent: int) -> Splits:
    """Splits of a dataset with train and test splits: validation is the tail of train."""
    cut = train_percent * train_size // 100
    return {
        "train": f"train[:{cut}]",
        "val": f"train[{cut}:]",
        "trainval": "train",
        "test": "test",
        "train800": "train[:800]",
        "val200": f"train[{cut}:{cut + 200}]",
        "train800val200": f"train[:800]+train[{cut}:{cut + 200}]",
    }


def train_only(train_size: int, train_percent: int, val_percent: int) -> Splits:
    """Splits of a dataset with only a train split: validation and test are cut from it."""
    cut = train_percent * train_size // 100
    end = cut + val_percent * train_size // 100
    return {
        "train": f"train[:{cut}]",
        "val": f"train[{cut}:{end}]",
        "trainval": f"train[:{end}]",
        "test": f"train[{end}:]",
        "train800": "train[:800]",
        "val200": f"train[{cut}:{cut + 200}]",
        "train800val200": f"train[:800]+train[{cut}:{cut + 200}]",
    }


def smallnorb_splits() -> Splits:
    """smallNORB's splits: validation and test are the halves of its test split."""
    return {
        "train": "train",
        "val": "test[:50%]",
        "trainval": "train+test[:50%]",
        "test": "test[50%:]",
        "train800": "train[:800]",
        "val200": "test[:200]",
        "train800val200": "train[:800]+test[:200]",
    }


def _bin(value: float, thresholds: tuple[float, ...]) -> int:
    """The last index whose threshold lies below ``value``."""
    return max(i for i, t in enumerate(thresholds) if t < value)


def _floats(features: dict[str, Feature], key: str) -> np.ndarray:
    value = features.get(key)
    if not isinstance(value, np.ndarray):
        raise CatalogError(
            f"records have no numeric feature {key!r} (features: {sorted(features)})"
        )
    return value.astype(np.float64)


def clevr_distance(features: dict[str, Feature]) -> int:
    """The distance bin of the closest CLEVR object (its pixel-coordinate depth)."""
    depth = _floats(features, "objects/pixel_coords").reshape(-1, 3)[:, 2]
    return _bin(float(depth.min()), (0.0, 8.0, 8.5, 9.0, 9.5, 10.0, 100.0))


def clevr_count(features: dict[str, Feature]) -> int:
    """The number of CLEVR objects minus 3 (scenes hold 3 to 10)."""
    return int(_floats(features, "objects/size").size) - 3


def kitti_distance(features: dict[str, Feature]) -> int:
    """The distance bin of the closest vehicle (car, van, truck) in a KITTI frame."""
    kinds = _floats(features, "objects/type")
    depth = _floats(features, "objects/location").reshape(-1, 3)[:, 2][kinds < 3]
    return _bin(float(np.append(depth, 1000.0).min()), (-100.0, 8.0, 20.0, 999.0))


def _binned(key: str, width: float) -> LabelFunction:
    return lambda features: int(scalar_feature(features, key) // width)


def _feature(key: str) -> LabelFunction:
    return lambda features: scalar_feature(features, key)


_LABEL = _feature("label")


def _times_255(image: Any) -> Any:
    return image.point(lambda v: min(v * 255, 255))


@dataclass(frozen=True)
class Task:
    """A VTAB task: TFDS ``name:version``, split slices, label and image transforms."""

    tfds_name: str
    splits: Splits
    label: LabelFunction = _LABEL
    image: Callable[[Any], Any] = lambda image: image


TASKS: dict[str, Task] = {
    "Caltech101": Task("caltech101:3.0.1", train_test(3_060, 90)),
    "CIFAR-10": Task("cifar10:3.0.2", train_test(50_000, 90)),
    "CIFAR-100": Task("cifar100:3.0.2", train_test(50_000, 90)),
    "CLEVR distance prediction": Task("clevr:3.1.0", train_test(70_000, 90), clevr_distance),
    "CLEVR counting": Task("clevr:3.1.0", train_test(70_000, 90), clevr_count),
    "Diabetic Rethinopathy": Task(
        "diabetic_retinopathy_detection/btgraham-300:3.0.0", train_validation_test()
    ),
    "Dmlab Frames": Task("dmlab:2.0.1", train_validation_test()),
    "dSprites orientation prediction": Task(
        "dsprites:2.0.0",
        train_only(737_280, 80, 10),
        _binned("label_orientation", 40 / 16),
        _times_255,
    ),
    "dSprites location prediction": Task(
        "dsprites:2.0.0",
        train_only(737_280, 80, 10),
        _binned("label_x_position", 32 / 16),
        _times_255,
    ),
    "Describable Textures Dataset (DTD)": Task("dtd:3.0.1", train_validation_test()),
    "EuroSAT": Task("eurosat/rgb:2.0.0", train_only(27_000, 60, 20)),
    "KITTI distance prediction": Task("kitti:3.2.0", train_validation_test(), kitti_distance),
    "102 Category Flower Dataset": Task("oxford_flowers102:2.1.1", train_validation_test()),
    "Oxford IIIT Pet dataset": Task("oxford_iiit_pet:3.2.0", train_test(3_680, 80)),
    "PatchCamelyon": Task("patch_camelyon:2.0.0", train_validation_test()),
    "Resisc45": Task("resisc45:3.0.0", train_only(31_500, 60, 20)),
    "Small NORB azimuth prediction": Task(
        "smallnorb:2.0.0", smallnorb_splits(), _feature("label_azimuth")
    ),
    "Small NORB elevation prediction": Task(
        "smallnorb:2.0.0", smallnorb_splits(), _feature("label_elevation")
    ),
    "SUN397": Task("sun397/tfds:4.0.0", train_validation_test()),
    "SVHN": Task("svhn_cropped:3.0.0", train_test(73_257, 90)),
}
"""The VTAB tasks by upstream SHiFT's ``vtab_name``."""


def get_task(name: str) -> Task:
    """The task called ``name`` (case and spacing ignored).

    Raises:
        CatalogError: unknown task; names the closest and lists the known ones.
    """
    wanted = " ".join(name.split()).lower()
    for known, task in TASKS.items():
        if known.lower() == wanted:
            return task
    match = closest(name, TASKS)
    hint = f"; did you mean {match!r}?" if match else ""
    raise CatalogError(f"unknown VTAB task {name!r}{hint} (tasks: {', '.join(TASKS)})")


VTAB_PARAMS = (
    Parameter("task", "str", REQUIRED, "The task as upstream SHiFT's vtab_name (CIFAR-10, ...)."),
    Parameter(
        "split",
        "str",
        REQUIRED,
        "train, val, trainval, test, train800, val200 or train800val200.",
    ),
    Parameter("version", "str", None, "Another prepared TFDS version of the task's dataset."),
    *TFDS_PARAMS[-3:],
)


@register_reader("vtab", VTAB_PARAMS)
def vtab(params: dict[str, Any], roots: tuple[Path, ...]) -> Dataset:
    """A VTAB-1k task (``task`` as upstream's vtab_name, ``split`` as train800, val200,
    train800val200, test, ...) over TFDS data prepared on disk."""
    task = get_task(param(params, "task", str))
    split = param(params, "split", str)
    if split not in VTAB_SPLITS:
        match = closest(split, VTAB_SPLITS)
        hint = f"; did you mean {match!r}?" if match else ""
        raise CatalogError(f"VTAB split {split!r} is not one of {', '.join(VTAB_SPLITS)}{hint}")
    name = task.tfds_name
    version = param(params, "version", str, None)
    if version is not None:
        name = f"{name.partition(':')[0]}:{version}"
    prepared = find_prepared(
        name, data_dir(param(params, "data_dir", str, DEFAULT_DATA_DIR), roots), roots
    )
    return read_prepared(
        prepared,
        roots,
        task.splits[split],
        "image",
        task.label,
        task.image,
        param(params, "seed", int, 0),
        param(params, "verify_checksums", bool, True),
    )
