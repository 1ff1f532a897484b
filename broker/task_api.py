"""REST routes of the broker itself: health, workers, tasks, metrics and the OpenAPI document.

Each handler is declared with :func:`broker.rest_endpoint.endpoint`: its inputs arrive
validated, and the declaration is what the OpenAPI document says about it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from broker import rest_models as m
from broker.rest_endpoint import Call, Endpoint, endpoint
from broker.rest_errors import ApiError, Handler
from broker.service import Broker
from shift import __version__
from shift.payloads import check_task
from shift.tasks import TaskSpec, TaskState

BROKER_KEY = web.AppKey("broker", Broker)
OPENAPI_KEY = web.AppKey("openapi", dict)
"""The app's OpenAPI document (it depends on whether a token is configured)."""


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_answer(data: Any, status: int = 200) -> web.Response:
    """A JSON answer (bytes in results travel as base64)."""
    return web.json_response(
        data, status=status, dumps=lambda v: json.dumps(v, default=_json_default)
    )


@endpoint(
    Endpoint("Broker liveness, workers and queue depth", {200: (m.Health, "The broker is up")})
)
async def health(request: web.Request, call: Call) -> web.Response:
    """``GET /v1/health``."""
    broker = request.app[BROKER_KEY]
    answer = m.Health(
        status="ok",
        version=__version__,
        workers=len(broker.dispatcher.workers),
        queue_depth=broker.dispatcher.queue_depth(),
        zmq=broker.bound_endpoint,
    )
    return json_answer(answer.model_dump())


@endpoint(Endpoint("Live workers", {200: (m.WorkerList, "Every live worker")}))
async def list_workers(request: web.Request, call: Call) -> web.Response:
    """``GET /v1/workers``."""
    return json_answer({"workers": request.app[BROKER_KEY].workers_json()})


@endpoint(
    Endpoint(
        "A page of tasks in submission order",
        {200: (m.TaskPage, "The page; `next` is the cursor of the next one")},
        query=m.TaskListParams,
    )
)
async def list_tasks(request: web.Request, call: Call) -> web.Response:
    """``GET /v1/tasks?state=&kind=&limit=&after=``: a page of tasks in submission order."""
    params: m.TaskListParams = call.query
    rows, next_cursor = await request.app[BROKER_KEY].store.list(
        state=params.state, kind=params.kind, after=params.after, limit=params.limit
    )
    return json_answer({"tasks": [r.to_json() for r in rows], "next": next_cursor})


@endpoint(
    Endpoint(
        "One task: committed state, result or error, and live progress while it runs",
        {200: (m.TaskInfo, "The task")},
        errors=(404,),
    )
)
async def get_task(request: web.Request, call: Call) -> web.Response:
    """``GET /v1/tasks/{id}``: the committed task, with live progress while it runs."""
    broker = request.app[BROKER_KEY]
    task_id = request.match_info["task_id"]
    row = await broker.store.get(task_id)
    if row is None:
        raise ApiError(404, "not_found", f"no task {task_id!r}; GET /v1/tasks lists them")
    body = row.to_json()
    progress = broker.progress.get(task_id)
    if progress is not None:
        body["progress"] = {
            "done": progress.done,
            "total": progress.total,
            "message": progress.message,
        }
    return json_answer(body)


@endpoint(
    Endpoint(
        "Submit one task, or several as {tasks: [...]}; identical work is reused",
        {
            200: (m.SubmitAnswer, "Every task existed already"),
            201: (m.SubmitAnswer, "At least one new task was queued"),
        },
        body=m.SubmitTasks,
    )
)
async def submit_tasks(request: web.Request, call: Call) -> web.Response:
    """``POST /v1/tasks``: one task ``{kind, payload, model?}`` or ``{"tasks": [...]}``."""
    many = isinstance(call.body, m.TaskBatch)
    items: list[m.TaskSpecBody] = call.body.tasks if many else [call.body]
    specs = [TaskSpec(t.kind, dict(t.payload), t.model) for t in items]
    for spec in specs:
        check_task(spec)  # a known kind's payload parses, so it names no path on a worker
    answers = await request.app[BROKER_KEY].submit(specs)
    out = [{"id": a.task_id, "state": a.state.value, "created": a.created} for a in answers]
    return json_answer(
        {"tasks": out} if many else out[0], status=201 if any(a.created for a in answers) else 200
    )


@endpoint(
    Endpoint(
        "Cancel a queued or running task",
        {200: (m.TaskCancelled, "Cancelled")},
        errors=(404, 409),
    )
)
async def cancel_task(request: web.Request, call: Call) -> web.Response:
    """``POST /v1/tasks/{id}/cancel``: cancel a queued or running task."""
    broker = request.app[BROKER_KEY]
    task_id = request.match_info["task_id"]
    state = broker.dispatcher.state_of(task_id)
    if state is None:
        raise ApiError(404, "not_found", f"no live task {task_id!r}; GET /v1/tasks lists them")
    if state.final:
        raise ApiError(409, "conflict", f"task {task_id} is already {state}; nothing to cancel")
    await broker.cancel(task_id)
    return json_answer({"id": task_id, "state": TaskState.CANCELLED.value})


@endpoint(
    Endpoint(
        "Prometheus text metrics",
        {200: (None, "Prometheus text exposition format 0.0.4")},
        media="text/plain",
    )
)
async def metrics(request: web.Request, call: Call) -> web.Response:
    """``GET /metrics``: Prometheus text."""
    response = web.Response(text=request.app[BROKER_KEY].metrics_text())
    response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4
    return response


@endpoint(Endpoint("This document", {200: (m.OpenApiDocument, "The OpenAPI 3.1 document")}))
async def openapi(request: web.Request, call: Call) -> web.Response:
    """``GET /v1/openapi.json``."""
    return json_answer(request.app[OPENAPI_KEY])


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/v1/health", health),
    ("GET", "/v1/workers", list_workers),
    ("GET", "/v1/tasks", list_tasks),
    ("POST", "/v1/tasks", submit_tasks),
    ("GET", "/v1/tasks/{task_id}", get_task),
    ("POST", "/v1/tasks/{task_id}/cancel", cancel_task),
    ("GET", "/v1/openapi.json", openapi),
    ("GET", "/metrics", metrics),
)
"""The broker's own routes (``broker.rest_routes`` adds the search's)."""
