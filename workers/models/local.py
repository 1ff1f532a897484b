"""The ``local`` family: a TorchScript image model in a local file that maps images to features.

Loader parameters: ``path`` (file reference), ``input_size`` (pixels, default 224), ``mean``
and ``std`` (default ImageNet's), ``interpolation`` (default bilinear), ``crop_pct`` (default
0.875). Images are resized so that the centre crop of ``input_size`` keeps ``crop_pct``.
"""

from __future__ import annotations

import math
from typing import Any

from shift.errors import CatalogError, WorkerError
from shift.specs import ModelSpec, resolve_file
from workers.models.base import FeatureExtractor, register_family

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@register_family("local")
def load_local(spec: ModelSpec, device: str) -> FeatureExtractor:
    """TorchScript image models from local files, with declared preprocessing."""
    import torch
    from torchvision import transforms

    loader = spec.loader
    try:
        path = resolve_file(loader.get("path"))
    except CatalogError as error:
        raise WorkerError(str(error)) from None
    try:
        model = torch.jit.load(str(path), map_location=device)
    except (RuntimeError, ValueError) as error:
        raise WorkerError(f"{path.name} is not a TorchScript model: {error}") from None
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
