"""Task kinds only the integration tests load (``--plugin kinds_for_tests``)."""

from __future__ import annotations

import os
from typing import Any

from workers.kinds import TaskContext, task_kind


@task_kind("crash")
def crash(payload: dict[str, Any], ctx: TaskContext) -> None:
    """Kill the worker process outright, as a segfaulting model would."""
    os._exit(17)
