"""The OpenAPI 3.1 document of the REST API, rendered from the routes' declarations.

Nothing here is written by hand per route: each operation comes from the
:class:`~broker.rest_endpoint.Endpoint` its handler is declared with, and every schema from
the pydantic models in ``broker.rest_models`` that also validate the requests. Security is
declared only when a token is configured (then every operation may answer 401).
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from broker import rest_models as m
from broker.rest_endpoint import Endpoint, declaration
from broker.rest_routes import ROUTES
from shift import __version__

_COMPONENTS = "#/components/schemas/{model}"
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_PATH_PARAM = re.compile(r"\{(\w+)\}")

_ERROR_TEXT = {
    400: "The request is invalid (the message names the field) or could not be read",
    401: "Missing or wrong bearer token",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "The body, or a list or text in it, is over its size limit",
}


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = [m.ErrorResponse]
    for _, _, handler in ROUTES:
        spec = declaration(handler)
        found += [model for model, _ in spec.answers.values() if model is not None]
        found += [model for model in (spec.body, spec.query) if model is not None]
    return list(dict.fromkeys(found))


def _without_title(schema: Any) -> Any:
    """Drop pydantic's ``title`` annotations and put the JsonValue references in."""
    if schema == m.JSON_VALUE:
        return {"$ref": m.JSON_VALUE_REF}
    if isinstance(schema, dict):
        out = {}
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: _without_title(v) for name, v in value.items()}
            elif key == "title" and isinstance(value, str):
                continue
            else:
                out[key] = _without_title(value)
        return out
    if isinstance(schema, list):
        return [_without_title(v) for v in schema]
    return schema


def _query_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter: optional, never null (a query string has no null)."""
    schema = dict(schema)
    description = schema.pop("description", "")
    if schema.get("default") is None:
        schema.pop("default", None)
    branches = schema.pop("anyOf", None)
    if branches is not None:
        kept = [b for b in branches if b != {"type": "null"}]
        schema = {**(kept[0] if len(kept) == 1 else {"anyOf": kept}), **schema}
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _json_content(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def _error_responses(statuses: list[int], secured: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in sorted(set(statuses)):
        response: dict[str, Any] = {
            "description": _ERROR_TEXT.get(status, "Error"),
            "content": _json_content(_ERROR_REF),
        }
        if status == 401 and secured:
            response["headers"] = {
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
            }
        out[str(status)] = response
    return out


def _operation(
    path: str, function: str, spec: Endpoint, defs: dict[str, Any], secured: bool
) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": function, "summary": spec.summary}
    if spec.description:
        operation["description"] = spec.description
    parameters = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for p in _PATH_PARAM.findall(path)
    ]
    if spec.query is not None:
        properties = defs.get(spec.query.__name__, {}).get("properties", {})
        parameters += [_query_parameter(k, v) for k, v in properties.items()]
    if parameters:
        operation["parameters"] = parameters
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _json_content({"$ref": _COMPONENTS.format(model=spec.body.__name__)}),
        }
    responses: dict[str, Any] = {}
    for status, (model, description) in sorted(spec.answers.items()):
        if model is None:
            schema: dict[str, Any] = {"type": "string"}
        else:
            schema = {"$ref": _COMPONENTS.format(model=model.__name__)}
        responses[str(status)] = {
            "description": description,
            "content": {spec.media: {"schema": schema}},
        }
    errors = [400, *spec.errors]
    if secured:
        errors.append(401)
    if spec.body is not None:
        errors.append(413)
    responses.update(_error_responses(errors, secured))
    operation["responses"] = responses
    return operation


@functools.cache
def _document(secured: bool) -> dict[str, Any]:
    _, generated = models_json_schema(
        [(model, "validation") for model in _models()], ref_template=_COMPONENTS
    )
    defs: dict[str, Any] = _without_title(generated.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in ROUTES:
        spec = declaration(handler)
        paths.setdefault(path, {})[method.lower()] = _operation(
            path, handler.__name__, spec, defs, secured
        )
    for _, _, handler in ROUTES:
        query = declaration(handler).query
        if query is not None:
            defs.pop(query.__name__, None)  # rendered as parameters, not a schema
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "shift broker",
            "version": __version__,
            "description": "Every non-2xx answer has the ErrorResponse shape.",
        },
        "paths": paths,
        "components": {"schemas": {**defs, "JsonValue": m.JSON_VALUE_SCHEMA}},
    }
    if secured:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def openapi_document(secured: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 document for the broker API.

    Args:
        secured: A bearer token is configured (declares the scheme and the 401 answers).
    """
    return copy.deepcopy(_document(secured))
