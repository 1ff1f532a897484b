"""The ``tensorflow_hub`` family: TF-Hub image models as catalog rows only.

shift runs PyTorch models; a TF-Hub model (``tf_image_model_url``) cannot be loaded. It can
still be registered, so that scripts which list, filter or order models by their TF-Hub URL
work: registering measures nothing and succeeds, and any task that needs its features fails
with :class:`CatalogOnlyModel`, naming the model and the reason.
"""

from __future__ import annotations

from shift.errors import WorkerError
from shift.parameters import REQUIRED, Parameter
from shift.specs import ModelSpec
from workers.models.base import FeatureExtractor, register_family


class CatalogOnlyModel(WorkerError):
    """A model that is a catalog row only: it cannot be loaded by any worker."""


@register_family(
    "tensorflow_hub",
    (Parameter("url", "str", REQUIRED, "The TF-Hub model's URL (an identifier only)."),),
    "none: a catalog row only; a task that needs its features fails, saying why.",
)
def load_tensorflow_hub(spec: ModelSpec, device: str) -> FeatureExtractor:
    """TF-Hub models: catalog rows only (any task that needs features fails, saying why)."""
    url = spec.loader.get("url", "?")
    raise CatalogOnlyModel(
        f"model {spec.name!r} is the TF-Hub model {url}, which shift lists in its catalog but "
        "cannot run (shift runs PyTorch models only); leave it out of the search (e.g. WHERE "
        "source != 'tensorflow') or register a PyTorch counterpart (torchvision, timm or "
        "huggingface source)"
    )
