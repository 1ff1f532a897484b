"""Model families: a registry of loaders that turn a model spec into a FeatureExtractor.

Families: ``timm``, ``torchvision``, ``huggingface``, ``onnx_bert``, ``local`` and the
catalog-only ``tensorflow_hub``. :data:`MODEL_CACHE` is the
worker process's small LRU of loaded models (the broker prefers workers that hold one).
torch, timm and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

from workers.models import (  # noqa: F401  (register the families)
    huggingface,
    local,
    onnx_bert,
    tfhub,
    timm_family,
    torchvision_family,
)
from workers.models.base import (
    FAMILIES,
    Family,
    FeatureExtractor,
    ModelCache,
    get_family,
    register_family,
)

MODEL_CACHE = ModelCache(capacity=2)
"""The loaded models of this worker process."""

__all__ = [
    "FAMILIES",
    "MODEL_CACHE",
    "Family",
    "FeatureExtractor",
    "ModelCache",
    "get_family",
    "register_family",
]
