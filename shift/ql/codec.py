"""The canonical JSON form of a query tree, and its validated inverse.

This is what travels from a client to the broker. Every node is an object with a ``type``
key and one key per field (spans are not sent); ``Value`` and ``Name`` are the bare JSON
value. :func:`from_json` checks every key and type against the node classes, then runs the
same meaning checks as the parser, so a hand-written or hostile tree is as safe as text.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import StrEnum
from typing import Any, cast

from shift.errors import Diagnostic, QueryError
from shift.ql import nodes as n
from shift.ql.validate import validate

FORMAT_VERSION = 1
_MAX_DEPTH = 200
#: Node fields that are not part of the JSON form: source spans and parser notices.
_NOT_SENT = frozenset({"span", "notices"})


def to_json(node: n.Node) -> Any:
    """The canonical JSON-able form of a node (dicts, lists, scalars)."""
    if isinstance(node, n.Value | n.Name):
        return node.value
    if isinstance(node, n.ValueList):
        return list(node.value)
    out: dict[str, Any] = {"type": node.TAG}
    for field in dataclasses.fields(node):  # type: ignore[arg-type]
        if field.name in _NOT_SENT:
            continue
        out[field.name] = _encode(getattr(node, field.name))
    return out


def _encode(value: Any) -> Any:
    if isinstance(value, n.Node):
        return to_json(value)
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    if isinstance(value, StrEnum):
        return value.value
    return value


def dumps(node: n.Node) -> str:
    """Canonical JSON text: sorted keys, no whitespace variation."""
    return json.dumps(to_json(node), sort_keys=True, separators=(",", ":"), allow_nan=False)


def from_json(data: Any) -> n.Statement | n.Script:
    """Decode and validate a statement or script from its JSON form.

    Raises:
        QueryError: naming the JSON path of the first structural problem, or every
            meaning problem that :func:`shift.ql.validate.validate` finds.
    """
    node = _decode(data, n.Statement | n.Script, "$", 0)
    statements = node.statements if isinstance(node, n.Script) else (node,)
    problems = [p for s in statements for p in validate(s)]
    if problems:
        raise QueryError([Diagnostic(p.message, 0, 0, "", p.hint, "<json>") for p in problems])
    return cast(n.Statement | n.Script, node)


def loads(text: str | bytes) -> n.Statement | n.Script:
    """Parse JSON text and decode it with :func:`from_json`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise QueryError(
            Diagnostic(f"the query tree is not valid JSON: {error}", 0, 0, source="<json>")
        ) from None
    return from_json(data)


def _fail(path: str, message: str) -> QueryError:
    return QueryError(Diagnostic(f"{path}: {message}", 0, 0, source="<json>"))


_HINTS: dict[str, dict[str, Any]] = {}


def _hints(cls: type[n.Node]) -> dict[str, Any]:
    if cls.TAG not in _HINTS:
        _HINTS[cls.TAG] = typing.get_type_hints(cls, vars(n))
    return _HINTS[cls.TAG]


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        if issubclass(hint, n.Node):
            return f"a {hint.TAG!r} node"
        return hint.__name__
    return str(hint).replace("shift.ql.nodes.", "")


def _decode(data: Any, hint: Any, path: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise _fail(path, f"the tree is nested more than {_MAX_DEPTH} levels deep")
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if data is None and type(None) in options:
            return None
        node_options = [o for o in options if isinstance(o, type) and issubclass(o, n.Node)]
        if isinstance(data, dict) and node_options:
            tag = data.get("type")
            for option in node_options:
                if tag == option.TAG:
                    return _decode(data, option, path, depth)
            tags = sorted(o.TAG for o in node_options)
            raise _fail(path, f"expected a node of type {', '.join(tags)}, got type {tag!r}")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(data, option, path, depth)
            except QueryError as error:
                errors.append(error)
        wanted = " or ".join(_type_name(o) for o in options)
        raise _fail(path, f"expected {wanted}, got {_describe(data)}")
    if origin is typing.Literal:
        if data in typing.get_args(hint) and isinstance(data, str):
            return data
        raise _fail(path, f"expected one of {list(typing.get_args(hint))}, got {_describe(data)}")
    if origin is tuple:
        if not isinstance(data, list):
            raise _fail(path, f"expected a list, got {_describe(data)}")
        (item,) = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return tuple(_decode(v, item, f"{path}[{i}]", depth + 1) for i, v in enumerate(data))
    if hint is type(None):
        if data is None:
            return None
        raise _fail(path, f"expected null, got {_describe(data)}")
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        try:
            return hint(data)
        except ValueError:
            choices = [m.value for m in hint]
            raise _fail(path, f"expected one of {choices}, got {_describe(data)}") from None
    if hint is bool:
        if isinstance(data, bool):
            return data
        raise _fail(path, f"expected true or false, got {_describe(data)}")
    if hint is int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        raise _fail(path, f"expected an integer, got {_describe(data)}")
    if hint is float:
        if isinstance(data, int | float) and not isinstance(data, bool):
            return data
        raise _fail(path, f"expected a number, got {_describe(data)}")
    if hint is str:
        if isinstance(data, str):
            return data
        raise _fail(path, f"expected a string, got {_describe(data)}")
    if hint is n.Value:
        if data is None or isinstance(data, str | bool | int):
            return n.Value(data)
        if isinstance(data, float) and data == data and abs(data) != float("inf"):
            return n.Value(int(data) if data.is_integer() and abs(data) <= 2**53 else data)
        raise _fail(path, f"expected a literal (number, string, bool, null), got {_describe(data)}")
    if hint is n.ValueList:
        if isinstance(data, list):
            items = [_decode(v, n.Value, f"{path}[{i}]", depth + 1) for i, v in enumerate(data)]
            return n.ValueList(tuple(items))
        raise _fail(path, f"expected a list of literals, got {_describe(data)}")
    if hint is n.Name:
        if isinstance(data, str) and data:
            return n.Name(data)
        raise _fail(path, f"expected a non-empty name, got {_describe(data)}")
    if isinstance(hint, type) and issubclass(hint, n.Node):
        return _decode_node(data, hint, path, depth)
    raise _fail(path, f"unsupported type {hint!r}")  # pragma: no cover


def _decode_node(data: Any, cls: type[n.Node], path: str, depth: int) -> n.Node:
    if not isinstance(data, dict):
        raise _fail(path, f"expected a {cls.TAG!r} object, got {_describe(data)}")
    if data.get("type") != cls.TAG:
        raise _fail(path, f"expected type {cls.TAG!r}, got {data.get('type')!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in _NOT_SENT}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields) - {"type"})
    if unknown:
        raise _fail(
            path, f"unknown key(s) {unknown} in a {cls.TAG!r} node; keys are {sorted(fields)}"
        )
    kwargs = {}
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING:
                raise _fail(path, f"a {cls.TAG!r} node needs the key {name!r}")
            continue
        kwargs[name] = _decode(data[name], hints[name], f"{path}.{name}", depth + 1)
    return cls(**kwargs)


def _describe(data: Any) -> str:
    text = json.dumps(data, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
