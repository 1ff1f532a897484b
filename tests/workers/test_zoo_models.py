"""Real zoo models load offline and give deterministic features of the measured size."""

from __future__ import annotations

import numpy as np
import pytest

from shift import zoo
from shift.errors import WorkerError
from shift.specs import ModelSpec, resolve_file
from workers.models import get_family
from workers.readers import open_dataset


def test_efficientnet_lite0_features(models):
    model = models.get(zoo.model("efficientnet-lite0"))
    assert model.feature_dim == 1280 and 3_000_000 < model.num_params < 5_000_000
    assert model.info["input_size"] == 224 and model.info["mean"] == [0.5, 0.5, 0.5]
    rows = open_dataset(zoo.dataset("photos-train")).rows(0, 3)
    first = model.embed(rows)
    assert first.shape == (3, 1280) and first.dtype == np.float32
    assert np.array_equal(first, model.embed(rows))
    assert models.get(zoo.model("efficientnet-lite0")) is model  # cached


def test_minilm_l6_mean_pooled_sentence_embeddings(models):
    model = models.get(zoo.model("minilm-l6"))
    assert model.feature_dim == 384 and 22_000_000 < model.num_params < 23_500_000
    vectors = model.embed(["A good film.", "A great movie!", "The tax bill passed."])
    assert np.array_equal(
        vectors, model.embed(["A good film.", "A great movie!", "The tax bill passed."])
    )
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.2


def test_minilm_l3_converts_exactly_from_onnx(models):
    from onnx.reference import ReferenceEvaluator

    model = models.get(zoo.model("minilm-l3"))
    assert model.feature_dim == 384 and model.info["layers"] == 3
    batch = model.preprocess(["offline models, exactly converted"])
    session = ReferenceEvaluator(str(resolve_file(zoo.MINILM_L3_ONNX)))
    outputs = session.run(None, {k: batch[k].numpy() for k in ("input_ids", "attention_mask")})
    pooled = [o for o in outputs if o.shape == (1, 384)]
    assert (
        pooled
        and np.abs(pooled[0] - model.embed(["offline models, exactly converted"])).max() < 1e-4
    )


def test_controls_are_seeded(models):
    random = models.get(zoo.model("bert-random"))
    again = get_family("huggingface").load(zoo.model("bert-random"), "cpu")
    assert np.array_equal(random.embed(["same seed"]), again.embed(["same seed"]))
    short = models.get(zoo.model("minilm-l6-layer2"))
    assert short.num_params < models.get(zoo.model("minilm-l6")).num_params


def test_unknown_family_and_bad_checkpoint():
    with pytest.raises(WorkerError, match="did you mean 'timm'"):
        get_family("tim")
    bad = ModelSpec(
        "bad",
        "timm",
        "vision",
        {"arch": "resnet18", "checkpoint": zoo.model("efficientnet-lite0").loader["checkpoint"]},
    )
    with pytest.raises(WorkerError, match="tensors"):
        get_family("timm").load(bad, "cpu")
