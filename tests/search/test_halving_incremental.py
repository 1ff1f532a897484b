"""Incremental 1-NN without a broker: prior choice (pure) and continuing from any prior."""

from __future__ import annotations

import numpy as np
import pytest

from shift.incremental import NnRecord, choose_prior, rows_of, segments
from workers.proxies import PROXIES

A = {"dataset": "a", "rows": 100}
B = {"dataset": "b", "rows": 20}
SWAP = {
    "base": "a",
    "base_rows": 100,
    "from": [1, 2],
    "target": "a",
    "target_rows": 100,
    "to": [2, 1],
}
REPLACE = {"base": "a", "base_rows": 100, "from": [1], "target": "b", "target_rows": 20, "to": [1]}


def record(items: list[dict], rows: int | None, task: str) -> NnRecord:
    return NnRecord("L", tuple(items), rows, task)


@pytest.mark.parametrize(
    ("items", "rows", "stored", "chosen", "prefix"),
    [
        ([A], 64, [record([A], 32, "r32"), record([A], 16, "r16")], "r32", True),
        ([A], 64, [record([A], 100, "all")], None, None),  # more rows than wanted
        ([A, B], 120, [record([A], 100, "a"), record([A], 64, "a64")], "a", True),
        ([B, A], 120, [record([A], 100, "a")], None, None),  # a is not a prefix of b + a
        ([SWAP], 100, [record([A], 100, "a")], "a", True),  # label-only: same rows
        ([REPLACE], None, [record([A], 100, "a"), record([A, B], 120, "ab")], "ab", False),
        ([REPLACE], None, [record([{"dataset": "c", "rows": 5}], 5, "c")], None, None),
    ],
)
def test_choose_prior(items, rows, stored, chosen, prefix):
    choice = choose_prior(items, rows, stored)
    assert (choice.record.task_id if choice else None) == chosen
    assert (choice.prefix if choice else None) == prefix


def test_segments_and_rows():
    assert segments([A, SWAP]) == [("a", 100), ("a", 100)]
    assert segments([REPLACE]) is None and rows_of([REPLACE], None) is None
    assert rows_of([A, B], 110) == 110 and rows_of([A, B], None) == 120


def test_nn_continues_from_a_rearranged_prior():
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(60, 8)), rng.normal(size=(25, 8))
    labels, test_labels = rng.integers(0, 3, 60), rng.integers(0, 3, 25)
    fit = PROXIES["euclidean_nn"]
    full = fit(train, labels, test, test_labels)
    keep = np.flatnonzero(labels != 1)  # a mutation drops class 1 and adds 10 new rows
    extra = rng.normal(size=(10, 8))
    mutated = np.concatenate([train[keep], extra])
    mutated_y = np.concatenate([labels[keep], np.ones(10, dtype=np.int64)])
    fresh = fit(mutated, mutated_y, test, test_labels)
    where = {old: new for new, old in enumerate(keep)}
    mapped = np.array([where.get(int(i), -1) for i in full.nn_index])
    covered = np.arange(len(mutated)) < len(keep)
    grown = fit(
        mutated, mutated_y, test, test_labels, prior=(mapped, full.nn_distance), covered=covered
    )
    assert np.array_equal(grown.nn_index, fresh.nn_index) and grown.err == fresh.err
    lost = int((mapped < 0).sum())
    assert grown.distance_pairs == lost * len(keep) + 10 * len(test)
    same = fit(
        train,
        labels,
        test,
        test_labels,
        prior=(full.nn_index, full.nn_distance),
        covered=np.ones(60, bool),
    )
    assert same.distance_pairs == 0 and np.array_equal(same.nn_index, full.nn_index)
