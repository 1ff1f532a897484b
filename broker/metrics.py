"""Broker metrics and their Prometheus text rendering (exposition format 0.0.4)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
"""Upper bounds of the dispatch-latency histogram buckets, in seconds."""


@dataclass
class Histogram:
    """A cumulative Prometheus histogram with fixed buckets."""

    buckets: tuple[float, ...] = LATENCY_BUCKETS_S
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe_many(self, values: Iterable[float]) -> None:
        """Record observations."""
        for value in values:
            self.counts[bisect.bisect_left(self.buckets, value)] += 1
            self.total += value
            self.n += 1

    def render(self, name: str, help_text: str) -> list[str]:
        """The exposition lines for this histogram."""
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        running = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            running += count
            lines.append(f'{name}_bucket{{le="{bound}"}} {running}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.n}')
        lines.append(f"{name}_sum {self.total}")
        lines.append(f"{name}_count {self.n}")
        return lines


@dataclass
class Counters:
    """Monotonic counters the broker increments."""

    frames_in: int = 0
    frames_out: int = 0
    bad_frames: int = 0
    workers_lost: int = 0
    reports_refused: int = 0
    auth_denied: int = 0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(
    *,
    tasks_by_state: dict[str, int],
    workers_by_device: dict[str, int],
    queue_depth: int,
    counters: Counters,
    dispatch_latency: Histogram,
) -> str:
    """Render every broker metric as Prometheus text."""
    lines = ["# HELP shift_tasks Tasks known to the broker, by state.", "# TYPE shift_tasks gauge"]
    lines += [f'shift_tasks{{state="{_escape(s)}"}} {n}' for s, n in sorted(tasks_by_state.items())]
    lines += ["# HELP shift_workers Live workers, by device.", "# TYPE shift_workers gauge"]
    lines += [
        f'shift_workers{{device="{_escape(d)}"}} {n}' for d, n in sorted(workers_by_device.items())
    ]
    lines += [
        "# HELP shift_queue_depth Tasks waiting for a worker.",
        "# TYPE shift_queue_depth gauge",
        f"shift_queue_depth {queue_depth}",
    ]
    for name, value, help_text in (
        ("shift_frames_received_total", counters.frames_in, "Frames received from workers."),
        ("shift_frames_sent_total", counters.frames_out, "Frames sent to workers."),
        ("shift_bad_frames_total", counters.bad_frames, "Frames dropped as undecodable."),
        ("shift_workers_lost_total", counters.workers_lost, "Workers declared dead."),
        (
            "shift_reports_refused_total",
            counters.reports_refused,
            "RESULT, FAILED and PROGRESS reports refused: not from the task's assignee "
            "or not for its current attempt.",
        ),
        (
            "shift_auth_denied_total",
            counters.auth_denied,
            "Worker connections refused: CurveZMQ key not allowed.",
        ),
    ):
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {value}"]
    lines += dispatch_latency.render(
        "shift_dispatch_latency_seconds", "Time tasks wait in the queue before dispatch."
    )
    return "\n".join(lines) + "\n"
