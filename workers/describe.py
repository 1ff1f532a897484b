"""The ``describe`` task kind: measure what the catalog must not guess.

TASK body: ``{"model": ModelSpec JSON}`` or ``{"dataset": DatasetSpec JSON}`` (one of the
two). RESULT for a model: ``{"kind": "model", "num_params", "feature_dim", "batch_size",
...family extras such as "input_size"}`` (the model is loaded into the worker's LRU, so a
following ``embed`` finds it there; a catalog-only model, such as a TF-Hub one, reports
``catalog_only``, the reason it cannot run, instead of its measurements). RESULT for a dataset:
``{"kind": "dataset", "size", "num_classes", "modality", "classes"}`` (at most 1,000 class
values). A dataset without rows or with a single class fails
(:func:`shift.registration.dataset_problem` says why), so it never registers as ready only to
fail every query that reads it.
"""

from __future__ import annotations

from typing import Any

from shift.errors import WorkerError
from shift.payloads import DescribePayload
from shift.registration import dataset_problem
from workers.embed import read
from workers.kinds import TaskContext, device_of, task_kind

MAX_CLASSES_REPORTED = 1000
"""Most class values a dataset description lists."""


def describe_payload(payload: dict[str, Any], ctx: TaskContext | None = None) -> dict[str, Any]:
    """Run the ``describe`` kind (see the module docstring).

    Raises:
        WorkerError: the payload names neither or both, the model/dataset cannot load, or
            the dataset is empty or has one class.
    """
    task = DescribePayload.from_json(payload)
    if task.model is not None:
        from workers.models import MODEL_CACHE
        from workers.models.tfhub import CatalogOnlyModel

        try:
            extractor = MODEL_CACHE.get(task.model, device_of(payload, ctx))
        except CatalogOnlyModel as why:
            return {"kind": "model", "batch_size": task.model.batch_size, "catalog_only": str(why)}
        return {"kind": "model", **extractor.describe()}
    dataset = task.dataset
    if dataset is None:  # DescribePayload holds exactly one of the two
        raise WorkerError("a describe task needs exactly one of 'model' and 'dataset'")
    data = read(dataset)
    problem = dataset_problem(dataset.name, len(data), data.num_classes)
    if problem is not None:
        raise WorkerError(problem)
    classes = [c for c in data.classes[:MAX_CLASSES_REPORTED]]
    return {
        "kind": "dataset",
        "size": len(data),
        "num_classes": data.num_classes,
        "modality": str(data.modality),
        "classes": classes,
    }


@task_kind("describe")
def describe(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Load a model or open a dataset and report its measured catalog columns."""
    return describe_payload(payload, ctx)
