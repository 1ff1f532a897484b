"""Feature extractors, the model-family registry and the per-process LRU of loaded models.

A family is a function ``load(spec, device) -> FeatureExtractor`` registered with
:func:`register_family`. Whatever the family, an extractor runs in eval mode under
``torch.inference_mode``, in batches of the spec's ``batch_size``, and reports its
``feature_dim`` and ``num_params`` as measured on the loaded model. It runs in the precision
:mod:`workers.precision` chooses (full precision on a CPU unless the loader asks otherwise)
and always returns float32 features.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import CatalogError, WorkerError
from shift.finetuning import checkpoint_root
from shift.parameters import Parameter
from shift.paths import confine, data_roots
from shift.registry import lookup, register_once, summary
from shift.specs import Modality, ModelSpec, resolve_file
from workers.precision import (
    PROBE_TEXTS,
    autocast,
    choose_precision,
    probe_images,
    requested_precision,
    use_device,
)

Preprocess = Callable[[list[Any]], Any]
"""Turns a list of rows (PIL images or strings) into the model's batch input."""

Forward = Callable[[Any], Any]
"""Turns a batch input into a ``(rows, features)`` tensor."""


class FeatureExtractor:
    """A loaded model that turns rows into float32 feature vectors.

    Args:
        spec: The model spec it was loaded from.
        module: The ``torch.nn.Module`` (put in eval mode here; parameters are counted).
        preprocess: Rows to batch input (the family's own preprocessing).
        forward: Batch input to features.
        device: Torch device string.
        info: Family extras for the catalog (input size, normalisation, ...).
        head: The source classifier on the features, ``(weight (K, d), bias (K,))``, when
            the checkpoint has one that reads exactly these features (LEEP and NCE use it).
    """

    def __init__(
        self,
        spec: ModelSpec,
        module: Any,
        preprocess: Preprocess,
        forward: Forward,
        device: str,
        info: dict[str, Any] | None = None,
        head: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self.spec = spec
        self.module = module.eval()
        self.device = device
        self.batch_size = spec.batch_size
        self.info = dict(info or {})
        self.preprocess = preprocess
        self.forward = forward
        self.head = head
        self.num_params = int(sum(p.numel() for p in module.parameters()))
        self.precision = "float32"
        probe = _PROBES[spec.modality]()
        self.feature_dim = int(self.embed([probe]).shape[1])
        requested = requested_precision(spec.loader, spec.name)
        self.precision = choose_precision(spec.name, device, requested, self._embed_probes)

    def forward_batch(self, batch: Any) -> Any:
        """Features of one preprocessed batch as a 2-D float32 tensor, left on the device.

        Runs in the model's :attr:`precision` (``torch.autocast`` unless float32); a pinned
        batch is copied to a CUDA device without blocking. Call under
        ``torch.inference_mode``.
        """
        with autocast(self.device, self.precision):
            features = self.forward(to_device(batch, self.device, non_blocking=True))
        return features.float().reshape(features.shape[0], -1)

    def embed(self, rows: list[Any]) -> np.ndarray:
        """Features of ``rows`` as a ``(len(rows), feature_dim)`` float32 array."""
        import torch

        out: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(rows), self.batch_size):
                batch = self.preprocess(rows[start : start + self.batch_size])
                out.append(self.forward_batch(batch).cpu().numpy())
        if not out:
            return np.zeros((0, getattr(self, "feature_dim", 0)), dtype=np.float32)
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def _embed_probes(self, precision: str) -> np.ndarray:
        """Features of the modality's probe inputs in ``precision`` (the load-time check)."""
        kept = self.precision
        self.precision = precision
        try:
            return self.embed(_CHECK_PROBES[self.spec.modality]())
        finally:
            self.precision = kept

    def torch_module(self) -> Any:
        """The model as a ``torch.nn.Module`` whose ``forward`` can be differentiated.

        Raises:
            WorkerError: the family's model is not a torch module, so it cannot be
                fine-tuned or used as a Task2Vec probe.
        """
        import torch

        if not isinstance(self.module, torch.nn.Module):
            raise WorkerError(
                f"model {self.spec.name!r} (family {self.spec.family}) does not run as a "
                "torch module, so it cannot be trained or probed"
            )
        return self.module

    def describe(self) -> dict[str, Any]:
        """Measured facts for the catalog: feature_dim, num_params, batch_size, extras, and
        ``source_classes`` (the source head's classes) when the model keeps its head."""
        head = {} if self.head is None else {"source_classes": int(self.head[0].shape[0])}
        return {
            "feature_dim": self.feature_dim,
            "num_params": self.num_params,
            "batch_size": self.batch_size,
            **self.info,
            **head,
        }

    def source_logits(self, features: np.ndarray) -> np.ndarray:
        """The source head's logits of stored features, ``(n, K)`` float64.

        Raises:
            WorkerError: the model has no source head on these features.
        """
        if self.head is None:
            raise WorkerError(
                f"model {self.spec.name!r} has no source classifier head on its features "
                "(a random-init control, a truncation or a headless checkpoint)"
            )
        weight, bias = self.head
        return np.asarray(features, dtype=np.float64) @ weight.T + bias


def _gray_image() -> Any:
    from PIL import Image

    return Image.new("RGB", (64, 64), (128, 128, 128))


_PROBES: dict[Modality, Callable[[], Any]] = {
    Modality.VISION: _gray_image,
    Modality.TEXT: lambda: "a probe sentence",
}

_CHECK_PROBES: dict[Modality, Callable[[], list[Any]]] = {
    Modality.VISION: probe_images,
    Modality.TEXT: lambda: list(PROBE_TEXTS),
}


def to_device(batch: Any, device: str, non_blocking: bool = False) -> Any:
    """Move a batch input (a tensor or a dict of tensors) to ``device`` (``non_blocking``:
    an asynchronous copy where the source is pinned host memory and the device is CUDA)."""
    if hasattr(batch, "to"):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {
            k: v.to(device, non_blocking=non_blocking) if hasattr(v, "to") else v
            for k, v in batch.items()
        }
    return batch


FamilyLoader = Callable[[ModelSpec, str], FeatureExtractor]


@dataclass(frozen=True)
class Family:
    """A registered model family.

    Attributes:
        name: The name model specs use in their ``family`` field.
        load: ``load(spec, device) -> FeatureExtractor``.
        help: One line for the docs.
        params: The loader parameters it reads (``shift sources`` shows them).
        contract: What the model receives: tensor shape, dtype, value range, or text.
    """

    name: str
    load: FamilyLoader
    help: str
    params: tuple[Parameter, ...] = ()
    contract: str = ""


FAMILIES: dict[str, Family] = {}
"""Every registered model family by name."""


def register_family(
    name: str, params: tuple[Parameter, ...] = (), contract: str = ""
) -> Callable[[FamilyLoader], FamilyLoader]:
    """Register a loader as the model family ``name`` with its parameters and input contract.

    Raises:
        WorkerError: ``name`` is already registered.
    """

    def register(function: FamilyLoader) -> FamilyLoader:
        register_once(
            FAMILIES,
            name,
            Family(name, function, summary(function), params, contract),
            "model family",
            WorkerError,
        )
        return function

    return register


def get_family(name: str) -> Family:
    """Look up a model family.

    Raises:
        WorkerError: unknown family; the message lists the known ones and the closest.
    """
    return lookup(FAMILIES, name, "model family", WorkerError)


WEIGHTS_KEY = "weights"
"""Loader parameter naming a state dict (a file reference) loaded over the family's model:
how fine-tuned models are registered (their base spec's loader plus their weights)."""


def local_roots() -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """This worker's data roots and the folders shift writes (fine-tuned weights), from its
    settings: where a model's local files may lie."""
    from shift.settings import load_settings

    settings = load_settings()
    roots = data_roots(str(settings["data_roots"]))
    return roots, (checkpoint_root(settings["state_dir"]),)


def model_file(spec: ModelSpec, ref: Any) -> Path:
    """The path of a file a model's loader names (see :func:`shift.specs.resolve_file`).

    A packaged file (``{"distribution", "path"}``) is found in its installed package; a
    plain path (a string or ``{"path"}``) is confined to the data roots exactly as dataset
    paths are (a relative path is looked up under each root), or lies in a folder shift
    writes itself.

    Raises:
        WorkerError: the reference is malformed, the file is missing or it lies outside the
            data roots; names the model.
    """
    try:
        if isinstance(ref, str):
            ref = {"path": ref}
        if isinstance(ref, dict) and "distribution" not in ref and isinstance(ref.get("path"), str):
            roots, own = local_roots()
            return confine(ref["path"], roots, also=own)
        return resolve_file(ref)
    except CatalogError as error:
        raise WorkerError(f"model {spec.name!r}: {error}") from None


def failure_reason(error: BaseException) -> str:
    """One line saying why a third-party loader refused a file.

    torch's weights-only refusal opens with advice to load the file unsafely; the line that
    names the refused global is the reason worth reporting.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    named = [line for line in lines if "WeightsUnpickler error" in line]
    line = (named or lines or [type(error).__name__])[0]
    return line if len(line) <= 300 else line[:297] + "..."


def load_state_file(spec: ModelSpec, path: Path) -> dict[str, Any]:
    """The state dict (names to tensors) in a ``.safetensors`` file or a ``torch.save`` file.

    ``torch.save`` files load with ``weights_only=True``: tensors and plain containers only,
    never a pickled object. A ``{"state_dict": ...}`` wrapper is unwrapped.

    Raises:
        WorkerError: the file is corrupt, not of its kind, or holds no state dict.
    """
    kind = "safetensors" if path.suffix == ".safetensors" else "PyTorch state-dict"
    try:
        if kind == "safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            import torch

            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zipfile, unpickler, safetensors and torch errors: a bad file
        raise WorkerError(
            f"model {spec.name!r}: checkpoint {path} is corrupt or not a {kind} file: "
            f"{failure_reason(error)}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if (
        not isinstance(state, dict)
        or not state
        or not all(hasattr(v, "shape") for v in state.values())
    ):
        raise WorkerError(
            f"model {spec.name!r}: checkpoint {path} is not a state dict (names to tensors)"
        )
    return state


def load_model(spec: ModelSpec, device: str = "cpu") -> FeatureExtractor:
    """Load a model with its family, then its fine-tuned weights if the loader names some.

    Raises:
        WorkerError: the family is unknown, the model cannot load, or the weights do not fit.
    """
    use_device(device)
    extractor = get_family(spec.family).load(spec, device)
    weights = spec.loader.get(WEIGHTS_KEY)
    if weights is None:
        return extractor
    path = model_file(spec, weights)
    module = extractor.torch_module()
    state = load_state_file(spec, path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WorkerError(f"model {spec.name!r}: weights {path.name} do not fit: {error}") from None
    return extractor


class ModelCache:
    """A small LRU of loaded models, keyed by (model key, device).

    Args:
        capacity: How many models stay loaded.
    """

    def __init__(self, capacity: int = 2) -> None:
        self.capacity = capacity
        self._models: OrderedDict[tuple[str, str], FeatureExtractor] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, spec: ModelSpec, device: str = "cpu") -> FeatureExtractor:
        """The loaded model for ``spec``, loading it (and evicting the oldest) if needed.

        Raises:
            WorkerError: the family is unknown or the model cannot be loaded.
        """
        key = (spec.key, device)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        model = load_model(spec, device)
        with self._lock:
            self.loads += 1
            self._models[key] = model
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return model

    def loaded(self) -> list[str]:
        """Names of the loaded models, least recently used first."""
        with self._lock:
            return [m.spec.name for m in self._models.values()]
