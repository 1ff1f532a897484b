"""Proxies and the feature store: exact 1-NN against brute force, a learning linear probe
(tests/workers/test_linear_probe.py checks the probe against scikit-learn on real features)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from shift.errors import WorkerError
from workers import proxies
from workers.features import FeatureStore, block_range
from workers.proxies import get_proxy, nearest_neighbours


def blobs(seed, n, d=16, k=4):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centres[y] + rng.normal(size=(n, d))).astype(np.float32), y


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_nn_matches_brute_force_across_blocks(monkeypatch, metric):
    monkeypatch.setattr(proxies, "TEST_BLOCK_ROWS", 7)
    monkeypatch.setattr(proxies, "TRAIN_BLOCK_ROWS", 11)
    x, y = blobs(0, 300)
    t, ty = blobs(1, 90)
    fit, params = get_proxy(f"{metric}_nn", {})
    result = fit(x, y, t, ty, **params)
    sk = KNeighborsClassifier(1, metric=metric, algorithm="brute").fit(x.astype(np.float64), y)
    expected = float(np.mean(sk.predict(t.astype(np.float64)) != ty))
    assert result.err == expected and result.acc == 1 - expected
    assert (result.train_rows, result.test_rows) == (300, 90)
    a, b = x.astype(np.float64), t.astype(np.float64)
    if metric == "cosine":
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        dist = 1 - b @ a.T
    else:
        dist = np.sqrt(((b[:, None, :] - a[None]) ** 2).sum(-1))
    assert np.array_equal(result.nn_index, dist.argmin(1))
    np.testing.assert_allclose(result.nn_distance, dist.min(1), atol=1e-9)


def test_nn_continues_from_a_prior_prefix():
    x, y = blobs(2, 200)
    t, ty = blobs(3, 50)
    fit, _ = get_proxy("euclidean_nn", {})
    first = fit(x[:120], y[:120], t, ty)
    grown = fit(x, y, t, ty, prior=(first.nn_index, first.nn_distance), prior_rows=120)
    full = fit(x, y, t, ty)
    assert grown.err == full.err and np.array_equal(grown.nn_index, full.nn_index)
    index, _ = nearest_neighbours(x[:1].repeat(3, 0), t[:2], "euclidean")
    assert index.tolist() == [0, 0]  # ties go to the lowest train row


def test_linear_probe_learns_a_separable_set_deterministically():
    """Upstream SHiFT's form (an SGD parameter set) runs SGD, deterministically."""
    x, y = blobs(4, 400, k=3)
    t, ty = blobs(4, 400, k=3)  # same centres, same draw: a sanity set
    fit, params = get_proxy("linear", {"learning_rate": 0.1, "num_epochs": 50})
    assert params == {
        "learning_rate": 0.1,
        "num_epochs": 50,
        "solver": "auto",
        "l2": 1.0,
        "tol": 1e-5,
        "max_iter": 1000,
    }
    first = fit(x, y, t, ty, num_classes=3, **params)
    assert (first.solver, first.iterations, first.converged) == ("sgd", 50, None)
    assert first.err < 0.02 and fit(x, y, t, ty, num_classes=3, **params).err == first.err
    mini = fit(x, y, t, ty, num_classes=3, batch_rows=64, **params)
    assert mini.err < 0.05 and mini.iterations == 50 * 7  # 400 rows in steps of 64
    lbfgs, defaults = get_proxy("linear", {})
    converged = lbfgs(x, y, t, ty, num_classes=3, **defaults)
    assert converged.err < 0.02 and converged.converged and converged.solver == "lbfgs"


def test_proxy_names_and_params_are_checked():
    with pytest.raises(WorkerError, match="did you mean 'cosine_nn'"):
        get_proxy("cosine_n", {})
    with pytest.raises(WorkerError, match="no parameter"):
        get_proxy("euclidean_nn", {"k": 3})
    with pytest.raises(WorkerError, match="at least"):
        get_proxy("linear", {"num_epochs": 0})


def test_feature_store_blocks_and_row_ranges(tmp_path):
    store = FeatureStore(tmp_path, block_rows=4)
    features = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    labels = np.arange(10) % 2
    for block in range(3):
        lo, hi = block_range(block, 10, 4)
        store.write_block("m", "d", block, features[lo:hi], labels[lo:hi], {"classes": [0, 1]})
    got, ids = store.read_rows("m", "d", 3, 9)
    assert np.array_equal(got, features[3:9]) and np.array_equal(ids, labels[3:9])
    assert not list(tmp_path.rglob("*.tmp"))
    assert store.missing_blocks("m", "d", 0, 10) == [] and store.meta("m", "d")["classes"] == [0, 1]
    next(store.folder("m", "d").glob("block-000001.npy")).unlink()
    with pytest.raises(WorkerError, match=r"lack blocks \[1\]"):
        store.read_rows("m", "d", 0, 10)
    with pytest.raises(WorkerError, match="outside"):
        block_range(3, 10, 4)
