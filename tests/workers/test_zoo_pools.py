"""The zoo's pools load offline on CPU: every model added after the original ten is built
once and embeds two rows. Models are loaded with ``load_model`` directly (not the session's
model cache), one at a time, so the cache the other tests share is left as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shift import zoo
from shift.errors import WorkerError
from shift.specs import Modality
from workers.models.base import load_model

POOLS = zoo.MODELS[10:]
LITE0_STAGE_CHANNELS = (16, 24, 40, 112, 320)


def _rows(modality: Modality) -> list:
    if modality is Modality.TEXT:
        return ["a warm, funny and moving film", "dull, long and badly acted"]
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    return [Image.fromarray(noise), Image.new("RGB", (96, 96), (200, 40, 40))]


def test_every_pool_model_builds_offline_and_embeds_two_rows():
    features: dict[str, np.ndarray] = {}
    for spec in POOLS:
        extractor = load_model(spec, "cpu")
        out = extractor.embed(_rows(spec.modality))
        assert out.shape == (2, extractor.feature_dim), spec.name
        assert np.isfinite(out).all(), spec.name
        assert not np.allclose(out[0], out[1]), spec.name
        features[spec.name] = out
        loader = spec.loader
        if "config" in loader:
            assert extractor.feature_dim == loader["config"]["hidden_size"]
        elif spec.modality is Modality.TEXT:
            assert extractor.feature_dim == 384, spec.name
        if spec.name.startswith("efficientnet-lite0-stage"):
            assert extractor.feature_dim == LITE0_STAGE_CHANNELS[loader["stage"]]
        if "stage" in loader:
            assert extractor.head is None and extractor.feature_dim < 1280
    # each layer and stage is its own truncation: no two give the same features
    for family in ("minilm-l6-layer", "minilm-l3-layer", "efficientnet-lite1-stage"):
        cut = [v for name, v in features.items() if name.startswith(family)]
        for i, a in enumerate(cut):
            assert all(a.shape != b.shape or not np.allclose(a, b) for b in cut[i + 1 :])


def test_an_onnx_truncation_to_every_layer_is_the_whole_model():
    full = zoo.model("minilm-l3")
    cut = dataclasses.replace(full, name="l3-all", loader={**full.loader, "num_layers": 3})
    rows = _rows(Modality.TEXT)
    assert np.array_equal(load_model(cut).embed(rows), load_model(full).embed(rows))
    for bad in (4, -1, "2", True):
        hostile = dataclasses.replace(full, loader={**full.loader, "num_layers": bad})
        with pytest.raises(WorkerError, match="num_layers must be an integer from 0 to 3"):
            load_model(hostile)


def test_size_overrides_are_for_random_controls_only():
    spec = zoo.model("bert-random-l2-h128")
    pretrained = {k: v for k, v in spec.loader.items() if k != "random_init"}
    with pytest.raises(WorkerError, match="needs random_init"):
        load_model(dataclasses.replace(spec, loader=pretrained))
    for config, message in (
        ({"vocab_size": 10}, "allowed"),
        ({"hidden_size": 0}, "positive integers"),
        ({"hidden_size": True}, "positive integers"),
        ([128], "must be an object"),
    ):
        hostile = dataclasses.replace(spec, loader={**spec.loader, "config": config})
        with pytest.raises(WorkerError, match=message):
            load_model(hostile)
