"""The ``torchvision`` family: ``torchvision.models`` classifiers by name, as feature
extractors, never downloading.

Loader parameters: ``arch`` (a classification model name of ``torchvision.models``, matched
ignoring case, ``_`` and ``-``: ``ResNet18`` is ``resnet18``); ``pretrained`` (default true:
the weights file must already be in the torch cache, ``$TORCH_HOME/hub/checkpoints`` under
the file name torchvision downloads it as; false: random init, seeded by ``seed``);
``weights_name`` (which weights enum member, default ``DEFAULT``). The last linear layer is
replaced by the identity, so features are its input (the source head LEEP and NCE read);
preprocessing is the weights' own transform (resize, centre crop, normalisation).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import WorkerError
from shift.parameters import REQUIRED, Parameter
from shift.specs import ModelSpec
from workers.models.base import FeatureExtractor, load_state_file, register_family

_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _key(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def resolve_arch(spec: ModelSpec) -> str:
    """The torchvision classification model name ``arch`` means.

    Raises:
        WorkerError: no classification model of that name; names the closest.
    """
    import torchvision
    from torchvision.models import list_models

    from shift.ql.vocabulary import closest

    arch = spec.loader.get("arch")
    if not isinstance(arch, str):
        raise WorkerError(f"model {spec.name!r}: the torchvision family needs 'arch'")
    names = list_models(module=torchvision.models)
    for name in names:
        if _key(name) == _key(arch):
            return name
    match = closest(arch, names)
    hint = f"; did you mean {match!r}?" if match else ""
    raise WorkerError(
        f"model {spec.name!r}: {arch!r} is not a torchvision classification model{hint}"
    )


def cache_file(url: str) -> Path:
    """Where torch's hub cache keeps the weights downloaded from ``url``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _weights(spec: ModelSpec, arch: str) -> Any:
    from torchvision.models import get_model_weights

    member = str(spec.loader.get("weights_name", "DEFAULT"))
    try:
        enum = get_model_weights(arch)
    except (ValueError, KeyError):
        return None
    try:
        return enum[member] if member != "DEFAULT" else enum.DEFAULT
    except KeyError:
        known = ", ".join(w.name for w in enum)
        raise WorkerError(
            f"model {spec.name!r}: {arch} has no weights {member!r} (weights: {known})"
        ) from None


def _builder_overrides(arch: str, weights: Any) -> dict[str, Any]:
    """The constructor arguments torchvision's builders set when they load ``weights``."""
    overrides: dict[str, Any] = {"num_classes": len(weights.meta["categories"])}
    if arch in ("inception_v3", "googlenet"):
        overrides.update(transform_input=True, aux_logits=True, init_weights=False)
    if arch.startswith("vit_") and "min_size" in weights.meta:
        overrides["image_size"] = weights.meta["min_size"][0]
    return overrides


def _renamed(state: dict[str, Any]) -> dict[str, Any]:
    """Old DenseNet checkpoints name ``norm.1``; today's modules name ``norm1``."""
    out = {}
    for key, value in state.items():
        match = _DENSENET_KEY.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


def build(spec: ModelSpec) -> tuple[Any, Any]:
    """The model (its weights loaded from the cache when pretrained) and its weights enum.

    Raises:
        WorkerError: unknown name, weights not in the cache, or a file that does not fit.
    """
    import torch
    from torchvision.models import get_model

    arch = resolve_arch(spec)
    weights = _weights(spec, arch)
    pretrained = bool(spec.loader.get("pretrained", True))
    torch.manual_seed(int(spec.loader.get("seed", 0)))
    if not pretrained:
        return get_model(arch, weights=None), weights
    if weights is None:
        raise WorkerError(
            f"model {spec.name!r}: torchvision publishes no weights for {arch}; register it "
            "with pretrained=false for a random init"
        )
    path = cache_file(weights.url)
    if not path.is_file():
        raise WorkerError(
            f"model {spec.name!r}: the {arch} weights {weights} are not in the torch cache "
            f"(expected {str(path)!r}); shift never downloads at run time: put {weights.url} "
            "there (TORCH_HOME sets the cache folder), or register the model with "
            "pretrained=false for a random init"
        )
    model = get_model(arch, weights=None, **_builder_overrides(arch, weights))
    state = _renamed(load_state_file(spec, path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WorkerError(
            f"model {spec.name!r}: {path.name} does not fit {arch}: {str(error)[:300]}"
        ) from None
    if arch == "googlenet":
        model.aux_logits, model.aux1, model.aux2 = False, None, None
    return model, weights


def cut_head(model: Any) -> Any:
    """Replace the model's last linear layer by the identity; returns that layer (or None)."""
    import torch

    last = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            last = name
    if last is None:
        return None
    parent_name, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    layer = getattr(parent, child)
    setattr(parent, child, torch.nn.Identity())
    return layer


TORCHVISION_MODEL_PARAMS = (
    Parameter(
        "arch",
        "str",
        REQUIRED,
        "A torchvision.models classifier, matched ignoring case, _ and - (ResNet18).",
    ),
    Parameter(
        "pretrained",
        "bool",
        True,
        "true: weights from the torch cache ($TORCH_HOME/hub/checkpoints); false: random init.",
    ),
    Parameter("weights_name", "str", "DEFAULT", "The weights enum member (IMAGENET1K_V1, ...)."),
    Parameter("seed", "int", 0, "Seed of the random init."),
)

TORCHVISION_CONTRACT = (
    "float32 N x 3 x S x S from the weights' own transforms (resize, centre crop, ImageNet "
    "mean and std; 224 for most). Features: the input of the last linear layer (the source "
    "head is kept for pretrained weights)."
)


@register_family("torchvision", TORCHVISION_MODEL_PARAMS, TORCHVISION_CONTRACT)
def load_torchvision(spec: ModelSpec, device: str) -> FeatureExtractor:
    """torchvision classifiers by name: penultimate features, weights from the torch cache
    or a random init."""
    import torch
    from torchvision.transforms import v2

    model, weights = build(spec)
    layer = cut_head(model)
    head = None
    if layer is not None and spec.loader.get("pretrained", True):
        weight = layer.weight.detach().double().cpu().numpy()
        bias = (
            layer.bias.detach().double().cpu().numpy()
            if layer.bias is not None
            else np.zeros(weight.shape[0])
        )
        head = (weight, bias)
    if weights is not None:
        transform = weights.transforms()
        size = int(transform.crop_size[0])
        mean, std = list(transform.mean), list(transform.std)
    else:
        size, mean, std = 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
        transform = v2.Compose(
            [
                v2.PILToTensor(),
                v2.Resize(256, antialias=True),
                v2.CenterCrop(size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )
    model = model.to(device)

    def preprocess(rows: list[Any]) -> Any:
        return torch.stack([transform(row) for row in rows])

    info = {"input_size": size, "mean": mean, "std": std}
    return FeatureExtractor(spec, model, preprocess, model, device, info, head)
