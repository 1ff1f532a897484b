"""Task2Vec: the distance (pure), and the ``task2vec`` kind on real zoo probes and data.

The vision checks embed 24 sampled rows of the zoo's MNIST train and test splits (disjoint
random parts of one MNIST-5k set) and of its photo crops with the real EfficientNet-Lite0,
once per module, and expect the two MNIST halves closer to each other than either is to
the photos. A few seconds per embedding on two cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from shift import zoo
from shift.errors import WorkerError
from shift.planner import DatasetEntry
from shift.specs import DatasetSpec, Modality, ModelSpec
from shift.task_distances import (
    HEAD_FOLDS,
    SAMPLE_ROWS,
    distance_matrix,
    estimate_seconds,
    task2vec_distance,
    task2vec_task,
)
from workers.kinds import Cancelled, TaskContext, get_kind
from workers.models.base import FAMILIES, Family, FeatureExtractor
from workers.task2vec import cross_fit

PROBE = "efficientnet-lite0"
ROWS = 24
VISION = ("mnist-train", "mnist-test", "photos-train")


class Recorder(TaskContext):
    """A task context that keeps the progress it is sent."""

    def __init__(self) -> None:
        super().__init__("t", 1, None, self.record)
        self.reports: list[tuple[float, float, str]] = []

    def record(self, done: float, total: float, message: str) -> None:
        self.reports.append((done, total, message))


def run(model: str, dataset: str | dict, **extra: object) -> dict:
    """Run the kind in-process on a zoo model and a zoo dataset (name or spec JSON)."""
    spec = zoo.dataset(dataset) if isinstance(dataset, str) else DatasetSpec.from_json(dataset)
    task = task2vec_task(zoo.model(model), DatasetEntry(spec, 10**9), ROWS)
    return get_kind("task2vec").run({**task.payload, **extra}, Recorder())


# ---- the distance ---------------------------------------------------------------------------

RNG = np.random.default_rng(0)
SETS = {
    "random": [RNG.random(50) for _ in range(4)],
    "with zeros": [np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0, 3.0]), np.zeros(3)],
    "scaled": [np.arange(1.0, 6.0), 10 * np.arange(1.0, 6.0), np.arange(5.0, 0.0, -1.0)],
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_distance_matrix_is_symmetric_non_negative_with_zero_diagonal(name):
    matrix = distance_matrix(SETS[name])
    assert np.array_equal(matrix, matrix.T)
    assert np.all(np.diag(matrix) == 0.0) and np.all(matrix >= 0.0) and np.all(matrix <= 1.0)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 0.0),  # identical
        ([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 0.0),  # a scale of the other
        ([0.0, 0.0], [0.0, 0.0], 0.0),  # both empty
        ([1.0, 0.0], [0.0, 1.0], 1.0),  # disjoint support
    ],
)
def test_distance_table(a, b, expected):
    assert task2vec_distance(np.array(a), np.array(b)) == pytest.approx(expected, abs=1e-12)


def test_distance_refuses_embeddings_of_different_lengths():
    with pytest.raises(ValueError, match="different lengths"):
        distance_matrix([np.ones(3), np.ones(4)])


def test_task_spec_and_cost_model():
    probe = zoo.model(PROBE)
    spec = zoo.dataset("mnist-train")
    capped = DatasetSpec(spec.name, spec.reader, {**spec.params, "max_rows": 48}, spec.modality)
    task = task2vec_task(probe, DatasetEntry(capped, 4000))
    assert task.kind == "task2vec" and task.model == probe.key
    assert task.payload["rows"] == 48 and task.payload["sample_rows"] == SAMPLE_ROWS
    assert task.payload["model"] == probe.to_json() and task.payload["seed"] == 0
    assert task2vec_task(probe, DatasetEntry(spec, 4000)).payload["rows"] is None
    assert task2vec_task(probe, DatasetEntry(capped, 4000)).task_id == task.task_id
    assert estimate_seconds(100, 0.01) == pytest.approx(4.0)
    assert estimate_seconds(100, None) is None


# ---- the kind on real probes -----------------------------------------------------------------


@pytest.fixture(scope="module")
def vision() -> dict[str, dict]:
    """Embeddings of the three vision sets under EfficientNet-Lite0 (24 rows each)."""
    return {name: run(PROBE, name) for name in VISION}


def test_mnist_halves_are_closer_than_photos(vision):
    d = distance_matrix([np.array(vision[name]["embedding"]) for name in VISION])
    print("\ntask2vec distances (mnist-train, mnist-test, photos-train):", np.round(d, 4).tolist())
    assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0.0)
    assert d[0, 1] < d[0, 2] and d[0, 1] < d[1, 2]


def test_result_figures(vision):
    result = vision["photos-train"]
    assert result["dim"] == len(result["embedding"]) > 1000
    assert result["layers"] > 10 and result["sample_rows"] == ROWS
    assert result["probe_key"] == zoo.model(PROBE).key
    assert result["dataset_key"] == zoo.dataset("photos-train").key
    assert 2 <= result["num_classes"] <= len(zoo.PHOTOS)
    assert min(result["embedding"]) >= 0.0 and max(result["embedding"]) > 0.0
    assert {vision[name]["dim"] for name in VISION} == {result["dim"]}
    assert min(result[k] for k in ("features_s", "fit_s", "fisher_s")) >= 0.0


def test_embedding_is_deterministic_for_a_seed(vision):
    again = run(PROBE, "mnist-test")
    assert again["embedding"] == vision["mnist-test"]["embedding"]
    assert run(PROBE, "mnist-test", seed=1)["embedding"] != again["embedding"]


def test_each_row_is_scored_by_a_head_fitted_without_it():
    features = RNG.random((9, 5)).astype(np.float32)
    labels = np.array([0, 1, 2] * 3)
    heads, members = cross_fit(features, labels, 3, seed=0)
    assert len(heads) == len(members) == HEAD_FOLDS
    assert sorted(np.concatenate(members).tolist()) == list(range(9))
    assert all(head.weight.shape == (3, 5) for head in heads)


def test_rows_cap_limits_the_sample_and_progress_is_reported():
    ctx = Recorder()
    spec = zoo.dataset("mnist-test")
    task = task2vec_task(zoo.model(PROBE), DatasetEntry(spec, 10**9), 500)
    result = get_kind("task2vec").run({**task.payload, "rows": 10}, ctx)
    assert result["sample_rows"] == 10
    totals = {total for _, total, _ in ctx.reports}
    assert len(totals) == 1 and ctx.reports[-1][0] == ctx.reports[-1][1] > 0
    messages = [message for *_, message in ctx.reports]
    assert list(dict.fromkeys(messages)) == ["features", "fisher", "done"]
    assert [done for done, *_ in ctx.reports] == sorted(done for done, *_ in ctx.reports)


def test_text_probe():
    result = run("minilm-l6", "rotten-tomatoes-train")
    assert result["sample_rows"] == ROWS and result["num_classes"] == 2
    # the six layers' attention and feed-forward projections; the unused pooler has none
    assert result["layers"] == 36 and result["dim"] == len(result["embedding"])
    assert min(result["embedding"]) >= 0.0 and max(result["embedding"]) > 0.0


# ---- errors ----------------------------------------------------------------------------------


def _one_photo() -> dict:
    spec = zoo.dataset("photos-train").to_json()
    return {**spec, "params": {**spec["params"], "photos": ["astronaut"]}}


@pytest.mark.parametrize(
    ("dataset", "extra", "message"),
    [
        ("mnist-test", {"rows": 1}, "has 1 row"),
        (_one_photo(), {}, "single class"),
        (
            {"name": "nope", "reader": "bundled", "params": {"set": "nope"}},
            {},
            "dataset 'nope'",
        ),
        ("mnist-test", {"sample_rows": 0}, "'sample_rows' must be an integer >= 1"),
        ("mnist-test", {"rows": "all"}, "'rows' must be an integer"),
    ],
)
def test_errors_are_clear(dataset, extra, message):
    with pytest.raises(WorkerError, match=message):
        run(PROBE, dataset, **extra)


def test_payload_without_a_probe_is_refused():
    with pytest.raises(WorkerError, match="lacks 'model'"):
        get_kind("task2vec").run({"dataset": zoo.dataset("mnist-test").to_json()}, Recorder())


def test_cancelled_before_the_features():
    ctx = Recorder()
    ctx.cancelled.set()
    task = task2vec_task(zoo.model(PROBE), DatasetEntry(zoo.dataset("mnist-test"), 1000), 8)
    with pytest.raises(Cancelled):
        get_kind("task2vec").run(task.payload, ctx)


class NotTorch:
    """A model that runs but is no torch module (an inference-only runtime, say)."""

    def eval(self) -> NotTorch:
        return self

    def parameters(self) -> list:
        return []


def test_a_probe_that_is_no_torch_module_is_refused(monkeypatch):
    import torch

    def load(spec, device):
        return FeatureExtractor(
            spec, NotTorch(), lambda rows: torch.zeros(len(rows), 4), lambda b: b, device
        )

    monkeypatch.setitem(FAMILIES, "not-torch", Family("not-torch", load, "test only"))
    probe = ModelSpec("opaque", "not-torch", Modality.VISION, {})
    task = task2vec_task(probe, DatasetEntry(zoo.dataset("mnist-test"), 1000), 8)
    with pytest.raises(WorkerError, match="does not run as a torch module"):
        get_kind("task2vec").run(task.payload, Recorder())
