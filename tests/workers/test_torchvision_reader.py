"""The ``torchvision`` reader on files written here in torchvision's on-disk formats:
CIFAR-10/100 binary batches, MNIST-family idx files (plain and gzip), ImageFolder trees."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shift.errors import CatalogError
from workers.readers import Dataset, get_reader


def read(params: dict[str, Any], root: Path) -> Dataset:
    return get_reader("torchvision").read(params, (root,))


def pixels(dataset: Dataset, row: int) -> np.ndarray:
    return np.asarray(dataset.rows(row, row + 1)[0])


def source_rows(dataset: Dataset) -> dict[int, int]:
    """Row index of each source record."""
    return {int(j): i for i, j in enumerate(dataset.order)}


def cifar_images(n: int, start: int) -> np.ndarray:
    """``n`` distinct 32x32 RGB images (N x 32 x 32 x 3), channel values from ``start``."""
    base = np.arange(n, dtype=np.uint8)[:, None, None, None] + start
    channel = np.array([0, 50, 100], dtype=np.uint8)[None, None, None, :]
    return (base + channel + np.zeros((n, 32, 32, 3), dtype=np.uint8)).astype(np.uint8)


def write_cifar10(folder: Path, counts: list[int], test: int) -> dict[str, list[np.ndarray]]:
    """CIFAR-10 binary batches: 1 label byte + 3,072 bytes (R, G, B planes) per record."""
    folder.mkdir(parents=True)
    written: dict[str, list[np.ndarray]] = {"images": [], "labels": []}
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for k, (name, n) in enumerate(zip(names, [*counts, test], strict=True)):
        images = cifar_images(n, 10 * k)
        labels = (np.arange(n) + k) % 10
        planes = images.transpose(0, 3, 1, 2).reshape(n, -1)
        records = np.concatenate([labels[:, None].astype(np.uint8), planes], axis=1)
        (folder / name).write_bytes(records.tobytes())
        if name != "test_batch.bin":
            written["images"].append(images)
            written["labels"].append(labels)
    return written


def test_cifar10_binary_train_split_reads_every_batch_in_order(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path / "cifar-10-batches-bin", [2, 3, 1, 2, 2], test=4)
    data = read({"dataset": "CIFAR10", "root": ".", "split": "train"}, tmp_path)
    images = np.concatenate(written["images"])
    labels = np.concatenate(written["labels"])
    assert len(data) == 10
    where = source_rows(data)
    for j in (0, 4, 9):
        assert np.array_equal(pixels(data, where[j]), images[j])
        assert data.classes[data.labels[where[j]]] == labels[j]
    assert len(read({"dataset": "cifar-10", "split": "test"}, tmp_path)) == 4


def test_cifar100_binary_reads_fine_or_coarse_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    images = cifar_images(3, 7)
    planes = images.transpose(0, 3, 1, 2).reshape(3, -1)
    coarse, fine = np.array([1, 2, 1], np.uint8), np.array([40, 41, 99], np.uint8)
    (folder / "train.bin").write_bytes(
        np.concatenate([coarse[:, None], fine[:, None], planes], axis=1).tobytes()
    )
    fine_set = read({"dataset": "CIFAR100"}, tmp_path)
    assert sorted(fine_set.classes) == [40, 41, 99]
    coarse_set = read({"dataset": "CIFAR100", "label": "coarse"}, tmp_path)
    assert sorted(coarse_set.classes) == [1, 2]
    assert np.array_equal(pixels(fine_set, source_rows(fine_set)[2]), images[2])


def test_the_pickled_python_version_is_refused_with_the_binary_to_fetch(tmp_path: Path) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(CatalogError) as error:
        read({"dataset": "CIFAR10"}, tmp_path)
    message = str(error.value)
    assert "cifar-10-batches-bin/data_batch_1.bin" in message
    assert "pickled" in message and "cifar-10-binary.tar.gz" in message


def test_a_missing_cifar_file_names_the_expected_path_and_the_download(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"cifar-100-binary/test\.bin.*never downloads"):
        read({"dataset": "CIFAR100", "split": "test"}, tmp_path)


def test_a_truncated_cifar_batch_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(bytes(3073 + 100))
    with pytest.raises(CatalogError, match="not a whole number of 3073-byte"):
        read({"dataset": "CIFAR10", "split": "test"}, tmp_path)


def idx(array: np.ndarray) -> bytes:
    """An idx file (unsigned bytes) of ``array``."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("dataset", ["MNIST", "FashionMNIST", "KMNIST"])
@pytest.mark.parametrize("compressed", [False, True])
def test_mnist_family_idx_files_plain_or_gzip(
    tmp_path: Path, dataset: str, compressed: bool
) -> None:
    raw = tmp_path / dataset / "raw"
    raw.mkdir(parents=True)
    images = np.random.default_rng(3).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint8)
    for name, data in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        body = idx(data)
        if compressed:
            (raw / f"{name}.gz").write_bytes(gzip.compress(body))
        else:
            (raw / name).write_bytes(body)
    data = read({"dataset": dataset, "split": "test"}, tmp_path)
    assert len(data) == 6 and data.classes == (1, 3, 4, 5, 9)
    row = source_rows(data)[5]
    assert np.array_equal(pixels(data, row), np.repeat(images[5][:, :, None], 3, axis=2))
    assert data.classes[data.labels[row]] == 9


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x01\x02", "holds 2 data bytes"),
        (b"PK\x03\x04junk", "not an idx file"),
        (b"\x1f\x8bnot really gzip", "broken gzip"),
    ],
)
def test_a_malformed_idx_file_is_refused(tmp_path: Path, body: bytes, message: str) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(idx(np.zeros((5, 2, 2))))
    (raw / "train-labels-idx1-ubyte").write_bytes(body)
    with pytest.raises(CatalogError, match=message):
        read({"dataset": "MNIST"}, tmp_path)


def test_missing_mnist_files_name_where_they_are_expected(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with pytest.raises(CatalogError) as error:
        read({"dataset": "KMNIST", "root": "data"}, tmp_path)
    message = str(error.value)
    assert "data/KMNIST/raw/train-images-idx3-ubyte" in message
    assert "codh.rois.ac.jp" in message and "never downloads" in message


def test_image_folder_reads_the_split_subfolder(tmp_path: Path) -> None:
    for split, classes in (("train", ("cat", "dog")), ("val", ("cat", "dog", "eel"))):
        for label in classes:
            (tmp_path / "pets" / split / label).mkdir(parents=True)
            Image.new("RGB", (5, 5), (9, 9, 9)).save(tmp_path / "pets" / split / label / "a.png")
    train = read({"dataset": "ImageFolder", "root": "pets", "split": "train"}, tmp_path)
    val = read({"dataset": "ImageFolder", "root": "pets/val"}, tmp_path)
    assert train.classes == ("cat", "dog") and val.classes == ("cat", "dog", "eel")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"dataset": "SVHN"}, "not one shift reads; use one of CIFAR10, CIFAR100"),
        ({"dataset": "MNIST", "split": "validation"}, "not one of train, test"),
        ({"dataset": "MNIST", "root": "../etc"}, "may not climb"),
        ({"dataset": "CIFAR100", "label": "medium"}, "not 'fine' or 'coarse'"),
        ({"root": "."}, "'dataset' is required"),
    ],
)
def test_bad_parameters_say_what_is_wrong(
    tmp_path: Path, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(CatalogError, match=message):
        read(params, tmp_path)


def test_a_batch_file_linked_from_outside_the_roots_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "test_batch.bin").write_bytes(bytes(3073))
    root = tmp_path / "root"
    (root / "cifar-10-batches-bin").mkdir(parents=True)
    (root / "cifar-10-batches-bin" / "test_batch.bin").symlink_to(outside / "test_batch.bin")
    with pytest.raises(CatalogError, match="outside"):
        read({"dataset": "CIFAR10", "split": "test"}, root)
