"""The classify kind on a mutated test set: the worker reads it like a training item.

Hand-made features in a real feature store (blocks of 4 rows) for ``.npz`` text datasets
the test writes; a mutated test set must score exactly as the same rows stored as a
dataset of their own, and a prefix of a label-only change reads only the base's blocks
it reaches.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shift.errors import WorkerError
from shift.payloads import ClassifyPayload, ClassifyResult, Mutation
from shift.specs import DatasetSpec, Modality, ModelSpec
from workers.classify import classify_features
from workers.features import FeatureStore, block_range

MODEL = ModelSpec("m", "timm", Modality.TEXT, {"arch": "unused"})
CENTRES = {"a": (0.0, 0.0), "b": (10.0, 0.0), "c": (0.0, 10.0)}


def _points(labels: list[str], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([CENTRES[v] for v in labels]) + rng.normal(0, 1.0, (len(labels), 2))


class Data:
    """Writes ``.npz`` text datasets and their stored features under a data root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = FeatureStore(root / "features", block_rows=4)

    def add(self, name: str, features: np.ndarray, labels: list[str]) -> DatasetSpec:
        path = self.root / f"{name}.npz"
        np.savez(path, x=np.array([f"row {i}" for i in range(len(labels))]), y=np.array(labels))
        spec = DatasetSpec(name, "npz", {"path": str(path)}, Modality.TEXT)
        classes = sorted(set(labels))
        ids = np.array([classes.index(v) for v in labels])
        for block in range((len(labels) + 3) // 4):
            lo, hi = block_range(block, len(labels), 4)
            meta = {"classes": classes, "num_rows": len(labels)}
            self.store.write_block(MODEL.key, spec.key, block, features[lo:hi], ids[lo:hi], meta)
        return spec

    def score(self, test: Any, train: DatasetSpec, test_rows: int | None = None) -> dict:
        payload = ClassifyPayload(
            MODEL, (train,), None, test, test_rows, "euclidean_nn", {}, None, False
        )
        value = classify_features(payload.to_json(), store=self.store)
        return ClassifyResult.from_json(value).to_json()


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Data:
    monkeypatch.setenv("SHIFT_DATA_ROOTS", str(tmp_path))
    return Data(tmp_path)


def _figures(result: dict) -> tuple[float, int, int]:
    return result["err"], result["errors"], result["test_rows"]


def test_a_mutated_test_set_scores_as_the_same_rows_stored(data: Data) -> None:
    train_y = ["a", "b", "c"] * 6
    train = data.add("train", _points(train_y, 1), train_y)
    test_y = ["a", "b", "c", "b"] * 3
    test_x = _points(test_y, 2)
    test = data.add("test", test_x, test_y)
    plain = data.score(test, train)
    assert plain["errors"] == 0  # well separated: every row is right

    relabel = Mutation(test, None, ("a",), test, None, ("b",))
    copy_y = ["a" if v == "b" else v for v in test_y]
    copy = data.add("relabelled", test_x, copy_y)
    mutated = data.score(relabel, train)
    assert _figures(mutated) == _figures(data.score(copy, train))
    assert mutated["errors"] == test_y.count("b")  # b rows, now labelled a, are predicted b

    other_y = ["c", "a", "c"]
    other_x = _points(other_y, 3)
    other = data.add("other", other_x, other_y)
    merge = Mutation(test, None, ("b",), other, None, ("c",))
    kept = [i for i, v in enumerate(test_y) if v != "b"]
    moved = [i for i, v in enumerate(other_y) if v == "c"]
    merged_x = np.concatenate([test_x[kept], other_x[moved]])
    merged = data.add("merged", merged_x, [test_y[i] for i in kept] + ["b"] * len(moved))
    result = data.score(merge, train)
    assert _figures(result) == _figures(data.score(merged, train))
    assert result["test_rows"] == len(kept) + len(moved) and result["errors"] == len(moved)


def test_a_prefix_of_a_label_only_change_reads_only_its_blocks(data: Data) -> None:
    train_y = ["a", "b"] * 4
    train = data.add("train", _points(train_y, 1), train_y)
    test_y = ["a", "b"] * 6
    test = data.add("test", _points(test_y, 2), test_y)
    next(data.store.folder(MODEL.key, test.key).glob("block-000002.npy")).unlink()
    relabel = Mutation(test, None, ("a",), test, None, ("b",))
    result = data.score(relabel, train, test_rows=8)  # blocks 0 and 1 only
    assert result["test_rows"] == 8 and result["errors"] == 4
    with pytest.raises(WorkerError, match=r"lack blocks \[2\]"):
        data.score(relabel, train)
