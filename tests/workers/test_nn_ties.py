"""The incremental 1-NN is exact under ties: any prior, any blocks, the same answer."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from workers import proxies
from workers.proxies import get_proxy, nearest_neighbours


def duplicated(seed: int, rows: int, dim: int, distinct: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows drawn from ``distinct`` feature vectors (many exact duplicates), random labels."""
    rng = np.random.default_rng(seed)
    pool = rng.normal(size=(distinct, dim)).astype(np.float32) * rng.uniform(0.1, 30)
    return pool[rng.integers(0, distinct, size=rows)], rng.integers(0, 3, size=rows)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(2, 160),
    dim=st.sampled_from([3, 17, 384]),
    distinct=st.integers(1, 12),
    cuts=st.lists(st.integers(1, 159), max_size=4),
    blocks=st.tuples(st.integers(1, 64), st.integers(1, 64)),
    metric=st.sampled_from(["euclidean", "cosine"]),
)
def test_a_continued_evaluation_equals_the_one_from_scratch(
    seed: int,
    rows: int,
    dim: int,
    distinct: int,
    cuts: list[int],
    blocks: tuple[int, int],
    metric: str,
) -> None:
    x, y = duplicated(seed, rows, dim, distinct)
    t, ty = duplicated(seed + 1, 40, dim, distinct)
    t[::3] = x[rows // 2]  # test rows that equal training rows: distance 0 ties
    fit, _ = get_proxy(f"{metric}_nn", {})
    scratch = fit(x, y, t, ty)
    # Ties go to the lowest training index: the first row at the minimum exact distance.
    first = [int(np.flatnonzero(np.all(x == x[i], axis=1))[0]) for i in scratch.nn_index]
    assert scratch.nn_index.tolist() == first
    saved = proxies.TEST_BLOCK_ROWS, proxies.TRAIN_BLOCK_ROWS
    proxies.TEST_BLOCK_ROWS, proxies.TRAIN_BLOCK_ROWS = blocks
    try:
        prior, done = None, 0
        for cut in [*sorted({c for c in cuts if c < rows}), rows]:
            step = fit(x[:cut], y[:cut], t, ty, prior=prior, prior_rows=done)
            prior, done = (step.nn_index, step.nn_distance), cut
    finally:
        proxies.TEST_BLOCK_ROWS, proxies.TRAIN_BLOCK_ROWS = saved
    assert step.nn_index.tolist() == scratch.nn_index.tolist()
    assert step.nn_distance.tobytes() == scratch.nn_distance.tobytes()
    assert step.err == scratch.err


def test_duplicates_split_across_chunks_keep_the_first() -> None:
    # Row 0 and row 300 are the same vector with different labels, in different chunks.
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 384)).astype(np.float32)
    x[300] = x[0]
    y = np.zeros(400, dtype=np.int64)
    y[300] = 1
    t = x[:1] + np.float32(1e-3)
    head, _ = nearest_neighbours(x[:256], t, "euclidean")
    grown, _ = nearest_neighbours(
        x[256:], t, "euclidean", prior=nearest_neighbours(x[:256], t, "euclidean"), offset=256
    )
    whole, _ = nearest_neighbours(x, t, "euclidean")
    assert head.tolist() == grown.tolist() == whole.tolist() == [0]
