"""Broker metrics and their Prometheus text, written by ``prometheus_client``.

The broker increments plain integer :class:`Counters` (``counters.frames_in += 1`` on the
hot path costs nothing) and observes dispatch latencies into a :class:`Histogram` (a
``prometheus_client`` histogram). :func:`render` collects them, with the gauges read from
the live state, into a :class:`~prometheus_client.CollectorRegistry` of that broker's own,
never the process-wide default registry, so several brokers in one process (tests) never
share or collide, and ``prometheus_client`` writes the exposition text (format 0.0.4).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields

import prometheus_client
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
"""Upper bounds of the dispatch-latency histogram buckets, in seconds."""

DISPATCH_LATENCY = "shift_dispatch_latency_seconds"


class Histogram:
    """The dispatch-latency histogram: a ``prometheus_client`` histogram with fixed buckets.

    It belongs to no registry of its own; :func:`render` collects it into the broker's.
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.buckets = buckets
        self._metric = prometheus_client.Histogram(
            DISPATCH_LATENCY,
            "Time tasks wait in the queue before dispatch.",
            buckets=buckets,
            registry=None,
        )

    def observe_many(self, values: Iterable[float]) -> None:
        """Record observations (seconds)."""
        for value in values:
            self._metric.observe(value)

    def collect(self) -> Iterable[Metric]:
        """The histogram's metric family (buckets, ``_sum``, ``_count``)."""
        return self._metric.collect()


@dataclass
class Counters:
    """Monotonic counters the broker increments; :data:`COUNTER_METRICS` names each."""

    frames_in: int = 0
    frames_out: int = 0
    bad_frames: int = 0
    workers_lost: int = 0
    reports_refused: int = 0
    auth_denied: int = 0


COUNTER_METRICS: dict[str, tuple[str, str]] = {
    "frames_in": ("shift_frames_received_total", "Frames received from workers."),
    "frames_out": ("shift_frames_sent_total", "Frames sent to workers."),
    "bad_frames": ("shift_bad_frames_total", "Frames dropped as undecodable."),
    "workers_lost": ("shift_workers_lost_total", "Workers declared dead."),
    "reports_refused": (
        "shift_reports_refused_total",
        "RESULT, FAILED and PROGRESS reports refused: not from the task's assignee "
        "or not for its current attempt.",
    ),
    "auth_denied": (
        "shift_auth_denied_total",
        "Worker connections refused: CurveZMQ key not allowed.",
    ),
}
"""Metric name and help of each :class:`Counters` field (a test checks every field has one)."""


@dataclass(frozen=True, eq=False)
class _Snapshot:
    """A collector of one scrape: the live gauges, the counters and the histogram."""

    tasks_by_state: dict[str, int]
    workers_by_device: dict[str, int]
    queue_depth: int
    counters: Counters
    dispatch_latency: Histogram

    def collect(self) -> Iterator[Metric]:
        """The metric families of this scrape (the ``prometheus_client`` collector API)."""
        tasks = GaugeMetricFamily(
            "shift_tasks", "Tasks known to the broker, by state.", labels=["state"]
        )
        for state, count in sorted(self.tasks_by_state.items()):
            tasks.add_metric([state], count)
        yield tasks
        workers = GaugeMetricFamily("shift_workers", "Live workers, by device.", labels=["device"])
        for device, count in sorted(self.workers_by_device.items()):
            workers.add_metric([device], count)
        yield workers
        yield GaugeMetricFamily(
            "shift_queue_depth", "Tasks waiting for a worker.", value=self.queue_depth
        )
        for item in fields(self.counters):
            name, help_text = COUNTER_METRICS[item.name]
            yield CounterMetricFamily(name, help_text, value=getattr(self.counters, item.name))
        yield from self.dispatch_latency.collect()


def _integer_line(line: str) -> str:
    if line.startswith("#") or " " not in line:
        return line
    head, _, value = line.rpartition(" ")
    try:
        number = float(value)
    except ValueError:
        return line
    if math.isfinite(number) and number.is_integer() and abs(number) < 2**53:
        return f"{head} {int(number)}"
    return line


def _integers(text: str) -> str:
    """Write whole-number samples as integers (``shift_tasks 3``, not ``3.0`` or ``3e+06``)."""
    return "\n".join(_integer_line(line) for line in text.split("\n"))


def render(
    *,
    tasks_by_state: dict[str, int],
    workers_by_device: dict[str, int],
    queue_depth: int,
    counters: Counters,
    dispatch_latency: Histogram,
) -> str:
    """Render every broker metric as Prometheus text.

    Counts are whole numbers and are written as such (``prometheus_client`` writes every
    sample as a float, ``3.0``; both are valid exposition text, and readers that parse the
    counts as integers keep working).
    """
    registry = CollectorRegistry(auto_describe=False)
    snapshot: Collector = _Snapshot(
        tasks_by_state, workers_by_device, queue_depth, counters, dispatch_latency
    )
    registry.register(snapshot)
    return _integers(prometheus_client.generate_latest(registry).decode("utf-8"))
