"""The ``torchvision`` reader kind: torchvision datasets as torchvision stores them on disk.

Reads, without torchvision and never downloading:

- ``CIFAR10`` / ``CIFAR100``: the *binary* version (``cifar-10-batches-bin/*.bin``,
  ``cifar-100-binary/{train,test}.bin``: fixed-size records of label bytes and 3,072 pixel
  bytes). The *python* version (``cifar-10-batches-py``, ``cifar-100-python``) is pickled;
  shift never unpickles, so it is refused with the file to fetch instead.
- ``MNIST``, ``FashionMNIST``, ``KMNIST``: idx files under ``<root>/<Dataset>/raw``, plain
  or ``.gz``.
- ``ImageFolder``: one subfolder of images per class (``<root>/<split>`` when a split is
  given), read like the ``image_folder`` kind.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import CatalogError
from shift.parameters import REQUIRED, Parameter
from shift.paths import confine
from workers.readers.base import Dataset, param, register_reader, seeded_order
from workers.readers.files import array_image, image_folder

SPLITS = ("train", "test")
"""Splits the CIFAR and MNIST-family datasets have."""

CIFAR = {
    "CIFAR10": {
        "folder": "cifar-10-batches-bin",
        "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
        "test": ["test_batch.bin"],
        "python": "cifar-10-batches-py",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "label_bytes": 1,
    },
    "CIFAR100": {
        "folder": "cifar-100-binary",
        "train": ["train.bin"],
        "test": ["test.bin"],
        "python": "cifar-100-python",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
        "label_bytes": 2,
    },
}
"""The CIFAR binary layouts: folder, batch files per split, record label bytes."""

CIFAR_PIXELS = 32 * 32 * 3

MNIST_FAMILY = {
    "MNIST": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "FashionMNIST": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "KMNIST": "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
}
"""MNIST-family datasets and where torchvision fetches their idx files from."""

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""idx type codes and their numpy dtypes (big-endian)."""

DATASETS = (*CIFAR, *MNIST_FAMILY, "ImageFolder")


def _dataset_name(value: str) -> str:
    for name in DATASETS:
        if name.lower() == value.replace("-", "").replace("_", "").lower():
            return name
    raise CatalogError(
        f"torchvision dataset {value!r} is not one shift reads; use one of {', '.join(DATASETS)}"
    )


def _split(params: dict[str, Any]) -> str:
    split = param(params, "split", str, "train")
    if split not in SPLITS:
        raise CatalogError(f"torchvision split {split!r} is not one of {', '.join(SPLITS)}")
    return split


def _missing(dataset: str, expected: Path, how: str) -> CatalogError:
    return CatalogError(
        f"torchvision dataset {dataset}: expected {str(expected)!r}, which does not exist; "
        f"shift never downloads at run time: {how}"
    )


def read_cifar(
    dataset: str, root: Path, split: str, label: str, roots: tuple[Path, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The images (N x 32 x 32 x 3 uint8) and labels of a CIFAR binary split.

    Raises:
        CatalogError: a batch file is missing (the python version is named as refused) or
            its size is not a whole number of records.
    """
    layout = CIFAR[dataset]
    folder = root / str(layout["folder"])
    label_bytes = int(layout["label_bytes"])  # type: ignore[call-overload]
    record = label_bytes + CIFAR_PIXELS
    images, labels = [], []
    for name in layout[split]:  # type: ignore[attr-defined]
        path = folder / name
        if not path.is_file():
            how = f"download {layout['url']} and extract it into {str(root)!r}"
            if (root / str(layout["python"])).is_dir():
                how = (
                    f"{str(root / str(layout['python']))!r} holds the python version, which is "
                    f"pickled and which shift refuses to unpickle; {how} (the binary version "
                    "holds the same images and labels)"
                )
            raise _missing(dataset, path, how)
        raw = np.fromfile(confine(path, roots), dtype=np.uint8)
        if raw.size == 0 or raw.size % record:
            raise CatalogError(
                f"{str(path)!r} is {raw.size} bytes, not a whole number of {record}-byte "
                f"{dataset} records; the file is truncated or not a CIFAR binary batch"
            )
        rows = raw.reshape(-1, record)
        column = 1 if label_bytes == 2 and label == "fine" else 0
        labels.append(rows[:, column].astype(np.int64))
        images.append(rows[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return np.concatenate(images), np.concatenate(labels)


def read_idx(path: Path) -> np.ndarray:
    """An idx file (plain or gzip-compressed) as a numpy array.

    Raises:
        CatalogError: the magic number, type code or size is wrong.
    """
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise CatalogError(f"{str(path)!r} is a broken gzip file: {error}") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_TYPES:
        raise CatalogError(f"{str(path)!r} is not an idx file (bad magic number)")
    dims = data[3]
    header = 4 + 4 * dims
    if dims == 0 or len(data) < header:
        raise CatalogError(f"{str(path)!r} has a truncated idx header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims))
    dtype = np.dtype(IDX_TYPES[data[2]])
    want = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != want:
        raise CatalogError(
            f"{str(path)!r} holds {len(data) - header} data bytes but its header {shape} "
            f"needs {want}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_mnist(
    dataset: str, root: Path, split: str, roots: tuple[Path, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The images (N x H x W) and labels of an MNIST-family split.

    Raises:
        CatalogError: a file is missing, malformed, or images and labels disagree in number.
    """
    raw = root / dataset / "raw"
    arrays = []
    for name in MNIST_FILES[split]:
        path = next((p for p in (raw / name, raw / f"{name}.gz") if p.is_file()), None)
        if path is None:
            how = (
                f"put {name} or {name}.gz (from {MNIST_FAMILY[dataset]}) there, as "
                f"torchvision.datasets.{dataset}(root, download=True) does"
            )
            raise _missing(dataset, raw / name, how)
        arrays.append(read_idx(confine(path, roots)))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise CatalogError(
            f"{dataset} {split} under {str(raw)!r}: images {images.shape} and labels "
            f"{labels.shape} do not pair up"
        )
    return images, labels.astype(np.int64)


TORCHVISION_PARAMS = (
    Parameter(
        "dataset",
        "str",
        REQUIRED,
        "CIFAR10, CIFAR100, MNIST, FashionMNIST, KMNIST or ImageFolder (case, - and _ ignored).",
    ),
    Parameter("root", "path", ".", "The folder given to torchvision.datasets.X(root)."),
    Parameter(
        "split",
        "str",
        "train",
        "train or test; for ImageFolder an optional subfolder of root (none: root itself).",
    ),
    Parameter("label", "str", "fine", "CIFAR-100 only: fine (100 classes) or coarse (20)."),
    Parameter("seed", "int", 0, "Seed of the row order (prefixes mix the classes)."),
)


@register_reader("torchvision", TORCHVISION_PARAMS)
def torchvision(params: dict[str, Any], roots: tuple[Path, ...]) -> Dataset:
    """torchvision datasets on disk: CIFAR10/100 (binary), MNIST, FashionMNIST, KMNIST,
    ImageFolder; never downloads."""
    dataset = _dataset_name(param(params, "dataset", str))
    seed = param(params, "seed", int, 0)
    root_name = param(params, "root", str, ".")
    if dataset == "ImageFolder":
        split = param(params, "split", str, None)
        path = root_name if split is None else str(Path(root_name) / split)
        return image_folder({"path": path, "seed": seed}, roots)
    root = confine(root_name, roots)
    split = _split(params)
    if dataset in CIFAR:
        label = param(params, "label", str, "fine")
        if label not in ("fine", "coarse"):
            raise CatalogError(f"CIFAR100 label {label!r} is not 'fine' or 'coarse'")
        images, labels = read_cifar(dataset, root, split, label, roots)
    else:
        images, labels = read_mnist(dataset, root, split, roots)
    order = seeded_order(len(images), seed)
    return Dataset("vision", lambda j: array_image(images[j]), labels.tolist(), order)
