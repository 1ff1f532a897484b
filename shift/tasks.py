"""Task specs and task states: what a unit of work is and where it stands.

A :class:`TaskSpec` is the boundary form of a unit of work (from REST, the planner or a
benchmark); its identity is the content hash of its canonical form, so two submissions of
the same spec are the same task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shift.errors import SchedulerError
from shift.hashing import content_hash


class TaskState(StrEnum):
    """Where a task stands. ``succeeded``, ``failed`` and ``cancelled`` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """True for the states a task never leaves by itself."""
        return self in _FINAL


_FINAL = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})


@dataclass(frozen=True)
class Outcome:
    """A task's final state as committed: the result of a succeeded task, the reason of a
    failed or cancelled one."""

    state: TaskState
    value: Any = None
    error: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """A unit of work as submitted.

    Attributes:
        kind: The task kind a worker registry runs (``echo``, ``sleep``, ...).
        payload: Kind-specific parameters; JSON values only.
        model: The model the task needs, if any; used to prefer a worker holding it.
        task_id: The content hash of ``kind``, ``payload`` and ``model`` (computed).
    """

    kind: str
    payload: dict[str, Any]
    model: str | None = None
    task_id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise SchedulerError(f"task kind must be a non-empty string, got {self.kind!r}")
        if not isinstance(self.payload, dict):
            raise SchedulerError(
                f"task payload must be an object, got {type(self.payload).__name__}"
            )
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise SchedulerError(f"task model must be a non-empty string, got {self.model!r}")
        identity = content_hash({"kind": self.kind, "payload": self.payload, "model": self.model})
        object.__setattr__(self, "task_id", identity)

    @classmethod
    def from_json(cls, value: Any) -> TaskSpec:
        """Build a spec from a decoded JSON object ``{"kind", "payload", "model"?}``.

        Raises:
            SchedulerError: the object is not a valid spec; the message names the field.
        """
        if not isinstance(value, dict):
            raise SchedulerError(f"a task must be an object, got {type(value).__name__}")
        unknown = sorted(set(value) - {"kind", "payload", "model"})
        if unknown:
            raise SchedulerError(
                f"unknown task field(s) {', '.join(unknown)}; allowed: kind, payload, model"
            )
        if "kind" not in value:
            raise SchedulerError("a task needs a 'kind'")
        return cls(value["kind"], value.get("payload", {}), value.get("model"))

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-able form (without the identity)."""
        return {"kind": self.kind, "payload": self.payload, "model": self.model}
