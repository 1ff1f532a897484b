"""The REST API's typed models: request bodies, query parameters, responses and events.

One set of pydantic models is both the check of every request (``broker.rest_endpoint``
validates with them) and the schemas of the OpenAPI document (``broker.openapi`` renders
them), so the document and the code cannot disagree. Request models are strict (a JSON
number is not a string, ``1`` is not ``true``) and refuse unknown fields; query parameters
arrive as text and are parsed (``limit=10``, ``wait=true``).

Responses are built by the services (``Query.to_json``, ``TaskRow.to_json``, ...); their
models here document them, and the tests validate real answers against them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Json,
    RootModel,
    Tag,
    ValidationError,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from broker.rest_input import MAX_JSON_NUMBER, describe
from shift.errors import SchedulerError
from shift.methods import FINETUNE_PARAMS, ParamSpec
from shift.tasks import TaskState

MAX_TASKS_PER_REQUEST = 10_000
"""Most tasks one ``POST /v1/tasks`` may submit."""

MAX_TASK_PAGE = 1000
"""Largest ``limit`` of ``GET /v1/tasks``."""

MAX_QUERY_PAGE = 500
"""Largest ``limit`` of ``GET /v1/queries``."""

MAX_QUERY_TEXT_CHARS = 1_000_000
"""Longest SHiFT-QL text one ``POST /v1/queries`` may carry."""

MAX_NAME_CHARS = 512
"""Longest model, dataset, kind or session name."""

MAX_NAMES = 1000
"""Most names one list (models, datasets) may hold."""

JSON_VALUE_REF = "#/components/schemas/JsonValue"

JSON_VALUE = {"x-shift-json-value": True}
"""Stands for ``{"$ref": JSON_VALUE_REF}`` in the models' schemas (pydantic resolves every
``$ref`` it sees); ``broker.openapi`` puts the reference in its place."""

JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": "Any JSON value; numbers lie within the signed 64-bit range.",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "string"},
        {"type": "number", "minimum": -MAX_JSON_NUMBER, "maximum": MAX_JSON_NUMBER},
        {"type": "array", "items": {"$ref": JSON_VALUE_REF}},
        {"type": "object", "additionalProperties": {"$ref": JSON_VALUE_REF}},
    ],
}
"""What every request body's free-form values may be (``broker.rest_input`` enforces it)."""

JsonObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "additionalProperties": JSON_VALUE}),
]
"""A free-form JSON object (its values are checked by ``broker.rest_input``)."""

_NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_CHARS,
        pattern=_NAME_PATTERN,
        description="A name: not blank, no control characters.",
    ),
]

Names = Annotated[list[Name], Field(min_length=1, max_length=MAX_NAMES)]

Session = Annotated[
    Name,
    Field(description="The session the query runs in (its order and DECLAREd variables)."),
]


class Body(BaseModel):
    """Base of request bodies: strict JSON types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---- tasks -----------------------------------------------------------------------------------


class TaskSpecBody(Body):
    """One unit of work; identical specs are the same task (their content hash)."""

    kind: Name = Field(description="The task kind a worker runs (echo, embed, classify, ...).")
    payload: JsonObject = Field(default_factory=dict, description="Kind-specific parameters.")
    model: Name | None = Field(
        default=None, description="The model the task needs (a worker holding it is preferred)."
    )

    @model_validator(mode="wrap")
    @classmethod
    def _as_scheduler_error(cls, value: Any, handler: Any) -> Any:
        """Problems of a task spec are scheduler errors, as ``TaskSpec.from_json``'s are."""
        try:
            return handler(value)
        except ValidationError as error:
            raise SchedulerError(describe(error, "a task", ("kind", "payload", "model"))) from None


class TaskBatch(Body):
    """Several tasks in one request."""

    tasks: list[TaskSpecBody] = Field(min_length=1, max_length=MAX_TASKS_PER_REQUEST)


def _task_form(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "tasks" in value else "task"


class SubmitTasks(RootModel[Any]):
    """``POST /v1/tasks``: one task, or several as ``{"tasks": [...]}``."""

    root: Annotated[
        Annotated[TaskBatch, Tag("batch")] | Annotated[TaskSpecBody, Tag("task")],
        Discriminator(_task_form),
    ]


class TaskListParams(BaseModel):
    """Query parameters of ``GET /v1/tasks``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    state: TaskState | None = Field(default=None, description="Only tasks in this state.")
    kind: Name | None = Field(default=None, description="Only tasks of this kind.")
    limit: Annotated[int, BeforeValidator(lambda v: _query_int(v))] = Field(
        default=100, ge=1, le=MAX_TASK_PAGE, description="Most tasks in the page."
    )
    after: Annotated[int, BeforeValidator(lambda v: _query_int(v))] = Field(
        default=0, ge=0, le=2**62, description="The `next` cursor of the previous page."
    )


# ---- queries ---------------------------------------------------------------------------------


class TextQuery(Body):
    """SHiFT-QL text: one or more statements."""

    text: str = Field(min_length=1, max_length=MAX_QUERY_TEXT_CHARS, description="SHiFT-QL.")
    session: Session = "default"


class TreeQuery(Body):
    """A statement or script as canonical JSON (what ``shift parse`` prints)."""

    tree: JsonObject = Field(description="The canonical JSON of a statement or script.")
    session: Session = "default"


def _query_form(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "text"
    has_text, has_tree = "text" in value, "tree" in value
    if has_text != has_tree:
        return "text" if has_text else "tree"
    if not has_text and set(value) - {"session"}:
        return "text"  # report the unknown fields (a misspelt 'text')
    return None


class QueryRequest(RootModel[Any]):
    """``POST /v1/queries``: exactly one of ``text`` and ``tree``, and the session."""

    root: Annotated[
        Annotated[TextQuery, Tag("text")] | Annotated[TreeQuery, Tag("tree")],
        Discriminator(
            _query_form,
            custom_error_type="one_of_text_tree",
            custom_error_message="give exactly one of 'text' and 'tree'",
        ),
    ]


class QueryListParams(BaseModel):
    """Query parameters of ``GET /v1/queries``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    session: Session | None = Field(default=None, description="Only queries of this session.")
    limit: Annotated[int, BeforeValidator(lambda v: _query_int(v))] = Field(
        default=50, ge=1, le=MAX_QUERY_PAGE, description="Most queries, newest first."
    )


class Task2VecRequest(Body):
    """``POST /v1/task2vec``: the Task2Vec distances of datasets (a ``SELECT vec`` query)."""

    probe: Name = Field(description="A registered model: the probe network.")
    datasets: Names = Field(description="Registered datasets to compare.")
    session: Session = "default"


def _integral(value: Any) -> Any:
    """A JSON number with no fraction is an integer (JSON Schema says so: ``3.0`` is one)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _option(spec: ParamSpec) -> Any:
    bounds = Field(ge=spec.minimum, le=spec.maximum)
    if spec.kind is str:
        kind: Any = Name
    elif spec.kind is int:
        kind = Annotated[int, BeforeValidator(_integral), bounds]
    else:
        kind = Annotated[float, bounds]
    return (kind, Field(default=None, description=spec.help))


FinetuneOptions = create_model(
    "FinetuneOptions",
    __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
    __doc__="FINETUNE options (each optional; the model's modality gives the defaults).",
    **{name: _option(spec) for name, spec in FINETUNE_PARAMS.items()},
)


class FinetuneRequest(Body):
    """``POST /v1/finetunes``: fine-tune models on datasets (a ``FINETUNE`` query)."""

    models: Names = Field(description="Registered models to fine-tune.")
    datasets: Names = Field(description="Training datasets, concatenated.")
    options: FinetuneOptions = Field(default_factory=FinetuneOptions)  # type: ignore[valid-type]
    session: Session = "default"


class WaitParams(BaseModel):
    """The ``wait`` query parameter."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    wait: Annotated[bool, BeforeValidator(lambda v: _query_bool(v))] = Field(
        default=False, description="Answer once the work is done (true or false)."
    )


# ---- catalog ---------------------------------------------------------------------------------


class ModelRegistration(Body):
    """A model to register: a model spec (``name``, ``family``, ``modality``, ``loader``,
    ``batch_size``, ``info``) or ``name`` plus REGISTER MODEL columns (``source``, ``path``,
    ...). The catalog checks the rest (known families and columns, paths inside the data
    roots) and answers 400 naming the field."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"additionalProperties": JSON_VALUE},
    )

    name: Name


class DatasetRegistration(Body):
    """A dataset to register: a dataset spec (``name``, ``reader``, ``params``,
    ``modality``, ``info``) or ``name`` plus REGISTER DATASET columns (``reader``, ``path``,
    ...). The catalog checks the rest (known readers and columns, paths inside the data
    roots) and answers 400 naming the field."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"additionalProperties": JSON_VALUE},
    )

    name: Name


# ---- query parameters as text ----------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


def _query_int(value: Any) -> Any:
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "must be an integer written in digits, got {given}", {"given": value}
        )
    return int(value) if isinstance(value, str) else value


def _query_bool(value: Any) -> Any:
    if isinstance(value, str):
        spelt = value.lower()
        if spelt in ("true", "1"):
            return True
        if spelt in ("false", "0"):
            return False
        raise PydanticCustomError("bool_parsing", "must be true or false", {"given": value})
    return value


# ---- responses -------------------------------------------------------------------------------


class Answer(BaseModel):
    """Base of response models: they list every field a response has."""

    model_config = ConfigDict(extra="forbid")


class Diagnostic(Answer):
    """One located problem in a query text."""

    message: str
    line: int
    column: int
    snippet: str
    hint: str
    source: str


class ErrorDetail(Answer):
    """What went wrong: the HTTP status, a stable code and a message for a person."""

    status: int
    code: str
    message: str
    diagnostics: list[Diagnostic] = Field(
        default_factory=list, description="Located problems (query errors only)."
    )
    queries: list[str] = Field(
        default_factory=list,
        description="Ids of the running queries that hold a catalog row (`in_use` errors only).",
    )


class ErrorResponse(Answer):
    """The one shape of every non-2xx answer."""

    error: ErrorDetail


class Health(Answer):
    """Broker liveness."""

    status: Literal["ok"]
    version: str
    workers: int
    queue_depth: int
    zmq: str


class WorkerInfo(Answer):
    """A live worker."""

    id: str
    device: str
    memory_bytes: int
    capabilities: list[str]
    prefetch: int
    inflight: list[str]
    models: list[str]
    silent_s: float


class WorkerList(Answer):
    """``GET /v1/workers``."""

    workers: list[WorkerInfo]


class TaskProgress(Answer):
    """Progress a worker reported for a running task."""

    done: float
    total: float
    message: str


class TaskInfo(Answer):
    """A task: its spec, state, attempt, worker and result or error."""

    id: str
    kind: str
    payload: dict[str, Any]
    model: str | None
    state: TaskState
    attempt: int
    worker: str | None
    result: Any
    error: str | None
    created_at: float
    updated_at: float
    progress: TaskProgress = Field(
        default=None,  # type: ignore[assignment]
        description="Live progress (only while the task runs).",
    )


class TaskPage(Answer):
    """``GET /v1/tasks``: a page in submission order."""

    tasks: list[TaskInfo]
    next: int | None = Field(description="`after` for the next page; null on the last.")


class Submitted(Answer):
    """A submitted task: its id, state, and whether this request created it."""

    id: str
    state: TaskState
    created: bool


class SubmittedBatch(Answer):
    """``POST /v1/tasks`` with ``{"tasks": [...]}``."""

    tasks: list[Submitted]


class SubmitAnswer(RootModel[Any]):
    """``POST /v1/tasks``: one task's answer, or a batch's."""

    root: Submitted | SubmittedBatch


class TaskCancelled(Answer):
    """``POST /v1/tasks/{id}/cancel``."""

    id: str
    state: Literal[TaskState.CANCELLED]


class CatalogEntry(BaseModel):
    """A catalog row (the vocabulary's columns, which vary by kind) plus its registration."""

    model_config = ConfigDict(extra="allow")

    name: str
    status: Literal["pending", "ready", "failed"] = Field(
        description="pending: being measured; ready: usable; failed: see error"
    )
    error: str | None = Field(description="Why the registration failed (failed only).")
    key: str
    spec: dict[str, Any]


class ModelList(Answer):
    """``GET /v1/models``."""

    models: list[CatalogEntry]


class DatasetList(Answer):
    """``GET /v1/datasets``."""

    datasets: list[CatalogEntry]


class Table(Answer):
    """One result table."""

    title: str
    columns: list[str]
    rows: list[list[Any]]


class QueryResult(Answer):
    """What a statement answered: tables and a message."""

    tables: list[Table]
    message: str


class QueryStage(Answer):
    """Where a multi-round search stands (successive halving)."""

    round: int = Field(description="the current round, from 0")
    rounds: int
    arms: int = Field(description="models playing the round")
    train_rows: int
    test_rows: int


class QueryProgress(Answer):
    """Tasks of a query: finished out of asked for, how many had already succeeded when the
    query asked for them (found in the cache), and a search's stage."""

    done: int
    total: int
    cached: int = 0
    stage: QueryStage | None = None


class QueryInfo(Answer):
    """A query: one statement, its status, progress, and result or error."""

    id: str
    session: str
    statement: str = Field(description="The canonical SHiFT-QL text.")
    kind: str = Field(description="The statement's node tag (task_select, finetune, ...).")
    status: TaskState
    wait: bool
    progress: QueryProgress
    result: QueryResult | None
    error: ErrorDetail | None
    created_at: float
    finished_at: float | None


class QueryList(Answer):
    """Queries (``POST /v1/queries``: one per statement; ``GET``: newest first)."""

    queries: list[QueryInfo]


class ProgressEvent(Answer):
    """Server-Sent Event ``progress``: the query's task counts."""

    event: Literal["progress"]
    data: Json[QueryProgress]


class DoneEvent(Answer):
    """Server-Sent Event ``done``, the last one: the final query."""

    event: Literal["done"]
    data: Json[QueryInfo]


class QueryEvent(RootModel[Any]):
    """One event of ``GET /v1/queries/{id}/events``."""

    root: Annotated[ProgressEvent | DoneEvent, Field(discriminator="event")]


class OpenApiDocument(BaseModel):
    """An OpenAPI 3.1 document."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
