"""The ``timm`` family: image models with ``num_classes=0`` pooled features.

Loader parameters: ``arch`` (timm model name); ``checkpoint`` (a file reference to a
``torch.save`` state dict, read with ``weights_only=True``, or a ``.safetensors`` file; its state
dict is mapped onto the architecture key by key, in order, with every shape checked, so
checkpoints with other key names load too); ``pretrained`` (hub weights, for users with
internet; default true without a checkpoint); ``seed`` (random init when not pretrained);
``stage`` (cut the model after that feature stage and average-pool it: a truncated variant).
Preprocessing is the model's own pretrained config (input size, mean, std, interpolation,
crop) through ``timm.data.resolve_data_config`` and ``create_transform``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shift.errors import WorkerError
from shift.parameters import REQUIRED, Parameter
from shift.specs import ModelSpec
from workers.models.base import FeatureExtractor, load_state_file, model_file, register_family


def load_by_position(module: Any, state: dict[str, Any], source: str) -> None:
    """Load ``state`` into ``module`` pairing keys by position, checking every shape.

    Raises:
        WorkerError: the number of tensors or any shape differs.
    """
    target = module.state_dict()
    if len(target) != len(state):
        raise WorkerError(
            f"checkpoint {source} has {len(state)} tensors but the model has {len(target)}"
        )
    mapped = {}
    for (name, want), (their, value) in zip(target.items(), state.items(), strict=True):
        if tuple(want.shape) != tuple(value.shape):
            raise WorkerError(
                f"checkpoint {source}: {their} has shape {tuple(value.shape)} but the model's "
                f"{name} has {tuple(want.shape)}"
            )
        mapped[name] = value
    module.load_state_dict(mapped, strict=True)


TIMM_PARAMS = (
    Parameter("arch", "str", REQUIRED, "timm architecture name, e.g. resnet50."),
    Parameter(
        "checkpoint",
        "path",
        None,
        "State dict (torch.save or .safetensors) mapped by position.",
    ),
    Parameter("pretrained", "bool", "true without a checkpoint", "Load timm's hub weights."),
    Parameter("seed", "int", 0, "Seed of the random init (and of weights a checkpoint lacks)."),
    Parameter("stage", "int", None, "Cut after this feature stage, mean-pooled (a truncation)."),
)

TIMM_CONTRACT = (
    "float32 N x 3 x S x S, channels-last, from the architecture's pretrained config "
    "(timm resolve_data_config): RGB resized and centre-cropped to S (its input size, e.g. "
    "224) with its interpolation and crop_pct, scaled to 0..1, normalised with its mean and "
    "std (ImageNet's for most; 0.5 and 0.5 for EfficientNet-Lite). Features: the pooled "
    "penultimate layer (num_classes=0)."
)


@register_family("timm", TIMM_PARAMS, TIMM_CONTRACT)
def load_timm(spec: ModelSpec, device: str) -> FeatureExtractor:
    """timm image models: pooled features with the model's own preprocessing."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    loader = spec.loader
    arch = loader.get("arch")
    if not isinstance(arch, str):
        raise WorkerError(f"model {spec.name!r}: the timm family needs 'arch'")
    checkpoint = loader.get("checkpoint")
    pretrained = bool(loader.get("pretrained", checkpoint is None))
    torch.manual_seed(int(loader.get("seed", 0)))
    try:
        if checkpoint is not None:
            model = timm.create_model(arch, pretrained=False)
            path = model_file(spec, checkpoint)
            load_by_position(model, load_state_file(spec, path), path.name)
            head = source_head(model) if loader.get("stage") is None else None
            model.reset_classifier(0)
        else:
            model = timm.create_model(arch, pretrained=pretrained, num_classes=0)
            head = None
    except RuntimeError as error:
        raise WorkerError(f"model {spec.name!r} failed to load: {error}") from None
    config = resolve_data_config(model=model)
    transform = create_transform(**config)
    stage = loader.get("stage")
    # channels-last runs the depthwise convolutions about twice as fast on CPU
    model = model.to(device, memory_format=torch.channels_last)
    if stage is None:
        forward = model
    else:
        model.prune_intermediate_layers(indices=[int(stage)], prune_head=True, prune_norm=True)

        def forward(batch: Any) -> Any:
            (feature,) = model.forward_intermediates(
                batch, indices=[int(stage)], intermediates_only=True
            )
            return feature.mean(dim=(2, 3))

    def preprocess(rows: list[Any]) -> Any:
        batch = torch.stack([transform(row) for row in rows])
        return batch.contiguous(memory_format=torch.channels_last)

    info = {
        "input_size": int(config["input_size"][-1]),
        "mean": list(config["mean"]),
        "std": list(config["std"]),
        "interpolation": config["interpolation"],
    }
    return FeatureExtractor(spec, model, preprocess, forward, device, info, head)


def source_head(model: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The checkpoint's classifier as ``(weight (K, d), bias (K,))`` float64 arrays, when it
    is one linear layer on the pooled features (what LEEP and NCE read); else ``None``."""
    import torch

    layer = model.get_classifier()
    if not isinstance(layer, torch.nn.Linear) or layer.out_features < 2:
        return None
    weight = layer.weight.detach().double().cpu().numpy()
    bias = (
        layer.bias.detach().double().cpu().numpy()
        if layer.bias is not None
        else np.zeros(layer.out_features)
    )
    return weight, bias
