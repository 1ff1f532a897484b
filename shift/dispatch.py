"""The dispatcher: a pure state machine over tasks and workers.

It holds the queue, the workers' slots and every task's state, takes events (submit, ready,
result, failure, worker lost, cancel) with the current time, and returns :class:`Effects`:
state changes to persist, batches to send, cancellations to forward. The broker's shell
turns those into SQLite writes and ZeroMQ frames; this module never touches either.

Rules:

- A task's identity is its content hash; submitting a queued, running or succeeded task
  again returns the existing one. A failed or cancelled task submitted again runs afresh.
- A worker gets at most ``prefetch`` tasks in flight. Idle slots first take queued tasks
  for models the worker holds, then the oldest tasks it can run, round robin over workers.
- A task of an :data:`EXCLUSIVE_KINDS` kind (minutes of work, e.g. ``finetune``) goes only
  to a worker with nothing in flight, and nothing is prefetched behind it: no task waits
  behind a fine-tune while another worker could run it.
- A worker announces at most ``prefetch_max`` slots, whatever its READY asks for.
- STARTED, PROGRESS, RESULT and FAILED are accepted only from the registered worker the
  task is assigned to, and only for the task's current attempt. Anything else is refused
  (the effects list it, so the shell can count and log it) and changes nothing: a peer
  cannot finish, fail or fake progress of a task it does not hold. A late frame about a
  task that finished while still on its worker (cancelled) only frees the worker's slot.
- A worker that dies charges one attempt to the task it had started (it sent STARTED or
  PROGRESS for it; the runtime sends STARTED, and waits for the broker's answer, before it
  runs a device-thread task); its other in-flight tasks go back to the queue free. A task
  whose ``attempt`` reaches ``max_attempts`` when its worker dies fails with a clear
  error. So a peer that takes tasks and vanishes without running them cannot make a task
  fail. A worker that leaves cleanly, or reconnects with the same session, charges nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shift.errors import SchedulerError
from shift.protocol import Failed, Outcome, Progress, Ready, Started, TaskItem
from shift.tasks import TaskSpec, TaskState

EXCLUSIVE_KINDS = frozenset({"finetune"})
"""Kinds that occupy a worker alone (see the module docstring)."""

MODEL_MEMORY = 4
"""How many recently used models the dispatcher remembers per worker for affinity."""


@dataclass(frozen=True)
class Change:
    """A task's new state, to be persisted.

    Attributes:
        task_id: The task.
        state: Its new state.
        attempt: Its attempt number.
        worker: The worker it runs on (or ran on last), if any.
        spec: Set when the task is new (the store inserts it).
        value: The result, for ``succeeded``.
        error: The reason, for ``failed`` and ``cancelled``.
    """

    task_id: str
    state: TaskState
    attempt: int
    worker: str | None = None
    spec: TaskSpec | None = None
    value: Any = None
    error: str | None = None


class Refused(StrEnum):
    """Why a RESULT, FAILED or PROGRESS was refused."""

    UNREGISTERED = "unregistered"
    UNKNOWN_TASK = "unknown_task"
    NOT_ASSIGNED = "not_assigned"
    STALE_ATTEMPT = "stale_attempt"


@dataclass(frozen=True)
class Refusal:
    """A frame about a task that its sender may not report on.

    Attributes:
        worker_id: The sender.
        task_id: The task the frame names.
        attempt: The attempt the frame names.
        reason: Why it was refused.
    """

    worker_id: str
    task_id: str
    attempt: int
    reason: Refused


@dataclass(frozen=True)
class Dispatch:
    """A batch of tasks to send to one worker."""

    worker_id: str
    items: tuple[TaskItem, ...]


@dataclass(frozen=True)
class CancelOrder:
    """Tell ``worker_id`` to stop ``task_id``."""

    worker_id: str
    task_id: str


@dataclass
class Effects:
    """What the shell must do after an event.

    Attributes:
        changes: State changes to persist, in order.
        dispatches: Batches to send.
        cancels: Cancellations to forward to workers.
        dispatch_latency_s: Queue wait of every task dispatched.
        refused: Frames refused because their sender does not hold the task.
    """

    changes: list[Change] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    cancels: list[CancelOrder] = field(default_factory=list)
    dispatch_latency_s: list[float] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        """Append another event's effects to these."""
        self.changes.extend(other.changes)
        self.dispatches.extend(other.dispatches)
        self.cancels.extend(other.cancels)
        self.dispatch_latency_s.extend(other.dispatch_latency_s)
        self.refused.extend(other.refused)


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission.

    Attributes:
        task_id: The task's identity.
        state: Its state after the submission.
        created: False when identical work already existed (queued, running or succeeded).
    """

    task_id: str
    state: TaskState
    created: bool


@dataclass
class _Task:
    spec: TaskSpec
    seq: int
    state: TaskState
    attempt: int
    queued_at: float
    worker: str | None = None
    started: bool = False

    @property
    def task_id(self) -> str:
        """The task's content hash."""
        return self.spec.task_id


@dataclass
class WorkerView:
    """What the dispatcher knows about one worker (read-only for callers)."""

    worker_id: str
    session: str
    device: str
    memory_bytes: int
    capabilities: frozenset[str]
    prefetch: int
    models: list[str] = field(default_factory=list)
    inflight: dict[str, None] = field(default_factory=dict)
    exclusive: set[str] = field(default_factory=set)

    @property
    def free(self) -> int:
        """Slots this worker has for more tasks."""
        return self.prefetch - len(self.inflight)

    def release(self, task_id: str) -> None:
        """The worker no longer holds ``task_id`` (it reported on it)."""
        self.inflight.pop(task_id, None)
        self.exclusive.discard(task_id)

    def hold(self, model: str) -> None:
        """Record that the worker has ``model`` loaded (most recent last)."""
        if model in self.models:
            self.models.remove(model)
        self.models.append(model)
        del self.models[:-MODEL_MEMORY]


class Dispatcher:
    """The task and worker state machine.

    Args:
        max_attempts: Workers a task may kill before it fails.
        prefetch_max: Most slots one worker gets, whatever its READY asks for.
    """

    def __init__(self, max_attempts: int = 3, prefetch_max: int = 256) -> None:
        if max_attempts < 1:
            raise SchedulerError(f"max_attempts must be at least 1, got {max_attempts}")
        if prefetch_max < 1:
            raise SchedulerError(f"prefetch_max must be at least 1, got {prefetch_max}")
        self.max_attempts = max_attempts
        self.prefetch_max = prefetch_max
        self._tasks: dict[str, _Task] = {}
        self._final: dict[str, TaskState] = {}
        self._by_kind: dict[str, OrderedDict[str, None]] = {}
        self._by_model: dict[str, OrderedDict[str, None]] = {}
        self._workers: dict[str, WorkerView] = {}
        self._seq = 0

    # ---- queries -------------------------------------------------------------------------

    @property
    def workers(self) -> dict[str, WorkerView]:
        """The live workers by id."""
        return self._workers

    def state_of(self, task_id: str) -> TaskState | None:
        """The task's state, or ``None`` if the dispatcher has never seen it."""
        task = self._tasks.get(task_id)
        return task.state if task else self._final.get(task_id)

    def queue_depth(self) -> int:
        """Tasks waiting for a worker."""
        return sum(len(q) for q in self._by_kind.values())

    def counts(self) -> dict[TaskState, int]:
        """Number of tasks in each state."""
        counts = dict.fromkeys(TaskState, 0)
        for task in self._tasks.values():
            counts[task.state] += 1
        for state in self._final.values():
            counts[state] += 1
        return counts

    # ---- tasks ---------------------------------------------------------------------------

    def restore(self, spec: TaskSpec, state: TaskState, attempt: int, now: float) -> None:
        """Load a task from the store at startup; a ``running`` task goes back to the queue.

        A broker restart is not the task's fault, so the attempt is kept as it was.
        """
        if state.final:
            self._final[spec.task_id] = state
            return
        self._enqueue(_Task(spec, self._next_seq(), TaskState.QUEUED, attempt, now))

    def submit(self, spec: TaskSpec, now: float) -> tuple[Submitted, Effects]:
        """Queue a task unless identical work is queued, running or done."""
        effects = Effects()
        task_id = spec.task_id
        live = self._tasks.get(task_id)
        if live is not None:
            return Submitted(task_id, live.state, False), effects
        final = self._final.get(task_id)
        if final is TaskState.SUCCEEDED:
            return Submitted(task_id, final, False), effects
        self._final.pop(task_id, None)
        task = _Task(spec, self._next_seq(), TaskState.QUEUED, 1, now)
        self._enqueue(task)
        effects.changes.append(Change(task_id, TaskState.QUEUED, 1, spec=spec))
        return Submitted(task_id, TaskState.QUEUED, True), effects

    def cancel(self, task_id: str) -> Effects:
        """Cancel a queued or running task.

        Raises:
            SchedulerError: the task is unknown or already final.
        """
        task = self._tasks.get(task_id)
        if task is None:
            state = self._final.get(task_id)
            what = "unknown" if state is None else f"already {state}"
            raise SchedulerError(f"task {task_id} cannot be cancelled: it is {what}")
        effects = Effects()
        if task.state is TaskState.RUNNING and task.worker is not None:
            effects.cancels.append(CancelOrder(task.worker, task_id))
        self._finish(task, TaskState.CANCELLED, effects, error="cancelled on request")
        return effects

    # ---- workers -------------------------------------------------------------------------

    def forget(self, task_ids: Iterable[str]) -> list[str]:
        """Drop finished tasks (``PURGE``): they run afresh when submitted again.

        Returns:
            The ids that were final and are now forgotten (live tasks are kept).
        """
        gone = [task_id for task_id in task_ids if task_id in self._final]
        for task_id in gone:
            del self._final[task_id]
        return gone

    def worker_ready(self, ready: Ready, now: float) -> Effects:
        """Register a worker (or re-register one that reconnected or restarted).

        Its slots are ``ready.prefetch`` capped at ``prefetch_max``.
        """
        effects = Effects()
        known = self._workers.get(ready.worker_id)
        if known is not None:
            restarted = known.session != ready.session
            effects.extend(self._drop_worker(known, charge=restarted, now=now))
        self._workers[ready.worker_id] = WorkerView(
            worker_id=ready.worker_id,
            session=ready.session,
            device=ready.device,
            memory_bytes=ready.memory_bytes,
            capabilities=frozenset(ready.capabilities),
            prefetch=min(ready.prefetch, self.prefetch_max),
            models=list(ready.models[-MODEL_MEMORY:]),
        )
        return effects

    def worker_models(self, worker_id: str, models: tuple[str, ...]) -> None:
        """Update the models a worker reports holding (from a heartbeat)."""
        worker = self._workers.get(worker_id)
        if worker is not None and models:
            worker.models = list(models[-MODEL_MEMORY:])

    def worker_lost(self, worker_id: str, now: float) -> Effects:
        """A worker went silent: charge the task it had started, requeue its in-flight tasks."""
        worker = self._workers.get(worker_id)
        return Effects() if worker is None else self._drop_worker(worker, charge=True, now=now)

    def worker_left(self, worker_id: str, now: float) -> Effects:
        """A worker said goodbye: requeue its in-flight tasks without charge."""
        worker = self._workers.get(worker_id)
        return Effects() if worker is None else self._drop_worker(worker, charge=False, now=now)

    # ---- results ----------------------------------------------------------------------

    def complete(self, worker_id: str, outcome: Outcome) -> Effects:
        """Accept a result from the task's assignee for its current attempt."""
        effects = Effects()
        task = self._holder(worker_id, outcome.task_id, outcome.attempt, effects)
        if task is None:
            return effects
        worker = self._workers[worker_id]
        worker.release(task.task_id)
        if task.spec.model:
            worker.hold(task.spec.model)
        self._finish(task, TaskState.SUCCEEDED, effects, value=outcome.value)
        return effects

    def fail(self, worker_id: str, failed: Failed, now: float) -> Effects:
        """Handle a task failure reported by the worker running it."""
        effects = Effects()
        task = self._holder(worker_id, failed.task_id, failed.attempt, effects)
        if task is None:
            return effects
        self._workers[worker_id].release(task.task_id)
        if failed.cancelled:
            # The worker stopped it without being asked (shutting down): run it elsewhere.
            self._requeue(task, task.attempt, now, effects)
        elif failed.retryable and task.attempt < self.max_attempts:
            self._requeue(task, task.attempt + 1, now, effects)
        else:
            self._finish(task, TaskState.FAILED, effects, error=failed.error)
        return effects

    def started(self, worker_id: str, started: Started) -> Effects:
        """The task's assignee is about to run it: from now on its death charges the task."""
        effects = Effects()
        task = self._holder(worker_id, started.task_id, started.attempt, effects)
        if task is not None:
            task.started = True
        return effects

    def progress(self, worker_id: str, progress: Progress) -> Effects:
        """Check progress from the task's assignee (progress also means it has started)."""
        return self.started(worker_id, Started(progress.task_id, progress.attempt))

    def assigned(self, worker_id: str, task_id: str, attempt: int) -> TaskSpec | None:
        """The spec of a task running on ``worker_id`` at ``attempt``, else ``None``."""
        task = self._tasks.get(task_id)
        if task is None or task.state is not TaskState.RUNNING:
            return None
        if task.worker != worker_id or task.attempt != attempt:
            return None
        return task.spec

    def _holder(self, worker_id: str, task_id: str, attempt: int, effects: Effects) -> _Task | None:
        """The running task if ``worker_id`` holds its current ``attempt``; else record why not.

        A frame about a task that finished while still on its worker (it was cancelled)
        frees the worker's slot and is neither accepted nor refused.
        """
        worker = self._workers.get(worker_id)
        reason: Refused | None = None
        task = self._tasks.get(task_id)
        if worker is None:
            reason = Refused.UNREGISTERED
        elif task is None:
            if task_id in worker.inflight:
                worker.release(task_id)
                return None
            reason = Refused.NOT_ASSIGNED if task_id in self._final else Refused.UNKNOWN_TASK
        elif task.state is not TaskState.RUNNING or task.worker != worker_id:
            reason = Refused.NOT_ASSIGNED
        elif attempt != task.attempt:
            reason = Refused.STALE_ATTEMPT
        if reason is not None:
            effects.refused.append(Refusal(worker_id, task_id, attempt, reason))
            return None
        return task

    # ---- dispatch ------------------------------------------------------------------------

    def assign(self, now: float) -> Effects:
        """Fill free worker slots from the queue; returns the batches to send."""
        effects = Effects()
        batches: dict[str, list[TaskItem]] = {}
        for affinity in (True, False):
            active = [w for w in self._workers.values() if self._free(w) > 0]
            while active:
                still = []
                for worker in active:
                    task = self._pick(worker, affinity)
                    if task is None:
                        continue
                    self._start(task, worker, now, effects)
                    batches.setdefault(worker.worker_id, []).append(
                        TaskItem(
                            task.task_id,
                            task.spec.kind,
                            task.spec.payload,
                            task.attempt,
                            task.spec.model,
                        )
                    )
                    if self._free(worker) > 0:
                        still.append(worker)
                active = still
        effects.dispatches = [Dispatch(w, tuple(items)) for w, items in batches.items()]
        return effects

    # ---- internals -----------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _enqueue(self, task: _Task) -> None:
        task.state = TaskState.QUEUED
        task.worker = None
        self._tasks[task.task_id] = task
        self._by_kind.setdefault(task.spec.kind, OrderedDict())[task.task_id] = None
        if task.spec.model:
            self._by_model.setdefault(task.spec.model, OrderedDict())[task.task_id] = None

    def _dequeue(self, task: _Task) -> None:
        self._by_kind[task.spec.kind].pop(task.task_id, None)
        if task.spec.model:
            self._by_model[task.spec.model].pop(task.task_id, None)

    def _free(self, worker: WorkerView) -> int:
        """Slots ``worker`` has now: none while an exclusive task is on it (even cancelled)."""
        return 0 if worker.exclusive else worker.free

    def _pick(self, worker: WorkerView, affinity: bool) -> _Task | None:
        best: _Task | None = None
        if affinity:
            queues = [self._by_model.get(m) for m in worker.models]
        else:
            queues = [self._by_kind.get(k) for k in worker.capabilities]
        for queue in queues:
            if not queue:
                continue
            for task_id in queue:
                task = self._tasks[task_id]
                if task.spec.kind in EXCLUSIVE_KINDS and worker.inflight:
                    if not affinity:
                        break  # a kind's queue: every task in it is exclusive
                    continue
                if task.spec.kind in worker.capabilities:
                    if best is None or task.seq < best.seq:
                        best = task
                    break
                if not affinity:
                    break
        return best

    def _start(self, task: _Task, worker: WorkerView, now: float, effects: Effects) -> None:
        self._dequeue(task)
        task.state = TaskState.RUNNING
        task.worker = worker.worker_id
        task.started = False
        worker.inflight[task.task_id] = None
        if task.spec.kind in EXCLUSIVE_KINDS:
            worker.exclusive.add(task.task_id)
        effects.dispatch_latency_s.append(max(0.0, now - task.queued_at))
        effects.changes.append(Change(task.task_id, TaskState.RUNNING, task.attempt, task.worker))

    def _requeue(self, task: _Task, attempt: int, now: float, effects: Effects) -> None:
        task.attempt = attempt
        task.queued_at = now
        task.seq = self._next_seq()
        self._enqueue(task)
        effects.changes.append(Change(task.task_id, TaskState.QUEUED, attempt))

    def _finish(
        self,
        task: _Task,
        state: TaskState,
        effects: Effects,
        value: Any = None,
        error: str | None = None,
    ) -> None:
        if task.state is TaskState.QUEUED:
            self._dequeue(task)
        del self._tasks[task.task_id]
        self._final[task.task_id] = state
        effects.changes.append(
            Change(task.task_id, state, task.attempt, task.worker, value=value, error=error)
        )

    def _drop_worker(self, worker: WorkerView, *, charge: bool, now: float) -> Effects:
        effects = Effects()
        del self._workers[worker.worker_id]
        for task_id in worker.inflight:
            task = self._tasks.get(task_id)
            if task is None or task.worker != worker.worker_id:
                continue
            if not charge or not task.started:
                self._requeue(task, task.attempt, now, effects)
            elif task.attempt >= self.max_attempts:
                error = (
                    f"task killed {task.attempt} workers (last: {worker.worker_id}); "
                    f"giving up after max_attempts={self.max_attempts}"
                )
                self._finish(task, TaskState.FAILED, effects, error=error)
            else:
                self._requeue(task, task.attempt + 1, now, effects)
        return effects
