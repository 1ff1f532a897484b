"""The REST API in process: every error route has the one shape; the token guards all."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from broker.api import ROUTES, ApiRunner, create_app
from broker.openapi import openapi_document
from broker.service import Broker, BrokerConfig
from broker.store import Store


@pytest.fixture
async def served(tmp_path):
    """A broker (ROUTER on a free loopback port) and its REST app on a free port."""

    async def start(token: str = ""):
        store = Store(tmp_path / "shift.sqlite")
        await store.open()
        broker = Broker(BrokerConfig("tcp://127.0.0.1:0"), store)
        await broker.start()
        runner = ApiRunner(create_app(broker, token=token))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        started.append((runner, broker))
        return f"http://{host}:{port}", broker

    started = []
    yield start
    for runner, broker in started:
        await runner.cleanup()
        await broker.close()


def assert_error_shape(body, status, code):
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def _finished_task_id(base, broker):
    async with aiohttp.ClientSession() as s:
        r = await s.post(base + "/v1/tasks", json={"kind": "echo", "payload": {"n": 1}})
        task_id = (await r.json())["id"]
    await broker.cancel(task_id)
    return task_id


ERRORS = [
    # method, path, json body or raw bytes, status, code
    ("GET", "/nowhere", None, 404, "not_found"),
    ("GET", "/v1/tasks/unknown", None, 404, "not_found"),
    ("POST", "/v1/tasks/unknown/cancel", None, 404, "not_found"),
    ("POST", "/v1/tasks/{finished}/cancel", None, 409, "conflict"),
    ("DELETE", "/v1/health", None, 405, "method_not_allowed"),
    ("PUT", "/v1/tasks", None, 405, "method_not_allowed"),
    ("POST", "/v1/tasks", b"{not json", 400, "bad_request"),
    ("POST", "/v1/tasks", {"tasks": []}, 400, "bad_request"),
    ("POST", "/v1/tasks", {"tasks": "echo"}, 400, "bad_request"),
    ("POST", "/v1/tasks", {"payload": {}}, 400, "scheduler_error"),
    ("POST", "/v1/tasks", {"kind": "echo", "payload": [1]}, 400, "scheduler_error"),
    ("POST", "/v1/tasks", {"kind": "echo", "payload": {"x": 1e400}}, 400, "scheduler_error"),
    ("POST", "/v1/tasks", {"kind": "echo", "colour": 1}, 400, "scheduler_error"),
    ("POST", "/v1/tasks", [1, 2], 400, "scheduler_error"),
    ("POST", "/v1/tasks", {"tasks": [{"kind": "e"}] * 10001}, 413, "payload_too_large"),
    ("POST", "/v1/tasks", b"x" * (17 * 1024 * 1024), 413, "payload_too_large"),
    ("GET", "/v1/tasks?state=sleeping", None, 400, "bad_request"),
    ("GET", "/v1/tasks?limit=abc", None, 400, "bad_request"),
    ("GET", "/v1/tasks?limit=0", None, 400, "bad_request"),
    ("GET", "/v1/tasks?after=-1", None, 400, "bad_request"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), ERRORS)
async def test_every_error_has_the_one_shape(served, method, path, body, status, code):
    base, broker = await served()
    if "{finished}" in path:
        path = path.format(finished=await _finished_task_id(base, broker))
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with aiohttp.ClientSession() as s, s.request(method, base + path, **kwargs) as r:
        assert r.status == status, await r.text()
        assert r.content_type == "application/json"
        assert_error_shape(await r.json(), status, code)


async def test_a_raw_task_cannot_name_a_path_on_a_worker(served, tmp_path):
    """A client chooses no folder a worker reads or writes: a payload of a known kind must
    parse (an unknown field such as the ``store`` of earlier versions is refused)."""
    from shift import zoo

    base, broker = await served()
    embed = {
        "model": zoo.model("efficientnet-lite0").to_json(),
        "dataset": zoo.dataset("photos-test").to_json(),
        "block": 0,
    }
    finetune = {
        "model": zoo.model("efficientnet-lite0").to_json(),
        "train": [{"dataset": zoo.dataset("photos-train").to_json(), "rows": None}],
    }
    async with aiohttp.ClientSession() as s:
        for kind, payload in (("embed", embed), ("finetune", finetune)):
            body = {"kind": kind, "payload": {**payload, "store": str(tmp_path / "planted")}}
            r = await s.post(base + "/v1/tasks", json=body)
            assert r.status == 400, await r.text()
            answer = await r.json()
            assert answer["error"]["code"] == "payload_error"
            assert "unknown field(s) 'store'" in answer["error"]["message"]
        r = await s.post(base + "/v1/tasks", json={"kind": "embed", "payload": {"block": 0}})
        assert (
            r.status == 400 and "lacks 'model', 'dataset'" in (await r.json())["error"]["message"]
        )
    assert broker.dispatcher.state_of("x") is None


async def test_nan_payload_from_json_is_refused(served):
    base, _ = await served()
    async with aiohttp.ClientSession() as s:
        r = await s.post(
            base + "/v1/tasks",
            data=b'{"kind": "echo", "payload": {"x": NaN}}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status == 400
        assert_error_shape(await r.json(), 400, "scheduler_error")


async def test_token_is_required_on_every_route(served):
    base, _ = await served(token="s3cret")
    async with aiohttp.ClientSession() as s:
        for method, path, _ in ROUTES:
            path = path.replace("{task_id}", "x")
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                async with s.request(method, base + path, headers=headers) as r:
                    assert r.status == 401, (method, path, headers)
                    assert_error_shape(await r.json(), 401, "unauthorized")
        good = {"Authorization": "Bearer s3cret"}
        async with s.get(base + "/v1/health", headers=good) as r:
            assert r.status == 200 and (await r.json())["status"] == "ok"
        async with s.get(base + "/metrics", headers=good) as r:
            assert r.status == 200
        async with s.get(base + "/nowhere", headers=good) as r:
            assert r.status == 404


async def test_openapi_documents_every_route_and_metrics_render(served):
    base, _ = await served()
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/v1/openapi.json") as r:
            document = await r.json()
        async with s.get(base + "/metrics") as r:
            text = await r.text()
            assert r.content_type == "text/plain"
    assert document == openapi_document()
    for method, path, _ in ROUTES:
        assert method.lower() in document["paths"][path], (method, path)
    for name in (
        'shift_tasks{state="queued"} 0',
        "shift_queue_depth 0",
        "shift_bad_frames_total 0",
        'shift_dispatch_latency_seconds_bucket{le="+Inf"} 0',
    ):
        assert name in text


async def test_submit_is_idempotent_and_durable(served, tmp_path):
    base, _ = await served()
    spec = {"kind": "echo", "payload": {"b": 2, "a": 1}}
    async with aiohttp.ClientSession() as s:
        r1 = await s.post(base + "/v1/tasks", json=spec)
        r2 = await s.post(base + "/v1/tasks", json={"payload": {"a": 1, "b": 2}, "kind": "echo"})
        one, two = await r1.json(), await r2.json()
        assert (r1.status, r2.status) == (201, 200)
        assert one["id"] == two["id"] and not two["created"]
        got = await (await s.get(base + f"/v1/tasks/{one['id']}")).json()
        assert got["state"] == "queued" and got["payload"] == {"a": 1, "b": 2}
        listed = await (await s.get(base + "/v1/tasks", params={"state": "queued"})).json()
        assert [t["id"] for t in listed["tasks"]] == [one["id"]] and listed["next"] is None
