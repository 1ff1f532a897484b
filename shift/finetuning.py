"""Fine-tuning plans: hyperparameters, task payloads, names and costs (pure functions).

``FINETUNE models WITH datasets (options)`` becomes one ``finetune`` task per model
(:func:`finetune_task`, run by ``workers.finetune``). Options the user leaves out take the
defaults of the model's family (:data:`DEFAULTS`); the resolved values are part of the task,
so its content hash, and so the cache, changes exactly when they do. A finished task becomes
a catalog model (:func:`finetuned_spec`): the base model's loader plus the fine-tuned
weights, tagged ``finetuned``, with its base model, data, hyperparameters and accuracies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shift.errors import SchedulerError
from shift.methods import FINETUNE_PARAMS
from shift.payloads import FINETUNE_DIR, FinetuneItem, FinetunePayload
from shift.planner import DatasetEntry
from shift.specs import Modality, ModelSpec
from shift.tasks import TaskSpec

VISION_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-4,
    "epochs": 3,
    "batch_size": 32,
    "val_fraction": 0.1,
    "weight_decay": 0.01,
    "seed": 0,
}
"""Image models (timm, local, transformers vision): AdamW at 1e-4."""

TEXT_DEFAULTS: dict[str, Any] = {**VISION_DEFAULTS, "learning_rate": 5e-5}
"""Text encoders: AdamW at 5e-5, the usual rate for BERT-sized models."""

DEFAULTS: dict[Modality, dict[str, Any]] = {
    Modality.VISION: VISION_DEFAULTS,
    Modality.TEXT: TEXT_DEFAULTS,
}
"""Hyperparameter defaults by what the model reads."""

METHOD = {"version": 1, "head": "linear probe on frozen features", "schedule": "cosine"}
"""The training method, carried in every payload (``workers.finetune`` implements it):
changing it changes every task's content hash, so no stale fine-tune is reused."""

CHECKPOINT_FOLDER = FINETUNE_DIR
"""The folder under a state directory where fine-tunes keep checkpoints and weights."""


def checkpoint_root(state_dir: str | Path) -> Path:
    """The fine-tune folder of a state directory (absolute, symlinks resolved)."""
    return Path(state_dir).expanduser().resolve() / CHECKPOINT_FOLDER


HYPERPARAMETERS = tuple(name for name in FINETUNE_PARAMS if name != "test")
"""The options that change training (``test`` only names the dataset to report on)."""


def hyperparameters(model: ModelSpec, given: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved hyperparameters of fine-tuning ``model``: given options over defaults.

    Raises:
        SchedulerError: an option is unknown or out of range.
    """
    resolved = dict(DEFAULTS[model.modality])
    for name, value in given.items():
        if name == "test":
            continue
        spec = FINETUNE_PARAMS.get(name)
        if spec is None:
            raise SchedulerError(
                f"FINETUNE has no option {name!r} (options: {', '.join(FINETUNE_PARAMS)})"
            )
        problem = spec.check(value)
        if problem:
            raise SchedulerError(problem)
        resolved[name] = int(value) if spec.kind is int else float(value)
    return {name: resolved[name] for name in HYPERPARAMETERS}


def _item(entry: DatasetEntry) -> FinetuneItem:
    return FinetuneItem(entry.spec, entry.cap)


def finetune_task(
    model: ModelSpec,
    train: Sequence[DatasetEntry],
    test: DatasetEntry | None,
    hparams: Mapping[str, Any],
) -> TaskSpec:
    """The ``finetune`` task of one model (training sets concatenated in order); the worker
    keeps its checkpoints in its own ``STATE_DIR/finetune``.

    Raises:
        SchedulerError: no training set.
    """
    if not train:
        raise SchedulerError("FINETUNE needs at least one dataset after WITH")
    payload = FinetunePayload(
        model,
        tuple(_item(e) for e in train),
        None if test is None else _item(test),
        dict(hparams),
        dict(METHOD),
    )
    return payload.task()


def split_rows(rows: int, val_fraction: float) -> tuple[int, int]:
    """(training, validation) rows of a fine-tune on ``rows`` rows.

    The validation split is ``round(rows * val_fraction)`` rows, at least one when the
    fraction is positive and at least one row is left to train on.
    """
    held = round(rows * val_fraction)
    val = min(max(held, 1), rows - 1) if val_fraction > 0 and rows >= 2 else 0
    return rows - val, val


PASSES_PER_TRAINING_ROW = 3.0
"""Forward-pass equivalents of one training step on a row (a backward pass costs ~2)."""


def estimate_seconds(
    train_rows: int, test_rows: int, hparams: Mapping[str, Any], forward_row_s: float | None
) -> float | None:
    """Estimated seconds of a fine-tune from the model's forward seconds per row.

    Counts the frozen-feature pass that fits the initial head, every epoch's training and
    validation passes, and the final test pass. ``None`` when the rate is unknown.
    """
    if forward_row_s is None:
        return None
    fit, val = split_rows(train_rows, float(hparams["val_fraction"]))
    epochs = int(hparams["epochs"])
    passes = (fit + val) + epochs * (PASSES_PER_TRAINING_ROW * fit + val) + test_rows
    return passes * forward_row_s


def finetuned_name(base: str, datasets: Sequence[str], task_id: str) -> str:
    """The catalog name of a fine-tuned model: base, first dataset and the task's hash."""
    data = datasets[0] + (f"+{len(datasets) - 1}" if len(datasets) > 1 else "")
    return f"{base}-ft-{data}-{task_id[:8]}"


def finetuned_spec(
    base: ModelSpec,
    name: str,
    result: Mapping[str, Any],
    datasets: Sequence[str],
    test: str | None,
) -> ModelSpec:
    """The catalog spec of a fine-tuned model from its ``finetune`` task result.

    Raises:
        SchedulerError: the result lacks the weights' path.
    """
    weights = result.get("weights")
    if not isinstance(weights, str):
        raise SchedulerError(f"the fine-tune of {base.name} returned no weights")
    loader = {**base.loader, "weights": {"path": weights}}
    if base.family == "timm" and "checkpoint" not in loader:
        loader["pretrained"] = False  # the weights replace the hub's: nothing to download
    tags = base.info.get("tags") or []
    tags = [tags] if isinstance(tags, str) else list(tags)
    info = {
        key: value
        for key, value in base.info.items()
        if key not in ("upstream_accuracy", "up_acc", "tags", "gflops")
    }
    info.update(
        {
            "finetuned": True,
            "base_model": base.name,
            "tags": [*tags, "finetuned"] if "finetuned" not in tags else tags,
            "finetune": {
                "datasets": list(datasets),
                "test": test,
                "hparams": result.get("hparams"),
                "val_acc": result.get("val_acc"),
                "test_acc": result.get("test_acc"),
                "best_epoch": result.get("best_epoch"),
                "train_rows": result.get("train_rows"),
                "val_rows": result.get("val_rows"),
                "test_rows": result.get("test_rows"),
            },
        }
    )
    return ModelSpec(name, base.family, base.modality, loader, base.batch_size, info)
