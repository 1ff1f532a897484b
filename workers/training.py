"""Training helpers shared by the ``finetune`` and ``task2vec`` task kinds.

- :func:`private_model`: a model of the worker's own (never the LRU that ``embed`` tasks
  share, whose weights must not change), checked to be a torch module.
- :func:`frozen_features`: features in eval mode without gradients.
- :func:`fit_head`: a softmax head trained on standardised frozen features and folded back
  onto the raw features, so that ``head(forward(batch))`` is the linear probe's model.
- :func:`freeze_norm_statistics`: normalisation layers keep their running statistics.
- :func:`atomic_save` / :func:`atomic_write_text`: :func:`workers.atomic.atomic_write` of a
  state dict or a text; :func:`load_checkpoint` reads a saved checkpoint back weights-only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from shift.errors import WorkerError
from shift.specs import ModelSpec
from workers.atomic import atomic_write
from workers.models.base import FeatureExtractor, failure_reason, load_model, to_device

HEAD_STEPS = 300
"""Full-batch Adam steps that fit a head on frozen features."""

HEAD_LEARNING_RATE = 0.01
HEAD_WEIGHT_DECAY = 1e-4


def private_model(spec: ModelSpec, device: str = "cpu") -> FeatureExtractor:
    """Load ``spec`` afresh (not from the worker's LRU) as a trainable torch model.

    Raises:
        WorkerError: the model cannot load or is not a torch module.
    """
    extractor = load_model(spec, device)
    extractor.torch_module()
    return extractor


def frozen_features(extractor: FeatureExtractor, rows: list[Any], check: Any = None) -> np.ndarray:
    """Features of ``rows`` (eval mode, no gradients); ``check()`` runs between batches."""
    import torch

    module = extractor.torch_module()
    was_training = module.training
    module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), extractor.batch_size):
            if check is not None:
                check()
            batch = extractor.preprocess(rows[start : start + extractor.batch_size])
            features = extractor.forward(to_device(batch, extractor.device))
            out.append(features.float().reshape(features.shape[0], -1).cpu().numpy())
    module.train(was_training)
    if not out:
        return np.zeros((0, extractor.feature_dim), dtype=np.float32)
    return np.concatenate(out)


def fit_head(features: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0) -> Any:
    """A ``torch.nn.Linear`` softmax head fitted on frozen features (deterministic).

    The head is trained on standardised features (zero-initialised, full-batch Adam with a
    little weight decay) and the standardisation is folded into its weights, so it applies
    to the raw features the network produces.
    """
    import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(np.asarray(features, dtype=np.float32))
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    z = (x - mean) / std
    layer = torch.nn.Linear(x.shape[1], num_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(
        layer.parameters(), lr=HEAD_LEARNING_RATE, weight_decay=HEAD_WEIGHT_DECAY
    )
    for _ in range(HEAD_STEPS if len(z) else 0):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(layer(z), y).backward()
        optimizer.step()
    head = torch.nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        weight = layer.weight / std
        head.weight.copy_(weight)
        head.bias.copy_(layer.bias - weight @ mean)
    return head


def freeze_norm_statistics(module: Any) -> None:
    """Put batch/group/layer normalisation layers in eval mode (running stats kept)."""
    import torch

    norms = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
    for layer in module.modules():
        if isinstance(layer, norms):
            layer.eval()


def atomic_save(value: Any, path: Path) -> None:
    """``torch.save`` ``value`` to ``path`` atomically (readers see the old or the new file)."""
    import torch

    atomic_write(path, lambda handle: torch.save(value, handle))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode()))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`atomic_save`, read with ``weights_only=True``.

    Tensors, state dicts and plain numbers, strings, lists and dicts load; a file that
    needs anything else (a pickled object, whatever its ``__reduce__`` would run) is refused
    before any of it runs.

    Raises:
        WorkerError: the file is torn, corrupt, unsafe, or not a dict; names the file and
            says to delete its folder to start again.
    """
    import torch

    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the weights-only unpickler's refusal, zip and torch errors
        raise WorkerError(
            f"checkpoint {path} is corrupt or unsafe (not a weights-only torch file): "
            f"{failure_reason(error)}; delete {str(path.parent)!r} to start this task again"
        ) from None
    if not isinstance(value, dict):
        raise WorkerError(
            f"checkpoint {path} is corrupt: it holds a {type(value).__name__}, not a dict; "
            f"delete {str(path.parent)!r} to start this task again"
        )
    return value
