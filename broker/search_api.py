"""REST routes of the search: catalog (models, datasets), queries, Task2Vec and fine-tunes.

Mounted by :func:`broker.api.create_app` when it is given a :class:`Search`. Errors use the
API's one shape; a query that does not parse or validate answers 400 with the error's
``diagnostics`` (line, column, caret snippet, hint) inside the error object.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from broker.catalog import Catalog, CatalogConflict
from broker.queries import QueryService
from shift.catalog import dataset_spec_from_body, model_spec_from_body
from shift.errors import QueryError
from shift.ql import from_json, parse, parse_script, render
from shift.ql import nodes as n
from shift.ql.vocabulary import closest


@dataclass(frozen=True)
class Search:
    """The catalog and query service the routes use."""

    catalog: Catalog
    queries: QueryService


SEARCH_KEY = web.AppKey("search", Search)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_QUERY_PAGE = 500
"""Largest ``limit`` of ``GET /v1/queries``."""

SSE_KEEPALIVE_S = 15.0
"""Seconds between comment lines on an idle event stream."""


def _api_error(status: int, code: str, message: str) -> Exception:
    from broker.api import ApiError

    return ApiError(status, code, message)


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _api_error(400, "bad_request", f"request body is not JSON: {error}") from None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _search(request: web.Request) -> Search:
    if SEARCH_KEY not in request.app:
        raise _api_error(404, "not_found", "this broker was started without the search")
    return request.app[SEARCH_KEY]


def _wait_flag(request: web.Request) -> bool:
    return request.query.get("wait", "").lower() in ("1", "true", "yes")


# ---- catalog ---------------------------------------------------------------------------------


def _catalog_routes(kind: str, parse: Callable[[Any], Any]) -> tuple[Handler, Handler, Handler]:
    plural = kind + "s"

    async def list_entries(request: web.Request) -> web.Response:
        catalog = _search(request).catalog
        return _json({plural: [e.to_json() for e in catalog.entries(kind)]})

    async def get_entry(request: web.Request) -> web.Response:
        catalog = _search(request).catalog
        name = request.match_info["name"]
        if name not in {e.spec.name for e in catalog.entries(kind)}:
            raise _api_error(404, "not_found", str(catalog_error(catalog, kind, name)))
        return _json(catalog.get(kind, name).to_json())

    async def register(request: web.Request) -> web.Response:
        catalog = _search(request).catalog
        spec = parse(await _body(request))
        try:
            entry, created = await catalog.register(kind, spec)
        except CatalogConflict as error:
            raise _api_error(409, "conflict", str(error)) from None
        if _wait_flag(request):
            await entry.ready.wait()
        return _json(entry.to_json(), status=201 if created else 200)

    list_entries.__doc__ = f"``GET /v1/{plural}``: every registered {kind}."
    get_entry.__doc__ = f"``GET /v1/{plural}/{{name}}``: one {kind}."
    register.__doc__ = f"``POST /v1/{plural}``: register a {kind} (``?wait=true`` to measure)."
    return list_entries, get_entry, register


def catalog_error(catalog: Catalog, kind: str, name: str) -> Exception:
    """The unknown-name error for a catalog lookup."""
    from shift.catalog import unknown_name

    return unknown_name(kind, name, [e.spec.name for e in catalog.entries(kind)])


list_models, get_model, register_model = _catalog_routes("model", model_spec_from_body)
list_datasets, get_dataset, register_dataset = _catalog_routes("dataset", dataset_spec_from_body)


# ---- queries ---------------------------------------------------------------------------------

QUERY_FIELDS = ("text", "tree", "session")


def statements_of(body: Any) -> tuple[list[n.Statement], str]:
    """The statements and session of a ``POST /v1/queries`` body.

    Raises:
        QueryError: the text or tree is invalid (with diagnostics).
        ApiError: the body is malformed, or holds ``USE``.
    """
    if not isinstance(body, dict):
        raise _api_error(400, "bad_request", "the body must be an object {text|tree, session}")
    for key in body:
        if key not in QUERY_FIELDS:
            match = closest(key, QUERY_FIELDS)
            hint = f"; did you mean {match!r}?" if match else ""
            raise _api_error(400, "bad_request", f"unknown field {key!r}{hint}")
    session = body.get("session", "default")
    if not isinstance(session, str) or not session:
        raise _api_error(400, "bad_request", "'session' must be a non-empty string")
    if ("text" in body) == ("tree" in body):
        raise _api_error(400, "bad_request", "give exactly one of 'text' and 'tree'")
    if "text" in body:
        if not isinstance(body["text"], str):
            raise _api_error(400, "bad_request", "'text' must be a string")
        tree: n.Statement | n.Script = parse_script(body["text"])
    else:
        tree = from_json(body["tree"])
    statements = list(tree.statements) if isinstance(tree, n.Script) else [tree]
    if not statements:
        raise _api_error(400, "bad_request", "the query holds no statement")
    if any(isinstance(s, n.Use) for s in statements):
        raise _api_error(
            400,
            "bad_request",
            "USE is handled by the client (it picks the broker to talk to); "
            "send the other statements to the broker you chose",
        )
    return statements, session


async def create_queries(request: web.Request) -> web.Response:
    """``POST /v1/queries``: one query per statement, run in order in the session."""
    statements, session = statements_of(await _body(request))
    created = await _search(request).queries.create(statements, session)
    return _json({"queries": [q.to_json() for q in created]}, status=202)


async def list_queries(request: web.Request) -> web.Response:
    """``GET /v1/queries?session=&limit=``: recent queries, newest first."""
    from broker.api import _int_param

    limit = _int_param(request, "limit", 50, 1, MAX_QUERY_PAGE)
    found = await _search(request).queries.recent(request.query.get("session"), limit)
    return _json({"queries": [q.to_json() for q in found]})


async def _query(request: web.Request) -> Any:
    query_id = request.match_info["query_id"]
    query = await _search(request).queries.get(query_id)
    if query is None:
        raise _api_error(404, "not_found", f"no query {query_id!r}")
    return query


async def get_query(request: web.Request) -> web.Response:
    """``GET /v1/queries/{id}``."""
    return _json((await _query(request)).to_json())


async def cancel_query(request: web.Request) -> web.Response:
    """``POST /v1/queries/{id}/cancel``: 409 when it already finished."""
    query = await _query(request)
    if query.status.final:
        raise _api_error(409, "conflict", f"query {query.id} is already {query.status}")
    await _search(request).queries.cancel(query)
    return _json(query.to_json())


def _sse(event: str, body: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(body)}\n\n".encode()


async def query_events(request: web.Request) -> web.StreamResponse:
    """``GET /v1/queries/{id}/events``: Server-Sent Events ``progress`` ... then ``done``."""
    query = await _query(request)
    service = _search(request).queries
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    if query.status.final:
        await response.write(_sse("done", query.to_json()))
        return response
    queue = service.subscribe(query)
    try:
        await response.write(_sse("progress", {"done": query.done, "total": query.total}))
        while True:
            try:
                event, body = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(_sse(event, body))
            if event == "done":
                break
    finally:
        service.unsubscribe(query, queue)
    return response


# ---- Task2Vec and fine-tuning without SHiFT-QL ---------------------------------------------


def _fields(body: Any, allowed: dict[str, bool], what: str) -> dict[str, Any]:
    """A JSON object with only ``allowed`` fields (``True``: required)."""
    if not isinstance(body, dict):
        raise _api_error(400, "bad_request", f"the body must be an object {{{', '.join(allowed)}}}")
    for key in body:
        if key not in allowed:
            match = closest(key, list(allowed))
            hint = f"; did you mean {match!r}?" if match else ""
            raise _api_error(400, "bad_request", f"{what}: unknown field {key!r}{hint}")
    for key, required in allowed.items():
        if required and key not in body:
            raise _api_error(400, "bad_request", f"{what}: the body needs {key!r}")
    return body


def _names(body: dict[str, Any], key: str, what: str) -> n.NameList:
    value = body[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _api_error(400, "bad_request", f"{what}: {key!r} must be a non-empty list of names")
    return n.NameList(tuple(n.Value(v) for v in value))


def _session(body: dict[str, Any]) -> str:
    session = body.get("session", "default")
    if not isinstance(session, str) or not session:
        raise _api_error(400, "bad_request", "'session' must be a non-empty string")
    return session


async def _start(request: web.Request, statement: n.Statement, session: str) -> web.Response:
    """Check a statement as SHiFT-QL would (aliases, ranges) and queue it as a query."""
    checked = parse(render(statement))
    service = _search(request).queries
    (query,) = await service.create([checked], session)
    if _wait_flag(request):
        await service.wait(query)
    return _json(query.to_json(), status=202)


async def create_task2vec(request: web.Request) -> web.Response:
    """``POST /v1/task2vec``: the Task2Vec distances of datasets (a ``SELECT vec`` query)."""
    body = _fields(
        await _body(request), {"probe": True, "datasets": True, "session": False}, "task2vec"
    )
    if not isinstance(body["probe"], str) or not body["probe"]:
        raise _api_error(400, "bad_request", "task2vec: 'probe' must be a model name")
    statement = n.VecSelect(_names(body, "datasets", "task2vec"), body["probe"], wait=True)
    return await _start(request, statement, _session(body))


async def create_finetune(request: web.Request) -> web.Response:
    """``POST /v1/finetunes``: fine-tune models on datasets (a ``FINETUNE`` query)."""
    fields = {"models": True, "datasets": True, "options": False, "session": False}
    body = _fields(await _body(request), fields, "finetune")
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise _api_error(400, "bad_request", "finetune: 'options' must be an object")
    params = []
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _api_error(
                400, "bad_request", f"finetune: option {name!r} must be a number or a string"
            )
        params.append(n.Param(str(name), n.Value(value)))
    datasets = tuple(n.Dataset(str(v.value)) for v in _names(body, "datasets", "finetune").names)
    statement = n.Finetune(_names(body, "models", "finetune"), datasets, tuple(params), wait=True)
    return await _start(request, statement, _session(body))


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/v1/models", list_models),
    ("POST", "/v1/models", register_model),
    ("GET", "/v1/models/{name}", get_model),
    ("GET", "/v1/datasets", list_datasets),
    ("POST", "/v1/datasets", register_dataset),
    ("GET", "/v1/datasets/{name}", get_dataset),
    ("POST", "/v1/queries", create_queries),
    ("GET", "/v1/queries", list_queries),
    ("GET", "/v1/queries/{query_id}", get_query),
    ("GET", "/v1/queries/{query_id}/events", query_events),
    ("POST", "/v1/queries/{query_id}/cancel", cancel_query),
    ("POST", "/v1/task2vec", create_task2vec),
    ("POST", "/v1/finetunes", create_finetune),
)
"""The search routes (added to :data:`broker.api.ROUTES`)."""

__all__ = ["ROUTES", "SEARCH_KEY", "QueryError", "Search", "statements_of"]
