"""Model families without packaged weights, on tiny models this test builds and saves.

transformers vision models must pool as their architecture intends (ViT: the CLS token;
ResNet: the pooler output), and the ``local`` family loads a TorchScript file with its
declared preprocessing. No network: everything is created with random weights here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from PIL import Image

from shift.errors import WorkerError
from shift.specs import Modality, ModelSpec
from workers.models import get_family

# TorchScript is deprecated in torch 2.14 but is still how the ``local`` family loads files.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

IMAGES = [
    Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    for i in range(3)
]


def load(family: str, loader: dict) -> object:
    spec = ModelSpec(f"tiny-{family}", family, Modality.VISION, loader, batch_size=2)
    return get_family(family).load(spec, "cpu")


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, transformers.ViTModel]:
    folder = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=48,
    )  # fmt: skip
    model = transformers.ViTModel(config, add_pooling_layer=True).eval()
    model.save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder, model


def test_vit_pools_the_cls_token(tiny_vit: tuple[Path, transformers.ViTModel]) -> None:
    folder, model = tiny_vit
    extractor = load("huggingface", {"model": str(folder)})
    features = extractor.embed(IMAGES)
    assert features.shape == (3, 24) and extractor.feature_dim == 24
    pixels = transformers.ViTImageProcessor.from_pretrained(folder)(
        images=IMAGES, return_tensors="pt"
    )["pixel_values"]
    with torch.inference_mode():
        cls = model(pixel_values=pixels).last_hidden_state[:, 0].numpy()
    np.testing.assert_allclose(features, cls, rtol=1e-5, atol=1e-5)
    assert extractor.num_params == sum(p.numel() for p in model.parameters())


def test_resnet_uses_its_pooler(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"
    )
    transformers.ResNetModel(config).save_pretrained(tmp_path)
    transformers.ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(tmp_path)
    extractor = load("huggingface", {"model": str(tmp_path)})
    assert extractor.embed(IMAGES).shape == (3, 16)


def test_local_torchscript_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    path = tmp_path / "net.pt"
    torch.jit.script(net).save(str(path))
    extractor = load("local", {"path": str(path), "input_size": 32})
    features = extractor.embed(IMAGES)
    assert features.shape == (3, 4) and extractor.num_params == 3 * 4 * 9 + 4
    again = load("local", {"path": str(path), "input_size": 32}).embed(IMAGES)
    np.testing.assert_array_equal(features, again)


def test_local_exported_program(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    ).eval()  # fmt: skip
    batch = torch.export.Dim("batch")
    program = torch.export.export(net, (torch.zeros(2, 3, 32, 32),), dynamic_shapes=({0: batch},))
    path = tmp_path / "net.pt2"
    torch.export.save(program, path)
    extractor = load("local", {"path": str(path), "input_size": 32})
    features = extractor.embed(IMAGES)
    with torch.inference_mode():
        expected = net(extractor.preprocess(IMAGES)).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    assert extractor.num_params == sum(p.numel() for p in net.parameters())
    extractor.torch_module().train()  # the mode is fixed at export: switching is harmless
    (path.parent / "bad.pt2").write_bytes(b"not a program")
    with pytest.raises(WorkerError, match=r"bad\.pt2 is corrupt or not a torch\.export"):
        load("local", {"path": str(path.parent / "bad.pt2")})


def test_weights_a_checkpoint_lacks_are_the_same_on_every_load(tmp_path: Path) -> None:
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=48,
    )  # fmt: skip
    transformers.ViTModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    loader = {"model": str(tmp_path), "pooling": "pooler"}  # reads the missing pooler
    first = load("huggingface", loader).embed(IMAGES)
    torch.manual_seed(123)  # whatever the process did before
    second = load("huggingface", loader).embed(IMAGES)
    np.testing.assert_array_equal(first, second)
