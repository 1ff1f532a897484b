"""The ``finetune`` kind in process, on a tiny ViT this test builds and the bundled digits.

A run interrupted after its first epoch and resumed from the checkpoint must end with the
same weights as an uninterrupted run; the weights then load through the catalog's spec.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import transformers

from shift import zoo
from shift.errors import WorkerError
from shift.finetuning import finetune_task, finetuned_spec, hyperparameters
from shift.planner import DatasetEntry
from shift.specs import Modality, ModelSpec
from workers.finetune import Job, better, parse_job, run_finetune
from workers.kinds import TaskContext
from workers.models.base import load_model

HPARAMS = {"epochs": 2, "batch_size": 8, "learning_rate": 1e-3, "val_fraction": 0.25}


class Crash(Exception):
    """Stands for a worker dying after a checkpoint."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ModelSpec:
    folder = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=48, hidden_dropout_prob=0.1,
    )  # fmt: skip
    transformers.ViTModel(config, add_pooling_layer=True).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return ModelSpec("tiny-vit", "huggingface", Modality.VISION, {"model": str(folder)}, 16)


def _entries(rows: int) -> tuple[DatasetEntry, DatasetEntry]:
    train, test = zoo.dataset("digits-train"), zoo.dataset("digits-test")
    capped = [
        type(d)(d.name, d.reader, {**d.params, "max_rows": rows}, d.modality) for d in (train, test)
    ]
    return DatasetEntry(capped[0], 10_000), DatasetEntry(capped[1], 10_000)


def _context(task_id: str, crash_after: int | None = None) -> TaskContext:
    def report(done: float, total: float, message: str) -> None:
        if crash_after is not None and message.startswith(f"epoch {crash_after}:"):
            raise Crash(message)

    return TaskContext(task_id, 1, None, report)


def _payload(model: ModelSpec, rows: int = 64, **hparams: Any) -> dict[str, Any]:
    train, test = _entries(rows)
    resolved = hyperparameters(model, {**HPARAMS, **hparams})
    return finetune_task(model, [train], test, resolved).payload


def _job(payload: dict[str, Any], task_id: str, root: Path) -> Job:
    """The job as a worker whose checkpoint root is ``root`` parses it."""
    return parse_job(payload, task_id, root=root)


def test_resumed_run_ends_like_an_uninterrupted_one(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny)
    whole = run_finetune(_job(payload, "whole", tmp_path), _context("whole"))
    assert whole["resumed_from_epoch"] is None
    assert (whole["train_rows"], whole["val_rows"], whole["test_rows"]) == (48, 16, 64)
    assert [h["epoch"] for h in whole["history"]] == [0, 1, 2]

    with pytest.raises(Crash):
        run_finetune(_job(payload, "split", tmp_path), _context("split", crash_after=1))
    state = torch.load(tmp_path / "split" / "state.pt", weights_only=True)
    assert state["epoch"] == 1 and not (tmp_path / "split" / "weights.pt").exists()
    resumed = run_finetune(_job(payload, "split", tmp_path), _context("split"))
    assert resumed["resumed_from_epoch"] == 1
    for key in ("val_acc", "val_loss", "test_acc", "best_epoch", "num_classes"):
        assert resumed[key] == pytest.approx(whole[key], abs=1e-6), key
    a = torch.load(whole["weights"], weights_only=True)
    b = torch.load(resumed["weights"], weights_only=True)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6)
    left = sorted(p.name for p in (tmp_path / "split").iterdir())
    assert left == ["head.pt", "result.json", "weights.pt"]  # checkpoints deleted


def test_a_finished_task_run_again_answers_from_its_result(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny, rows=32)
    first = run_finetune(_job(payload, "t", tmp_path), _context("t"))
    again = run_finetune(_job(payload, "t", tmp_path), _context("t", crash_after=1))  # no training
    assert again == first


def test_finetuned_weights_load_through_the_catalog_spec(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny, rows=32, val_fraction=0.0)
    result = run_finetune(_job(payload, "t", tmp_path), _context("t"))
    assert result["best_epoch"] == 2 and result["val_acc"] is None  # no validation: the last
    spec = finetuned_spec(tiny, "tiny-ft", result, ["digits-train"], "digits-test")
    assert spec.info["finetuned"] is True and spec.info["base_model"] == "tiny-vit"
    assert spec.key != tiny.key
    base, tuned = load_model(tiny), load_model(spec)
    rows = [np.zeros((32, 32, 3), dtype=np.uint8)]
    from PIL import Image

    images = [Image.fromarray(r) for r in rows]
    assert not np.allclose(base.embed(images), tuned.embed(images))
    saved = torch.load(result["weights"], weights_only=True)
    for name, value in tuned.module.state_dict().items():
        torch.testing.assert_close(value, saved[name])


def test_weights_that_do_not_fit_are_a_clear_error(tiny: ModelSpec, tmp_path: Path) -> None:
    torch.save({"nope": torch.zeros(1)}, tmp_path / "w.pt")
    spec = ModelSpec(
        "bad", tiny.family, tiny.modality, {**tiny.loader, "weights": str(tmp_path / "w.pt")}
    )
    with pytest.raises(WorkerError, match=r"weights w\.pt do not fit"):
        load_model(spec)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train": []}, "'train' must be a non-empty list"),
        ({"train": [{"rows": 3}]}, "train\\[0\\] must be an object"),
        ({"hparams": {"epochs": 1}}, "'hparams' lacks"),
        ({"hparams": "fast"}, "'hparams' must be an object"),
    ],
)
def test_bad_payloads_are_worker_errors(
    tiny: ModelSpec, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    payload = {**_payload(tiny), **change}
    with pytest.raises(WorkerError, match=message):
        _job(payload, "x", tmp_path)


def test_one_class_is_refused(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny, rows=1)
    with pytest.raises(WorkerError, match="at least 2 rows and 2 classes"):
        run_finetune(_job(payload, "x", tmp_path), _context("x"))


class Planted:
    """Unpickling this object creates ``marker`` (it stands for any code an attacker runs)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("name", ["state.pt", "best.pt"])
def test_a_planted_checkpoint_is_refused_and_never_run(
    tiny: ModelSpec, tmp_path: Path, name: str
) -> None:
    payload = _payload(tiny, rows=32)
    job = _job(payload, "t", tmp_path)
    if name == "best.pt":  # a real run to its last epoch, then best.pt swapped before reading
        with pytest.raises(Crash):
            run_finetune(job, _context("t", crash_after=2))
    job.folder.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / "ran"
    state = {"version": 1, "epoch": 1, "model": Planted(marker)}
    torch.save(state, job.folder / name)
    with pytest.raises(WorkerError, match=rf"{re.escape(name)} is corrupt or unsafe") as caught:
        run_finetune(job, _context("t"))
    message = str(caught.value)
    assert "Unsupported global" in message and f"delete {str(job.folder)!r}" in message
    assert not marker.exists()


def test_a_checkpoint_missing_fields_is_corrupt(tiny: ModelSpec, tmp_path: Path) -> None:
    job = _job(_payload(tiny, rows=32), "t", tmp_path)
    job.folder.mkdir(parents=True)
    torch.save({"version": 1, "epoch": "one"}, job.folder / "state.pt")
    with pytest.raises(WorkerError, match=r"state\.pt is corrupt: 'model' is missing"):
        run_finetune(job, _context("t"))


def test_the_checkpoint_folder_is_the_workers_own(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny)
    root = tmp_path / "state" / "finetune"
    assert _job(payload, "t", root).folder == root.resolve() / "t"
    inside = _job({**payload, "store": str(root / "sub")}, "t", root)
    assert inside.folder == root.resolve() / "sub" / "t"
    for store in (str(tmp_path / "elsewhere"), str(root / ".." / "x"), "/tmp"):
        with pytest.raises(WorkerError, match="outside this worker's checkpoint folder"):
            _job({**payload, "store": store}, "t", root)
    root.mkdir(parents=True)
    (root / "link").symlink_to(tmp_path, target_is_directory=True)  # inside, pointing out
    with pytest.raises(WorkerError, match="outside"):
        _job({**payload, "store": str(root / "link")}, "t", root)
    for task_id in ("../t", "a/b", "", ".."):
        with pytest.raises(WorkerError, match="cannot name a checkpoint folder"):
            _job(payload, task_id, root)


def test_the_default_root_is_the_workers_state_dir(tiny: ModelSpec, worker_settings: Path) -> None:
    job = parse_job(_payload(tiny), "t")
    assert job.folder == (worker_settings / "state" / "finetune" / "t").resolve()


def test_a_planted_result_naming_other_weights_is_ignored(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny, rows=32)
    job = _job(payload, "t", tmp_path)
    real = run_finetune(job, _context("t"))
    elsewhere = tmp_path / "other.pt"
    torch.save({}, elsewhere)
    forged = {**real, "weights": str(elsewhere)}
    (job.folder / "result.json").write_text(json.dumps(forged))
    again = run_finetune(job, _context("t"))  # trains again instead of answering the forgery
    assert again["weights"] == real["weights"]


def test_best_epoch_prefers_accuracy_then_loss() -> None:
    best = {"val_acc": 0.5, "val_loss": 1.0}
    assert better(0.6, 2.0, best)
    assert not better(0.4, 0.1, best)
    assert better(0.5, 0.9, best)
    assert not better(0.5, 1.1, best)
    assert better(None, None, best)
