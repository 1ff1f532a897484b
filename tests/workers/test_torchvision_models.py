"""The ``torchvision`` model family (random init, weights from the torch cache, the offline
error) and the catalog-only ``tensorflow_hub`` family, with their REGISTER columns."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.models import ResNet18_Weights, get_model

from shift.errors import WorkerError
from shift.registration import model_row, model_spec_from_fields
from shift.specs import Modality, ModelSpec
from workers.describe import describe_payload
from workers.models.base import load_model
from workers.models.tfhub import CatalogOnlyModel
from workers.models.torchvision_family import cache_file


def spec(arch: str, **loader: object) -> ModelSpec:
    return ModelSpec(f"tv-{arch}", "torchvision", Modality.VISION, {"arch": arch, **loader}, 4)


def test_random_init_by_name_embeds_penultimate_features() -> None:
    model = load_model(spec("ResNet18", pretrained=False, seed=1))
    assert model.feature_dim == 512
    assert model.num_params == 11_176_512  # resnet18 less its 512 x 1000 + 1000 classifier
    assert model.head is None
    features = model.embed([Image.new("RGB", (40, 30), (200, 10, 10))] * 3)
    assert features.shape == (3, 512) and np.allclose(features[0], features[2])
    again = load_model(spec("resnet_18", pretrained=False, seed=1))
    assert np.array_equal(again.embed([Image.new("RGB", (40, 30), (200, 10, 10))]), features[:1])
    assert model.describe()["input_size"] == 224


def test_weights_in_the_torch_cache_are_loaded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(7)
    saved = get_model("resnet18", weights=None).state_dict()
    path = cache_file(ResNet18_Weights.DEFAULT.url)
    assert path == tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(saved, path)
    model = load_model(spec("resnet18"))
    module = model.torch_module()
    assert torch.equal(module.conv1.weight, saved["conv1.weight"])
    assert torch.equal(module.layer4[1].bn2.running_mean, saved["layer4.1.bn2.running_mean"])
    assert model.head is not None
    weight, _ = model.head
    assert np.allclose(weight, saved["fc.weight"].double().numpy())
    features = model.embed([Image.new("RGB", (64, 64), (1, 2, 3))])
    logits = model.source_logits(features)
    assert logits.shape == (1, 1000)
    full = get_model("resnet18", weights=None)
    full.load_state_dict(saved)
    expected = full.eval()(ResNet18_Weights.DEFAULT.transforms()(
        Image.new("RGB", (64, 64), (1, 2, 3))).unsqueeze(0))  # fmt: skip
    assert np.allclose(logits, expected.detach().double().numpy(), atol=1e-3)


def test_weights_missing_from_the_cache_fail_fast_saying_where(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    started = time.monotonic()
    with pytest.raises(WorkerError) as error:
        load_model(spec("resnet18"))
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert str(tmp_path / "empty" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "never downloads" in message and "pretrained=false" in message


def test_a_file_that_does_not_fit_names_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = cache_file(ResNet18_Weights.DEFAULT.url)
    path.parent.mkdir(parents=True)
    torch.save({"conv1.weight": torch.zeros(3)}, path)
    with pytest.raises(WorkerError, match=r"resnet18-f37072fd\.pth does not fit resnet18"):
        load_model(spec("resnet18"))


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("resnet181", "did you mean 'resnet18'"),
        ("fasterrcnn_resnet50_fpn", "not a torchvision classification"),
    ],
)
def test_unknown_names_are_refused(arch: str, message: str) -> None:
    with pytest.raises(WorkerError, match=message):
        load_model(spec(arch, pretrained=False))


def test_register_columns_map_onto_the_torchvision_family() -> None:
    fields = {"source": "torchvision", "torchvision_name": "ResNet18", "pretrained": "false"}
    made = model_spec_from_fields("r18", fields)
    assert (made.family, made.modality, made.loader) == (
        "torchvision",
        Modality.VISION,
        {"arch": "ResNet18", "pretrained": False},
    )
    row = model_row(made, None, "2026-01-01")
    assert row["torchvision_name"] == "ResNet18" and row["source"] == "torchvision"
    assert row["hub_id"] is None and row["tf_image_model_url"] is None
    hf = model_spec_from_fields(
        "m", {"source": "huggingface", "hf_name": "org/m", "modality": "text"}
    )
    assert hf.loader["model"] == "org/m" and model_row(hf, None, "d")["hub_id"] == "org/m"


def test_a_tf_hub_model_registers_as_a_catalog_row_but_cannot_run() -> None:
    url = "https://tfhub.dev/google/imagenet/resnet_v2_50/feature_vector/5"
    made = model_spec_from_fields("tf-r50", {"source": "tensorflow", "tf_image_model_url": url})
    assert (
        made.family == "tensorflow_hub" and model_row(made, None, "d")["tf_image_model_url"] == url
    )
    described = describe_payload({"model": made.to_json()})
    assert described["kind"] == "model" and "cannot run" in described["catalog_only"]
    with pytest.raises(CatalogOnlyModel, match=f"'tf-r50' is the TF-Hub model {url}"):
        load_model(made)
