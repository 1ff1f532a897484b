"""REST routes of the search: catalog (models, datasets), queries, Task2Vec and fine-tunes.

Mounted by :func:`broker.api.create_app` when it is given a :class:`Search` (without one
these routes answer 404). Inputs are validated against ``broker.rest_models`` before a
handler runs; a query that does not parse or validate answers 400 with the error's
``diagnostics`` (line, column, caret snippet, hint) inside the error object.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from broker import rest_models as m
from broker.catalog import Catalog, CatalogConflict, CatalogInUse
from broker.queries import QueryService
from broker.rest_endpoint import Call, Endpoint, endpoint
from broker.rest_errors import ApiError, Handler, error_body
from shift.errors import QueryError
from shift.ql import from_json, parse, parse_script, render
from shift.ql import nodes as n
from shift.registration import dataset_spec_from_body, model_spec_from_body, unknown_name


@dataclass(frozen=True)
class Search:
    """The catalog and query service the routes use."""

    catalog: Catalog
    queries: QueryService


SEARCH_KEY = web.AppKey("search", Search)

SSE_KEEPALIVE_S = 15.0
"""Seconds between comment lines on an idle event stream."""


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def _search(request: web.Request) -> Search:
    if SEARCH_KEY not in request.app:
        raise ApiError(404, "not_found", "this broker was started without the search")
    return request.app[SEARCH_KEY]


# ---- catalog ---------------------------------------------------------------------------------


def _catalog_routes(
    kind: str, parse_spec: Callable[[Any], Any], body: type[m.Body], listing: type[m.Answer]
) -> tuple[Handler, Handler, Handler, Handler]:
    plural = kind + "s"

    @endpoint(Endpoint(f"Every registered {kind}", {200: (listing, f"Every {kind}")}))
    async def list_entries(request: web.Request, call: Call) -> web.Response:
        catalog = _search(request).catalog
        return _json({plural: [e.to_json() for e in catalog.entries(kind)]})

    @endpoint(Endpoint(f"One {kind}", {200: (m.CatalogEntry, f"The {kind}")}, errors=(404,)))
    async def get_entry(request: web.Request, call: Call) -> web.Response:
        catalog = _search(request).catalog
        name = request.match_info["name"]
        if name not in {e.spec.name for e in catalog.entries(kind)}:
            raise ApiError(404, "not_found", str(catalog_error(catalog, kind, name)))
        return _json(catalog.get(kind, name).to_json())

    @endpoint(
        Endpoint(
            f"Register a {kind}: spec JSON or name plus REGISTER columns",
            {
                200: (m.CatalogEntry, "Already registered with this spec"),
                201: (m.CatalogEntry, "Registered; measuring (`?wait=true`: measured)"),
            },
            errors=(409,),
            body=body,
            query=m.WaitParams,
        )
    )
    async def register(request: web.Request, call: Call) -> web.Response:
        catalog = _search(request).catalog
        spec = parse_spec(call.body.model_dump())
        try:
            entry, created = await catalog.register(kind, spec)
        except CatalogConflict as error:
            raise ApiError(409, "conflict", str(error)) from None
        if call.query.wait:
            await entry.ready.wait()
        return _json(entry.to_json(), status=201 if created else 200)

    @endpoint(
        Endpoint(
            f"Drop a {kind} (DROP {kind.upper()}): its cached work is kept",
            {200: (m.CatalogEntry, f"The dropped {kind}")},
            errors=(404, 409),
            description=(
                f"404: no such {kind} (the message names the closest one). 409 `in_use`: a "
                "running query reads it (`queries` lists their ids; cancel them or wait) or "
                "it is still being measured. Results of past queries, cached tasks and "
                "feature blocks stay; registering the same spec again reuses them."
            ),
        )
    )
    async def drop_entry(request: web.Request, call: Call) -> web.Response:
        catalog = _search(request).catalog
        name = request.match_info["name"]
        if name not in {e.spec.name for e in catalog.entries(kind)}:
            raise ApiError(404, "not_found", str(catalog_error(catalog, kind, name)))
        try:
            entry = await catalog.drop(kind, name)
        except CatalogInUse as error:
            body = error_body(409, error.code, str(error))
            body["error"]["queries"] = list(error.queries)
            return _json(body, status=409)
        if entry is None:  # pragma: no cover - checked above, drop without if_exists raises
            raise ApiError(404, "not_found", str(catalog_error(catalog, kind, name)))
        return _json(entry.to_json())

    list_entries.__doc__ = f"``GET /v1/{plural}``: every registered {kind}."
    get_entry.__doc__ = f"``GET /v1/{plural}/{{name}}``: one {kind}."
    register.__doc__ = f"``POST /v1/{plural}``: register a {kind} (``?wait=true`` to measure)."
    drop_entry.__doc__ = f"``DELETE /v1/{plural}/{{name}}``: drop a {kind} (409 while in use)."
    # one name per kind: the OpenAPI operationId is the handler's name and must be unique
    for handler, verb in ((list_entries, "list"), (get_entry, "get"), (register, "register")):
        handler.__name__ = f"{verb}_{plural if verb == 'list' else kind}"
    drop_entry.__name__ = f"drop_{kind}"
    return list_entries, get_entry, register, drop_entry


def catalog_error(catalog: Catalog, kind: str, name: str) -> Exception:
    """The unknown-name error for a catalog lookup."""
    return unknown_name(kind, name, [e.spec.name for e in catalog.entries(kind)])


list_models, get_model, register_model, drop_model = _catalog_routes(
    "model", model_spec_from_body, m.ModelRegistration, m.ModelList
)
list_datasets, get_dataset, register_dataset, drop_dataset = _catalog_routes(
    "dataset", dataset_spec_from_body, m.DatasetRegistration, m.DatasetList
)


# ---- queries ---------------------------------------------------------------------------------


def statements_of(body: m.TextQuery | m.TreeQuery) -> tuple[list[n.Statement], str]:
    """The statements and session of a validated ``POST /v1/queries`` body.

    Raises:
        QueryError: the text or tree is invalid (with diagnostics).
        ApiError: the query holds no statement, or holds ``USE``.
    """
    if isinstance(body, m.TextQuery):
        tree: n.Statement | n.Script = parse_script(body.text)
    else:
        tree = from_json(dict(body.tree))
    statements = list(tree.statements) if isinstance(tree, n.Script) else [tree]
    if not statements:
        raise ApiError(400, "bad_request", "the query holds no statement; send at least one")
    if any(isinstance(s, n.Use) for s in statements):
        raise ApiError(
            400,
            "bad_request",
            "USE is handled by the client (it picks the broker to talk to); "
            "send the other statements to the broker you chose",
        )
    return statements, body.session


_QUERY_ERRORS = (
    "A text or tree that does not parse or validate answers 400 with `diagnostics`; "
    "SHiFT-QL is checked beyond what a JSON Schema can say."
)


@endpoint(
    Endpoint(
        "Run SHiFT-QL: one query per statement, in order within the session",
        {202: (m.QueryList, "Queued, one query per statement")},
        body=m.QueryRequest,
        description=_QUERY_ERRORS,
    )
)
async def create_queries(request: web.Request, call: Call) -> web.Response:
    """``POST /v1/queries``: one query per statement, run in order in the session."""
    statements, session = statements_of(call.body)
    created = await _search(request).queries.create(statements, session)
    return _json({"queries": [q.to_json() for q in created]}, status=202)


@endpoint(
    Endpoint(
        "Recent queries, newest first",
        {200: (m.QueryList, "The queries")},
        query=m.QueryListParams,
    )
)
async def list_queries(request: web.Request, call: Call) -> web.Response:
    """``GET /v1/queries?session=&limit=``: recent queries, newest first."""
    params: m.QueryListParams = call.query
    found = await _search(request).queries.recent(params.session, params.limit)
    return _json({"queries": [q.to_json() for q in found]})


async def _query(request: web.Request) -> Any:
    query_id = request.match_info["query_id"]
    query = await _search(request).queries.get(query_id)
    if query is None:
        raise ApiError(404, "not_found", f"no query {query_id!r}; GET /v1/queries lists them")
    return query


@endpoint(
    Endpoint(
        "One query with its progress, result or error",
        {200: (m.QueryInfo, "The query")},
        errors=(404,),
    )
)
async def get_query(request: web.Request, call: Call) -> web.Response:
    """``GET /v1/queries/{id}``."""
    return _json((await _query(request)).to_json())


@endpoint(
    Endpoint(
        "Cancel a query and its tasks no other query needs",
        {200: (m.QueryInfo, "The cancelled query")},
        errors=(404, 409),
    )
)
async def cancel_query(request: web.Request, call: Call) -> web.Response:
    """``POST /v1/queries/{id}/cancel``: 409 when it already finished."""
    query = await _query(request)
    if query.status.final:
        raise ApiError(
            409, "conflict", f"query {query.id} is already {query.status}; nothing to cancel"
        )
    await _search(request).queries.cancel(query)
    return _json(query.to_json())


def _sse(event: str, body: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(body)}\n\n".encode()


@endpoint(
    Endpoint(
        "Server-Sent Events: 'progress' {done, total} as tasks finish, then 'done' with the Query",
        {200: (m.QueryEvent, "The event stream; it ends after 'done'")},
        errors=(404,),
        media="text/event-stream",
    )
)
async def query_events(request: web.Request, call: Call) -> web.StreamResponse:
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
        await response.write(_sse("progress", query.progress()))
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


def _names(values: list[str]) -> n.NameList:
    return n.NameList(tuple(n.Value(v) for v in values))


async def _start(request: web.Request, call: Call, statement: n.Statement) -> web.Response:
    """Check a statement as SHiFT-QL would (aliases, ranges) and queue it as a query."""
    checked = parse(render(statement))
    service = _search(request).queries
    (query,) = await service.create([checked], call.body.session)
    if call.query.wait:
        await service.wait(query)
    return _json(query.to_json(), status=202)


_STATEMENT_ERRORS = (
    "Checked exactly as the SHiFT-QL statement would be; unknown models or datasets make "
    "the query fail (its `error`), not the request."
)


@endpoint(
    Endpoint(
        "Task2Vec distance matrix of datasets through a probe (SELECT vec)",
        {202: (m.QueryInfo, "Queued (with ?wait=true: final)")},
        body=m.Task2VecRequest,
        query=m.WaitParams,
        description=_STATEMENT_ERRORS,
    )
)
async def create_task2vec(request: web.Request, call: Call) -> web.Response:
    """``POST /v1/task2vec``: the Task2Vec distances of datasets (a ``SELECT vec`` query)."""
    body: m.Task2VecRequest = call.body
    return await _start(request, call, n.VecSelect(_names(body.datasets), body.probe, wait=True))


@endpoint(
    Endpoint(
        "Fine-tune models; the results are registered as finetuned models",
        {202: (m.QueryInfo, "Queued (with ?wait=true: final)")},
        body=m.FinetuneRequest,
        query=m.WaitParams,
        description=_STATEMENT_ERRORS,
    )
)
async def create_finetune(request: web.Request, call: Call) -> web.Response:
    """``POST /v1/finetunes``: fine-tune models on datasets (a ``FINETUNE`` query)."""
    body: m.FinetuneRequest = call.body
    options = body.options.model_dump(exclude_none=True)
    params = tuple(n.Param(name, n.Value(value)) for name, value in options.items())
    datasets = tuple(n.Dataset(name) for name in body.datasets)
    statement = n.Finetune(_names(body.models), datasets, params, wait=True)
    return await _start(request, call, statement)


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/v1/models", list_models),
    ("POST", "/v1/models", register_model),
    ("GET", "/v1/models/{name}", get_model),
    ("DELETE", "/v1/models/{name}", drop_model),
    ("GET", "/v1/datasets", list_datasets),
    ("POST", "/v1/datasets", register_dataset),
    ("GET", "/v1/datasets/{name}", get_dataset),
    ("DELETE", "/v1/datasets/{name}", drop_dataset),
    ("POST", "/v1/queries", create_queries),
    ("GET", "/v1/queries", list_queries),
    ("GET", "/v1/queries/{query_id}", get_query),
    ("GET", "/v1/queries/{query_id}/events", query_events),
    ("POST", "/v1/queries/{query_id}/cancel", cancel_query),
    ("POST", "/v1/task2vec", create_task2vec),
    ("POST", "/v1/finetunes", create_finetune),
)
"""The search routes (added to the broker's own by ``broker.rest_routes``)."""

__all__ = ["ROUTES", "SEARCH_KEY", "QueryError", "Search", "statements_of"]
