"""Built-in task kinds for tests, benchmarks and smoke checks: ``echo``, ``sleep``, ``fail``."""

from __future__ import annotations

from typing import Any

from shift.errors import WorkerError
from workers.kinds import Retry, TaskContext, task_kind


@task_kind("echo", inline=True)
def echo(payload: dict[str, Any], ctx: TaskContext) -> Any:
    """Return ``payload["value"]`` (or the whole payload): a no-op round trip."""
    return payload.get("value", payload)


@task_kind("sleep")
def sleep(payload: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    """Sleep ``seconds`` in ``steps`` steps, reporting progress; stops early when cancelled."""
    seconds = payload.get("seconds", 0.1)
    steps = payload.get("steps", 1)
    if not isinstance(seconds, int | float) or seconds < 0:
        raise WorkerError(f"sleep needs a non-negative number of seconds, got {seconds!r}")
    if not isinstance(steps, int) or steps < 1:
        raise WorkerError(f"sleep needs a positive integer number of steps, got {steps!r}")
    for step in range(steps):
        if ctx.cancelled.wait(seconds / steps):
            ctx.check_cancelled()
        ctx.progress(step + 1, steps)
    return {"slept_s": seconds, "value": payload.get("value")}


@task_kind("fail", inline=True)
def fail(payload: dict[str, Any], ctx: TaskContext) -> None:
    """Raise with ``message``; ``retryable`` makes it a transient failure."""
    message = str(payload.get("message", "failed on purpose"))
    if payload.get("retryable"):
        raise Retry(message)
    raise WorkerError(message)
