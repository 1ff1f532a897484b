"""Mixed precision for inference: which dtype a model's forward pass runs in.

A model's loader may name ``precision``: ``float32`` (full precision), ``bfloat16`` or
``float16`` (``torch.autocast`` to that dtype), or ``auto`` (the default). ``auto`` is full
precision on a CPU; on a CUDA device it is ``bfloat16`` (``float16`` where the device has no
bfloat16) once a check at load time passes: the model embeds a fixed set of probe inputs
in both precisions and every probe's mixed-precision features must keep a cosine
similarity of at least :data:`MIN_COSINE` to its full-precision ones and the same nearest
neighbour among the probes; otherwise the model runs in float32. Features are stored as
float32 whatever the precision.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from shift.errors import WorkerError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
"""Values of a loader's ``precision``."""

PRECISION_KEY = "precision"
"""The loader parameter naming a model's inference precision."""

MIN_COSINE = 0.99
"""Least cosine similarity between a probe's mixed and full precision features for ``auto``
to choose mixed precision."""

log = logging.getLogger(__name__)


def is_cuda(device: str) -> bool:
    """True for ``cuda`` and ``cuda:N``."""
    return device == "cuda" or device.startswith("cuda:")


def requested_precision(loader: dict[str, Any], name: str) -> str:
    """The loader's ``precision`` (``auto`` when absent).

    Raises:
        WorkerError: it is not one of :data:`PRECISIONS`.
    """
    value = loader.get(PRECISION_KEY, "auto")
    if value not in PRECISIONS:
        raise WorkerError(
            f"model {name!r}: precision must be one of {', '.join(PRECISIONS)}, got {value!r}"
        )
    return str(value)


def mixed_dtype(device: str) -> str:
    """The mixed-precision dtype ``auto`` tries on ``device`` (``float32`` on a CPU)."""
    if not is_cuda(device):
        return "float32"
    import torch

    with torch.cuda.device(device):
        try:  # native bfloat16 only: emulated bfloat16 is slower than float32
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # a torch without the argument reports native support only
            native = torch.cuda.is_bf16_supported()
    return "bfloat16" if native else "float16"


def use_device(device: str) -> None:
    """Make ``device`` the calling thread's current CUDA device (a no-op elsewhere).

    CUDA's current device is per thread; a worker for ``cuda:1`` sets it in every thread that
    touches CUDA (the device thread, the prefetch threads that pin memory), so nothing it
    does creates a context on, or allocates from, ``cuda:0``.
    """
    if is_cuda(device):
        import torch

        torch.cuda.set_device(torch.device(device))


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The context a forward pass runs in: nothing for float32, else ``torch.autocast``."""
    if precision == "float32":
        return contextlib.nullcontext()
    import torch

    kind = "cuda" if is_cuda(device) else device.split(":")[0]
    return torch.autocast(device_type=kind, dtype=getattr(torch, precision))


def agrees(full: np.ndarray, mixed: np.ndarray, min_cosine: float = MIN_COSINE) -> str | None:
    """Why mixed-precision features of the probes differ too much from the full ones, or
    ``None`` when they agree (cosine per row, and the same nearest neighbour per row)."""
    if full.shape != mixed.shape:
        return f"shapes differ: {full.shape} and {mixed.shape}"
    if not np.isfinite(mixed).all():
        return "mixed precision gave non-finite features"
    a = full / np.maximum(np.linalg.norm(full, axis=1, keepdims=True), 1e-12)
    b = mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)
    cosine = float(np.min(np.sum(a * b, axis=1)))
    if cosine < min_cosine:
        return f"a probe's cosine similarity is {cosine:.4f} (< {min_cosine})"
    if len(a) > 2:
        near_a, near_b = _nearest(a), _nearest(b)
        if not np.array_equal(near_a, near_b):
            moved = int(np.sum(near_a != near_b))
            return f"{moved} of {len(a)} probes changed their nearest neighbour"
    return None


def _nearest(unit: np.ndarray) -> np.ndarray:
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argmax(similarity, axis=1)


def choose_precision(
    name: str,
    device: str,
    requested: str,
    embed_in: Callable[[str], np.ndarray],
) -> str:
    """The precision a model runs in on ``device``.

    Args:
        name: The model's name (for the log).
        device: Its torch device.
        requested: The loader's ``precision``.
        embed_in: Features of the probe inputs in a given precision.
    """
    if requested != "auto":
        return requested
    mixed = mixed_dtype(device)
    if mixed == "float32":
        return "float32"
    why = agrees(embed_in("float32"), embed_in(mixed))
    if why is not None:
        log.info("model %s runs in float32 on %s: %s under %s", name, device, why, mixed)
        return "float32"
    return mixed


def probe_images(count: int = 16, size: int = 96, seed: int = 0) -> list[Any]:
    """Distinct smooth RGB images (gradients and blocks of colour), the same every time."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, size)[None, :]
    images = []
    for _ in range(count):
        colours = rng.uniform(0, 255, size=(2, 3))
        mix = grid * rng.uniform(0.2, 1.0) + grid.T * rng.uniform(0.0, 0.8)
        mix = np.clip(mix / mix.max(), 0, 1)[..., None]
        pixels = colours[0] * (1 - mix) + colours[1] * mix
        x, y, w = (int(v) for v in rng.integers(0, size // 2, size=3))
        pixels[y : y + w + 8, x : x + w + 8] = rng.uniform(0, 255, size=3)
        images.append(Image.fromarray(pixels.astype(np.uint8), "RGB"))
    return images


PROBE_TEXTS = (
    "a photo of a cat sitting on a mat",
    "the stock market fell sharply today",
    "preheat the oven and whisk the eggs",
    "the goalkeeper saved a penalty in the final minute",
    "quantum computers use qubits instead of bits",
    "she planted tomatoes and basil in the garden",
    "the train to the airport leaves every ten minutes",
    "a violin concerto in D major",
    "heavy rain is expected over the weekend",
    "the patient was given antibiotics for the infection",
    "open source software is developed in public",
    "the castle was built in the twelfth century",
)
"""Distinct sentences: the text models' probes."""


__all__ = [
    "MIN_COSINE",
    "PRECISIONS",
    "PRECISION_KEY",
    "PROBE_TEXTS",
    "agrees",
    "autocast",
    "choose_precision",
    "is_cuda",
    "mixed_dtype",
    "probe_images",
    "requested_precision",
    "use_device",
]
