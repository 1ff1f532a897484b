"""Endpoints: a handler declared with its typed inputs and answers.

:func:`endpoint` wraps a handler so that its query parameters and JSON body are validated
with the declared models before it runs (a refusal is a 400, or 413 for a body over a
length limit, in the one error shape), and attaches the declaration that
``broker.openapi`` turns into the route's OpenAPI operation. The declaration is the single
source of both.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from broker.rest_errors import ApiError, Handler
from broker.rest_input import describe, is_too_large, read_json

Answers = dict[int, tuple[type[BaseModel] | None, str]]
"""2xx statuses of an endpoint: the body model (``None`` for none) and a description."""

_TAGS = ("batch", "task", "text", "tree")
"""Branch names of the tagged request unions (left out of error paths)."""


@dataclass(frozen=True)
class Call:
    """A request's validated inputs."""

    query: Any = None
    body: Any = None


@dataclass(frozen=True)
class Endpoint:
    """What a route takes and answers.

    Attributes:
        summary: One line for the OpenAPI operation.
        answers: 2xx statuses with their body model and description.
        errors: Error statuses the route answers besides the ones every route may (400, and
            401 with a token, 413 with a body).
        body: The JSON body's model, if the route takes one.
        query: The query parameters' model, if any.
        media: Media type of the 2xx bodies (``text/plain`` for metrics, event streams).
        description: Longer text for the OpenAPI operation.
    """

    summary: str
    answers: Answers
    errors: tuple[int, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    media: str = "application/json"
    description: str = ""
    _body_fields: tuple[str, ...] = field(default=(), compare=False)


def _property_names(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            yield from properties
        for value in schema.values():
            yield from _property_names(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _property_names(value)


def _fields(model: type[BaseModel] | None) -> tuple[str, ...]:
    if model is None:
        return ()
    return tuple(dict.fromkeys(_property_names(model.model_json_schema())))


async def _inputs(spec: Endpoint, request: web.Request) -> Call:
    query = body = None
    if spec.query is not None:
        try:
            query = spec.query.model_validate(dict(request.query))
        except ValidationError as error:
            where = f"the query string of {request.method} {request.path}"
            raise ApiError(
                400, "bad_request", describe(error, where, _fields(spec.query))
            ) from None
    if spec.body is not None:
        value = await read_json(request)
        try:
            body = spec.body.model_validate(value, strict=True)
        except ValidationError as error:
            where = f"the {request.method} {request.path} body"
            message = describe(error, where, spec._body_fields, _TAGS)
            if is_too_large(error):
                raise ApiError(413, "payload_too_large", message) from None
            raise ApiError(400, "bad_request", message) from None
        root = getattr(body, "root", None)
        body = body if root is None else root
    return Call(query, body)


def endpoint(spec: Endpoint) -> Callable[[Callable[[web.Request, Call], Awaitable[Any]]], Handler]:
    """Declare a handler ``async def handler(request, call)`` as the endpoint ``spec``."""
    declared = Endpoint(
        **{**spec.__dict__, "_body_fields": _fields(spec.body)},
    )

    def wrap(function: Callable[[web.Request, Call], Awaitable[Any]]) -> Handler:
        @functools.wraps(function)
        async def handler(request: web.Request) -> web.StreamResponse:
            response: web.StreamResponse = await function(request, await _inputs(declared, request))
            return response

        handler.endpoint = declared  # type: ignore[attr-defined]
        return handler

    return wrap


def declaration(handler: Handler) -> Endpoint:
    """The :class:`Endpoint` a handler was declared with.

    Raises:
        TypeError: the handler was not declared with :func:`endpoint`.
    """
    spec = getattr(handler, "endpoint", None)
    if not isinstance(spec, Endpoint):
        raise TypeError(f"{handler.__name__} is not declared with @endpoint")
    return spec
