"""The REST API: an aiohttp app factory over a running :class:`Broker`.

Every non-2xx answer has one shape, produced by :func:`error_middleware`::

    {"error": {"status": 404, "code": "not_found", "message": "..."}}

With a configured token every request (health and metrics included) needs
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from broker import search_api
from broker.openapi import openapi_document
from broker.service import Broker
from shift import __version__
from shift.errors import CatalogError, QueryError, SchedulerError, ShiftError
from shift.tasks import TaskSpec, TaskState

log = logging.getLogger(__name__)

BROKER_KEY = web.AppKey("broker", Broker)
TOKEN_KEY = web.AppKey("token", str)

MAX_TASKS_PER_REQUEST = 10_000
"""Most tasks one ``POST /v1/tasks`` may submit."""

MAX_PAGE = 1000
"""Largest ``limit`` for ``GET /v1/tasks``."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(ShiftError):
    """A request the API refuses, with the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


STATUS_OF_ERROR: dict[type[ShiftError], int] = {
    SchedulerError: 400,
    QueryError: 400,
    CatalogError: 400,
}
"""HTTP status for shift errors raised by handlers (anything else is 500)."""

CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    500: "internal_error",
}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The one JSON shape of every error answer."""
    return {"error": {"status": status, "code": code, "message": message}}


def _error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response(error_body(status, code, message), status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the one error shape."""
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(error.status, error.code, str(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = CODE_OF_STATUS.get(error.status, "http_error")
        return _error_response(error.status, code, error.reason or code)
    except ShiftError as error:
        status = next((s for t, s in STATUS_OF_ERROR.items() if isinstance(error, t)), 500)
        body = error_body(status, error.code, str(error))
        if isinstance(error, QueryError):
            body["error"]["diagnostics"] = [d.to_dict() for d in error.diagnostics]
        return web.json_response(body, status=status)
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.path)
        return _error_response(500, "internal_error", "internal error; see the broker log")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require ``Authorization: Bearer <token>`` when a token is configured."""
    token = request.app[TOKEN_KEY]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(401, "unauthorized", "missing or wrong bearer token")
    return await handler(request)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda v: json.dumps(v, default=_json_default)
    )


async def health(request: web.Request) -> web.Response:
    """``GET /v1/health``."""
    broker = request.app[BROKER_KEY]
    return _json(
        {
            "status": "ok",
            "version": __version__,
            "workers": len(broker.dispatcher.workers),
            "queue_depth": broker.dispatcher.queue_depth(),
            "zmq": broker.bound_endpoint,
        }
    )


async def list_workers(request: web.Request) -> web.Response:
    """``GET /v1/workers``."""
    return _json({"workers": request.app[BROKER_KEY].workers_json()})


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be between {low} and {high}, got {value}")
    return value


async def list_tasks(request: web.Request) -> web.Response:
    """``GET /v1/tasks?state=&kind=&limit=&after=``: a page of tasks in submission order."""
    raw_state = request.query.get("state")
    state = None
    if raw_state is not None:
        try:
            state = TaskState(raw_state)
        except ValueError:
            known = ", ".join(s.value for s in TaskState)
            raise ApiError(
                400, "bad_request", f"unknown state {raw_state!r}; known: {known}"
            ) from None
    limit = _int_param(request, "limit", 100, 1, MAX_PAGE)
    after = _int_param(request, "after", 0, 0, 2**62)
    rows, next_cursor = await request.app[BROKER_KEY].store.list(
        state=state, kind=request.query.get("kind"), after=after, limit=limit
    )
    return _json({"tasks": [r.to_json() for r in rows], "next": next_cursor})


async def get_task(request: web.Request) -> web.Response:
    """``GET /v1/tasks/{id}``: the committed task, with live progress while it runs."""
    broker = request.app[BROKER_KEY]
    task_id = request.match_info["task_id"]
    row = await broker.store.get(task_id)
    if row is None:
        raise ApiError(404, "not_found", f"no task {task_id!r}")
    body = row.to_json()
    progress = broker.progress.get(task_id)
    if progress is not None:
        body["progress"] = {
            "done": progress.done,
            "total": progress.total,
            "message": progress.message,
        }
    return _json(body)


async def submit_tasks(request: web.Request) -> web.Response:
    """``POST /v1/tasks``: one task ``{kind, payload, model?}`` or ``{"tasks": [...]}``."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, "bad_request", f"request body is not JSON: {error}") from None
    many = isinstance(body, dict) and "tasks" in body
    items = body["tasks"] if many else [body]
    if not isinstance(items, list) or not items:
        raise ApiError(400, "bad_request", "'tasks' must be a non-empty list of tasks")
    if len(items) > MAX_TASKS_PER_REQUEST:
        raise ApiError(
            413, "payload_too_large", f"at most {MAX_TASKS_PER_REQUEST} tasks per request"
        )
    specs = [TaskSpec.from_json(item) for item in items]
    answers = await request.app[BROKER_KEY].submit(specs)
    out = [{"id": a.task_id, "state": a.state.value, "created": a.created} for a in answers]
    return _json(
        {"tasks": out} if many else out[0], status=201 if any(a.created for a in answers) else 200
    )


async def cancel_task(request: web.Request) -> web.Response:
    """``POST /v1/tasks/{id}/cancel``: cancel a queued or running task."""
    broker = request.app[BROKER_KEY]
    task_id = request.match_info["task_id"]
    state = broker.dispatcher.state_of(task_id)
    if state is None:
        raise ApiError(404, "not_found", f"no task {task_id!r}")
    if state.final:
        raise ApiError(409, "conflict", f"task {task_id} is already {state}")
    await broker.cancel(task_id)
    return _json({"id": task_id, "state": TaskState.CANCELLED.value})


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text."""
    return web.Response(
        text=request.app[BROKER_KEY].metrics_text(), content_type="text/plain", charset="utf-8"
    )


async def openapi(request: web.Request) -> web.Response:
    """``GET /v1/openapi.json``."""
    return _json(openapi_document())


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/v1/health", health),
    ("GET", "/v1/workers", list_workers),
    ("GET", "/v1/tasks", list_tasks),
    ("POST", "/v1/tasks", submit_tasks),
    ("GET", "/v1/tasks/{task_id}", get_task),
    ("POST", "/v1/tasks/{task_id}/cancel", cancel_task),
    ("GET", "/v1/openapi.json", openapi),
    ("GET", "/metrics", metrics),
    *search_api.ROUTES,
)
"""Every route: method, path, handler (the OpenAPI test checks they are all documented)."""


def create_app(
    broker: Broker, *, token: str = "", search: search_api.Search | None = None
) -> web.Application:
    """Build the REST app over a started broker.

    Args:
        broker: The broker service (owns the store).
        token: Bearer token required on every request; empty for none.
        search: Catalog and query service for the search routes (they answer 404 without).
    """
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=16 * 1024 * 1024
    )
    app[BROKER_KEY] = broker
    app[TOKEN_KEY] = token
    if search is not None:
        app[search_api.SEARCH_KEY] = search
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app
