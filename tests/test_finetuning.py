"""Fine-tuning plans without workers: hyperparameters, splits, names, specs and costs."""

from __future__ import annotations

import pytest

from shift import zoo
from shift.errors import SchedulerError
from shift.finetuning import (
    TEXT_DEFAULTS,
    VISION_DEFAULTS,
    estimate_seconds,
    finetune_task,
    finetuned_name,
    finetuned_spec,
    hyperparameters,
    split_rows,
)
from shift.planner import DatasetEntry

LITE0 = zoo.model("efficientnet-lite0")
MINILM = zoo.model("minilm-l6")


def test_defaults_follow_the_model_family_and_options_override_them() -> None:
    assert hyperparameters(LITE0, {}) == VISION_DEFAULTS
    assert hyperparameters(MINILM, {})["learning_rate"] == TEXT_DEFAULTS["learning_rate"] == 5e-5
    tuned = hyperparameters(LITE0, {"learning_rate": 0.01, "epochs": 5.0, "test": "x"})
    assert tuned["learning_rate"] == 0.01 and tuned["epochs"] == 5
    assert isinstance(tuned["epochs"], int) and "test" not in tuned


@pytest.mark.parametrize(
    ("options", "message"),
    [({"epochs": 0}, "epochs must be at least 1"), ({"momentum": 0.9}, "no option 'momentum'")],
)
def test_bad_options_are_scheduler_errors(options: dict, message: str) -> None:
    with pytest.raises(SchedulerError, match=message):
        hyperparameters(LITE0, options)


@pytest.mark.parametrize(
    ("rows", "fraction", "split"),
    [
        (100, 0.1, (90, 10)),
        (5, 0.01, (4, 1)),
        (2, 0.9, (1, 1)),
        (1, 0.5, (1, 0)),
        (10, 0.0, (10, 0)),
    ],
)
def test_validation_split_keeps_rows_on_both_sides(
    rows: int, fraction: float, split: tuple
) -> None:
    assert split_rows(rows, fraction) == split


def test_a_task_changes_exactly_when_its_inputs_do() -> None:
    train = DatasetEntry(zoo.dataset("photos-train"), 384)
    test = DatasetEntry(zoo.dataset("photos-test"), 192)
    hp = hyperparameters(LITE0, {})
    one = finetune_task(LITE0, [train], test, hp)
    assert one.task_id == finetune_task(LITE0, [train], test, dict(hp)).task_id
    assert one.task_id != finetune_task(LITE0, [train], None, hp).task_id
    assert one.task_id != finetune_task(LITE0, [train], test, {**hp, "seed": 1}).task_id
    assert one.payload["train"] == [{"dataset": train.spec.to_json(), "rows": None}]
    assert "store" not in one.payload  # the worker keeps checkpoints in its own state_dir
    with pytest.raises(SchedulerError, match="at least one dataset"):
        finetune_task(LITE0, [], None, hp)


def test_cost_counts_the_probe_pass_epochs_and_test() -> None:
    hp = {**VISION_DEFAULTS, "epochs": 2, "val_fraction": 0.25}
    # 100 rows: 75 train + 25 val; probe pass 100, 2 x (3 x 75 + 25), test 40
    assert estimate_seconds(100, 40, hp, 0.01) == pytest.approx((100 + 2 * 250 + 40) * 0.01)
    assert estimate_seconds(100, 40, hp, None) is None


def test_finetuned_spec_keeps_the_loader_and_adds_weights_and_provenance() -> None:
    result = {"weights": "/state/finetune/abc/weights.pt", "val_acc": 0.9, "test_acc": 0.8}
    name = finetuned_name(LITE0.name, ["photos-train", "more"], "abcdef123456")
    assert name == "efficientnet-lite0-ft-photos-train+1-abcdef12"
    spec = finetuned_spec(LITE0, name, result, ["photos-train", "more"], "photos-test")
    assert spec.loader == {**LITE0.loader, "weights": {"path": result["weights"]}}
    assert spec.info["finetuned"] and spec.info["base_model"] == LITE0.name
    assert "finetuned" in spec.info["tags"] and "upstream_accuracy" not in spec.info
    assert spec.info["finetune"]["test_acc"] == 0.8
    with pytest.raises(SchedulerError, match="no weights"):
        finetuned_spec(LITE0, name, {}, ["photos-train"], None)
