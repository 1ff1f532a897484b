"""The ``local`` family: an image model in a local file that maps images to features.

The file is a ``torch.export`` program (``.pt2``, written by ``torch.export.save``; export it
in eval mode with a dynamic batch dimension) or, deprecated by torch, a TorchScript file. A
model file is a program: it is read only from inside the data roots, and a ``.pt2`` archive
is checked first (:mod:`workers.models.archives`: no pickled member, no compiled code, only
operator calls).
Loader parameters: ``path`` (file reference), ``input_size`` (pixels, default 224), ``mean``
and ``std`` (default ImageNet's), ``interpolation`` (default bilinear), ``crop_pct`` (default
0.875). Images are resized so that the centre crop of ``input_size`` keeps ``crop_pct``.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

from shift.errors import WorkerError
from shift.parameters import REQUIRED, Parameter
from shift.specs import ModelSpec
from workers.models.archives import check_program_archive
from workers.models.base import FeatureExtractor, failure_reason, model_file, register_family

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


LOCAL_PARAMS = (
    Parameter("path", "path", REQUIRED, "The .pt2 (torch.export) or TorchScript file."),
    Parameter("input_size", "int", 224, "Side S of the square input, in pixels."),
    Parameter("mean", "list of float", list(IMAGENET_MEAN), "Per-channel mean subtracted."),
    Parameter("std", "list of float", list(IMAGENET_STD), "Per-channel std divided by."),
    Parameter("interpolation", "str", "bilinear", "Resize interpolation (torchvision's names)."),
    Parameter("crop_pct", "float", 0.875, "Share of the resized image the centre crop keeps."),
)

LOCAL_CONTRACT = (
    "float32 N x 3 x S x S (S = input_size): each RGB image resized so that its shorter "
    "side is floor(S / crop_pct), centre-cropped to S, scaled to 0..1 and normalised with "
    "mean and std (ImageNet's by default). The model returns N x D features (more "
    "dimensions are flattened); export it in eval mode with a dynamic batch dimension."
)


@register_family("local", LOCAL_PARAMS, LOCAL_CONTRACT)
def load_local(spec: ModelSpec, device: str) -> FeatureExtractor:
    """TorchScript image models from local files, with declared preprocessing."""
    import torch
    from torchvision import transforms

    loader = spec.loader
    path = model_file(spec, loader.get("path"))
    model = _load_exported(path, device) if path.suffix == ".pt2" else _load_script(path, device)
    size = int(loader.get("input_size", 224))
    crop_pct = float(loader.get("crop_pct", 0.875))
    mode = transforms.InterpolationMode(str(loader.get("interpolation", "bilinear")))
    transform = transforms.Compose(
        [
            transforms.Resize(math.floor(size / crop_pct), interpolation=mode),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(
                loader.get("mean", IMAGENET_MEAN), loader.get("std", IMAGENET_STD)
            ),
        ]
    )

    def preprocess(rows: list[Any]) -> Any:
        return torch.stack([transform(row) for row in rows])

    info = {"input_size": size}
    return FeatureExtractor(spec, model, preprocess, model, device, info)


def _load_script(path: Path, device: str) -> Any:
    import torch

    try:
        return torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as error:
        raise WorkerError(
            f"checkpoint {path} is corrupt or not a TorchScript file: {failure_reason(error)}"
        ) from None


def _load_exported(path: Path, device: str) -> Any:
    import torch

    check_program_archive(path)
    try:
        program = torch.export.load(str(path))
    except Exception as error:  # zipfile and torch errors alike: a bad file
        raise WorkerError(
            f"checkpoint {path} is corrupt or not a torch.export (.pt2) file: "
            f"{failure_reason(error)}"
        ) from None
    return _exported_class()(program.module()).to(device)


@functools.cache
def _exported_class() -> Any:
    """The wrapper class, defined on first use (torch is imported only when a model loads)."""
    import torch

    class ExportedModule(torch.nn.Module):
        """A ``torch.export`` program as a module: its train/eval mode is fixed at export, so
        switching modes only records the flag instead of failing."""

        def __init__(self, graph: Any) -> None:
            super().__init__()
            self.graph = graph

        def forward(self, batch: Any) -> Any:
            return self.graph(batch)

        def train(self, mode: bool = True) -> Any:
            self.training = mode
            return self

    return ExportedModule
