"""The REST contract in process: hostile bodies get a clear 4xx, answers match their models.

A real broker (ROUTER on loopback), its catalog and query service on a temp SQLite file,
and the REST app served by :class:`ApiRunner` on a free loopback port.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from broker import rest_models as m
from broker.api import ROUTES, ApiRunner, check_bind, create_app
from broker.openapi import openapi_document
from broker.rest_endpoint import declaration
from broker.server import open_search
from broker.service import Broker, BrokerConfig
from broker.store import Store
from shift.errors import SettingsError
from shift.netaddr import is_loopback


@pytest.fixture
async def served(tmp_path: Path):
    """Start a broker with the search and its REST app; ``served(token)`` gives the URL."""
    started: list = []

    async def start(token: str = "") -> str:
        store = Store(tmp_path / "shift.sqlite")
        await store.open()
        broker = Broker(BrokerConfig("tcp://127.0.0.1:0"), store)
        await broker.start()
        search = await open_search(broker, {"state_dir": str(tmp_path), "data_roots": ""})
        runner = ApiRunner(create_app(broker, token=token, search=search))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        started.append((runner, search, broker))
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner, search, broker in started:
        await runner.cleanup()
        await search.queries.close()
        await search.catalog.close()
        await broker.close()


def assert_error(body: dict, status: int) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) in (
        {"status", "code", "message"},
        {"status", "code", "message", "diagnostics"},
    )
    assert body["error"]["status"] == status and body["error"]["message"]
    m.ErrorResponse.model_validate(body)


BAD = [
    # method, path, body (bytes are sent raw), status, a phrase the message must hold
    ("POST", "/v1/tasks", b"[" * 100_000, 400, "deeper than 128 levels"),
    ("POST", "/v1/tasks", b'{"kind": "echo", "payload": {"x": %s}}' % (b"9" * 5000), 400, "64-bit"),
    ("POST", "/v1/tasks", b'{"kind": "echo", "payload": {"x": 1e300}}', 400, "outside"),
    ("POST", "/v1/tasks", b"", 400, "empty"),
    ("POST", "/v1/tasks", b"\xff\xfe{}", 400, "UTF-8"),
    ("POST", "/v1/tasks", b'{"kind": "echo", "payload": {"s": "\\ud800"}}', 400, "surrogate"),
    ("POST", "/v1/tasks", b"{}", 400, "needs the field 'kind'"),
    ("POST", "/v1/tasks", b'{"kind": ""}', 400, "kind must not be empty"),
    ("POST", "/v1/queries", {"text": "x" * 15_000_000}, 400, "at most 1000000"),
    ("POST", "/v1/queries", {}, 400, "give exactly one of 'text' and 'tree'"),
    ("POST", "/v1/queries", {"text": "PRINT *", "tree": {}}, 400, "exactly one of"),
    ("POST", "/v1/queries", {"txt": "PRINT *"}, 400, "did you mean 'text'"),
    ("POST", "/v1/queries", {"text": 5}, 400, "text must be a string, got 5"),
    ("POST", "/v1/queries", {"text": "PRINT *", "session": ""}, 400, "session must not be empty"),
    ("POST", "/v1/queries", {"text": "SELEC *"}, 400, "Expected one of"),
    ("POST", "/v1/task2vec", {}, 400, "needs the field 'probe'"),
    ("POST", "/v1/task2vec", {"probe": "m", "datasets": []}, 400, "at least 1 item"),
    ("POST", "/v1/finetunes", {}, 400, "needs the field 'models'"),
    ("POST", "/v1/finetunes", {"models": ["a"], "datasets": ["b"], "options": {"lr": 1}}, 400,
     "unknown field 'lr'"),
    ("POST", "/v1/finetunes", {"models": ["a"], "datasets": ["b"], "options": {"epochs": 0}}, 400,
     "epochs must be at least 1, got 0"),
    ("POST", "/v1/finetunes", {"models": ["a"] * 1001, "datasets": ["b"]}, 413, "at most 1000"),
    ("POST", "/v1/models", {}, 400, "needs the field 'name'"),
    ("POST", "/v1/models", {"name": "\n"}, 400, "non-blank name"),
    ("POST", "/v1/models?wait=maybe", {"name": "x"}, 400, "true or false"),
    ("POST", "/v1/datasets", {"name": "x", "reader": "csv", "pth": "a"}, 400,
     "did you mean 'path'"),
    ("GET", "/v1/queries?limit=-1", None, 400, "limit must be at least 1, got -1"),
    ("GET", "/v1/queries?limit=0", None, 400, "limit must be at least 1"),
    ("GET", "/v1/queries?limit=501", None, 400, "at most 500"),
    ("GET", "/v1/tasks?limit=-5", None, 400, "limit must be at least 1"),
    ("GET", "/v1/tasks?limit=2.5", None, 400, "integer"),
    ("GET", "/v1/tasks?state=sleeping", None, 400, "must be one of 'queued'"),
    ("GET", "/v1/queries/nope", None, 404, "no query 'nope'"),
    ("GET", "/v1/models/nope", None, 404, "nope"),
    ("GET", "/nowhere", None, 404, "openapi.json"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "phrase"), BAD)
async def test_bad_requests_get_a_clear_4xx(served, method, path, body, status, phrase) -> None:
    base = await served()
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with aiohttp.ClientSession() as s, s.request(method, base + path, **kwargs) as r:
        payload = await r.json()
        assert r.status == status, payload
    assert_error(payload, status)
    assert phrase in payload["error"]["message"], payload["error"]["message"]


async def test_aiohttp_refusals_have_the_error_shape(served) -> None:
    base = await served()
    async with aiohttp.ClientSession() as s:
        async with s.get(base + "/v1/health", headers={"X-Big": "a" * 9000}) as r:
            assert (r.status, r.content_type) == (400, "application/json")
            assert_error(await r.json(), 400)
        async with s.get(base + "/v1/" + "a" * 9000) as r:
            assert (r.status, r.content_type) == (400, "application/json")
            assert_error(await r.json(), 400)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/v1/tasks", {"GET", "POST"}), ("PUT", "/v1/health", {"GET"})],
)
async def test_405_lists_the_allowed_methods(served, method, path, allowed) -> None:
    base = await served()
    async with aiohttp.ClientSession() as s, s.request(method, base + path) as r:
        assert r.status == 405
        assert set(r.headers["Allow"].split(",")) == allowed
        assert_error(await r.json(), 405)


async def test_401_says_how_to_authenticate(served) -> None:
    base = await served(token="t0ken")
    async with aiohttp.ClientSession() as s, s.get(base + "/v1/health") as r:
        assert r.status == 401 and r.headers["WWW-Authenticate"] == "Bearer"
        body = await r.json()
    assert_error(body, 401)
    assert "Authorization: Bearer" in body["error"]["message"]


async def _final(s: aiohttp.ClientSession, base: str, query_id: str) -> dict:
    for _ in range(400):
        async with s.get(f"{base}/v1/queries/{query_id}") as r:
            query = await r.json()
        if query["status"] in ("succeeded", "failed", "cancelled"):
            return query
        await asyncio.sleep(0.05)
    pytest.fail(f"query {query_id} never finished")


async def test_answers_match_their_models(served) -> None:
    base = await served()
    async with aiohttp.ClientSession() as s:

        async def get(path: str, model: type) -> dict:
            async with s.get(base + path) as r:
                assert r.status == 200, await r.text()
                body = await r.json()
            model.model_validate(body)
            return body

        await get("/v1/health", m.Health)
        await get("/v1/workers", m.WorkerList)
        await get("/v1/openapi.json", m.OpenApiDocument)
        async with s.post(base + "/v1/tasks", json={"kind": "echo", "payload": {"n": 1}}) as r:
            one = m.SubmitAnswer.model_validate(await r.json()).root
        async with s.post(base + "/v1/tasks", json={"tasks": [{"kind": "echo"}]}) as r:
            assert isinstance(m.SubmitAnswer.model_validate(await r.json()).root, m.SubmittedBatch)
        page = await get("/v1/tasks?limit=1", m.TaskPage)
        assert page["next"] is not None
        await get(f"/v1/tasks/{one.id}", m.TaskInfo)
        async with s.post(f"{base}/v1/tasks/{one.id}/cancel") as r:
            m.TaskCancelled.model_validate(await r.json())
        await get("/v1/models", m.ModelList)
        await get("/v1/datasets", m.DatasetList)
        text = "DECLARE v AS SELECT name FROM models; PRINT v; SELECT * FROM readers"
        async with s.post(base + "/v1/queries", json={"text": text, "session": "c"}) as r:
            assert r.status == 202
            created = m.QueryList.model_validate(await r.json()).queries
        for query in created:
            m.QueryInfo.model_validate(await _final(s, base, query.id))
        async with s.post(base + "/v1/finetunes", json={"models": ["no"], "datasets": ["ne"]}) as r:
            assert r.status == 202
            failed = await _final(s, base, (await r.json())["id"])
        assert failed["status"] == "failed" and failed["error"]["code"]
        m.QueryInfo.model_validate(failed)
        await get("/v1/queries?session=c", m.QueryList)
        async with s.get(f"{base}/v1/queries/{created[-1].id}/events") as r:
            assert r.content_type == "text/event-stream"
            raw = await r.text()
    events = [block for block in raw.split("\n\n") if block.startswith("event:")]
    assert events
    for block in events:
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        event = m.QueryEvent.model_validate(fields).root
        assert isinstance(event, m.DoneEvent) and event.data.status == "succeeded"


async def test_progress_events_match_their_model(served) -> None:
    """A query waiting for a worker streams ``progress``; cancelling it ends with ``done``."""
    base = await served()
    text = (
        'REGISTER DATASET "rt" (reader, bundle, split) '
        "VALUES ('bundled', 'rotten_tomatoes', 'test')"
    )
    async with aiohttp.ClientSession() as s:
        async with s.post(base + "/v1/queries", json={"text": text}) as r:
            (query,) = (await r.json())["queries"]
        async with s.get(f"{base}/v1/queries/{query['id']}/events") as stream:
            first = (await stream.content.readuntil(b"\n\n")).decode()
            async with s.post(f"{base}/v1/queries/{query['id']}/cancel") as r:
                assert r.status == 200, await r.text()
            rest = (await stream.read()).decode()
    blocks = [b for b in (first + rest).split("\n\n") if b.startswith("event:")]
    events = [
        m.QueryEvent.model_validate(dict(x.split(": ", 1) for x in b.splitlines())).root
        for b in blocks
    ]
    assert isinstance(events[0], m.ProgressEvent)
    assert isinstance(events[-1], m.DoneEvent) and events[-1].data.status == "cancelled"


async def test_openapi_declares_the_token_only_when_one_is_set(served) -> None:
    plain, secured = openapi_document(), openapi_document(secured=True)
    assert "security" not in plain and "securitySchemes" not in plain["components"]
    assert secured["security"] == [{"bearer": []}]
    for document, has_401 in ((plain, False), (secured, True)):
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                assert ("401" in operation["responses"]) is has_401, (method, path)
                assert "400" in operation["responses"]
                headers = [p for p in operation.get("parameters", []) if p["in"] == "header"]
                assert headers == [], (method, path)
    base = await served(token="t0ken")
    good = {"Authorization": "Bearer t0ken"}
    async with aiohttp.ClientSession() as s, s.get(base + "/v1/openapi.json", headers=good) as r:
        assert await r.json() == secured


def _refs(value: object) -> set[str]:
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(_refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_refs(v) for v in value))
    return set()


def test_openapi_schemas_are_the_validating_models() -> None:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    assert {r.rsplit("/", 1)[1] for r in _refs(document)} <= set(schemas)
    for method, path, handler in ROUTES:
        spec = declaration(handler)
        operation = document["paths"][path][method.lower()]
        if spec.body is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/" + spec.body.__name__)
            assert set(schemas[spec.body.__name__]) >= {"description"}
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert names == set(spec.query.model_fields if spec.query else ()), (method, path)
    # the limit the code enforces is the one the document states
    params = {p["name"]: p for p in document["paths"]["/v1/queries"]["get"]["parameters"]}
    assert params["limit"]["schema"]["minimum"] == 1
    assert params["limit"]["schema"]["maximum"] == m.MAX_QUERY_PAGE


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
        ("localhost", True), ("0.0.0.0", False), ("::", False), ("*", False), ("", False),
        ("10.0.0.5", False), ("example.org", False), ("fe80::1%eth0", False),
    ],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_rest_bind_beyond_loopback_needs_a_token() -> None:
    assert check_bind("127.0.0.1", "") is None
    with pytest.raises(SettingsError, match="without a token"):
        check_bind("0.0.0.0", "")
    warning = check_bind("0.0.0.0", "t0ken")
    assert warning is not None and "non-loopback" in warning


def test_broker_command_refuses_a_public_bind_without_token(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "broker", "--state-dir", str(tmp_path), "--http-host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "refusing to serve REST on '0.0.0.0' without a token" in done.stderr
    assert not (tmp_path / "shift.sqlite").exists()


def test_request_models_round_trip_through_json() -> None:
    body = {"models": ["a"], "datasets": ["b"], "options": {"epochs": 3.0, "test": "t"}}
    parsed = m.FinetuneRequest.model_validate(json.loads(json.dumps(body)), strict=True)
    assert parsed.options.epochs == 3 and isinstance(parsed.options.epochs, int)
    assert parsed.options.model_dump(exclude_none=True) == {"epochs": 3, "test": "t"}
