"""The catalog lifecycle on a real broker and two worker processes.

A real timm architecture (resnet10t, weights saved to a checkpoint under the data root) and
NumPy datasets: a failed registration is listed by ``status``/``error`` and summarised in one
line by a search that leaves it out; DROP and ``DELETE`` refuse while a search runs on the
workers, succeed once it is cancelled, and the same spec registers again from the cache.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import numpy as np
import pytest

from .conftest import Cluster

BIG_ROWS = 4000
"""Rows of the dataset the long-running search embeds (it is cancelled long before the end)."""


def _npz(cluster: Cluster, name: str, rows: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(rows, 8, 8), dtype=np.uint8)
    labels = np.arange(rows, dtype=np.int64) % 2
    np.savez(cluster.tmp / "data" / f"{name}.npz", x=images, y=labels)
    return {"name": name, "reader": "npz", "params": {"path": f"{name}.npz"}}


def _timm(name: str, checkpoint: str) -> dict[str, Any]:
    loader = {"arch": "resnet10t", "checkpoint": checkpoint}
    return {"name": name, "family": "timm", "modality": "vision", "loader": loader}


@pytest.fixture(scope="module")
def ready(cluster: Cluster) -> Cluster:
    import timm
    import torch

    folder = cluster.tmp / "data" / "ckpt"
    folder.mkdir(exist_ok=True)
    torch.save(timm.create_model("resnet10t").state_dict(), folder / "r.pth")
    (folder / "bad.pth").write_bytes(b"not a checkpoint")
    cluster.register(
        [
            ("/v1/models", _timm("r10", "ckpt/r.pth")),
            ("/v1/datasets", _npz(cluster, "small-train", 40, 1)),
            ("/v1/datasets", _npz(cluster, "small-test", 20, 2)),
            ("/v1/datasets", _npz(cluster, "big", BIG_ROWS, 3)),
        ]
    )
    status, entry = cluster.call("POST", "/v1/models?wait=true", _timm("broken/v1", "ckpt/bad.pth"))
    assert status == 201 and entry["status"] == "failed", entry
    return cluster


def _rows(query: dict[str, Any]) -> list[list[Any]]:
    assert query["status"] == "succeeded", query["error"]
    return query["result"]["tables"][0]["rows"]


def test_a_failed_model_is_one_line_and_a_catalog_query(ready: Cluster) -> None:
    (search,) = ready.query(
        'SELECT name FROM models TRAINED ON "small-train" TESTED ON "small-test"'
    )
    assert [r[0] for r in _rows(search)] == ["r10"]
    message = search["result"]["message"]
    listing = 'SELECT name, modality, status, error FROM models WHERE status = "failed"'
    assert f"left out 1 model(s): 1 failed to load; list them: {listing}" in message, message
    assert "corrupt" not in message and "\n" not in message
    (listed,) = ready.query(listing)
    ((name, modality, status, error),) = _rows(listed)
    assert (name, modality, status) == ("broken/v1", "vision", "failed")
    assert "bad.pth is corrupt" in error


def _running(cluster: Cluster, text: str) -> str:
    status, body = cluster.call("POST", "/v1/queries", {"text": text, "session": "long"})
    assert status == 202, body
    query_id = body["queries"][0]["id"]

    def started() -> bool:
        query = cluster.get(f"/v1/queries/{query_id}")
        assert query["status"] in ("queued", "running"), query
        return query["status"] == "running" and query["progress"]["total"] > 0

    cluster.wait_for(started, "the search to start its tasks")
    return str(query_id)


def test_drop_refuses_while_a_search_runs_on_the_workers(ready: Cluster) -> None:
    query_id = _running(ready, 'SELECT name FROM ["r10"] TRAINED ON "big" TESTED ON "small-test"')
    status, body = ready.call("DELETE", "/v1/models/r10")
    assert status == 409, body
    assert body["error"]["code"] == "in_use" and body["error"]["queries"] == [query_id]
    assert f"POST /v1/queries/{query_id}/cancel" in body["error"]["message"]
    (dropped,) = ready.query('DROP DATASET "big"', session="admin")
    assert dropped["status"] == "failed" and dropped["error"]["code"] == "in_use", dropped
    assert ready.get(f"/v1/queries/{query_id}")["status"] == "running"

    status, _ = ready.call("POST", f"/v1/queries/{query_id}/cancel")
    assert status == 200
    tasks_before = ready.task_count()
    status, body = ready.call("DELETE", "/v1/models/r10")
    assert status == 200 and body["name"] == "r10", body
    (gone,) = ready.query('SELECT name FROM models WHERE name = "r10"')
    assert _rows(gone) == []
    status, body = ready.call("DELETE", "/v1/models/r10")
    assert status == 404 and "unknown model 'r10'" in body["error"]["message"], body

    # the same spec registers again: its describe task is answered from the cache
    status, entry = ready.call("POST", "/v1/models?wait=true", _timm("r10", "ckpt/r.pth"))
    assert status == 201 and entry["status"] == "ready" and entry["feature_dim"] == 512, entry
    assert ready.task_count() == tasks_before
    (again,) = ready.query(
        'SELECT name FROM ["r10"] TRAINED ON "small-train" TESTED ON "small-test"'
    )
    assert [r[0] for r in _rows(again)] == ["r10"]


def test_a_failed_model_is_dropped_by_its_encoded_name_and_registered_again(
    ready: Cluster,
) -> None:
    encoded = urllib.parse.quote("broken/v1", safe="")
    status, body = ready.call("DELETE", f"/v1/models/{encoded}")
    assert status == 200 and body["status"] == "failed", body
    (again,) = ready.query('DROP MODEL IF EXISTS "broken/v1"')
    assert again["result"]["message"] == "no model 'broken/v1'; nothing dropped"
    status, entry = ready.call("POST", "/v1/models?wait=true", _timm("broken/v1", "ckpt/r.pth"))
    assert status == 201 and entry["status"] == "ready", entry
    (failed,) = ready.query("SELECT name FROM models WHERE status = 'failed'")
    assert _rows(failed) == []
