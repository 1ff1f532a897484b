"""DROP and DELETE on a real broker in process, with no worker: rows stay in use for as long
as a query waits on them.

A real broker (ROUTER on loopback), its catalog and query service on a temp SQLite file, and
the REST app on a free loopback port. The catalog is seeded through the store's own catalog
writes with measured (ready) and failed rows, so no worker is needed to measure them; a
task-aware query then stays running (its embed tasks wait for a worker that never comes),
which is exactly the window in which DROP must refuse.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from broker import rest_models as m
from broker.api import ApiRunner, create_app
from broker.catalog import KINDS
from broker.openapi import openapi_document
from broker.server import open_search
from broker.service import Broker, BrokerConfig
from broker.store import Store
from broker.tables import Tables
from shift.specs import DatasetSpec, Modality, ModelSpec

MODELS = {
    "alpha": ("ready", None, Modality.VISION),
    "beta": ("ready", None, Modality.VISION),
    "odd/name with space;'\"": ("ready", None, Modality.VISION),
    "reader-bert": ("ready", None, Modality.TEXT),
    "broken": ("failed", "checkpoint bad.pth is corrupt", Modality.VISION),
}
DATASETS = {"train": ("ready", None), "test": ("ready", None), "spare": ("ready", None)}


def _model(name: str, modality: Modality) -> ModelSpec:
    return ModelSpec(name, "timm", modality, {"arch": "resnet10t"})


def _dataset(name: str) -> DatasetSpec:
    return DatasetSpec(name, "npz", {"path": f"{name}.npz"}, Modality.VISION)


async def _seed(store: Store) -> None:
    """Write catalog rows the way the catalog persists them (measured or failed)."""
    tables = Tables(store)
    entries: list[tuple[str, Any, str, str | None, dict[str, Any] | None]] = []
    for name, (status, error, modality) in MODELS.items():
        measured = {"num_params": 1000, "feature_dim": 8} if status == "ready" else None
        entries.append(("model", _model(name, modality), status, error, measured))
    for name, (status, error) in DATASETS.items():
        measured = {"size": 64, "num_classes": 2}
        entries.append(("dataset", _dataset(name), status, error, measured))
    for seq, (kind, spec, status, error, measured) in enumerate(entries, 1):
        row = KINDS[kind].row(spec, measured, "2026-12-01")
        extra = [
            spec.key,
            json.dumps(spec.to_json(), sort_keys=True),
            status,
            None if measured is None else json.dumps(measured, sort_keys=True),
            error,
            None,
            seq,
        ]
        await tables.save_catalog_entry(kind, row, extra)
    await store.barrier()


class Api:
    """HTTP calls to the served app."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, json=body) as r:
            return r.status, await r.json()

    async def query(self, text: str, session: str = "s") -> list[dict[str, Any]]:
        status, body = await self.call("POST", "/v1/queries", {"text": text, "session": session})
        assert status == 202, body
        return body["queries"]

    async def final(self, text: str, session: str = "s") -> dict[str, Any]:
        (query,) = await self.query(text, session)
        for _ in range(500):
            _, got = await self.call("GET", f"/v1/queries/{query['id']}")
            if got["status"] in ("succeeded", "failed", "cancelled"):
                return got
            await asyncio.sleep(0.02)
        raise AssertionError(f"query {query['id']} did not finish")

    async def running(self, text: str, session: str) -> dict[str, Any]:
        (query,) = await self.query(text, session)
        for _ in range(500):
            _, got = await self.call("GET", f"/v1/queries/{query['id']}")
            if got["status"] == "running" and got["progress"]["total"] > 0:
                return got
            assert got["status"] in ("queued", "running"), got
            await asyncio.sleep(0.02)
        raise AssertionError(f"query {query['id']} never started its tasks")


@pytest.fixture
async def api(tmp_path: Path):
    store = Store(tmp_path / "shift.sqlite")
    await store.open()
    await _seed(store)
    broker = Broker(BrokerConfig("tcp://127.0.0.1:0"), store)
    await broker.start()
    search = await open_search(broker, {"state_dir": str(tmp_path), "data_roots": str(tmp_path)})
    runner = ApiRunner(create_app(broker, search=search))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://{host}:{port}")
    await runner.cleanup()
    await search.queries.close()
    await search.catalog.close()
    await broker.close()


def _rows(query: dict[str, Any]) -> list[list[Any]]:
    assert query["status"] == "succeeded", query["error"]
    return query["result"]["tables"][0]["rows"]


SEARCH = 'SELECT name FROM image_models WHERE name = "alpha" TRAINED ON train TESTED ON test'


# ---- status and error as catalog columns ----------------------------------------------------


async def test_status_and_error_are_catalog_columns(api: Api) -> None:
    failed = await api.final("SELECT name, status, error FROM models WHERE status = 'failed'")
    assert _rows(failed) == [["broken", "failed", "checkpoint bad.pth is corrupt"]]
    ready = await api.final("SELECT Name FROM Models WHERE Status == 'Ready' AND Error IS NULL")
    assert [r[0] for r in _rows(ready)] == [
        "alpha",
        "beta",
        "odd/name with space;'\"",
        "reader-bert",
    ]
    star = await api.final("SELECT * FROM readers WHERE name = 'spare'")
    columns = star["result"]["tables"][0]["columns"]
    assert columns[-2:] == ["status", "error"] and _rows(star)[0][-2:] == ["ready", None]
    status, typo = await api.call(
        "POST", "/v1/queries", {"text": "SELECT name FROM models WHERE status = 'faild'"}
    )
    assert status == 400 and typo["error"]["diagnostics"][0]["hint"] == "did you mean 'failed'?"


# ---- DROP refuses while a running query reads the row ----------------------------------------


async def test_drop_and_delete_refuse_while_a_running_query_reads_the_row(api: Api) -> None:
    running = await api.running(SEARCH, session="search")
    qid = running["id"]
    status, body = await api.call("DELETE", "/v1/models/alpha")
    assert status == 409, body
    m.ErrorResponse.model_validate(body)
    error = body["error"]
    assert (error["status"], error["code"], error["queries"]) == (409, "in_use", [qid])
    assert f"in use by running query {qid}" in error["message"]
    assert f"POST /v1/queries/{qid}/cancel" in error["message"] and "wait" in error["message"]
    for text in ("DROP MODEL alpha", "DROP DATASET train", "DROP DATASET test"):
        dropped = await api.final(text, session="admin")
        assert dropped["status"] == "failed", dropped
        assert dropped["error"]["code"] == "in_use" and dropped["error"]["queries"] == [qid]
    status, body = await api.call("DELETE", "/v1/datasets/test")
    assert status == 409 and body["error"]["queries"] == [qid], body
    # rows the running query does not read can go: another model, a text model, a dataset
    for text in ("DROP MODEL beta", 'DROP MODEL "reader-bert"', "DROP DATASET spare"):
        assert (await api.final(text, session="admin"))["status"] == "succeeded", text
    # once the query is cancelled the row is free
    status, _ = await api.call("POST", f"/v1/queries/{qid}/cancel")
    assert status == 200
    status, body = await api.call("DELETE", "/v1/models/alpha")
    assert status == 200 and body["name"] == "alpha" and body["status"] == "ready", body
    m.CatalogEntry.model_validate(body)
    status, body = await api.call("GET", "/v1/models/alpha")
    assert status == 404, body


async def test_a_queued_query_does_not_hold_a_row(api: Api) -> None:
    """Queries in one session run in order; one queued behind a running one reads the
    catalog only when it starts, so it does not stop a DROP."""
    running = await api.running(SEARCH, session="search")
    (queued,) = await api.query(
        'SELECT name FROM ["beta"] TRAINED ON train TESTED ON test', "search"
    )
    assert (await api.final("DROP MODEL beta", session="admin"))["status"] == "succeeded"
    await api.call("POST", f"/v1/queries/{running['id']}/cancel")
    for _ in range(500):
        _, got = await api.call("GET", f"/v1/queries/{queued['id']}")
        if got["status"] == "failed":
            break
        await asyncio.sleep(0.02)
    assert "unknown model 'beta'" in got["error"]["message"], got


async def test_a_row_being_measured_cannot_be_dropped(api: Api, tmp_path: Path) -> None:
    np.savez(tmp_path / "fresh.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 1]))
    spec = {"name": "fresh", "reader": "npz", "params": {"path": "fresh.npz"}}
    status, body = await api.call("POST", "/v1/datasets", spec)
    assert status == 201 and body["status"] == "pending", body
    status, body = await api.call("DELETE", "/v1/datasets/fresh")
    assert status == 409 and body["error"]["code"] == "in_use", body
    assert "still being measured" in body["error"]["message"]
    assert body["error"]["queries"] == []


# ---- unknown, odd and repeated names ---------------------------------------------------------


async def test_unknown_names_get_the_closest_one(api: Api) -> None:
    status, body = await api.call("DELETE", "/v1/models/alpah")
    assert status == 404 and "did you mean 'alpha'?" in body["error"]["message"], body
    m.ErrorResponse.model_validate(body)
    dropped = await api.final("DROP DATASET trian")
    assert dropped["status"] == "failed" and "did you mean 'train'?" in dropped["error"]["message"]
    quiet = await api.final("DROP DATASET IF EXISTS trian")
    assert quiet["result"]["message"] == "no dataset 'trian'; nothing dropped"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/%00",
        "/v1/models/" + "x" * 5000,
        "/v1/models/..%2F..%2Fetc%2Fpasswd",
        "/v1/datasets/%27%3B%20DROP%20TABLE%20datasets%3B--",
    ],
)
async def test_hostile_names_answer_404_in_the_error_shape(api: Api, path: str) -> None:
    status, body = await api.call("DELETE", path)
    assert status == 404, body
    m.ErrorResponse.model_validate(body)
    # the catalog is intact
    _, listed = await api.call("GET", "/v1/datasets")
    assert {d["name"] for d in listed["datasets"]} == set(DATASETS)


async def test_odd_names_drop_by_url_encoding_and_by_quoted_statement(api: Api) -> None:
    odd = "odd/name with space;'\""
    encoded = "odd%2Fname%20with%20space%3B%27%22"
    status, body = await api.call("GET", f"/v1/models/{encoded}")
    assert status == 200 and body["name"] == odd, body
    status, body = await api.call("DELETE", f"/v1/models/{encoded}")
    assert status == 200 and body["name"] == odd, body
    status, body = await api.call("DELETE", f"/v1/models/{encoded}")
    assert status == 404 and "unknown model" in body["error"]["message"], body
    # the same name written in SHiFT-QL (doubled quote) is gone too; IF EXISTS says so
    again = await api.final('DROP MODEL IF EXISTS "odd/name with space;\'"""')
    assert again["result"]["message"] == f"no model {odd!r}; nothing dropped"


async def test_double_drop_and_drop_of_a_failed_row(api: Api) -> None:
    first = await api.final('DROP MODEL "broken"')
    assert first["status"] == "succeeded", first
    assert first["result"]["message"].startswith("dropped model 'broken'; results of past")
    table = first["result"]["tables"][0]
    assert table["title"] == "dropped" and table["rows"][0][-2:] == [
        "failed",
        "checkpoint bad.pth is corrupt",
    ]
    second = await api.final('DROP MODEL "broken"')
    assert second["status"] == "failed" and "unknown model 'broken'" in second["error"]["message"]
    # the past query that listed it is still readable
    status, listed = await api.call("GET", "/v1/queries?limit=5")
    assert status == 200 and listed["queries"][0]["id"] == second["id"]
    assert listed["queries"][1]["result"]["tables"][0]["rows"][0][0] == "broken"


async def test_the_catalog_file_forgets_a_dropped_row(api: Api, tmp_path: Path) -> None:
    assert (await api.final("DROP DATASET spare"))["status"] == "succeeded"
    store = Store(tmp_path / "shift.sqlite")
    await store.open()
    try:
        names = [row[0] for row in await store.fetch("SELECT name FROM datasets ORDER BY seq")]
    finally:
        await store.close()
    assert names == ["train", "test"]


def test_the_openapi_document_has_the_drop_routes_with_unique_operation_ids() -> None:
    paths = openapi_document()["paths"]
    for plural in ("models", "datasets"):
        drop = paths[f"/v1/{plural}/{{name}}"]["delete"]
        assert {"200", "404", "409"} <= set(drop["responses"])
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids)), sorted(ids)
    assert {"drop_model", "drop_dataset", "list_models", "get_dataset"} <= set(ids)
