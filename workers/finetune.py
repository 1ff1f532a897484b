"""The ``finetune`` task kind: train every layer of a model and a new linear head.

TASK body: ``{"model": ModelSpec JSON, "train": [{"dataset": DatasetSpec JSON, "rows":
int | null}, ...], "test": {"dataset", "rows"} | null, "hparams": {learning_rate, epochs,
batch_size, val_fraction, weight_decay, seed}}`` (built by
:func:`shift.finetuning.finetune_task`). The checkpoint folder is the worker's own:
``<state_dir>/finetune/<task id>`` with the worker's ``state_dir`` (:func:`checkpoint_folder`).
A payload may still name a ``"store"``, but only one that resolves inside that folder; a
store elsewhere is refused, so a client cannot make a worker read or write files it chose.

The training sets are concatenated (the first ``rows`` rows of each); a seeded
``val_fraction`` of them is held out for validation. The head starts as the linear probe of
the frozen features (LP-FT: fine-tuning then starts where the linear probe ends, which
protects the pretrained features from a random head's gradients); then every layer trains
with AdamW and a cosine learning-rate decay, normalisation statistics frozen, rows shuffled
per epoch with the seed. After each epoch the state (weights, head, optimizer, schedule,
history) is written atomically to ``<folder>/state.pt``, and the best epoch by
validation accuracy (epoch 0 is the probe) to ``best.pt``; a worker that runs the task
again (after a crash, on any machine sharing the state directory) resumes after the last finished
epoch. Checkpoints are state dicts (tensors) and plain numbers, lists and strings, read
back with ``torch.load(weights_only=True)``: a file that needs more (a planted pickle) is
refused as corrupt or unsafe, never executed. The best epoch's weights are written to
``weights.pt`` (the model without the head, loadable through the catalog), its head to
``head.pt`` and the result to ``result.json``; then the checkpoints are deleted. A task run
again after it finished (its result lost with its worker) answers from ``result.json``.

RESULT: ``{"weights", "head", "hparams", "num_classes", "classes", "train_rows", "val_rows",
"test_rows", "val_acc", "val_loss", "test_acc", "best_epoch", "epochs", "history",
"resumed_from_epoch", "seconds"}``. The best epoch has the highest validation accuracy, ties
going to the lower validation loss.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import CatalogError, WorkerError
from shift.finetuning import HYPERPARAMETERS, checkpoint_root, split_rows
from shift.specs import DatasetSpec, ModelSpec
from workers.embed import read, specs
from workers.kinds import TaskContext, device_of, task_kind
from workers.models.base import FeatureExtractor, to_device
from workers.readers.base import label_key
from workers.training import (
    atomic_save,
    atomic_write_text,
    fit_head,
    freeze_norm_statistics,
    frozen_features,
    load_checkpoint,
    private_model,
)

RESULT_NAME = "result.json"
"""The finished run's result, next to its weights."""

STATE_VERSION = 1
"""Format of ``state.pt``; a checkpoint of another version is not resumed."""

MAX_CLASSES_REPORTED = 1000


@dataclass(frozen=True)
class Rows:
    """Rows and their label values, in order."""

    rows: list[Any]
    labels: list[Any]


@dataclass(frozen=True)
class Job:
    """A parsed ``finetune`` payload."""

    model: ModelSpec
    train: list[tuple[DatasetSpec, int | None]]
    test: tuple[DatasetSpec, int | None] | None
    hparams: dict[str, Any]
    folder: Path
    device: str


def _item(value: Any, what: str) -> tuple[DatasetSpec, int | None]:
    if not isinstance(value, dict) or "dataset" not in value:
        raise WorkerError(f"{what} must be an object {{dataset, rows}}, got {value!r}")
    try:
        spec = DatasetSpec.from_json(value["dataset"])
    except CatalogError as error:
        raise WorkerError(f"{what}: {error}") from None
    rows = value.get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise WorkerError(f"{what}: 'rows' must be a non-negative integer or null, got {rows!r}")
    return spec, rows


def _hparams(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WorkerError(f"'hparams' must be an object, got {value!r}")
    missing = [name for name in HYPERPARAMETERS if name not in value]
    if missing:
        raise WorkerError(f"'hparams' lacks {', '.join(missing)}")
    out = {name: value[name] for name in HYPERPARAMETERS}
    for name in ("epochs", "batch_size", "seed"):
        if isinstance(out[name], bool) or not isinstance(out[name], int) or out[name] < 0:
            raise WorkerError(f"hparams {name} must be a non-negative integer, got {out[name]!r}")
    if out["batch_size"] < 1:
        raise WorkerError("hparams batch_size must be at least 1")
    for name in ("learning_rate", "val_fraction", "weight_decay"):
        if isinstance(out[name], bool) or not isinstance(out[name], int | float):
            raise WorkerError(f"hparams {name} must be a number, got {out[name]!r}")
    if not 0 <= out["val_fraction"] < 1:
        raise WorkerError(f"hparams val_fraction must be in [0, 1), got {out['val_fraction']}")
    return out


TASK_FOLDER = re.compile(r"[A-Za-z0-9][\w.-]*")
"""A task id usable as a folder name (one path component, no climbing)."""


def configured_root(ctx: TaskContext | None = None) -> Path:
    """The worker's checkpoint root, ``<state_dir>/finetune``.

    ``state_dir`` is the context's when the runtime gives it one (``ctx.state_dir``), else
    the worker's ``state_dir`` setting.
    """
    state_dir = getattr(ctx, "state_dir", None)
    if state_dir is None:
        from shift.settings import load_settings

        state_dir = load_settings()["state_dir"]
    return checkpoint_root(state_dir)


def checkpoint_folder(payload: dict[str, Any], task_id: str, root: Path) -> Path:
    """The task's checkpoint folder under the worker's ``root``.

    Raises:
        WorkerError: the task id is not a folder name, or the payload names a ``store``
            outside ``root``.
    """
    if not TASK_FOLDER.fullmatch(task_id):
        raise WorkerError(f"task id {task_id!r} cannot name a checkpoint folder")
    root = root.resolve()
    store = payload.get("store")
    if store is None:
        return root / task_id
    if not isinstance(store, str) or not store:
        raise WorkerError(f"'store' must be a path, got {store!r}")
    resolved = Path(store).expanduser().resolve()
    if not resolved.is_relative_to(root):
        raise WorkerError(
            f"'store' {store!r} is outside this worker's checkpoint folder {str(root)!r}; "
            "workers keep checkpoints under their own state_dir (leave 'store' out)"
        )
    return resolved / task_id


def parse_job(
    payload: dict[str, Any], task_id: str, device: str = "cpu", root: Path | None = None
) -> Job:
    """Check a payload and name the task's checkpoint folder.

    Args:
        payload: The task body.
        task_id: The task's id (its folder's name).
        device: The torch device, unless the payload names one.
        root: The worker's checkpoint root (:func:`configured_root` when omitted).

    Raises:
        WorkerError: a field is missing or invalid, or the payload's ``store`` lies outside
            ``root``.
    """
    (model,) = specs(payload, "model")
    train = payload.get("train")
    if not isinstance(train, list) or not train:
        raise WorkerError("'train' must be a non-empty list of {dataset, rows}")
    test = payload.get("test")
    folder = checkpoint_folder(payload, task_id, configured_root() if root is None else root)
    return Job(
        model,
        [_item(v, f"train[{i}]") for i, v in enumerate(train)],
        None if test is None else _item(test, "test"),
        _hparams(payload.get("hparams")),
        folder,
        str(payload.get("device") or device),
    )


def load_rows(items: list[tuple[DatasetSpec, int | None]]) -> Rows:
    """The rows and label values of datasets (the first ``rows`` of each), concatenated."""
    rows: list[Any] = []
    labels: list[Any] = []
    for spec, cap in items:
        data = read(spec)
        stop = len(data) if cap is None else min(cap, len(data))
        rows += data.rows(0, stop)
        labels += [data.classes[int(i)] for i in data.labels[:stop]]
    return Rows(rows, labels)


class Trainer:
    """A model, its head and the batches of one fine-tune."""

    def __init__(self, extractor: FeatureExtractor, head: Any, batch_size: int) -> None:
        self.extractor = extractor
        self.module = extractor.torch_module()
        self.head = head
        self.batch_size = batch_size

    def parameters(self) -> list[Any]:
        """Every trained parameter: the model's and the head's."""
        return [*self.module.parameters(), *self.head.parameters()]

    def logits(self, rows: list[Any]) -> Any:
        """The head's logits for ``rows``."""
        batch = self.extractor.preprocess(rows)
        features = self.extractor.forward(to_device(batch, self.extractor.device))
        return self.head(features.reshape(features.shape[0], -1))

    def evaluate(
        self, rows: list[Any], labels: np.ndarray, ctx: TaskContext
    ) -> tuple[float | None, float | None]:
        """(accuracy, mean cross-entropy) on ``rows`` in eval mode; ``(None, None)`` when empty.

        A label of ``-1`` (a class the training data lacks) is always wrong and adds no loss.
        """
        import torch

        if not rows:
            return None, None
        self.module.eval()
        self.head.eval()
        right, loss, seen = 0, 0.0, 0
        with torch.no_grad():
            for start in range(0, len(rows), self.extractor.batch_size):
                ctx.check_cancelled()
                stop = start + self.extractor.batch_size
                logits = self.logits(rows[start:stop]).float().cpu()
                want = torch.from_numpy(labels[start:stop])
                right += int((logits.argmax(1) == want).sum())
                known = want >= 0
                if bool(known.any()):
                    loss += float(
                        torch.nn.functional.cross_entropy(
                            logits[known], want[known], reduction="sum"
                        )
                    )
                    seen += int(known.sum())
        return right / len(rows), (loss / seen if seen else None)

    def epoch(
        self, rows: list[Any], labels: np.ndarray, optimizer: Any, schedule: Any, seed: int,
        epoch: int, ctx: TaskContext, total_epochs: int,
    ) -> float:  # fmt: skip
        """One pass over ``rows`` in a seeded order; returns the mean training loss."""
        import torch

        torch.manual_seed(seed * 100_003 + epoch)
        order = np.random.default_rng([seed, epoch]).permutation(len(rows))
        self.module.train()
        freeze_norm_statistics(self.module)
        self.head.train()
        target = torch.from_numpy(labels.astype(np.int64))
        losses = 0.0
        for start in range(0, len(order), self.batch_size):
            ctx.check_cancelled()
            pick = order[start : start + self.batch_size]
            optimizer.zero_grad()
            logits = self.logits([rows[int(i)] for i in pick])
            loss = torch.nn.functional.cross_entropy(
                logits, target[torch.from_numpy(pick)].to(logits.device)
            )
            loss.backward()
            optimizer.step()
            schedule.step()
            losses += float(loss.detach()) * len(pick)
            ctx.progress(
                epoch - 1 + (start + len(pick)) / len(order),
                total_epochs,
                f"epoch {epoch}/{total_epochs}",
            )
        return losses / max(len(order), 1)

    def save(self, path: Path, **extra: Any) -> None:
        """Write the weights and the head (and ``extra``) atomically."""
        atomic_save(
            {"model": self.module.state_dict(), "head": self.head.state_dict(), **extra}, path
        )

    def load(self, saved: dict[str, Any]) -> None:
        """Load weights and head written by :meth:`save`."""
        self.module.load_state_dict(saved["model"])
        self.head.load_state_dict(saved["head"])


def better(val_acc: float | None, val_loss: float | None, best: dict[str, Any]) -> bool:
    """Whether an epoch beats the best so far: higher validation accuracy, then lower loss.

    Without a validation split every epoch is better than the one before (the last wins).
    """
    if val_acc is None or best["val_acc"] is None:
        return True
    if val_acc != best["val_acc"]:
        return val_acc > best["val_acc"]
    return val_loss is not None and (best["val_loss"] is None or val_loss < best["val_loss"])


def _label_ids(values: list[Any], classes: list[Any]) -> np.ndarray:
    index = {value: i for i, value in enumerate(classes)}
    return np.array([index.get(v, -1) for v in values], dtype=np.int64)


def _cosine(total_steps: int) -> Any:
    def factor(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))

    return factor


STATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "model": dict, "head": dict, "optimizer": dict, "schedule": dict, "epoch": int,
    "history": list, "best": dict,
}  # fmt: skip
"""What a ``state.pt`` holds besides its version, and of which types."""


def _load_state(path: Path) -> dict[str, Any] | None:
    """The checkpoint to resume from; ``None`` when there is none or it has another version.

    Raises:
        WorkerError: the file is corrupt, unsafe (needs more than weights-only loading) or
            lacks a field.
    """
    if not path.exists():
        return None
    state = load_checkpoint(path)
    if state.get("version") != STATE_VERSION:
        return None
    for name, kind in STATE_FIELDS.items():
        if not isinstance(state.get(name), kind) or isinstance(state.get(name), bool):
            raise WorkerError(
                f"checkpoint {path} is corrupt: {name!r} is missing or not a {kind}; "
                f"delete {str(path.parent)!r} to start this fine-tune again"
            )
    return state


def run_finetune(job: Job, ctx: TaskContext) -> dict[str, Any]:
    """Fine-tune (or resume fine-tuning) one model; see the module docstring."""
    import torch

    started = time.perf_counter()
    finished = _load_result(job.folder / RESULT_NAME)
    if finished is not None:
        return finished
    hp = job.hparams
    data = load_rows(job.train)
    classes = sorted(set(data.labels), key=label_key)
    if len(data.rows) < 2 or len(classes) < 2:
        raise WorkerError(
            f"fine-tuning needs at least 2 rows and 2 classes; the training data has "
            f"{len(data.rows)} row(s) and {len(classes)} class(es)"
        )
    labels = _label_ids(data.labels, classes)
    _, val_n = split_rows(len(data.rows), float(hp["val_fraction"]))
    order = np.random.default_rng(int(hp["seed"])).permutation(len(data.rows))
    val_pick, fit_pick = order[:val_n], order[val_n:]
    fit_rows = [data.rows[int(i)] for i in fit_pick]
    val_rows = [data.rows[int(i)] for i in val_pick]
    fit_y, val_y = labels[fit_pick], labels[val_pick]

    extractor = private_model(job.model, job.device)
    head = torch.nn.Linear(extractor.feature_dim, len(classes)).to(job.device)
    trainer = Trainer(extractor, head, int(hp["batch_size"]))
    state = _load_state(job.folder / "state.pt")
    resumed = None if state is None else int(state["epoch"])
    if state is None:
        ctx.progress(0, int(hp["epochs"]), "fitting the head on frozen features")
        features = frozen_features(extractor, fit_rows, ctx.check_cancelled)
        fitted = fit_head(features, fit_y, len(classes), int(hp["seed"]))
        head.load_state_dict(fitted.state_dict())
        val_acc, val_loss = trainer.evaluate(val_rows, val_y, ctx)
        history = [{"epoch": 0, "train_loss": None, "val_acc": val_acc, "val_loss": val_loss,
                    "seconds": time.perf_counter() - started}]  # fmt: skip
        best = {"epoch": 0, "val_acc": val_acc, "val_loss": val_loss}
        trainer.save(job.folder / "best.pt", **best)
    else:
        trainer.load(state)
        history, best = list(state["history"]), dict(state["best"])
    optimizer = torch.optim.AdamW(
        trainer.parameters(), lr=float(hp["learning_rate"]), weight_decay=float(hp["weight_decay"])
    )
    steps = int(hp["epochs"]) * math.ceil(len(fit_rows) / int(hp["batch_size"]))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(steps))
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
    else:
        _save_state(trainer, job, 0, optimizer, schedule, history, best)
    for epoch in range((resumed or 0) + 1, int(hp["epochs"]) + 1):
        t0 = time.perf_counter()
        loss = trainer.epoch(
            fit_rows, fit_y, optimizer, schedule, int(hp["seed"]), epoch, ctx, int(hp["epochs"])
        )
        val_acc, val_loss = trainer.evaluate(val_rows, val_y, ctx)
        history.append({"epoch": epoch, "train_loss": loss, "val_acc": val_acc,
                        "val_loss": val_loss, "seconds": time.perf_counter() - t0})  # fmt: skip
        if better(val_acc, val_loss, best):
            best = {"epoch": epoch, "val_acc": val_acc, "val_loss": val_loss}
            trainer.save(job.folder / "best.pt", **best)
        _save_state(trainer, job, epoch, optimizer, schedule, history, best)
        shown = "n/a" if val_acc is None else f"{val_acc:.3f}"
        ctx.progress(epoch, int(hp["epochs"]), f"epoch {epoch}: loss {loss:.4f}, val acc {shown}")

    trainer.load(load_checkpoint(job.folder / "best.pt"))
    test_rows: list[Any] = []
    test_acc = None
    if job.test is not None:
        test = load_rows([job.test])
        test_rows = test.rows
        test_acc, _ = trainer.evaluate(test.rows, _label_ids(test.labels, classes), ctx)
    weights, head_path = job.folder / "weights.pt", job.folder / "head.pt"
    atomic_save(trainer.module.state_dict(), weights)
    atomic_save({**trainer.head.state_dict(), "classes": classes}, head_path)
    result = {
        "weights": str(weights.resolve()),
        "head": str(head_path.resolve()),
        "hparams": hp,
        "num_classes": len(classes),
        "classes": classes[:MAX_CLASSES_REPORTED],
        "train_rows": len(fit_rows),
        "val_rows": len(val_rows),
        "test_rows": len(test_rows),
        "val_acc": best["val_acc"],
        "val_loss": best["val_loss"],
        "test_acc": test_acc,
        "best_epoch": best["epoch"],
        "epochs": int(hp["epochs"]),
        "history": history,
        "resumed_from_epoch": resumed,
        "seconds": time.perf_counter() - started,
    }
    atomic_write_text(job.folder / RESULT_NAME, json.dumps(result))
    for name in ("state.pt", "best.pt"):  # the result and the weights are all that is left
        (job.folder / name).unlink(missing_ok=True)
    return result


def _load_result(path: Path) -> dict[str, Any] | None:
    """A finished run's result (a task run again after its result was lost), if any.

    Only a result whose weights and head are this folder's own files counts: a planted
    ``result.json`` cannot make the catalog register weights from elsewhere.
    """
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    own = {"weights": path.parent / "weights.pt", "head": path.parent / "head.pt"}
    for key, want in own.items():
        if value.get(key) != str(want.resolve()) or not want.exists():
            return None
    return value


def _save_state(
    trainer: Trainer, job: Job, epoch: int, optimizer: Any, schedule: Any,
    history: list[dict[str, Any]], best: dict[str, Any],
) -> None:  # fmt: skip
    trainer.save(
        job.folder / "state.pt",
        version=STATE_VERSION,
        epoch=epoch,
        optimizer=optimizer.state_dict(),
        schedule=schedule.state_dict(),
        history=history,
        best=best,
    )


@task_kind("finetune")
def finetune(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Fine-tune a model and a new head on a dataset, resumable from its last epoch."""
    job = parse_job(payload, ctx.task_id, device_of(payload, ctx), configured_root(ctx))
    return run_finetune(job, ctx)
