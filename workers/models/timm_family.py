"""The ``timm`` family: image models with ``num_classes=0`` pooled features.

Loader parameters: ``arch`` (timm model name); ``checkpoint`` (a file reference to a
``torch.save`` state dict, read with ``weights_only=True``, or a ``.safetensors`` file; its state
dict is mapped onto the architecture key by key, in order, with every shape checked, so
checkpoints with other key names load too); ``pretrained`` (hub weights, for users with
internet; default true without a checkpoint); ``seed`` (random init when not pretrained);
``stage`` (cut the model after that feature stage and average-pool it: a truncated variant).
``input_size`` (pixels: passed to the architecture as ``img_size`` where it takes one, a
ViT say, and the preprocessing resizes to it). Preprocessing is the model's own pretrained
config (input size, mean, std, interpolation, crop) through
``timm.data.resolve_data_config`` and ``create_transform``.

Pretrained weights come from this worker's cache when they are there (the hub cache for
weights timm publishes on the hub, torch's ``hub/checkpoints`` for URL-only weights), with no
network at all; else from the hub when it answers; else the load fails at once saying what
to do (:func:`workers.models.hub.not_cached`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from shift.errors import WorkerError
from shift.parameters import REQUIRED, Parameter
from shift.specs import ModelSpec
from workers.models.base import FeatureExtractor, load_state_file, model_file, register_family
from workers.models.hub import HUB, cache_dirs, cached_file, not_cached
from workers.quiet import quiet_third_party

HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
"""Files timm reads from a hub repository without a filename of its own (safetensors first)."""


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
    Parameter(
        "input_size",
        "int",
        None,
        "Pixels the preprocessing resizes to (none: the pretrained config's); an architecture "
        "that takes an image size (a ViT) is built for it.",
    ),
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
    quiet_third_party()
    import torch
    from timm.data import create_transform, resolve_data_config

    loader = spec.loader
    arch = loader.get("arch")
    if not isinstance(arch, str):
        raise WorkerError(f"model {spec.name!r}: the timm family needs 'arch'")
    checkpoint = loader.get("checkpoint")
    pretrained = bool(loader.get("pretrained", checkpoint is None))
    size = input_size(spec)
    torch.manual_seed(int(loader.get("seed", 0)))
    try:
        if checkpoint is not None:
            model = create(arch, size, pretrained=False)
            path = model_file(spec, checkpoint)
            load_by_position(model, load_state_file(spec, path), path.name)
            head = source_head(model) if loader.get("stage") is None else None
            model.reset_classifier(0)
        elif pretrained:
            cached = pretrained_weights(spec, arch)
            overlay = None if cached is None else {"file": str(cached)}
            model = create(
                arch, size, pretrained=True, num_classes=0, pretrained_cfg_overlay=overlay
            )
            head = None
        else:
            model = create(arch, size, pretrained=False, num_classes=0)
            head = None
    except RuntimeError as error:
        raise WorkerError(f"model {spec.name!r} failed to load: {error}") from None
    wanted = {} if size is None else {"input_size": (3, size, size)}
    config = resolve_data_config(args=wanted, model=model)
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


def input_size(spec: ModelSpec) -> int | None:
    """The loader's ``input_size`` in pixels, or ``None`` for the architecture's own.

    Raises:
        WorkerError: it is not an integer from 16 to 4096.
    """
    value = spec.loader.get("input_size")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= 4096:
        raise WorkerError(
            f"model {spec.name!r}: input_size must be a whole number of pixels from 16 to "
            f"4096, got {value!r}"
        )
    return value


def create(arch: str, size: int | None, **kwargs: Any) -> Any:
    """``timm.create_model``, built for ``size`` pixels where the architecture takes an
    ``img_size`` (ViTs and other fixed-grid models); others run at any size unchanged."""
    import timm

    if size is not None:
        try:
            return timm.create_model(arch, img_size=size, **kwargs)
        except TypeError as error:
            if "img_size" not in str(error):
                raise
    return timm.create_model(arch, **kwargs)


def pretrained_weights(spec: ModelSpec, arch: str) -> Path | None:
    """The cached file of ``arch``'s pretrained weights, or ``None`` to let timm fetch them.

    Looks in the hub cache (the weights' hub repository) and in torch's ``hub/checkpoints``
    (their URL's file name) without touching the network.

    Raises:
        WorkerError: the weights are not cached and the hub cannot be reached (says what
            to do), or ``arch`` names an unknown pretrained tag.
    """
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(arch)
    except RuntimeError as error:  # an unknown tag of a known architecture
        raise WorkerError(f"model {spec.name!r} failed to load: {error}") from None
    if cfg is None:  # an unknown architecture: timm.create_model names it
        return None
    repo = cfg.hf_hub_id
    if repo:
        names = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HUB_WEIGHT_FILES
        found = cached_file(repo, names)
        if found is not None:
            return found
    url_file = Path(urlparse(cfg.url).path).name if cfg.url else None
    if url_file:
        found_url = cache_dirs().torch_hub / "checkpoints" / url_file
        if found_url.is_file():
            return found_url
    reason = HUB.offline_reason()
    if reason is None:
        return None
    raise not_cached(
        spec.name,
        f"the timm weights of {arch!r}",
        repo or str(cfg.url),
        reason,
        "register a local checkpoint instead: REGISTER MODEL "
        f"\"{spec.name}\" (source, architecture, checkpoint) VALUES ('timm', '{arch}', "
        "'PATH.safetensors'), a path under the data roots; or register it with pretrained "
        "= false for random weights (a control)",
        url_file,
    )


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
