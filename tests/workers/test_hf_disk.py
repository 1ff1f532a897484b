"""The saved Hugging Face dataset reader (``hf_disk``) on datasets saved here."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import pytest
from PIL import Image

from shift.errors import CatalogError
from workers.readers import get_reader


def read(params: dict, root: Path):
    return get_reader("hf_disk").read(params, (root,))


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    text = datasets.Dataset.from_dict(
        {"review": ["good film", "bad film", "great", "awful", "fine"], "stars": [1, 0, 1, 0, 1]}
    )
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)) for _ in range(4)]
    images = datasets.Dataset.from_dict(
        {"img": pictures, "label": ["cat", "dog", "cat", "dog"]},
        features=datasets.Features({"img": datasets.Image(), "label": datasets.Value("string")}),
    )
    datasets.DatasetDict({"train": text}).save_to_disk(str(tmp_path / "reviews"))
    images.save_to_disk(str(tmp_path / "pictures"))
    return tmp_path


def test_text_split_with_fixed_seeded_order(saved: Path) -> None:
    params = {"path": "reviews", "split": "train", "text_column": "review",
              "label_column": "stars"}  # fmt: skip
    data = read(params, saved)
    assert len(data) == 5 and data.num_classes == 2
    rows = data.rows(0, 5)
    assert sorted(rows) == sorted(["good film", "bad film", "great", "awful", "fine"])
    assert read(params, saved).rows(0, 5) == rows  # row i is always the same row
    assert read({**params, "seed": 7}, saved).rows(0, 5) != rows or len(rows) < 2


def test_image_dataset_without_splits(saved: Path) -> None:
    data = read({"path": "pictures", "image_column": "img"}, saved)
    assert len(data) == 4 and data.classes == ("cat", "dog")
    image = data.rows(0, 1)[0]
    assert image.mode == "RGB" and image.size == (8, 8)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"path": "reviews", "split": "train", "text_column": "nope", "label_column": "stars"},
         "no column 'nope'"),
        ({"path": "reviews", "split": "train", "label_column": "stars"}, "exactly one of"),
        ({"path": "../outside", "text_column": "t"}, "outside"),
    ],
)  # fmt: skip
def test_bad_parameters_are_clear_errors(saved: Path, params: dict, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        read(params, saved)
