"""The ``describe`` kind refuses datasets no query could use: no rows, or a single class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shift.errors import WorkerError
from shift.specs import DatasetSpec
from workers.describe import describe_payload


def _npz(folder: Path, name: str, labels: list[int]) -> dict:
    images = np.zeros((len(labels), 8, 8), dtype=np.uint8)
    np.savez(folder / f"{name}.npz", x=images, y=np.array(labels, dtype=np.int64))
    return DatasetSpec(name, "npz", {"path": str(folder / f"{name}.npz")}).to_json()


@pytest.mark.parametrize(
    ("labels", "message"),
    [([], r"dataset 'd' has no rows"), ([3, 3, 3], r"has 1 class\(es\) in its 3 row\(s\)")],
)
def test_unusable_datasets_fail_their_description(
    tmp_path: Path, labels: list[int], message: str
) -> None:
    with pytest.raises(WorkerError, match=message):
        describe_payload({"dataset": _npz(tmp_path, "d", labels)})


def test_two_classes_are_described(tmp_path: Path) -> None:
    got = describe_payload({"dataset": _npz(tmp_path, "d", [0, 1, 1])})
    assert (got["size"], got["num_classes"], got["classes"]) == (3, 2, [0, 1])
