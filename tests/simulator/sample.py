"""A small hand-made records file whose every figure can be checked by hand.

Kept runs (task: model accuracy / cost in seconds):

- ``cifar100``: m1 0.9 / 100, m2 0.5 / 200, m3 0.7 / 300 (m1 also has a non-VTAB-1k run and
  a VTAB-1k run with a lower validation accuracy, both with a higher test accuracy: dropped);
- ``dtd``: m1 0.6 / 10, m2 0.8 / 20, m3 0.4 / 30;
- ``clevr/count`` (preprocess ``clevr_count``): m1 0.3 / 1, m2 0.2 / 2, m3 0.1 / 3;
- ``clevr/distance`` (preprocess ``clevr_distance``): m1 0.1 / 4, m2 0.9 / 5, m3 0.5 / 6;
- ``glue/sst2`` (text): t1 0.6 / 70 (its other run has the lower validation accuracy),
  t2 0.65 / 40.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

COLUMNS = (
    "",
    "model_identifier",
    "framework",
    "elapsed_time",
    "val_accuracy",
    "train_dataset_name",
    "epochs",
    "configs",
    "train_slice",
    "val_slice",
    "test_accuracy",
)

VISION = "HuggingFace"
TEXT = "HuggingFaceText"
VTAB1K = (":800", "800:1000")
FULL = (":80%", "80%:")
COUNT = "{'lr': 0.01, 'feature_name': 'image', 'label_name': 'label_orientation', 'preprocess': 'clevr_count'}"  # noqa: E501
DISTANCE = "{'lr': 0.01, 'feature_name': 'image', 'label_name': 'label_orientation', 'preprocess': 'clevr_distance'}"  # noqa: E501


def run(
    model: str,
    dataset: str,
    test: float,
    cost: float,
    *,
    val: float = 0.5,
    framework: str = VISION,
    configs: str = "{'lr': 0.01}",
    slices: tuple[str, str] = VTAB1K,
) -> dict[str, Any]:
    """One CSV row."""
    return {
        "model_identifier": model,
        "framework": framework,
        "elapsed_time": cost,
        "val_accuracy": val,
        "train_dataset_name": dataset,
        "epochs": 25,
        "configs": configs,
        "train_slice": slices[0],
        "val_slice": slices[1],
        "test_accuracy": test,
    }


SMALL_RUNS = [
    run("m1", "cifar100", 0.99, 5000, val=0.95, slices=FULL),  # not VTAB-1k: dropped
    run("m1", "cifar100", 0.9, 100, val=0.8),  # kept: VTAB-1k, best validation
    run("m1", "cifar100", 0.95, 100, val=0.4, configs="{'lr': 0.1}"),  # lower validation
    run("m2", "cifar100", 0.5, 200),
    run(
        "m3",
        "cifar100",
        0.7,
        300,
        configs="{'lr': 0.01, 'feature_name': 'image', 'label_name': 'label', "
        "'preprocess': 'empty'}",
    ),
    run("m1", "dtd", 0.6, 10),
    run("m2", "dtd", 0.8, 20),
    run("m3", "dtd", 0.4, 30),
    run("m1", "clevr", 0.3, 1, configs=COUNT),
    run("m2", "clevr", 0.2, 2, configs=COUNT),
    run("m3", "clevr", 0.1, 3, configs=COUNT),
    run("m1", "clevr", 0.1, 4, configs=DISTANCE),
    run("m2", "clevr", 0.9, 5, configs=DISTANCE),
    run("m3", "clevr", 0.5, 6, configs=DISTANCE),
    run("t1", "glue/sst2", 0.9, 50, val=0.5, framework=TEXT, slices=VTAB1K),
    run("t1", "glue/sst2", 0.6, 70, val=0.7, framework=TEXT, slices=FULL),
    run("t2", "glue/sst2", 0.65, 40, framework=TEXT, slices=FULL),
]


def write_csv(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> Path:
    """Write rows as a records CSV with a leading unnamed index column."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for i, row in enumerate(rows):
            writer.writerow([i if c == "" else row.get(c, "") for c in columns])
    return path


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """The hand-made records file described in the module docstring."""
    return write_csv(tmp_path / "records.csv", SMALL_RUNS)


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write any rows (and columns) to a fresh CSV file."""

    def make(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> Path:
        return write_csv(tmp_path / "custom.csv", rows, columns)

    return make
