"""The msgpack codec for protocol bodies: the only module that packs or unpacks them.

Bodies are versioned maps (``{"v": 1, ...}``) encoded with ``use_bin_type=True`` and
decoded with ``raw=False``; never pickle. Every failure to decode (garbage bytes, truncated
msgpack, wrong version, missing or mistyped fields) becomes a :class:`ProtocolError`, so a
bad frame can be logged and dropped without taking the process down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgpack  # type: ignore[import-untyped]

from shift.errors import ProtocolError
from shift.protocol import (
    BODY_VERSION,
    COMMAND_OF,
    Cancel,
    Command,
    Disconnect,
    Failed,
    Heartbeat,
    Message,
    Outcome,
    Progress,
    Ready,
    Result,
    Task,
    TaskItem,
    join_frames,
    split_frames,
)

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest body accepted; larger ones are refused before unpacking."""


def pack(value: Any) -> bytes:
    """Encode a msgpack-able value (also used for stored task payloads and results).

    Raises:
        ProtocolError: the value holds something msgpack cannot encode.
    """
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise ProtocolError(f"value cannot be encoded as msgpack: {error}") from None


def unpack(data: bytes) -> Any:
    """Decode one msgpack value.

    Raises:
        ProtocolError: the bytes are not exactly one valid msgpack value.
    """
    if len(data) > MAX_BODY_BYTES:
        raise ProtocolError(f"body of {len(data)} bytes exceeds the limit of {MAX_BODY_BYTES}")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises many unrelated types on bad input
        raise ProtocolError(f"undecodable msgpack body ({type(error).__name__}: {error})") from None


def _get(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    value = body.get(name, default)
    if value is ...:
        raise ProtocolError(f"body is missing field {name!r}")
    if value is default and default is not ...:
        return value
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ProtocolError(f"field {name!r} has type {type(value).__name__}")
    return value


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError(f"field {name!r} must be a list of strings")
    return tuple(value)


def _map(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"{what} must be a map, got {type(value).__name__}")
    return value


def _items(body: dict[str, Any], name: str) -> list[dict[str, Any]]:
    values = _get(body, name, list)
    if not values:
        raise ProtocolError(f"field {name!r} must not be empty")
    return [_map(v, f"an entry of {name!r}") for v in values]


def _number(body: dict[str, Any], name: str, default: Any = ...) -> float:
    return float(_get(body, name, (int, float), default))


def _encode_body(message: Message) -> dict[str, Any]:
    match message:
        case Ready():
            return {
                "worker_id": message.worker_id,
                "session": message.session,
                "device": message.device,
                "memory_bytes": message.memory_bytes,
                "capabilities": list(message.capabilities),
                "prefetch": message.prefetch,
                "models": list(message.models),
            }
        case Heartbeat():
            return {"models": list(message.models)}
        case Task():
            return {
                "tasks": [
                    {
                        "id": i.task_id,
                        "kind": i.kind,
                        "payload": i.payload,
                        "attempt": i.attempt,
                        "model": i.model,
                    }
                    for i in message.items
                ]
            }
        case Progress():
            return {
                "id": message.task_id,
                "done": message.done,
                "total": message.total,
                "message": message.message,
            }
        case Result():
            return {
                "results": [
                    {"id": o.task_id, "value": o.value, "elapsed_s": o.elapsed_s}
                    for o in message.outcomes
                ]
            }
        case Failed():
            return {
                "id": message.task_id,
                "error": message.error,
                "retryable": message.retryable,
                "cancelled": message.cancelled,
            }
        case Cancel():
            return {"id": message.task_id}
        case Disconnect():
            return {"reason": message.reason}
    raise ProtocolError(f"not a protocol message: {type(message).__name__}")


def _decode_ready(b: dict[str, Any]) -> Ready:
    prefetch = _get(b, "prefetch", int)
    memory = _get(b, "memory_bytes", int)
    if prefetch < 1 or memory < 0:
        raise ProtocolError(f"bad READY: prefetch={prefetch}, memory_bytes={memory}")
    worker_id = _get(b, "worker_id", str)
    if not worker_id:
        raise ProtocolError("READY has an empty worker_id")
    return Ready(
        worker_id=worker_id,
        session=_get(b, "session", str),
        device=_get(b, "device", str),
        memory_bytes=memory,
        capabilities=_strings(_get(b, "capabilities", list), "capabilities"),
        prefetch=prefetch,
        models=_strings(_get(b, "models", list, []), "models"),
    )


def _decode_task(b: dict[str, Any]) -> Task:
    items = []
    for t in _items(b, "tasks"):
        attempt = _get(t, "attempt", int)
        if attempt < 1:
            raise ProtocolError(f"task attempt must be >= 1, got {attempt}")
        items.append(
            TaskItem(
                task_id=_get(t, "id", str),
                kind=_get(t, "kind", str),
                payload=_map(t.get("payload"), "task payload"),
                attempt=attempt,
                model=_get(t, "model", (str, type(None)), None),
            )
        )
    return Task(tuple(items))


def _decode_result(b: dict[str, Any]) -> Result:
    outcomes = tuple(
        Outcome(_get(r, "id", str), r.get("value"), _number(r, "elapsed_s", 0.0))
        for r in _items(b, "results")
    )
    return Result(outcomes)


_DECODERS: dict[Command, Callable[[dict[str, Any]], Message]] = {
    Command.READY: _decode_ready,
    Command.HEARTBEAT: lambda b: Heartbeat(_strings(_get(b, "models", list, []), "models")),
    Command.TASK: _decode_task,
    Command.PROGRESS: lambda b: Progress(
        _get(b, "id", str), _number(b, "done"), _number(b, "total"), _get(b, "message", str, "")
    ),
    Command.RESULT: _decode_result,
    Command.FAILED: lambda b: Failed(
        _get(b, "id", str),
        _get(b, "error", str),
        _get(b, "retryable", bool, False),
        _get(b, "cancelled", bool, False),
    ),
    Command.CANCEL: lambda b: Cancel(_get(b, "id", str)),
    Command.DISCONNECT: lambda b: Disconnect(_get(b, "reason", str, "")),
}


def encode(message: Message) -> tuple[Command, bytes]:
    """Encode a message into its command and versioned msgpack body.

    Raises:
        ProtocolError: the message holds values msgpack cannot encode.
    """
    body = _encode_body(message)
    body["v"] = BODY_VERSION
    return COMMAND_OF[type(message)], pack(body)


def decode(command: Command, body: bytes) -> Message:
    """Decode and validate a body sent under ``command``.

    Raises:
        ProtocolError: the body is not valid msgpack, has another version, or its fields
            are missing or of the wrong type.
    """
    value = _map(unpack(body), "message body")
    version = value.get("v")
    if version != BODY_VERSION:
        raise ProtocolError(f"unsupported body version {version!r}; expected {BODY_VERSION}")
    return _DECODERS[command](value)


def to_frames(message: Message, identity: bytes | None = None) -> list[bytes]:
    """Encode a message into the frames to send (with ``identity`` from a ROUTER)."""
    command, body = encode(message)
    return join_frames(command, body, identity)


def from_frames(frames: Sequence[bytes], *, routed: bool) -> tuple[bytes, Message]:
    """Split and decode received frames into the sender identity and the message.

    Raises:
        ProtocolError: anything about the frames is wrong.
    """
    envelope = split_frames(frames, routed=routed)
    return envelope.identity, decode(envelope.command, envelope.body)
