"""Recorded fine-tuning results: load, validate and clean them into one outcome per (task, model).

The input is the SHiFT paper's ``ftrecords.csv`` (a copy ships in ``simulator/data``): one
row per fine-tuning run. Cleaning does three things.

**Task identity.** A task is ``train_dataset_name`` plus the ``label_name`` and ``preprocess``
of the run's ``configs`` (a Python-dict string, read with :func:`ast.literal_eval`), because
those split one TFDS dataset into several VTAB tasks: CLEVR count/distance, dSprites
location/orientation, smallNORB azimuth/elevation, KITTI distance. A missing key means the
runner's default (``label_name='label'``, ``preprocess='empty'``), so ``{'lr': 0.1}`` and
``{'lr': 0.01, 'label_name': 'label', 'preprocess': 'empty'}`` on ``cifar100`` are one task.
``feature_name`` only names the input column (``image``, ``text``, ``content``,
``sentence``) and never splits a dataset in this file. A split task is called
``dataset/variant``, the variant being the preprocess without the dataset prefix, else the
label without ``label_`` (``clevr/count``, ``smallnorb/azimuth``), with ``kitti/distance``
for KITTI's ``preprocess='kitti'``.

**Modality.** ``framework`` ``HuggingFace`` is vision, ``HuggingFaceText`` is text.

**Duplicate runs.** About 2,700 (task, model) pairs have more than one run (another learning
rate, slice or number of epochs). The replay keeps exactly one per pair, chosen by, in order:

1. vision only: a run on the VTAB-1k slices (``train_slice=':800'`` and
   ``val_slice='800:1000'``) over any other run;
2. the highest ``val_accuracy`` (the best learning rate and epochs as a user would pick them,
   never by ``test_accuracy``, which would leak the answer into the choice);
3. the first run in the file.

The kept run gives the pair's test accuracy and its fine-tuning cost (``elapsed_time``,
seconds on one GPU); the other runs of the pair are not counted.
"""

from __future__ import annotations

import ast
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from simulator.simulator_errors import RecordsError

DEFAULT_RECORDS = Path(__file__).resolve().parent / "data" / "ftrecords.csv"
"""The copy of the SHiFT paper's ``ftrecords.csv`` shipped as package data."""


class Modality(StrEnum):
    """The kind of input a model takes."""

    VISION = "vision"
    TEXT = "text"


FRAMEWORKS: Mapping[str, Modality] = MappingProxyType(
    {"HuggingFace": Modality.VISION, "HuggingFaceText": Modality.TEXT}
)
"""``framework`` column value -> modality."""

REQUIRED_COLUMNS = (
    "model_identifier",
    "framework",
    "elapsed_time",
    "val_accuracy",
    "train_dataset_name",
    "configs",
    "train_slice",
    "val_slice",
    "test_accuracy",
)
"""Columns the replay reads; any other column is ignored."""

VTAB1K_SLICES = (":800", "800:1000")
"""(train_slice, val_slice) of the VTAB-1k protocol: 800 training and 200 validation rows."""

DEFAULT_LABEL = "label"
DEFAULT_PREPROCESS = "empty"
TASK_RENAMES: Mapping[str, str] = MappingProxyType({"kitti/kitti": "kitti/distance"})
"""Variants whose derived name says nothing (KITTI's only preprocess is the distance task)."""

_NUMERIC = ("elapsed_time", "val_accuracy", "test_accuracy")
_LINE_OFFSET = 2  # data row 0 is line 2 of the file (line 1 is the header)


@dataclass(frozen=True)
class Outcome:
    """The kept fine-tuning run of one model on one task.

    Attributes:
        model: Hugging Face model id.
        accuracy: Test accuracy of the run, in [0, 1].
        cost_s: Fine-tuning time of the run, seconds on one GPU.
        line: Line of the run in the records file (1 is the header).
    """

    model: str
    accuracy: float
    cost_s: float
    line: int


@dataclass(frozen=True)
class Task:
    """One task and the kept outcome of every model fine-tuned on it.

    Attributes:
        name: Task name (``cifar100``, ``clevr/count``, ``glue/sst2``, ...).
        modality: Modality of the task's models.
        outcomes: Model id -> kept outcome.
    """

    name: str
    modality: Modality
    outcomes: Mapping[str, Outcome]

    @property
    def models(self) -> tuple[str, ...]:
        """The task's model ids, sorted."""
        return tuple(sorted(self.outcomes))

    @property
    def best_accuracy(self) -> float:
        """The best test accuracy of any model on the task."""
        return max(o.accuracy for o in self.outcomes.values())


@dataclass(frozen=True, eq=False)
class Records:
    """Cleaned records: every valid run and the tasks built from the kept runs.

    Attributes:
        source: Where the records were read from.
        runs: One row per run in the file with columns ``line``, ``task``, ``modality``,
            ``model``, ``test_accuracy``, ``val_accuracy``, ``cost_s``, ``vtab1k`` and
            ``kept`` (whether the duplicate rule kept the run).
        tasks: Tasks sorted by modality (vision first) and name.
    """

    source: str
    runs: pd.DataFrame
    tasks: tuple[Task, ...]

    def of_modality(self, modality: Modality | None) -> tuple[Task, ...]:
        """The tasks of one modality, or all tasks when ``modality`` is ``None``."""
        return tuple(t for t in self.tasks if modality is None or t.modality == modality)

    def models(self, modality: Modality | None = None) -> frozenset[str]:
        """Every model id with at least one run (of one modality, or of any)."""
        return frozenset(m for t in self.of_modality(modality) for m in t.outcomes)

    def task(self, name: str) -> Task:
        """The task called ``name``.

        Raises:
            RecordsError: No task has that name (the message lists the closest names).
        """
        for task in self.tasks:
            if task.name == name:
                return task
        names = [t.name for t in self.tasks]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RecordsError(f"no task {name!r} in {self.source}{hint}")


def task_name(dataset: str, config: Mapping[str, Any]) -> str:
    """The task a run belongs to, from its dataset and its parsed ``configs``.

    Args:
        dataset: ``train_dataset_name`` of the run.
        config: The run's ``configs`` dict.

    Returns:
        ``dataset`` for an unsplit dataset, else ``dataset/variant`` (see the module docstring).
    """
    label = str(config.get("label_name") or DEFAULT_LABEL)
    preprocess = str(config.get("preprocess") or DEFAULT_PREPROCESS)
    if preprocess != DEFAULT_PREPROCESS:
        variant = preprocess.removeprefix(dataset + "_")
    elif label != DEFAULT_LABEL:
        variant = label.removeprefix("label_")
    else:
        return dataset
    name = f"{dataset}/{variant}"
    return TASK_RENAMES.get(name, name)


def load_records(path: str | Path = DEFAULT_RECORDS) -> Records:
    """Read, validate and clean a records file.

    Args:
        path: A CSV with at least :data:`REQUIRED_COLUMNS`.

    Returns:
        The cleaned :class:`Records`.

    Raises:
        RecordsError: The file cannot be read, lacks a column, or has a bad row (the message
            names the file, the line and the column).
    """
    runs = read_runs(path)
    runs["kept"] = kept_runs(runs)
    return Records(source=str(path), runs=runs, tasks=build_tasks(runs[runs["kept"]]))


def read_runs(path: str | Path) -> pd.DataFrame:
    """Read and validate every run of a records file (see :attr:`Records.runs`)."""
    raw = _read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise RecordsError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"a records file needs {', '.join(REQUIRED_COLUMNS)}"
        )
    if raw.empty:
        raise RecordsError(f"{path}: no runs (the file has a header and no rows)")
    numbers = {c: pd.to_numeric(raw[c], errors="coerce") for c in _NUMERIC}
    rows = []
    for i, record in enumerate(raw.itertuples(index=False)):
        row: dict[str, Any] = record._asdict()
        line = i + _LINE_OFFSET
        where = f"{path}: line {line}"
        for column in _NUMERIC:
            row[column] = _number(where, column, row[column], numbers[column].iat[i])
        rows.append(_clean(where, line, row))
    return pd.DataFrame(rows)


def kept_runs(runs: pd.DataFrame) -> pd.Series:
    """Which runs the duplicate rule keeps: one per (task, model), see the module docstring."""
    preference = runs["vtab1k"] & (runs["modality"] == Modality.VISION)
    order = runs.assign(_preferred=preference).sort_values(
        ["_preferred", "val_accuracy", "line"], ascending=[False, False, True], kind="stable"
    )
    first = order.drop_duplicates(["task", "model"], keep="first").index
    return runs.index.isin(first)


def build_tasks(kept: pd.DataFrame) -> tuple[Task, ...]:
    """Group kept runs (one per task and model) into :class:`Task` s."""
    tasks = []
    for (modality, name), group in kept.groupby(["modality", "task"], sort=True):
        outcomes = {
            r.model: Outcome(r.model, float(r.test_accuracy), float(r.cost_s), int(r.line))
            for r in group.itertuples(index=False)
        }
        tasks.append(Task(str(name), Modality(modality), MappingProxyType(outcomes)))
    order = list(Modality)
    return tuple(sorted(tasks, key=lambda t: (order.index(t.modality), t.name)))


def _read_csv(path: str | Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as error:
        raise RecordsError(f"{path}: no such records file") from error
    except pd.errors.EmptyDataError as error:
        raise RecordsError(f"{path}: empty file, expected a CSV header and runs") from error
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise RecordsError(f"{path}: cannot read as CSV: {error}") from error


def _number(where: str, column: str, text: str, value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        raise RecordsError(f"{where}: column {column!r} is not a number: {text!r}")
    if column == "elapsed_time" and value < 0:
        raise RecordsError(f"{where}: column 'elapsed_time' is negative: {text!r}")
    if column == "test_accuracy" and not 0 <= value <= 1:
        raise RecordsError(f"{where}: column 'test_accuracy' is not in [0, 1]: {text!r}")
    return float(value)


def _clean(where: str, line: int, row: dict[str, Any]) -> dict[str, Any]:
    model = row["model_identifier"].strip()
    if not model:
        raise RecordsError(f"{where}: column 'model_identifier' is empty")
    dataset = row["train_dataset_name"].strip()
    if not dataset:
        raise RecordsError(f"{where}: column 'train_dataset_name' is empty")
    modality = FRAMEWORKS.get(row["framework"])
    if modality is None:
        raise RecordsError(
            f"{where}: column 'framework' has unknown value {row['framework']!r}; "
            f"expected one of {', '.join(FRAMEWORKS)}"
        )
    return {
        "line": line,
        "task": task_name(dataset, _config(where, row["configs"])),
        "modality": modality.value,
        "model": model,
        "test_accuracy": row["test_accuracy"],
        "val_accuracy": row["val_accuracy"],
        "cost_s": row["elapsed_time"],
        "vtab1k": (row["train_slice"], row["val_slice"]) == VTAB1K_SLICES,
    }


def _config(where: str, text: str) -> Mapping[str, Any]:
    try:
        config = ast.literal_eval(text) if text.strip() else {}
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as error:
        raise RecordsError(
            f"{where}: column 'configs' is not a Python dict literal: {text!r}"
        ) from error
    if not isinstance(config, dict):
        raise RecordsError(f"{where}: column 'configs' is not a dict: {text!r}")
    return config


def count_by(records: Records, column: str) -> Mapping[str, int]:
    """Number of distinct ``column`` values (``task`` or ``model``) per modality."""
    counts = records.runs.groupby("modality")[column].nunique()
    return MappingProxyType({str(k): int(v) for k, v in counts.items()})
