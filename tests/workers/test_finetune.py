"""The ``finetune`` kind in process, on a tiny ViT this test builds and the bundled digits.

A run interrupted after its first epoch and resumed from the checkpoint must end with the
same weights as an uninterrupted run; the weights then load through the catalog's spec.
"""

from __future__ import annotations

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
from workers.finetune import better, parse_job, run_finetune
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


def _payload(model: ModelSpec, store: Path, rows: int = 64, **hparams: Any) -> dict[str, Any]:
    train, test = _entries(rows)
    resolved = hyperparameters(model, {**HPARAMS, **hparams})
    task = finetune_task(model, [train], test, resolved, str(store))
    return task.payload


def test_resumed_run_ends_like_an_uninterrupted_one(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny, tmp_path)
    whole = run_finetune(parse_job(payload, "whole"), _context("whole"))
    assert whole["resumed_from_epoch"] is None
    assert (whole["train_rows"], whole["val_rows"], whole["test_rows"]) == (48, 16, 64)
    assert [h["epoch"] for h in whole["history"]] == [0, 1, 2]

    with pytest.raises(Crash):
        run_finetune(parse_job(payload, "split"), _context("split", crash_after=1))
    state = torch.load(tmp_path / "split" / "state.pt", weights_only=False)
    assert state["epoch"] == 1 and not (tmp_path / "split" / "weights.pt").exists()
    resumed = run_finetune(parse_job(payload, "split"), _context("split"))
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
    payload = _payload(tiny, tmp_path, rows=32)
    first = run_finetune(parse_job(payload, "t"), _context("t"))
    again = run_finetune(parse_job(payload, "t"), _context("t", crash_after=1))  # no training
    assert again == first


def test_finetuned_weights_load_through_the_catalog_spec(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny, tmp_path, rows=32, val_fraction=0.0)
    result = run_finetune(parse_job(payload, "t"), _context("t"))
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
    payload = {**_payload(tiny, tmp_path), **change}
    with pytest.raises(WorkerError, match=message):
        parse_job(payload, "x")


def test_one_class_is_refused(tiny: ModelSpec, tmp_path: Path) -> None:
    payload = _payload(tiny, tmp_path, rows=1)
    with pytest.raises(WorkerError, match="at least 2 rows and 2 classes"):
        run_finetune(parse_job(payload, "x"), _context("x"))


def test_best_epoch_prefers_accuracy_then_loss() -> None:
    best = {"val_acc": 0.5, "val_loss": 1.0}
    assert better(0.6, 2.0, best)
    assert not better(0.4, 0.1, best)
    assert better(0.5, 0.9, best)
    assert not better(0.5, 1.1, best)
    assert better(None, None, best)
