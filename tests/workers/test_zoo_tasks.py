"""The embed and classify task kinds on real zoo models and data, and the product's claim:
on the photo-crop task, 1-NN ranks pretrained EfficientNet-Lite0 above its random-init twin."""

from __future__ import annotations

from pathlib import Path

import pytest

from shift import zoo
from shift.errors import WorkerError
from shift.payloads import PayloadError
from shift.specs import DatasetSpec
from workers import classify, embed  # noqa: F401  (register the kinds)
from workers.kinds import TaskContext, get_kind

TRAIN_ROWS = 128
TEST_ROWS = 64


def photos(split):
    """The zoo's photo-crop task with fewer crops (8 train, 4 test per photo) to keep it fast."""
    spec = zoo.dataset(f"photos-{split}")
    params = {**spec.params, "crops_per_photo": {"train": 8, "test": 4}}
    return DatasetSpec(spec.name, spec.reader, params, spec.modality).to_json()


def ctx():
    return TaskContext("t", 1, None, lambda done, total, message: None)


@pytest.fixture(autouse=True)
def worker_state(store_dir, monkeypatch):
    """The worker's own state directory holds the feature store (payloads name no path)."""
    monkeypatch.setenv("SHIFT_STATE_DIR", store_dir)


def run_classify(model, store_dir, classifier="euclidean_nn", **extra):
    payload = {
        "model": zoo.model(model).to_json(),
        "train": [photos("train")],
        "train_rows": TRAIN_ROWS,
        "test": photos("test"),
        "test_rows": TEST_ROWS,
        "classifier": classifier,
        **extra,
    }
    return get_kind("classify").run(payload, ctx())


def test_embed_writes_a_block_once(models, store_dir):
    payload = {
        "model": zoo.model("efficientnet-lite0").to_json(),
        "dataset": photos("test"),
        "block": 0,
    }
    first = get_kind("embed").run(payload, ctx())
    assert (first["start"], first["stop"], first["feature_dim"]) == (0, 64, 1280)
    assert not first["cached"] and first["num_classes"] == len(zoo.PHOTOS)
    assert get_kind("embed").run(payload, ctx())["cached"]
    with pytest.raises(WorkerError, match="outside"):
        get_kind("embed").run({**payload, "block": 1}, ctx())
    assert (Path(store_dir) / "features").is_dir()


def test_a_payload_cannot_name_a_store(tmp_path):
    """A client chooses no path on a worker: the field of earlier versions is refused."""
    payload = {
        "model": zoo.model("efficientnet-lite0").to_json(),
        "dataset": photos("test"),
        "block": 0,
        "store": str(tmp_path / "elsewhere"),
    }
    with pytest.raises(PayloadError, match=r"unknown field\(s\) 'store'"):
        get_kind("embed").run(payload, ctx())
    with pytest.raises(PayloadError, match="unknown field"):
        run_classify("efficientnet-lite0", "", store=str(tmp_path))
    assert not (tmp_path / "elsewhere").exists()


def test_pretrained_beats_random_init_on_photo_crops(models, store_dir):
    pretrained = run_classify("efficientnet-lite0", store_dir)
    control = run_classify("efficientnet-lite0-random", store_dir)
    assert (pretrained["train_rows"], pretrained["test_rows"]) == (TRAIN_ROWS, TEST_ROWS)
    assert pretrained["err"] < 0.3 < control["err"]
    assert len(pretrained["nn_index"]) == TEST_ROWS
    cosine = run_classify("efficientnet-lite0", store_dir, "cosine_nn")
    assert cosine["embedded_blocks"] == 0 and cosine["err"] < control["err"]
    linear = run_classify(
        "efficientnet-lite0", store_dir, "linear", params={"learning_rate": 0.1, "num_epochs": 30}
    )
    assert linear["err"] < control["err"]


def test_classify_grows_from_a_prior(models, store_dir):
    small = run_classify("efficientnet-lite0", store_dir, train_rows=64)
    prior = {"train_rows": 64, "nn_index": small["nn_index"], "nn_distance": small["nn_distance"]}
    grown = run_classify("efficientnet-lite0", store_dir, prior=prior)
    assert grown["nn_index"] == run_classify("efficientnet-lite0", store_dir)["nn_index"]


def test_classify_refuses_missing_features_when_asked(store_dir):
    with pytest.raises(WorkerError, match="lack blocks"):
        run_classify("efficientnet-lite1", store_dir, embed_missing=False)
