"""The prefetching embed loop gives exactly the features of the plain path, and stops well."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from shift import zoo
from shift.errors import CatalogError
from workers.device_loop import embed_range, prefetch_threads, sizer_of
from workers.embed import embed_block, read
from workers.features import FeatureStore
from workers.kinds import Cancelled, TaskContext
from workers.readers import Dataset

pytestmark = pytest.mark.slow


def _small_batches(name: str, batch_size: int):
    return dataclasses.replace(zoo.model(name), batch_size=batch_size)


@pytest.fixture(scope="module")
def lite0(models):
    return models.get(_small_batches("efficientnet-lite0", 16))


@pytest.mark.parametrize(("threads", "depth"), [(1, 1), (3, 3)])
def test_image_features_are_bit_identical(lite0, threads, depth):
    data = read(zoo.dataset("photos-test"))
    start, stop = 5, 5 + 70  # several batches and a short last one, off a batch boundary
    plain = lite0.embed(data.rows(start, stop))
    features, figures = embed_range(lite0, data, start, stop, threads=threads, depth=depth)
    assert features.dtype == np.float32 and features.flags.c_contiguous
    assert np.array_equal(features, plain)
    assert figures.batch_sizes == (16, 16, 16, 16, 6)
    assert figures.ooms == 0 and figures.wait_s >= 0


def test_text_features_are_bit_identical(models):
    extractor = models.get(_small_batches("minilm-l6", 8))
    assert prefetch_threads(extractor) == 1
    data = read(zoo.dataset("rotten-tomatoes-train"))
    plain = extractor.embed(data.rows(0, 30))
    features, figures = embed_range(extractor, data, 0, 30, threads=4)
    assert np.array_equal(features, plain)
    assert figures.batch_sizes == (8, 8, 8, 6)


def test_embed_block_stores_the_plain_features(lite0, tmp_path):
    spec = lite0.spec
    dataset = zoo.dataset("photos-test")
    store = FeatureStore(tmp_path, block_rows=40)
    figures = embed_block(spec, dataset, 1, store)
    assert (figures["start"], figures["stop"], figures["batches"]) == (40, 80, 3)
    assert figures["precision"] == "float32" and figures["wait_s"] >= 0
    stored, _ = store.read_rows(spec.key, dataset.key, 40, 80)
    assert np.array_equal(stored, lite0.embed(read(dataset).rows(40, 80)))


def test_a_row_that_cannot_be_read_fails_the_range(lite0):
    good = read(zoo.dataset("photos-test"))

    def load(j: int):
        if j == 20:
            raise CatalogError("image 20 is truncated")
        return good.rows(j, j + 1)[0]

    broken = Dataset("vision", load, list(range(40)), np.arange(40))
    with pytest.raises(CatalogError, match="image 20 is truncated"):
        embed_range(lite0, broken, 0, 40, threads=2)


def test_cancelling_stops_between_batches(lite0):
    data = read(zoo.dataset("photos-test"))
    seen: list[float] = []
    cancelled = threading.Event()

    def cancel_after_two(done, total, message):
        seen.append(done)
        if len(seen) == 2:
            cancelled.set()

    ctx = TaskContext("t1", 1, None, cancel_after_two)
    ctx.cancelled = cancelled
    before = threading.active_count()
    with pytest.raises(Cancelled):
        embed_range(lite0, data, 0, 64, ctx, threads=2)
    assert seen == [0, 16]
    assert threading.active_count() == before  # the prefetch pool is shut down


def test_a_loaded_model_keeps_its_batch_sizer(lite0):
    sizer = sizer_of(lite0)
    assert sizer is sizer_of(lite0)
    assert not sizer.adaptive and sizer.size == lite0.batch_size  # a CPU keeps the spec's
