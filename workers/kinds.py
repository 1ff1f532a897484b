"""The registry of task kinds a worker can run, and the context a task runs with.

A kind is a function ``run(payload, ctx) -> value`` registered with :func:`task_kind`.
Kinds marked ``inline`` are cheap and run on the event loop; every other kind runs on the
worker's device thread, so heartbeats keep flowing while it works. Later issues register
inference, proxy and fine-tune kinds the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shift.errors import WorkerError
from shift.registry import lookup, register_once, summary

KindFunction = Callable[[dict[str, Any], "TaskContext"], Any]


class Retry(WorkerError):
    """A transient failure: the broker may run the task again (up to ``max_attempts``)."""

    code = "retry"


class Cancelled(WorkerError):
    """The task stopped because it was cancelled."""

    code = "cancelled"


@dataclass(frozen=True)
class TaskKind:
    """A registered task kind.

    Attributes:
        name: The name tasks use in their ``kind`` field.
        run: The function doing the work.
        inline: True for cheap kinds run directly on the event loop.
        help: One line for ``shift worker --help`` and the docs.
    """

    name: str
    run: KindFunction
    inline: bool
    help: str


KINDS: dict[str, TaskKind] = {}
"""Every registered kind by name."""


def task_kind(name: str, *, inline: bool = False) -> Callable[[KindFunction], KindFunction]:
    """Register a function as the task kind ``name``.

    Raises:
        WorkerError: ``name`` is already registered.
    """

    def register(function: KindFunction) -> KindFunction:
        entry = TaskKind(name, function, inline, summary(function))
        register_once(KINDS, name, entry, "task kind", WorkerError)
        return function

    return register


def get_kind(name: str, kinds: dict[str, TaskKind] | None = None) -> TaskKind:
    """Look up a kind.

    Raises:
        WorkerError: the kind is unknown; the message lists the known ones and the closest.
    """
    return lookup(KINDS if kinds is None else kinds, name, "task kind", WorkerError)


class TaskContext:
    """What a running task may use besides its payload.

    Args:
        task_id: The task's identity.
        attempt: Its attempt number.
        model: The model it needs, if any.
        report: Called with ``(done, total, message)`` to send progress; thread-safe.
        device: The worker's torch device (``cpu``, ``cuda:0``, ...).
    """

    def __init__(
        self,
        task_id: str,
        attempt: int,
        model: str | None,
        report: Callable[[float, float, str], None],
        device: str = "cpu",
    ) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.model = model
        self.device = device
        self.cancelled = threading.Event()
        self._report = report

    def progress(self, done: float, total: float, message: str = "") -> None:
        """Report progress (safe to call from the device thread)."""
        self._report(done, total, message)

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` if the task has been cancelled."""
        if self.cancelled.is_set():
            raise Cancelled(f"task {self.task_id} was cancelled")


def device_of(payload: dict[str, Any], ctx: TaskContext | None) -> str:
    """The torch device a task runs on: the payload's ``device`` if it names one, else the
    worker's (``cpu`` without a context)."""
    default = "cpu" if ctx is None else ctx.device
    return str(payload.get("device") or default)
