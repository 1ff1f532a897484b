"""RANK strategies end to end: a real broker, two worker processes, two zoo models, photos.

The photo task is cut to 4 training and 2 test crops per photo (100 and 50 rows) and the
pool to EfficientNet-Lite0 and its random-init control, so the module runs in about a
minute on two cores.
"""

from __future__ import annotations

import json

import pytest

from shift import zoo

from .conftest import Cluster

POOL = '["efficientnet-lite0", "efficientnet-lite0-random"]'
TRAIN = "strategy-photos-train"
TEST = "strategy-photos-test"
CROPS = {"train": 4, "test": 2}


def _small(name: str, new: str, **params: object) -> dict:
    spec = zoo.dataset(name).to_json()
    return {**spec, "name": new, "params": {**spec["params"], **params}}


@pytest.fixture(scope="module")
def photos(cluster: Cluster) -> Cluster:
    """Two models and a small photo task registered (and measured)."""
    cluster.register(
        [
            ("/v1/models", zoo.model("efficientnet-lite0").to_json()),
            ("/v1/models", zoo.model("efficientnet-lite0-random").to_json()),
            ("/v1/datasets", _small("photos-train", TRAIN, crops_per_photo=CROPS)),
            ("/v1/datasets", _small("photos-test", TEST, crops_per_photo=CROPS)),
        ]
    )
    return cluster


def _one(cluster: Cluster, text: str) -> dict:
    (query,) = cluster.query(text)
    assert query["status"] == "succeeded", query["error"]
    return query["result"]


def test_strategies_reuse_every_task(photos: Cluster) -> None:
    rank = f'RANK * FROM {POOL} TRAINED ON "{TRAIN}" BY '
    _one(photos, rank + '"logme"')
    before = photos.task_count()
    result = _one(photos, rank + '"rank:logme+knn"')
    # only the knn rank task of each model is new: logme's tasks and the blocks are known
    assert photos.task_count() - before == 2
    (table,) = result["tables"]
    assert table["title"].startswith("rank:logme+knn (rank average")
    columns = table["columns"]
    assert columns[:7] == [
        "name", "score", "tied_with_first", "logme", "logme_rank", "knn", "knn_rank"
    ]  # fmt: skip
    rows = [dict(zip(columns, row, strict=True)) for row in table["rows"]]
    print("\nrank:logme+knn:", json.dumps(rows[:2], default=str)[:400])
    assert rows[0]["tied_with_first"] is True
    assert rows[0]["name"] == "efficientnet-lite0", rows
    # a rerun, and the named strategy logme_knn (the same components), create no task
    count = photos.task_count()
    again = _one(photos, rank + '"rank:logme+knn"')
    assert again["tables"] == result["tables"] and photos.task_count() == count
    default = _one(photos, f'RANK * FROM {POOL} TRAINED ON "{TRAIN}" BY "logme_knn"')
    assert default["tables"][0]["title"].startswith("logme_knn = rank:logme+knn")
    assert default["tables"][0]["rows"] == table["rows"] and photos.task_count() == count


def test_a_proxy_component_after_a_search_creates_only_the_rank_tasks(photos: Cluster) -> None:
    select = (
        f'SELECT * FROM {POOL} ORDER BY err ASC TRAINED ON "{TRAIN}" TESTED ON "{TEST}" '
        'CLASSIFIED BY ["Cosine NN"]'
    )
    _one(photos, select)
    before = photos.task_count()
    text = f'RANK * FROM {POOL} TRAINED ON "{TRAIN}" TESTED ON "{TEST}" BY "z:sfda+Cosine NN"'
    explained = json.loads(_one(photos, "EXPLAIN JSON " + text)["message"])
    assert [c["method"] for c in explained["outputs"][0]["components"]] == ["sfda", "cosine_nn"]
    assert explained["to_run"] == 2  # one sfda task per model; the search's tasks are known
    result = _one(photos, text)
    assert photos.task_count() - before == 2
    (table,) = result["tables"]
    assert {"sfda", "cosine_nn", "cosine_nn_rank"} <= set(table["columns"])


def test_a_proxy_without_a_test_set_is_refused_before_any_task(photos: Cluster) -> None:
    before = photos.task_count()
    text = f'RANK * FROM {POOL} TRAINED ON "{TRAIN}" BY "rank:logme+Cosine NN"'
    status, body = photos.call("POST", "/v1/queries", {"text": text})
    assert status == 400 and "add TESTED ON" in json.dumps(body), body
    assert photos.task_count() == before
