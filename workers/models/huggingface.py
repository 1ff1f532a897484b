"""The ``huggingface`` family: transformers models from a hub id or a local folder.

Loader parameters: ``model`` (a hub id, a folder path, or a packaged-file reference to a
folder); ``pooling`` (``mean`` over the attention mask, the default for text; ``cls``;
``pooler``; ``auto`` for vision, which pools as the architecture's classification head
does); ``max_tokens`` (text truncation, default 128); ``num_layers`` (keep only the first
layers: a truncated variant); ``random_init`` with ``seed`` (the same config, random weights:
a control); ``config`` (with ``random_init`` only: size overrides of the config, among
:data:`SIZE_FIELDS`, for random controls of other sizes). Text uses the model's own
tokenizer; vision its own image processor. A hub id loads from this worker's hub cache
when it is there (no network), else from the hub when it answers, else fails at once saying
what to do (:func:`load_from_hub`). A local folder is confined to the data roots
like every local path (:func:`model_source`); a repository's own code never runs
(``trust_remote_code=False``) and weights load as safetensors or weights-only.
"""

from __future__ import annotations

import logging
from typing import Any

from shift.errors import CatalogError, WorkerError
from shift.parameters import REQUIRED, Parameter
from shift.paths import hub_or_path
from shift.specs import Modality, ModelSpec
from workers.models.base import (
    FeatureExtractor,
    failure_reason,
    local_roots,
    model_file,
    register_family,
)
from workers.models.hub import HUB, cached_file, not_cached
from workers.quiet import quiet_third_party

CLS_TOKEN_TYPES = frozenset({"vit", "deit", "dinov2", "vit_msn", "vit_mae", "dino"})
"""Vision models whose classification head reads the first (CLS) token."""

SIZE_FIELDS = frozenset({"hidden_size", "num_attention_heads", "intermediate_size"})
"""Config fields a random-init control may override (positive integers)."""

log = logging.getLogger(__name__)


def size_overrides(spec: ModelSpec) -> dict[str, int]:
    """The loader's ``config`` overrides, checked.

    Raises:
        WorkerError: ``config`` is given without ``random_init`` (pretrained weights have
            the checkpoint's sizes), names a field outside :data:`SIZE_FIELDS`, or a value
            that is not a positive integer.
    """
    value = spec.loader.get("config")
    if value is None:
        return {}
    where = f"model {spec.name!r}: loader 'config'"
    if not spec.loader.get("random_init"):
        raise WorkerError(f"{where} needs random_init: pretrained weights keep their sizes")
    if not isinstance(value, dict):
        raise WorkerError(f"{where} must be an object, got {type(value).__name__}")
    unknown = sorted(set(value) - SIZE_FIELDS)
    if unknown:
        raise WorkerError(f"{where} has {unknown}; allowed: {sorted(SIZE_FIELDS)}")
    bad = {k: v for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
    if bad:
        raise WorkerError(f"{where} values must be positive integers, got {bad}")
    return dict(value)


def model_source(spec: ModelSpec, value: Any) -> tuple[str, bool]:
    """A hub id or the path of a local folder, from a loader's ``model`` (or ``tokenizer``).

    A file reference (``{"path"}`` or ``{"distribution", "path"}``) is a folder; a plain
    string is a folder when :func:`shift.paths.hub_or_path` says so (absolute, ``~``, ``.``,
    or found under a data root: relative folders resolve against the roots exactly as
    dataset paths do) and is confined to the data roots; else it is a hub id.

    Returns:
        The source and whether it is a local folder.

    Raises:
        WorkerError: the value is malformed, or a path outside the data roots.
    """
    if isinstance(value, dict):
        return str(model_file(spec, value)), True
    if isinstance(value, str) and value:
        roots, own = local_roots()
        try:
            path = hub_or_path(value, roots, also=own)
        except CatalogError as error:
            raise WorkerError(f"model {spec.name!r}: {error}") from None
        return (value, False) if path is None else (str(path), True)
    raise WorkerError(
        f"model {spec.name!r}: a huggingface model needs 'model' (hub id or folder), got {value!r}"
    )


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


def load_failure(spec: ModelSpec, source: str, local: bool, error: BaseException) -> WorkerError:
    """The error of a model that transformers could not load: a local folder is named as
    corrupt, a hub id as not loadable (offline, unknown id)."""
    if local:
        return WorkerError(
            f"model {spec.name!r}: checkpoint {source} is corrupt or not a transformers model "
            f"folder: {failure_reason(error)}"
        )
    return WorkerError(
        f"model {spec.name!r} failed to load from hub id {source!r}: {failure_reason(error)}"
    )


HF_PARAMS = (
    Parameter(
        "model",
        "hub id or folder",
        REQUIRED,
        "A hub id, or a transformers folder under a data root.",
    ),
    Parameter(
        "pooling",
        "str",
        "mean (text), auto (vision)",
        "mean, cls or pooler; auto pools as the head does.",
    ),
    Parameter("max_tokens", "int", 128, "Text truncation, in tokens."),
    Parameter("num_layers", "int", None, "Keep only the first layers (a truncation)."),
    Parameter("random_init", "bool", False, "The same config with random weights (a control)."),
    Parameter("seed", "int", 0, "Seed of the random init (and of weights a checkpoint lacks)."),
    Parameter(
        "config",
        "object",
        None,
        "With random_init: hidden_size, num_attention_heads, intermediate_size.",
    ),
)

HF_CONTRACT = (
    "text: the rows as strings, through the model's own tokenizer (padded, truncated to "
    "max_tokens) as input_ids and attention_mask (int64 N x T); features: the last hidden "
    "state pooled (mean over the attention mask by default). vision: pixel_values from the "
    "model's own image processor (float32 N x 3 x H x W, its resize and normalisation)."
)


def load_parts(spec: ModelSpec, source: str, files_only: bool) -> tuple[Any, Any, Any]:
    """The config, the model and the tokenizer (text) or image processor (vision) of
    ``spec`` from ``source``; with ``files_only`` nothing is asked of the hub."""
    import torch
    import transformers

    loader, hub = spec.loader, {"trust_remote_code": False, "local_files_only": files_only}
    config = transformers.AutoConfig.from_pretrained(source, **hub)
    num_layers = loader.get("num_layers")
    if num_layers is not None:
        config.num_hidden_layers = int(num_layers)
    for field, value in size_overrides(spec).items():
        setattr(config, field, value)
    # Seeded either way: weights a checkpoint lacks (an unused pooler, say) are initialised
    # the same on every worker, so a model's features never depend on which worker ran it.
    torch.manual_seed(int(loader.get("seed", 0)))
    if loader.get("random_init"):
        model = transformers.AutoModel.from_config(config)
    else:
        model, loading = transformers.AutoModel.from_pretrained(
            source, config=config, output_loading_info=True, **hub
        )
        if loading.get("missing_keys"):
            missing = sorted(loading["missing_keys"])
            log.warning(
                "model %s: %d weight(s) missing from %s were initialised with seed %s: %s",
                spec.name, len(missing), source, loader.get("seed", 0), ", ".join(missing[:5]),
            )  # fmt: skip
    if spec.modality is Modality.TEXT:
        return config, model, transformers.AutoTokenizer.from_pretrained(source, **hub)
    return config, model, transformers.AutoImageProcessor.from_pretrained(source, **hub)


def offline_fix(spec: ModelSpec) -> str:
    """The third way out of an uncached hub id: a local model (or tokenizer) folder."""
    if spec.family != "huggingface":
        return (
            "give the tokenizer as a local folder instead (what save_pretrained writes, "
            "under the data roots) in the tokenizer column"
        )
    return (
        "register a local folder instead (what save_pretrained writes, under the data "
        f'roots): REGISTER MODEL "{spec.name}" (source, path, modality) VALUES '
        f"('huggingface', 'FOLDER', '{spec.modality.value}')"
    )


def hub_files_only(spec: ModelSpec, source: str, what: str, marker: str) -> bool:
    """Whether hub id ``source`` loads from the cache alone (its ``marker`` file is cached);
    ``False`` when it must come from the hub, which answers.

    Raises:
        WorkerError: it is not cached and the hub cannot be reached (:func:`not_cached`).
    """
    if cached_file(source, (marker,)) is not None:
        return True
    reason = HUB.offline_reason()
    if reason is not None:
        raise not_cached(spec.name, what, source, reason, offline_fix(spec))
    return False


def load_from_hub(spec: ModelSpec, source: str) -> tuple[Any, Any, Any]:
    """:func:`load_parts` of a hub id: from this worker's cache when its ``config.json`` is
    there (no network), else from the hub when it answers, else a :func:`not_cached` error
    at once. A cache that lacks some file falls back to the hub, or fails the same way.

    Raises:
        WorkerError: the model is not (wholly) cached and the hub cannot be reached, or it
            does not load.
    """
    if hub_files_only(spec, source, "the transformers model", "config.json"):
        try:
            return load_parts(spec, source, files_only=True)
        except Exception as error:  # a file the cache lacks (OSError), or a bad model
            reason = HUB.offline_reason()
            if reason is not None:
                what = f"part of the transformers model ({failure_reason(error)})"
                raise not_cached(spec.name, what, source, reason, offline_fix(spec)) from None
    try:
        return load_parts(spec, source, files_only=False)
    except Exception as error:  # OSError, ValueError, safetensors and torch errors alike
        raise load_failure(spec, source, False, error) from None


@register_family("huggingface", HF_PARAMS, HF_CONTRACT)
def load_huggingface(spec: ModelSpec, device: str) -> FeatureExtractor:
    """transformers models: text with mean pooling, vision pooled as the architecture intends."""
    quiet_third_party()
    loader = spec.loader
    source, local = model_source(spec, loader.get("model"))
    size_overrides(spec)
    if local:
        try:
            config, model, preprocessor = load_parts(spec, source, files_only=True)
        except Exception as error:  # OSError, ValueError, safetensors and torch errors alike
            raise load_failure(spec, source, local, error) from None
    else:
        config, model, preprocessor = load_from_hub(spec, source)
    model = model.to(device)
    info: dict[str, Any] = {"model_type": config.model_type}
    if spec.modality is Modality.TEXT:
        max_tokens = int(loader.get("max_tokens", 128))
        info["max_tokens"] = max_tokens
        pooling = str(loader.get("pooling", "mean"))
        return FeatureExtractor(
            spec,
            model,
            tokenize(preprocessor, max_tokens),
            text_forward(model, pooling),
            device,
            info,
        )
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
        return preprocessor(images=rows, return_tensors="pt")["pixel_values"]

    return FeatureExtractor(spec, model, preprocess, forward, device, info)
