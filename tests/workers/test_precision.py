"""Mixed precision: where it runs, the load-time check, and that it keeps the ranking."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shift import zoo
from shift.errors import WorkerError
from workers.embed import read
from workers.precision import (
    agrees,
    autocast,
    choose_precision,
    probe_images,
    requested_precision,
)
from workers.proxies import get_proxy

RANKED = ("efficientnet-lite0", "efficientnet-lite0-stage2", "efficientnet-lite0-random")
"""Pretrained, truncated and random-init: a pool whose order is known on natural images."""

ROWS = 40


def test_precision_defaults_to_auto_and_refuses_others():
    assert requested_precision({}, "m") == "auto"
    assert requested_precision({"precision": "bfloat16"}, "m") == "bfloat16"
    with pytest.raises(WorkerError, match="model 'm': precision must be one of auto, float32"):
        requested_precision({"precision": "int8"}, "m")
    with pytest.raises(WorkerError, match="got 16"):
        requested_precision({"precision": 16}, "m")


def test_auto_is_full_precision_on_cpu_without_running_the_check():
    def never(precision):
        raise AssertionError("the check must not run on a CPU")

    assert choose_precision("m", "cpu", "auto", never) == "float32"
    assert choose_precision("m", "cpu", "bfloat16", never) == "bfloat16"


def test_the_check_refuses_moved_neighbours_and_low_cosine():
    rng = np.random.default_rng(0)
    full = rng.normal(size=(12, 32)).astype(np.float32)
    assert agrees(full, full + 1e-4 * rng.normal(size=full.shape)) is None
    assert "cosine similarity" in agrees(full, rng.normal(size=full.shape))
    assert "non-finite" in agrees(full, np.full_like(full, np.nan))


def _at(*degrees: float) -> np.ndarray:
    radians = np.deg2rad(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1)


def test_the_check_refuses_a_changed_nearest_neighbour():
    full = _at(0, 10, 12, 90, 100)  # row 1's nearest is row 2
    assert agrees(full, _at(0, 9, 13, 90, 100)) is None
    # every row within 4 degrees (cosine > 0.99), but row 1's nearest is now row 0
    assert agrees(full, _at(0, 6, 14, 90, 100)) == "1 of 5 probes changed their nearest neighbour"


def test_probe_images_are_fixed_and_distinct():
    first, again = probe_images(), probe_images()
    pixels = [np.asarray(i) for i in first]
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(pixels, again, strict=True))
    assert len({p.tobytes() for p in pixels}) == len(pixels)


def test_cpu_autocast_runs_in_bfloat16():
    import torch

    layer = torch.nn.Linear(8, 4)
    with torch.inference_mode(), autocast("cpu", "bfloat16"):
        assert layer(torch.ones(2, 8)).dtype == torch.bfloat16
    with autocast("cpu", "float32"):
        assert layer(torch.ones(2, 8)).dtype == torch.float32


def _in(name: str, precision: str):
    base = zoo.model(name)
    return dataclasses.replace(base, loader={**base.loader, "precision": precision})


def _ranking(models, precision: str) -> tuple[list[str], dict[str, float], dict[str, np.ndarray]]:
    train, test = read(zoo.dataset("photos-train")), read(zoo.dataset("photos-test"))
    fit, params = get_proxy("cosine_nn", {})
    scores, features = {}, {}
    for name in RANKED:
        extractor = models.get(_in(name, precision))
        assert extractor.precision == precision
        train_x = extractor.embed(train.rows(0, ROWS))
        test_x = extractor.embed(test.rows(0, ROWS))
        assert train_x.dtype == np.float32
        result = fit(train_x, train.labels[:ROWS], test_x, test.labels[:ROWS], **params)
        scores[name], features[name] = result.acc, test_x
    order = sorted(RANKED, key=lambda n: (-scores[n], n))
    return order, scores, features


@pytest.mark.slow
def test_bfloat16_keeps_the_cosine_nn_ranking(models):
    full_order, full, full_x = _ranking(models, "float32")
    mixed_order, mixed, mixed_x = _ranking(models, "bfloat16")
    assert full_order == list(RANKED), full  # the known order: the check is not vacuous
    assert mixed_order == full_order, (full, mixed)
    for name in RANKED:
        assert not np.array_equal(full_x[name], mixed_x[name])  # autocast did run
        assert abs(full[name] - mixed[name]) <= 0.05
