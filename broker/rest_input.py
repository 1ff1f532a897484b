"""Reading REST input: JSON bodies within limits, and validation errors as sentences.

A body is read whole (at most :data:`MAX_BODY_BYTES`), decoded as UTF-8 JSON and checked
against limits that keep every later step (hashing, msgpack, the SQLite store, recursive
walks) safe: nesting at most :data:`MAX_JSON_DEPTH` levels, numbers within the signed 64-bit
range, strings of valid Unicode. A pydantic :class:`~pydantic.ValidationError` becomes one
sentence per problem that names the field, says what it must be, and what was sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from broker.rest_errors import ApiError
from shift.ql.vocabulary import closest

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body (aiohttp's ``client_max_size``); larger ones answer 413."""

MAX_JSON_DEPTH = 128
"""Deepest nesting of arrays and objects a body may have."""

MAX_JSON_NUMBER = 2**63 - 1
"""Largest magnitude of a number in a body (integers travel as signed 64-bit msgpack)."""

_MAX_INT_DIGITS = len(str(MAX_JSON_NUMBER))
_SURROGATE = re.compile("[\ud800-\udfff]")

SCHEMA_HINT = "the schema of every route is at GET /v1/openapi.json"


class _Refused(ValueError):
    """A JSON value over a limit, found while decoding."""


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS or abs(value := int(text)) > MAX_JSON_NUMBER:
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
        raise _Refused(
            f"the integer {shown} is outside the signed 64-bit range "
            f"(-{MAX_JSON_NUMBER} to {MAX_JSON_NUMBER}); send a smaller number or a string"
        )
    return value


def _float(text: str) -> float:
    value = float(text)
    if not abs(value) <= MAX_JSON_NUMBER:
        shown = text if len(text) <= 40 else f"{text[:20]}..."
        raise _Refused(
            f"the number {shown} is outside +-{MAX_JSON_NUMBER} (about 9.2e18); "
            "send a smaller number"
        )
    return value


def _check_tree(value: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_JSON_DEPTH` and strings of broken Unicode."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise _Refused(
                    "a string holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff "
                    "escape); send valid Unicode text"
                )
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise _Refused(
                f"the body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels; flatten it"
            )
        children = list(item.items()) if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, tuple):
                stack.append((child[0], depth))
                stack.append((child[1], depth + 1))
            else:
                stack.append((child, depth + 1))


def decode_json(raw: bytes) -> Any:
    """Decode a request body as JSON within the limits.

    Raises:
        ApiError: 400 naming what is wrong (not JSON, not UTF-8, over a limit).
    """
    if not raw.strip():
        raise ApiError(400, "bad_request", "the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_int=_int, parse_float=_float)
    except UnicodeDecodeError as error:
        raise ApiError(
            400, "bad_request", f"the request body is not UTF-8 ({error.reason}); send UTF-8 JSON"
        ) from None
    except RecursionError:
        raise ApiError(
            400,
            "bad_request",
            f"the body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels; flatten it",
        ) from None
    except _Refused as error:
        raise ApiError(400, "bad_request", str(error)) from None
    except json.JSONDecodeError as error:
        raise ApiError(
            400,
            "bad_request",
            f"the request body is not JSON: {error.msg} at line {error.lineno}, "
            f"column {error.colno}; send a JSON object",
        ) from None
    try:
        _check_tree(value)
    except _Refused as error:
        raise ApiError(400, "bad_request", str(error)) from None
    return value


async def read_json(request: web.Request) -> Any:
    """The request's JSON body, read whole and decoded within the limits.

    Raises:
        ApiError: 400 for a body that is not JSON or is over a limit.
        aiohttp.web.HTTPRequestEntityTooLarge: the body is over :data:`MAX_BODY_BYTES`
            (answered 413 by the error middleware).
    """
    return decode_json(await request.read())


# ---- validation errors as sentences ---------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "none_required": "null",
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _path(loc: tuple[int | str, ...], tags: frozenset[str]) -> str:
    if loc and isinstance(loc[0], str) and loc[0] in tags:
        loc = loc[1:]  # the branch of a tagged union, not a field
    parts = [str(p) for p in loc]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _sentence(error: Any, where: str, fields: Iterable[str], tags: frozenset[str]) -> str:
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    loc = tuple(error["loc"])
    path = _path(loc, tags)
    field = path or where
    if kind == "missing":
        parent = _path(loc[:-1], tags)
        return f"{parent or where} needs the field {str(loc[-1])!r}"
    if kind == "extra_forbidden":
        name = str(loc[-1])
        match = closest(name, fields)
        hint = f"; did you mean {match!r}?" if match and match != name else ""
        parent = _path(loc[:-1], tags)
        return f"{parent or where}: unknown field {name!r}{hint}"
    if kind in _EXPECTED:
        return f"{field} must be {_EXPECTED[kind]}, got {_shown(given)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        return f"{field} must be {words[0]} {ctx.get(words[1])}, got {_shown(given)}"
    if kind == "string_too_short":
        return f"{field} must not be empty"
    if kind == "string_too_long":
        return f"{field} holds {len(given)} characters; at most {ctx.get('max_length')} are allowed"
    if kind == "too_short":
        return f"{field} must hold at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"{field} holds {ctx.get('actual_length')} items; at most {ctx.get('max_length')}"
    if kind == "string_pattern_mismatch":
        return f"{field} must be a non-blank name without control characters, got {_shown(given)}"
    if kind in ("enum", "literal_error"):
        return f"{field} must be one of {ctx.get('expected')}, got {_shown(given)}"
    if kind == "value_error":
        return f"{field} {ctx.get('error')}"
    return f"{field}: {error['msg']}"


def is_too_large(error: ValidationError) -> bool:
    """True when every problem is a list over its maximum length (answered 413, not 400).

    A batch over its item limit is content too large to process; a string over its length
    is an invalid field (400), like any other schema violation.
    """
    kinds = {e["type"] for e in error.errors()}
    return kinds == {"too_long"}


def describe(
    error: ValidationError,
    where: str,
    fields: Iterable[str] = (),
    tags: Iterable[str] = (),
) -> str:
    """One message for every problem of a validation error.

    Args:
        error: What pydantic found.
        where: What was validated, for problems of the whole value (``POST /v1/tasks body``).
        fields: Field names a misspelt one may be close to (for ``did you mean``).
        tags: Names of union branches to leave out of field paths.
    """
    tagset = frozenset(tags)
    known = list(fields)
    sentences = list(dict.fromkeys(_sentence(e, where, known, tagset) for e in error.errors()))
    return "; ".join(sentences) + f" ({SCHEMA_HINT})"
