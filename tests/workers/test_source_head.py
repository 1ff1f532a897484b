"""The source classifier kept beside the features: LEEP and NCE read its logits from the
stored features, so they must equal the full pretrained model's own output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shift import zoo
from shift.errors import WorkerError
from workers.models import MODEL_CACHE
from workers.models.base import load_state_file, model_file
from workers.models.timm_family import load_by_position
from workers.readers import open_dataset


def test_logits_from_features_equal_the_full_model(models):
    import timm

    spec = zoo.model("efficientnet-lite0")
    extractor = MODEL_CACHE.get(spec)
    assert extractor.describe()["source_classes"] == 1000
    rows = open_dataset(zoo.dataset("photos-test")).rows(0, 6)
    logits = extractor.source_logits(extractor.embed(rows))

    full = timm.create_model(spec.loader["arch"], pretrained=False)
    path = model_file(spec, spec.loader["checkpoint"])
    load_by_position(full, load_state_file(spec, path), path.name)
    full.eval()
    with torch.inference_mode():
        expected = full(extractor.preprocess(rows)).double().numpy()
    assert logits.shape == (6, 1000)
    assert np.abs(logits - expected).max() < 1e-3
    assert (logits.argmax(1) == expected.argmax(1)).all()


@pytest.mark.parametrize("name", ["efficientnet-lite0-random"])
def test_a_model_without_a_source_head_says_so(models, name):
    extractor = MODEL_CACHE.get(zoo.model(name))
    assert "source_classes" not in extractor.describe()
    with pytest.raises(WorkerError, match=f"model '{name}' has no source classifier head"):
        extractor.source_logits(np.zeros((2, extractor.feature_dim)))
