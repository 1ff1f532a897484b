"""The broker-worker wire protocol: header, commands, envelope and message types.

A frame sent by a worker's DEALER is ``[b"", HEADER, command, body]``; the broker's ROUTER
sees the same frames with the worker's identity in front. ``body`` is one msgpack map
produced by :mod:`shift.codec`. The message classes here are frozen dataclasses that both
sides build and read; nothing in this module touches a socket.

Tasks and results travel in batches (one TASK frame may carry several tasks, one RESULT
frame several results) so that cheap tasks are not dominated by per-frame costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shift.blocks import BlockData, BlockRef
from shift.errors import ProtocolError

HEADER = b"SHIFTW1"
"""Version frame: a peer speaking another protocol version is refused frame by frame."""

BODY_VERSION = 1
"""Version stored in every msgpack body under ``"v"``."""

DEFAULT_HEARTBEAT_MS = 1000
"""Interval between heartbeats in both directions, unless configured otherwise."""

DEFAULT_LIVENESS = 3
"""Heartbeat intervals a peer may stay silent before it is considered dead."""

MAX_BATCH = 256
"""Most tasks in one TASK frame and most results in one RESULT frame."""


class Command(StrEnum):
    """The commands of the protocol; the wire form is the ASCII name."""

    READY = "READY"
    HEARTBEAT = "HEARTBEAT"
    TASK = "TASK"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    RESULT = "RESULT"
    FAILED = "FAILED"
    CANCEL = "CANCEL"
    DISCONNECT = "DISCONNECT"
    WELCOME = "WELCOME"
    FETCH = "FETCH"
    BLOCK = "BLOCK"
    UPLOAD = "UPLOAD"

    @property
    def wire(self) -> bytes:
        """The command frame as sent on the socket."""
        return self.value.encode("ascii")

    @classmethod
    def from_wire(cls, frame: bytes) -> Command:
        """Parse a command frame.

        Raises:
            ProtocolError: the frame names no known command.
        """
        try:
            return cls(frame.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            known = ", ".join(c.value for c in cls)
            raise ProtocolError(f"unknown command {frame[:32]!r}; known: {known}") from None


@dataclass(frozen=True)
class Envelope:
    """A received frame split into its parts (the body is still encoded).

    Attributes:
        identity: The sender's routing identity (empty on the worker side).
        command: The command.
        body: The msgpack body, not yet decoded.
    """

    identity: bytes
    command: Command
    body: bytes


def join_frames(command: Command, body: bytes, identity: bytes | None = None) -> list[bytes]:
    """Build the frames for one message.

    Args:
        command: The command to send.
        body: The encoded body.
        identity: The peer's identity when sending from the ROUTER; ``None`` from a DEALER.

    Returns:
        The list of frames to pass to ``send_multipart``.
    """
    frames = [b"", HEADER, command.wire, body]
    if identity is not None:
        frames.insert(0, identity)
    return frames


def split_frames(frames: Sequence[bytes], *, routed: bool) -> Envelope:
    """Split received frames into an :class:`Envelope`.

    Args:
        frames: The frames from ``recv_multipart``.
        routed: True on the ROUTER side, where the first frame is the sender's identity.

    Raises:
        ProtocolError: the frames do not have the expected shape or header.
    """
    parts = list(frames)
    identity = b""
    if routed:
        if not parts:
            raise ProtocolError("empty message")
        identity = parts.pop(0)
    if len(parts) != 4:
        raise ProtocolError(f"expected 4 frames after the identity, got {len(parts)}")
    empty, header, command, body = parts
    if empty != b"":
        raise ProtocolError("missing empty delimiter frame")
    if header != HEADER:
        raise ProtocolError(f"unsupported protocol header {header[:32]!r}; expected {HEADER!r}")
    return Envelope(identity, Command.from_wire(command), body)


@dataclass(frozen=True)
class Ready:
    """A worker announces itself (sent on every connect and reconnect).

    Attributes:
        worker_id: Stable worker name, also its socket identity.
        session: Random per process start; a new session under a known id means a restart.
        device: ``cpu``, ``cuda:0``, ...
        memory_bytes: Memory the device offers.
        capabilities: Task kinds the worker can run.
        prefetch: How many tasks the broker may keep in flight on this worker.
        models: Models the worker already holds in memory.
    """

    worker_id: str
    session: str
    device: str
    memory_bytes: int
    capabilities: tuple[str, ...]
    prefetch: int
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Heartbeat:
    """I am alive (both directions). A worker also reports the models it holds."""

    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskItem:
    """One unit of work handed to a worker.

    Attributes:
        task_id: The content hash of the task spec.
        kind: The task kind in the worker's registry.
        payload: Kind-specific parameters (msgpack-able).
        attempt: 1 for the first dispatch, +1 for every worker the task has killed.
        model: The model the task needs, used for affinity; ``None`` when none.
    """

    task_id: str
    kind: str
    payload: dict[str, Any]
    attempt: int = 1
    model: str | None = None


@dataclass(frozen=True)
class Task:
    """A batch of tasks for one worker."""

    items: tuple[TaskItem, ...]


@dataclass(frozen=True)
class Started:
    """A worker is about to run a task on its device thread; the broker answers in kind.

    The worker waits for the broker's answer (up to one heartbeat interval) before it runs
    the task, so if the task then takes the process down, the broker knows it was running
    and charges it the attempt. Tasks a dead worker had not started are not charged.

    Attributes:
        task_id: The task.
        attempt: The attempt about to run.
    """

    task_id: str
    attempt: int = 1


@dataclass(frozen=True)
class Progress:
    """Progress of a running task, ``done`` out of ``total`` units.

    Attributes:
        task_id: The task.
        done: Units done.
        total: Units in all (0 when unknown).
        message: A few words for a person.
        attempt: The attempt the worker runs (from its :class:`TaskItem`).
    """

    task_id: str
    done: float
    total: float
    message: str = ""
    attempt: int = 1


@dataclass(frozen=True)
class Outcome:
    """The value one task produced, how long it ran and for which attempt."""

    task_id: str
    value: Any
    elapsed_s: float = 0.0
    attempt: int = 1


@dataclass(frozen=True)
class Result:
    """A batch of finished tasks."""

    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True)
class Failed:
    """A task raised, was cancelled or could not run.

    Attributes:
        task_id: The task.
        error: What went wrong, for a person.
        retryable: True when another attempt may succeed (a transient failure).
        cancelled: True when the task stopped because it was cancelled.
        attempt: The attempt that failed.
    """

    task_id: str
    error: str
    retryable: bool = False
    cancelled: bool = False
    attempt: int = 1


@dataclass(frozen=True)
class Cancel:
    """The broker asks a worker to stop a task (queued or running)."""

    task_id: str


@dataclass(frozen=True)
class Disconnect:
    """The sender is going away (worker shutdown) or does not know the peer (broker)."""

    reason: str = ""


@dataclass(frozen=True)
class Welcome:
    """The broker's answer to READY: the id of its feature store.

    A worker whose own feature store has the same id shares the broker's disk and moves no
    blocks; any other worker fetches the blocks it lacks and uploads the blocks it writes.

    Attributes:
        store_id: The broker's feature store id; empty when the broker keeps no blocks.
    """

    store_id: str = ""


@dataclass(frozen=True)
class Fetch:
    """A worker asks the broker for a feature block it lacks.

    Attributes:
        request: The worker's number for this request (echoed in the answer).
        ref: The block.
    """

    request: int
    ref: BlockRef


@dataclass(frozen=True)
class Block:
    """The broker's answer to a :class:`Fetch`: the block, or why it has none.

    Attributes:
        request: The request answered.
        ref: The block asked for.
        data: Its bytes and digest; ``None`` when the broker cannot give it.
        error: Why not (empty with data).
    """

    request: int
    ref: BlockRef
    data: BlockData | None = None
    error: str = ""


@dataclass(frozen=True)
class Upload:
    """A worker without the broker's disk sends a block it wrote while running a task.

    The broker keeps it only from the worker the task is assigned to (current attempt),
    for the task's model, and only when its bytes match its digest.

    Attributes:
        task_id: The task that wrote the block.
        attempt: Its attempt.
        data: The block.
    """

    task_id: str
    attempt: int
    data: BlockData


Message = (
    Ready
    | Heartbeat
    | Task
    | Started
    | Progress
    | Result
    | Failed
    | Cancel
    | Disconnect
    | Welcome
    | Fetch
    | Block
    | Upload
)

COMMAND_OF: dict[type, Command] = {
    Ready: Command.READY,
    Heartbeat: Command.HEARTBEAT,
    Task: Command.TASK,
    Started: Command.STARTED,
    Progress: Command.PROGRESS,
    Result: Command.RESULT,
    Failed: Command.FAILED,
    Cancel: Command.CANCEL,
    Disconnect: Command.DISCONNECT,
    Welcome: Command.WELCOME,
    Fetch: Command.FETCH,
    Block: Command.BLOCK,
    Upload: Command.UPLOAD,
}
"""The command that carries each message type."""


@dataclass(frozen=True)
class Timing:
    """Heartbeat interval and liveness, converted once from settings.

    Attributes:
        heartbeat_s: Seconds between heartbeats.
        liveness: Intervals of silence after which a peer is dead.
    """

    heartbeat_s: float = DEFAULT_HEARTBEAT_MS / 1000
    liveness: int = DEFAULT_LIVENESS

    @property
    def expiry_s(self) -> float:
        """Seconds of silence after which a peer is dead."""
        return self.heartbeat_s * self.liveness

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Timing:
        """Build from ``heartbeat_ms`` and ``liveness`` settings.

        Raises:
            ProtocolError: a value is not positive.
        """
        heartbeat_ms = int(settings.get("heartbeat_ms", DEFAULT_HEARTBEAT_MS))
        liveness = int(settings.get("liveness", DEFAULT_LIVENESS))
        if heartbeat_ms <= 0 or liveness <= 0:
            raise ProtocolError(
                f"heartbeat_ms and liveness must be positive, got {heartbeat_ms} and {liveness}"
            )
        return cls(heartbeat_ms / 1000, liveness)
