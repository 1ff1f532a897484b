"""The ``huggingface`` family: transformers models from a hub id or a local folder.

Loader parameters: ``model`` (a hub id, a folder path, or a packaged-file reference to a
folder); ``pooling`` (``mean`` over the attention mask, the default for text; ``cls``;
``pooler``; ``auto`` for vision, which pools as the architecture's classification head
does); ``max_tokens`` (text truncation, default 128); ``num_layers`` (keep only the first
layers: a truncated variant); ``random_init`` with ``seed`` (the same config, random weights:
a control). Text uses the model's own tokenizer; vision its own image processor. Hub ids
load through the hub cache (``HF_HUB_OFFLINE=1`` makes that cache-only).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from shift.errors import CatalogError, WorkerError
from shift.specs import Modality, ModelSpec, resolve_file
from workers.models.base import FeatureExtractor, register_family

CLS_TOKEN_TYPES = frozenset({"vit", "deit", "dinov2", "vit_msn", "vit_mae", "dino"})
"""Vision models whose classification head reads the first (CLS) token."""

log = logging.getLogger(__name__)


def model_source(value: Any) -> str:
    """A hub id or the path of a local folder, from a loader's ``model`` value.

    Raises:
        WorkerError: the value is neither a string nor a resolvable file reference.
    """
    if isinstance(value, dict):
        try:
            return str(resolve_file(value))
        except CatalogError as error:
            raise WorkerError(str(error)) from None
    if isinstance(value, str) and value:
        return str(Path(value).expanduser()) if Path(value).expanduser().exists() else value
    raise WorkerError(f"a huggingface model needs 'model' (hub id or folder), got {value!r}")


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Mean of token vectors over the attention mask (padding excluded)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


def text_forward(model: Any, pooling: str) -> Any:
    """The forward function of a text encoder with the given pooling."""
    if pooling not in ("mean", "cls", "pooler"):
        raise WorkerError(f"text pooling must be mean, cls or pooler, got {pooling!r}")

    def forward(batch: dict[str, Any]) -> Any:
        output = model(**batch)
        if pooling == "mean":
            return mean_pool(output.last_hidden_state, batch["attention_mask"])
        if pooling == "cls":
            return output.last_hidden_state[:, 0]
        return output.pooler_output

    return forward


def tokenize(tokenizer: Any, max_tokens: int) -> Any:
    """The preprocessing of a text model: its own tokenizer, padded and truncated."""

    def preprocess(rows: list[Any]) -> Any:
        texts = [str(row) for row in rows]
        return dict(
            tokenizer(
                texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
            )
        )

    return preprocess


@register_family("huggingface")
def load_huggingface(spec: ModelSpec, device: str) -> FeatureExtractor:
    """transformers models: text with mean pooling, vision pooled as the architecture intends."""
    import torch
    import transformers

    loader = spec.loader
    source = model_source(loader.get("model"))
    config = transformers.AutoConfig.from_pretrained(source)
    num_layers = loader.get("num_layers")
    if num_layers is not None:
        config.num_hidden_layers = int(num_layers)
    # Seeded either way: weights a checkpoint lacks (an unused pooler, say) are initialised
    # the same on every worker, so a model's features never depend on which worker ran it.
    torch.manual_seed(int(loader.get("seed", 0)))
    try:
        if loader.get("random_init"):
            model = transformers.AutoModel.from_config(config)
        else:
            model, loading = transformers.AutoModel.from_pretrained(
                source, config=config, output_loading_info=True
            )
            if loading.get("missing_keys"):
                missing = sorted(loading["missing_keys"])
                log.warning(
                    "model %s: %d weight(s) missing from %s were initialised with seed %s: %s",
                    spec.name, len(missing), source, loader.get("seed", 0), ", ".join(missing[:5]),
                )  # fmt: skip
    except (OSError, ValueError) as error:
        raise WorkerError(f"model {spec.name!r} failed to load from {source}: {error}") from None
    model = model.to(device)
    info: dict[str, Any] = {"model_type": config.model_type}
    if spec.modality is Modality.TEXT:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        max_tokens = int(loader.get("max_tokens", 128))
        info["max_tokens"] = max_tokens
        pooling = str(loader.get("pooling", "mean"))
        return FeatureExtractor(
            spec,
            model,
            tokenize(tokenizer, max_tokens),
            text_forward(model, pooling),
            device,
            info,
        )
    processor = transformers.AutoImageProcessor.from_pretrained(source)
    pooling = str(loader.get("pooling", "auto"))
    if pooling == "auto":
        pooling = "cls" if config.model_type in CLS_TOKEN_TYPES else "pooler"

    def forward(batch: Any) -> Any:
        output = model(pixel_values=batch)
        if pooling == "cls":
            return output.last_hidden_state[:, 0]
        pooled = getattr(output, "pooler_output", None)
        if pooling == "pooler" and pooled is not None:
            return pooled.flatten(1)
        hidden = output.last_hidden_state
        return hidden.mean(dim=(2, 3)) if hidden.dim() == 4 else hidden.mean(dim=1)

    def preprocess(rows: list[Any]) -> Any:
        return processor(images=rows, return_tensors="pt")["pixel_values"]

    return FeatureExtractor(spec, model, preprocess, forward, device, info)
