"""Discrete-event simulation of a search: the broker's dispatcher on a fake clock.

The event loop keeps a heap of timed events instead of sockets. The broker side is the
broker's own pure :class:`shift.dispatch.Dispatcher` (READY, submit, assign, complete,
worker lost), so the simulated dispatch follows the broker's rules: ``prefetch`` tasks in
flight per worker, free slots first take tasks of a model the worker holds, then the oldest.
The search side is a :class:`simulator.searches.Search` (exhaustive, or the broker's
:class:`shift.halving.SuccessiveHalving`).

Each simulated worker runs its tasks one at a time in arrival order and keeps an LRU of
``lru_models`` loaded models (``workers.models.MODEL_CACHE``): a task whose model is not
held pays the model's ``load_s`` first, and loading one more evicts the least recently
used. After each result the worker's held models reach the broker (as its heartbeat does).

The broker is a single server: every task costs it ``Overheads.broker_task_s`` of serial
work (its measured round-trip rate), so with enough devices the dispatches queue behind it
and the simulated makespan shows the bottleneck.

A failure kills a device at a time: its running task is lost, and after ``detect_s`` (the
broker's liveness timeout) the dispatcher's ``worker_lost`` puts its in-flight tasks back in
the queue, exactly as the broker does: the running task (its start was reported) with
``attempt + 1``, the prefetched ones free. A device may come back later as
a new session with an empty LRU.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from shift.dispatch import Dispatcher, Effects
from shift.protocol import Outcome, Ready, Started
from shift.tasks import TaskSpec, TaskState
from simulator.costs import Overheads, Workload
from simulator.searches import Job, Search
from simulator.simulator_errors import SimulatorError

CAPABILITIES = ("embed", "classify")


class EngineError(SimulatorError):
    """Invalid cluster settings or failures (a device that does not exist, a negative time)."""

    code = "engine_error"


@dataclass(frozen=True)
class Failure:
    """A device dies at ``at_s``; with ``back_s`` it rejoins (empty LRU) at that time."""

    device: int
    at_s: float
    back_s: float | None = None


@dataclass(frozen=True)
class Cluster:
    """The devices and the broker's liveness settings.

    Attributes:
        devices: Number of workers (one per device).
        prefetch: Tasks in flight per worker (the ``prefetch`` setting).
        lru_models: Models a worker keeps loaded (``workers.models.MODEL_CACHE``).
        detect_s: Silence before the broker declares a worker dead (heartbeat x liveness).
        heartbeat_s: Heartbeat interval (counted in the message rate).
        max_attempts: Workers a task may kill before it fails.
        held: Models each device holds at the start, least recently used first.
    """

    devices: int
    prefetch: int = 2
    lru_models: int = 2
    detect_s: float = 3.0
    heartbeat_s: float = 1.0
    max_attempts: int = 3
    held: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        for name in ("devices", "prefetch", "lru_models", "max_attempts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EngineError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.detect_s < 0 or self.heartbeat_s <= 0:
            raise EngineError("detect_s must be >= 0 and heartbeat_s > 0")
        if len(self.held) > self.devices:
            raise EngineError(
                f"held lists {len(self.held)} devices, the cluster has {self.devices}"
            )


@dataclass(frozen=True)
class Segment:
    """A span of one device's time: ``load`` (a model) or a task kind."""

    device: int
    start_s: float
    end_s: float
    kind: str
    model: str


@dataclass(frozen=True)
class DeviceStats:
    """One device's totals."""

    device: int
    busy_s: float
    load_s: float
    tasks: int
    loads: int


@dataclass(frozen=True)
class SimResult:
    """What a simulated search did.

    Attributes:
        makespan_s: Query created to query finished.
        devices: Per-device totals.
        tasks: Tasks completed (a re-run after a failure counts again).
        rows: Rows processed by embed and classify tasks.
        loads: Model loads in all.
        requeued: Tasks put back in the queue by a lost worker.
        failed: Tasks that failed after ``max_attempts``.
        dispatches: Dispatch decisions (tasks assigned to a worker).
        messages: Frames between broker and workers (READY, TASK batches, RESULT,
            heartbeats both ways).
        broker_busy_s: Serial broker work.
        segments: The Gantt chart (empty unless asked for).
    """

    makespan_s: float
    devices: tuple[DeviceStats, ...]
    tasks: int
    rows: int
    loads: int
    requeued: int
    failed: int
    dispatches: int
    messages: int
    broker_busy_s: float
    segments: tuple[Segment, ...] = ()

    @property
    def utilisation(self) -> float:
        """Busy device time over devices x makespan."""
        total = sum(d.busy_s for d in self.devices)
        return total / (len(self.devices) * self.makespan_s) if self.makespan_s else 0.0

    @property
    def broker_utilisation(self) -> float:
        """Broker busy time over the makespan."""
        return self.broker_busy_s / self.makespan_s if self.makespan_s else 0.0

    @property
    def dispatch_rate(self) -> float:
        """Dispatch decisions per second of makespan."""
        return self.dispatches / self.makespan_s if self.makespan_s else 0.0

    @property
    def message_rate(self) -> float:
        """Messages per second of makespan."""
        return self.messages / self.makespan_s if self.makespan_s else 0.0


@dataclass
class _Device:
    index: int
    worker_id: str
    session: int = 0
    alive: bool = True
    queue: deque[str] = field(default_factory=deque)
    running: str | None = None
    lru: OrderedDict[str, None] = field(default_factory=OrderedDict)
    busy_s: float = 0.0
    load_s: float = 0.0
    tasks: int = 0
    loads: int = 0


class Simulation:
    """One simulated search on a cluster.

    Args:
        workload: Models and data sizes (model load costs come from here).
        search: What to run.
        cluster: Devices and liveness settings.
        overheads: Shell costs.
        failures: Devices dying (and maybe coming back).
        keep_segments: Record the Gantt chart.
    """

    def __init__(
        self,
        workload: Workload,
        search: Search,
        cluster: Cluster,
        overheads: Overheads | None = None,
        failures: tuple[Failure, ...] = (),
        keep_segments: bool = True,
    ) -> None:
        self.workload = workload
        self.search = search
        self.cluster = cluster
        self.overheads = overheads or Overheads()
        for failure in failures:
            if not 0 <= failure.device < cluster.devices or failure.at_s < 0:
                raise EngineError(
                    f"failure {failure}: device must be 0..{cluster.devices - 1}, at_s >= 0"
                )
        self.failures = failures
        self.keep_segments = keep_segments
        self.dispatcher = Dispatcher(cluster.max_attempts)
        self._heap: list[tuple[float, int, str, Any]] = []
        self._seq = itertools.count()
        self._jobs: dict[str, Job] = {}
        self._attempts: dict[str, int] = {}  # the attempt each task was last dispatched with
        self._devices = [_Device(i, f"d{i}") for i in range(cluster.devices)]
        self._by_id = {d.worker_id: d for d in self._devices}
        self._broker_free = 0.0
        self._segments: list[Segment] = []
        self._last_event = 0.0
        self._counts = dict.fromkeys(
            ("tasks", "rows", "requeued", "failed", "dispatches", "messages"), 0
        )
        self._broker_busy = 0.0
        self._inbox: list[tuple[_Device, str]] = []
        self._pump_at: float | None = None

    # ---- the loop ------------------------------------------------------------------------

    def run(self) -> SimResult:
        """Run to the end of the search; returns the figures."""
        for device in self._devices:
            held = self.cluster.held[device.index] if device.index < len(self.cluster.held) else ()
            for model in held[-self.cluster.lru_models :]:
                device.lru[model] = None
            self._join(device, 0.0)
        for failure in self.failures:
            self._push(failure.at_s, "die", failure)
        self._push(self.overheads.start_s, "submit", self.search.start())
        while self._heap:
            now, _, kind, data = heapq.heappop(self._heap)
            if kind == "submit":
                self._submit(data, now)
            elif kind == "done":
                self._done(data, now)
            elif kind == "pump":
                self._pump(now)
            elif kind == "arrive":
                self._arrive(data, now)
            elif kind == "die":
                self._die(data, now)
            elif kind == "lost":
                self._apply(self.dispatcher.worker_lost(data, now), now)
            elif kind == "back":
                self._back(data, now)
            if self.search.done and not self._busy():
                self._last_event = now
                return self._result()
        raise EngineError(
            "the search could not finish: no live device is left to run its tasks; "
            "give a failed device a back_s or use more devices"
        )

    def _busy(self) -> bool:
        return any(d.running for d in self._devices if d.alive)

    def _push(self, at: float, kind: str, data: Any) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), kind, data))

    # ---- broker side -----------------------------------------------------------------------

    def _broker(self, now: float, tasks: int) -> float:
        """Serial broker work for ``tasks`` tasks starting no earlier than ``now``."""
        cost = tasks * self.overheads.broker_task_s
        start = max(now, self._broker_free)
        self._broker_free = start + cost
        self._broker_busy += cost
        return self._broker_free

    def _submit(self, jobs: list[Job], now: float) -> None:
        effects = Effects()
        for job in jobs:
            spec = TaskSpec(job.kind, {"key": job.key}, job.model)
            self._jobs[spec.task_id] = job
            effects.extend(self.dispatcher.submit(spec, now)[1])
        self._apply(effects, now)

    def _apply(self, effects: Effects, now: float) -> None:
        """Handle a dispatcher event's effects, then fill free slots."""
        for change in effects.changes:
            if change.state is TaskState.QUEUED and change.attempt > 1:
                self._counts["requeued"] += 1
            elif change.state is TaskState.FAILED:
                self._counts["failed"] += 1
                self._release(self.search.finished(self._jobs[change.task_id], False), now)
        assigned = self.dispatcher.assign(now)
        for batch in assigned.dispatches:
            units = sum(self._jobs[i.task_id].units for i in batch.items)
            at = self._broker(now, units)
            self._counts["dispatches"] += units
            self._counts["messages"] += 1
            self._attempts.update((i.task_id, i.attempt) for i in batch.items)
            self._push(at, "arrive", (batch.worker_id, [i.task_id for i in batch.items]))

    def _release(self, jobs: list[Job], now: float) -> None:
        if jobs:
            self._push(now + self.overheads.phase_s, "submit", jobs)

    # ---- worker side -----------------------------------------------------------------------

    def _join(self, device: _Device, now: float) -> None:
        device.session += 1
        device.alive = True
        ready = Ready(
            device.worker_id,
            f"s{device.session}",
            "sim",
            0,
            CAPABILITIES,
            self.cluster.prefetch,
            tuple(device.lru),
        )
        self._counts["messages"] += 1
        self._apply(self.dispatcher.worker_ready(ready, now), now)

    def _arrive(self, data: tuple[str, list[str]], now: float) -> None:
        device = self._by_id[data[0]]
        if not device.alive:
            return
        device.queue.extend(data[1])
        self._start(device, now)

    def _start(self, device: _Device, now: float) -> None:
        if device.running is not None or not device.queue:
            return
        task_id = device.queue.popleft()
        job = self._jobs[task_id]
        load = 0.0
        if job.model in device.lru:
            device.lru.move_to_end(job.model)
        else:
            load = self.workload.model(job.model).load_s
            device.lru[job.model] = None
            while len(device.lru) > self.cluster.lru_models:
                device.lru.popitem(last=False)
            device.loads += 1
        end = now + load + job.compute_s + self.overheads.task_s
        if self.keep_segments:
            if load:
                self._segments.append(Segment(device.index, now, now + load, "load", job.model))
            self._segments.append(Segment(device.index, now + load, end, job.kind, job.model))
        device.running = task_id
        started = Started(task_id, self._attempts[task_id])
        self.dispatcher.started(device.worker_id, started)  # as the worker runtime does
        device.busy_s += end - now
        device.load_s += load
        self._push(end, "done", (device.index, device.session, task_id))

    def _done(self, data: tuple[int, int, str], now: float) -> None:
        index, session, task_id = data
        device = self._devices[index]
        if not device.alive or device.session != session:
            return  # died while running: the result never left
        device.running = None
        device.tasks += 1
        self._start(device, now)  # the next prefetched task starts at once
        self._counts["messages"] += self._jobs[task_id].units
        self._inbox.append((device, task_id))
        if self._pump_at is None:
            self._pump_at = max(now, self._broker_free)
            self._push(self._pump_at, "pump", None)

    def _pump(self, now: float) -> None:
        """One broker turn: take every result received so far, then one assign."""
        self._pump_at = None
        inbox, self._inbox = self._inbox, []
        effects = Effects()
        released: list[Job] = []
        for device, task_id in inbox:
            job = self._jobs[task_id]
            outcome = Outcome(task_id, None, attempt=self._attempts[task_id])
            done = self.dispatcher.complete(device.worker_id, outcome)
            if device.alive:
                self.dispatcher.worker_models(device.worker_id, tuple(device.lru))
            if any(c.task_id == task_id and c.state is TaskState.SUCCEEDED for c in done.changes):
                self._counts["tasks"] += 1
                self._counts["rows"] += job.rows
                released += self.search.finished(job, True)
            effects.extend(done)
        self._release(released, now)
        self._apply(effects, now)

    def _die(self, failure: Failure, now: float) -> None:
        device = self._devices[failure.device]
        if not device.alive:
            return
        device.alive = False
        if device.running is not None:
            self._cut(device, now)
        device.running = None
        device.queue.clear()
        self._push(now + self.cluster.detect_s, "lost", device.worker_id)
        if failure.back_s is not None:
            self._push(max(failure.back_s, now + self.cluster.detect_s), "back", device.index)

    def _cut(self, device: _Device, now: float) -> None:
        """Trim the running task's Gantt segments and busy time at the moment of death."""
        kept: list[Segment] = []
        cut = 0.0
        for segment in self._segments:
            if segment.device == device.index and segment.end_s > now:
                cut += segment.end_s - max(now, segment.start_s)
                if segment.start_s < now:
                    kept.append(
                        Segment(segment.device, segment.start_s, now, "lost", segment.model)
                    )
            else:
                kept.append(segment)
        if self.keep_segments:
            self._segments = kept
        device.busy_s -= cut

    def _back(self, index: int, now: float) -> None:
        device = self._devices[index]
        device.lru.clear()
        self._join(device, now)

    # ---- figures -----------------------------------------------------------------------

    def _result(self) -> SimResult:
        makespan = self._last_event + self.overheads.end_s
        devices = len(self._devices)
        heartbeats = 2 * devices * int(makespan / self.cluster.heartbeat_s)
        return SimResult(
            makespan_s=makespan,
            devices=tuple(
                DeviceStats(d.index, d.busy_s, d.load_s, d.tasks, d.loads) for d in self._devices
            ),
            tasks=self._counts["tasks"],
            rows=self._counts["rows"],
            loads=sum(d.loads for d in self._devices),
            requeued=self._counts["requeued"],
            failed=self._counts["failed"],
            dispatches=self._counts["dispatches"],
            messages=self._counts["messages"] + heartbeats,
            broker_busy_s=self._broker_busy,
            segments=tuple(self._segments),
        )


def simulate(
    workload: Workload,
    search: Search,
    cluster: Cluster,
    overheads: Overheads | None = None,
    failures: tuple[Failure, ...] = (),
    keep_segments: bool = True,
) -> SimResult:
    """Run one simulated search (see :class:`Simulation`)."""
    return Simulation(workload, search, cluster, overheads, failures, keep_segments).run()
