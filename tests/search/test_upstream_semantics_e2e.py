"""Mutations in TESTED ON and BENCHMARK with CHUNK, end to end: a real broker, two workers.

Mutated test sets are checked against the same rows registered as datasets of their own:
the test writes ``.npz`` images of three colour classes, a copy with one class relabelled
and a merged copy, so a mutation's answer must equal the copy's. BENCHMARK with CHUNK runs
three Lite0-sized models on two (train, test) pairs of photo crops and must pick the
exhaustive search's winner with the same score, and a rerun must create no task.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from shift import zoo

from .conftest import Cluster

MODELS = ("efficientnet-lite0", "efficientnet-lite0-stage2", "efficientnet-lite0-random")
POOL = json.dumps(list(MODELS))
COLOURS = {"r": (200, 40, 40), "g": (40, 200, 40), "b": (40, 40, 200), "x": (200, 200, 40)}


def _images(labels: list[str], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((len(labels), 32, 32, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        noise = rng.integers(-60, 60, size=(32, 32, 3))
        out[i] = np.clip(np.array(COLOURS[label]) + noise, 0, 255)
    return out


def _npz(cluster: Cluster, name: str, x: np.ndarray, y: list[str]) -> tuple[str, dict[str, Any]]:
    path = cluster.tmp / "data" / f"{name}.npz"
    np.savez(path, x=x, y=np.array(y))
    return ("/v1/datasets", {"name": name, "reader": "npz", "params": {"path": str(path)}})


def _photos(split: str, name: str, crops: int, seed: int = 0) -> tuple[str, dict[str, Any]]:
    spec = zoo.dataset(f"photos-{split}").to_json()
    per_photo = {"train": crops, "test": crops}
    params = {**spec["params"], "crops_per_photo": per_photo, "seed": seed}
    return ("/v1/datasets", {**spec, "name": name, "params": params})


@pytest.fixture(scope="module")
def ready(cluster: Cluster) -> Cluster:
    """The models, the colour sets (and the copies a mutation must equal), photo pairs."""
    train_y = ["r", "g", "b"] * 24
    test_y = ["r", "g", "b"] * 12
    other_y = ["x", "b"] * 8
    test_x, other_x = _images(test_y, 2), _images(other_y, 3)
    relabelled = ["r" if v == "g" else v for v in test_y]
    kept = [i for i, v in enumerate(test_y) if v != "r"]
    moved = [i for i, v in enumerate(other_y) if v == "x"]
    merged_x = np.concatenate([test_x[kept], other_x[moved]])
    merged_y = [test_y[i] for i in kept] + ["r"] * len(moved)
    bodies = [("/v1/models", zoo.model(m).to_json()) for m in MODELS] + [
        _npz(cluster, "col-train", _images(train_y, 1), train_y),
        _npz(cluster, "col-test", test_x, test_y),
        _npz(cluster, "col-other", other_x, other_y),
        _npz(cluster, "col-relabelled", test_x, relabelled),
        _npz(cluster, "col-merged", merged_x, merged_y),
        _photos("train", "ph-a", 16),
        _photos("train", "ph-b", 4, seed=1),
        _photos("test", "ph-t", 4),
        _photos("test", "ph-t2", 4, seed=1),
    ]
    cluster.register(bodies)
    return cluster


def scores(query: dict[str, Any]) -> dict[str, tuple[float, int]]:
    """Model -> (err, test_rows) of a finished query's first table."""
    assert query["status"] == "succeeded", query["error"]
    table = query["result"]["tables"][0]
    columns = table["columns"]
    at = columns.index("err"), columns.index("test_rows")
    return {row[0]: (row[at[0]], row[at[1]]) for row in table["rows"]}


def classify_ids(cluster: Cluster) -> set[str]:
    out, after = set(), 0
    while True:
        page = cluster.get(f"/v1/tasks?kind=classify&limit=1000&after={after}")
        out |= {t["id"] for t in page["tasks"]}
        if page["next"] is None:
            return out
        after = page["next"]


def _colour_query(test: str) -> str:
    two = json.dumps(["efficientnet-lite0", "efficientnet-lite0-random"])
    return (
        f'SELECT * FROM {two} ORDER BY err TRAINED ON "col-train" TESTED ON {test} '
        'CLASSIFIED BY ["Euclidean NN"]'
    )


def test_a_mutated_test_set_answers_like_the_same_rows_registered(ready: Cluster) -> None:
    plain = scores(ready.query(_colour_query('"col-test"'))[0])
    before = classify_ids(ready)
    relabel = scores(ready.query(_colour_query('("col-test" CHANGE ["r"] TO "col-test" ["g"])'))[0])
    # a mutated test set is new work: no cached plain score is reused
    assert len(classify_ids(ready) - before) == 2
    assert relabel == scores(ready.query(_colour_query('"col-relabelled"'))[0])
    assert relabel != plain and all(rows == 36 for _, rows in relabel.values())

    merge = '("col-test" CHANGE ["r"] TO "col-other" ["x"])'
    merged = scores(ready.query(_colour_query(merge))[0])
    assert merged == scores(ready.query(_colour_query('"col-merged"'))[0])
    assert all(rows == 24 + 8 for _, rows in merged.values())


def test_benchmark_with_chunk_picks_the_exhaustive_winner(ready: Cluster) -> None:
    bench = (
        f'SELECT * FROM {POOL} ORDER BY avg(err) ASC TRAINED ON ["ph-a", "ph-b"] '
        'TESTED ON BENCHMARK ["ph-t", "ph-t2"] CLASSIFIED BY ["Cosine NN"]'
    )
    exhaustive = ready.query(bench, session="bench")[0]
    assert exhaustive["status"] == "succeeded", exhaustive["error"]
    best = exhaustive["result"]["tables"][0]["rows"][0][0]
    assert best != "efficientnet-lite0-random"
    halving = bench + " CHUNK AUTO BUDGET AUTO"
    explained = ready.query(f"EXPLAIN JSON {halving}", session="bench")[0]
    body = json.loads(explained["result"]["message"])
    rounds = body["halving"][0]["schedule"]["rounds"]
    # one machine over both pairs: N = 256 (ph-a), CHUNK AUTO = 128; 2 classifies per arm
    assert [(r["arms"], r["train_rows"], r["classifies"]) for r in rounds] == [
        (3, 128, 6),
        (2, 256, 4),
    ]
    before = ready.task_count()
    first = ready.query(halving, session="bench")[0]
    assert first["status"] == "succeeded", first["error"]
    top = first["result"]["tables"][0]["rows"][0]
    assert top[0] == best
    assert scores(first)[best] == scores(exhaustive)[best]  # finalists: the exhaustive tasks
    # new work is round 0 on ph-a only: ph-b (64 rows) is whole from round 0, and the
    # finalists' evaluations are the exhaustive search's, known already
    assert ready.task_count() - before == 3
    after = ready.task_count()
    again = ready.query(halving, session="bench")[0]
    assert again["result"]["tables"] == first["result"]["tables"]
    assert ready.task_count() == after
