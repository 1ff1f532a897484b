"""The protocol envelope and msgpack codec: round trips and every way a frame can be bad."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shift.codec import decode, encode, from_frames, pack, to_frames
from shift.errors import ProtocolError
from shift.protocol import (
    HEADER,
    Cancel,
    Command,
    Disconnect,
    Failed,
    Heartbeat,
    Outcome,
    Progress,
    Ready,
    Result,
    Started,
    Task,
    TaskItem,
    join_frames,
)

MESSAGES = [
    Ready("w1", "s1", "cpu", 1024, ("echo", "sleep"), 4, ("m",)),
    Heartbeat(("m1", "m2")),
    Heartbeat(),
    Task((TaskItem("t1", "echo", {"a": [1, 2.5, "x", None]}, 2, "m"), TaskItem("t2", "sleep", {}))),
    Started("t1", 2),
    Progress("t1", 3, 10, "chunk 3", 2),
    Result((Outcome("t1", {"v": b"bytes"}, 0.5), Outcome("t2", None))),
    Failed("t1", "boom", retryable=True),
    Failed("t1", "stopped", cancelled=True),
    Cancel("t1"),
    Disconnect("bye"),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("routed", [False, True])
def test_round_trip(message, routed):
    identity = b"w1" if routed else None
    frames = to_frames(message, identity)
    got_identity, got = from_frames(frames, routed=routed)
    assert got == message
    assert got_identity == (b"w1" if routed else b"")


def _body(**fields):
    return msgpack.packb({"v": 1, **fields}, use_bin_type=True)


BAD_FRAMES = [
    ("no frames", []),
    ("only identity", [b"w"]),
    ("too few frames", [b"w", b"", HEADER, b"HEARTBEAT"]),
    ("too many frames", [b"w", b"", HEADER, b"HEARTBEAT", _body(), b"extra"]),
    ("no delimiter", [b"w", b"x", HEADER, b"HEARTBEAT", _body()]),
    ("wrong version header", [b"w", b"", b"SHIFTW0", b"HEARTBEAT", _body()]),
    ("unknown command", [b"w", b"", HEADER, b"EXPLODE", _body()]),
    ("non-ascii command", [b"w", b"", HEADER, b"\xff\xfe", _body()]),
    ("garbage body", [b"w", b"", HEADER, b"HEARTBEAT", b"\xc1\xc1\xc1"]),
    ("truncated body", [b"w", b"", HEADER, b"CANCEL", _body(id="t1")[:-2]]),
    ("trailing bytes", [b"w", b"", HEADER, b"CANCEL", _body(id="t1") + b"\x00"]),
    ("body not a map", [b"w", b"", HEADER, b"CANCEL", msgpack.packb([1, 2])]),
    ("missing body version", [b"w", b"", HEADER, b"CANCEL", msgpack.packb({"id": "t"})]),
    ("wrong body version", [b"w", b"", HEADER, b"CANCEL", _body(v=2, id="t")]),
    ("missing field", [b"w", b"", HEADER, b"CANCEL", _body()]),
    ("wrong field type", [b"w", b"", HEADER, b"CANCEL", _body(id=5)]),
    ("bool as number", [b"w", b"", HEADER, b"PROGRESS", _body(id="t", done=True, total=1)]),
    ("empty task batch", [b"w", b"", HEADER, b"TASK", _body(tasks=[])]),
    ("task not a map", [b"w", b"", HEADER, b"TASK", _body(tasks=[1])]),
    (
        "payload not a map",
        [
            b"w",
            b"",
            HEADER,
            b"TASK",
            _body(tasks=[{"id": "t", "kind": "k", "payload": 1, "attempt": 1}]),
        ],
    ),
    (
        "attempt zero",
        [
            b"w",
            b"",
            HEADER,
            b"TASK",
            _body(tasks=[{"id": "t", "kind": "k", "payload": {}, "attempt": 0}]),
        ],
    ),
    (
        "ready with zero prefetch",
        [
            b"w",
            b"",
            HEADER,
            b"READY",
            _body(
                worker_id="w",
                session="s",
                device="cpu",
                memory_bytes=0,
                capabilities=[],
                prefetch=0,
            ),
        ],
    ),
    (
        "ready with bad capabilities",
        [
            b"w",
            b"",
            HEADER,
            b"READY",
            _body(
                worker_id="w",
                session="s",
                device="cpu",
                memory_bytes=0,
                capabilities=[1],
                prefetch=1,
            ),
        ],
    ),
    ("non-string map key", [b"w", b"", HEADER, b"CANCEL", msgpack.packb({1: 2, "v": 1})]),
]


@pytest.mark.parametrize(("name", "frames"), BAD_FRAMES, ids=[n for n, _ in BAD_FRAMES])
def test_bad_frames_raise_protocol_error(name, frames):
    with pytest.raises(ProtocolError):
        from_frames(frames, routed=True)


@given(st.lists(st.binary(max_size=64), max_size=6))
def test_arbitrary_frames_never_raise_anything_but_protocol_error(frames):
    with contextlib.suppress(ProtocolError):
        from_frames(frames, routed=True)


@given(st.binary(max_size=256), st.sampled_from(list(Command)))
def test_arbitrary_bodies_never_raise_anything_but_protocol_error(body, command):
    with contextlib.suppress(ProtocolError):
        decode(command, body)


def test_unencodable_value_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="msgpack"):
        encode(Result((Outcome("t", object()),)))
    with pytest.raises(ProtocolError):
        pack({1j: 2})


def test_join_frames_shape():
    assert join_frames(Command.CANCEL, b"x") == [b"", HEADER, b"CANCEL", b"x"]
    assert join_frames(Command.CANCEL, b"x", b"id") == [b"id", b"", HEADER, b"CANCEL", b"x"]
