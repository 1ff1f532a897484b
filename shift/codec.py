"""The msgpack codec for protocol bodies: the only module that packs or unpacks them.

Bodies are versioned maps (``{"v": 1, ...}``) encoded with ``use_bin_type=True`` and
decoded with ``raw=False``; never pickle. Every failure to decode (garbage bytes, truncated
msgpack, wrong version, missing or mistyped fields) becomes a :class:`ProtocolError`, so a
bad frame can be logged and dropped without taking the process down.

A body received from a peer is unpacked under :class:`Limits`: its size, the length of any
one string, array or map, the number of arrays and maps in all, and (msgpack's own stack)
1,024 levels of nesting. A body past a limit is refused while it is being unpacked, so a
small frame cannot expand into gigabytes of Python objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack  # type: ignore[import-untyped]

from shift.blocks import BlockData, BlockRef
from shift.errors import ProtocolError
from shift.protocol import (
    BODY_VERSION,
    COMMAND_OF,
    Block,
    Cancel,
    Command,
    Disconnect,
    Failed,
    Fetch,
    Heartbeat,
    Message,
    Outcome,
    Progress,
    Ready,
    Result,
    Started,
    Task,
    TaskItem,
    Upload,
    Welcome,
    join_frames,
    split_frames,
)

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest stored value :func:`unpack` accepts (payloads and results in the store)."""

DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024
"""Default largest frame on the worker link (the ``max_frame_bytes`` setting)."""

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """What one body received from a peer may hold.

    Attributes:
        max_bytes: Largest body (also the longest string or binary in it).
        max_array_len: Most elements in one array.
        max_map_len: Most entries in one map (protocol maps are small records).
        max_containers: Most arrays and maps in the whole body.
    """

    max_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_array_len: int = 4 * 1024 * 1024
    max_map_len: int = 1024
    max_containers: int = 65536


FRAME_LIMITS = Limits()
"""The limits a body gets unless the receiver passes others."""

SMALL_LIMITS = Limits(max_bytes=64 * 1024, max_array_len=4096, max_containers=64)
"""The limits of a READY, and of any frame from a peer that has not registered (which the
broker only decodes to count and refuse)."""


def pack(value: Any) -> bytes:
    """Encode a msgpack-able value (also used for stored task payloads and results).

    Raises:
        ProtocolError: the value holds something msgpack cannot encode.
    """
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as error:
        raise ProtocolError(f"value cannot be encoded as msgpack: {error}") from None


def unpack(data: bytes, limits: Limits | None = None) -> Any:
    """Decode one msgpack value.

    Args:
        data: The bytes.
        limits: What the value may hold (a body from a peer); ``None`` for values this
            process stored itself, which are only bounded by :data:`MAX_BODY_BYTES`.

    Raises:
        ProtocolError: the bytes are not exactly one valid msgpack value, or pass a limit.
    """
    max_bytes = MAX_BODY_BYTES if limits is None else limits.max_bytes
    if len(data) > max_bytes:
        raise ProtocolError(f"body of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        if limits is None:
            return msgpack.unpackb(data, raw=False, strict_map_key=True)
        return _unpack_limited(data, limits)
    except ProtocolError:
        raise
    except Exception as error:  # msgpack raises many unrelated types on bad input
        raise ProtocolError(f"undecodable msgpack body ({type(error).__name__}: {error})") from None


def _unpack_limited(data: bytes, limits: Limits) -> Any:
    containers = 0

    def count(value: Any) -> Any:
        nonlocal containers
        containers += 1
        if containers > limits.max_containers:
            raise ProtocolError(
                f"body holds more than {limits.max_containers} arrays and maps; refused"
            )
        return value

    return msgpack.unpackb(
        data,
        raw=False,
        strict_map_key=True,
        object_hook=count,
        list_hook=count,
        max_str_len=limits.max_bytes,
        max_bin_len=limits.max_bytes,
        max_array_len=limits.max_array_len,
        max_map_len=limits.max_map_len,
        max_ext_len=0,
    )


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
        case Started():
            return {"id": message.task_id, "attempt": message.attempt}
        case Progress():
            return {
                "id": message.task_id,
                "attempt": message.attempt,
                "done": message.done,
                "total": message.total,
                "message": message.message,
            }
        case Result():
            return {
                "results": [
                    {
                        "id": o.task_id,
                        "attempt": o.attempt,
                        "value": o.value,
                        "elapsed_s": o.elapsed_s,
                    }
                    for o in message.outcomes
                ]
            }
        case Failed():
            return {
                "id": message.task_id,
                "attempt": message.attempt,
                "error": message.error,
                "retryable": message.retryable,
                "cancelled": message.cancelled,
            }
        case Cancel():
            return {"id": message.task_id}
        case Disconnect():
            return {"reason": message.reason}
        case Welcome():
            return {"store_id": message.store_id}
        case Fetch():
            return {"request": message.request, **_ref_body(message.ref)}
        case Block():
            body = {"request": message.request, **_ref_body(message.ref), "error": message.error}
            if message.data is not None:
                body.update(_data_body(message.data))
            return body
        case Upload():
            return {
                "id": message.task_id,
                "attempt": message.attempt,
                **_ref_body(message.data.ref),
                **_data_body(message.data),
            }
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


def _attempt(body: dict[str, Any]) -> int:
    attempt = _get(body, "attempt", int)
    if attempt < 1:
        raise ProtocolError(f"task attempt must be >= 1, got {attempt}")
    return attempt


def _decode_task(b: dict[str, Any]) -> Task:
    items = []
    for t in _items(b, "tasks"):
        attempt = _attempt(t)
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
        Outcome(_get(r, "id", str), r.get("value"), _number(r, "elapsed_s", 0.0), _attempt(r))
        for r in _items(b, "results")
    )
    return Result(outcomes)


def _ref_body(ref: BlockRef) -> dict[str, Any]:
    return {"model_key": ref.model_key, "dataset_key": ref.dataset_key, "block": ref.block}


def _data_body(data: BlockData) -> dict[str, Any]:
    return {
        "digest": data.digest,
        "features": data.features,
        "labels": data.labels,
        "meta": data.meta,
    }


def _ref(b: dict[str, Any]) -> BlockRef:
    return BlockRef(_get(b, "model_key", str), _get(b, "dataset_key", str), _get(b, "block", int))


def _data(b: dict[str, Any], ref: BlockRef) -> BlockData:
    return BlockData(
        ref,
        _get(b, "features", bytes),
        _get(b, "labels", bytes),
        _get(b, "meta", bytes),
        _get(b, "digest", str),
    )


def _request(b: dict[str, Any]) -> int:
    request = _get(b, "request", int)
    if not 0 <= request < 2**63:
        raise ProtocolError(f"block request number {request} is out of range")
    return request


def _decode_block(b: dict[str, Any]) -> Block:
    ref = _ref(b)
    data = _data(b, ref) if "features" in b else None
    return Block(_request(b), ref, data, _get(b, "error", str, ""))


_DECODERS: dict[Command, Callable[[dict[str, Any]], Message]] = {
    Command.READY: _decode_ready,
    Command.HEARTBEAT: lambda b: Heartbeat(_strings(_get(b, "models", list, []), "models")),
    Command.TASK: _decode_task,
    Command.STARTED: lambda b: Started(_get(b, "id", str), _attempt(b)),
    Command.PROGRESS: lambda b: Progress(
        _get(b, "id", str),
        _number(b, "done"),
        _number(b, "total"),
        _get(b, "message", str, ""),
        _attempt(b),
    ),
    Command.RESULT: _decode_result,
    Command.FAILED: lambda b: Failed(
        _get(b, "id", str),
        _get(b, "error", str),
        _get(b, "retryable", bool, False),
        _get(b, "cancelled", bool, False),
        _attempt(b),
    ),
    Command.CANCEL: lambda b: Cancel(_get(b, "id", str)),
    Command.DISCONNECT: lambda b: Disconnect(_get(b, "reason", str, "")),
    Command.WELCOME: lambda b: Welcome(_get(b, "store_id", str, "")),
    Command.FETCH: lambda b: Fetch(_request(b), _ref(b)),
    Command.BLOCK: _decode_block,
    Command.UPLOAD: lambda b: Upload(_get(b, "id", str), _attempt(b), _data(b, _ref(b))),
}


def encode(message: Message) -> tuple[Command, bytes]:
    """Encode a message into its command and versioned msgpack body.

    Raises:
        ProtocolError: the message holds values msgpack cannot encode.
    """
    body = _encode_body(message)
    body["v"] = BODY_VERSION
    return COMMAND_OF[type(message)], pack(body)


def decode(command: Command, body: bytes, limits: Limits = FRAME_LIMITS) -> Message:
    """Decode and validate a body sent under ``command``.

    Raises:
        ProtocolError: the body is not valid msgpack, passes a limit, has another version,
            or its fields are missing or of the wrong type.
    """
    value = _map(unpack(body, limits), "message body")
    version = value.get("v")
    if version != BODY_VERSION:
        raise ProtocolError(f"unsupported body version {version!r}; expected {BODY_VERSION}")
    return _DECODERS[command](value)


def to_frames(message: Message, identity: bytes | None = None) -> list[bytes]:
    """Encode a message into the frames to send (with ``identity`` from a ROUTER)."""
    command, body = encode(message)
    return join_frames(command, body, identity)


def from_frames(
    frames: Sequence[bytes], *, routed: bool, limits: Limits = FRAME_LIMITS
) -> tuple[bytes, Message]:
    """Split and decode received frames into the sender identity and the message.

    Raises:
        ProtocolError: anything about the frames is wrong.
    """
    envelope = split_frames(frames, routed=routed)
    return envelope.identity, decode(envelope.command, envelope.body, limits)


def encode_batches(
    items: Sequence[T], make: Callable[[tuple[T, ...]], Message], max_bytes: int
) -> tuple[list[tuple[tuple[T, ...], Command, bytes]], list[T]]:
    """Encode ``make(items)`` as few messages as keep every body within ``max_bytes``.

    A batch whose body is too large is split in halves until each part fits.

    Args:
        items: What to send (task items, outcomes).
        make: Builds the message for a batch of items.
        max_bytes: The largest body the receiver accepts.

    Returns:
        The batches that fit (items, command, body) and the items too large on their own.

    Raises:
        ProtocolError: an item holds values msgpack cannot encode.
    """
    fitting: list[tuple[tuple[T, ...], Command, bytes]] = []
    too_big: list[T] = []
    pending = [tuple(items)]
    while pending:
        batch = pending.pop()
        if not batch:
            continue
        command, body = encode(make(batch))
        if len(body) <= max_bytes:
            fitting.append((batch, command, body))
        elif len(batch) == 1:
            too_big.append(batch[0])
        else:
            half = len(batch) // 2
            pending += [batch[half:], batch[:half]]
    return fitting, too_big
