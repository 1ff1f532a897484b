"""The broker service: the ZeroMQ ROUTER loop gluing the dispatcher to the store.

This is the thin shell around :class:`shift.dispatch.Dispatcher`: it reads the clock,
decodes frames, feeds events to the dispatcher and carries out the returned effects
(persist changes, send batches, forward cancellations). A frame that does not decode is
counted, logged and dropped; nothing a peer sends can stop the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from broker.metrics import Counters, Histogram, render
from broker.store import Store
from shift.codec import from_frames, to_frames
from shift.dispatch import Dispatcher, Effects, Submitted
from shift.errors import ProtocolError, SchedulerError
from shift.liveness import Liveness
from shift.protocol import (
    Cancel,
    Disconnect,
    Failed,
    Heartbeat,
    Message,
    Progress,
    Ready,
    Result,
    Task,
    Timing,
)
from shift.tasks import TaskSpec, TaskState

log = logging.getLogger(__name__)

DRAIN_LIMIT = 4096
"""Most frames handled in one turn of the receive loop before yielding to the event loop."""


@dataclass(frozen=True)
class BrokerConfig:
    """How the broker binds and times out.

    Attributes:
        endpoint: ZeroMQ endpoint to bind, e.g. ``tcp://127.0.0.1:5555``.
        timing: Heartbeat interval and liveness.
        max_attempts: Workers a task may kill before it fails.
    """

    endpoint: str
    timing: Timing = field(default_factory=Timing)
    max_attempts: int = 3


@dataclass(frozen=True)
class ProgressReport:
    """The latest progress a worker reported for a running task."""

    done: float
    total: float
    message: str


class Broker:
    """Worker registry, task queue and ROUTER socket.

    Args:
        config: Endpoint and timing.
        store: An opened task store.
        clock: Monotonic seconds (injected for tests).
    """

    def __init__(
        self, config: BrokerConfig, store: Store, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.store = store
        self._clock = clock
        self.dispatcher = Dispatcher(config.max_attempts)
        self.liveness = Liveness(config.timing.expiry_s)
        self.counters = Counters()
        self.dispatch_latency = Histogram()
        self.progress: dict[str, ProgressReport] = {}
        self.started_at = clock()
        self._ctx = zmq.asyncio.Context()
        self._sock: zmq.asyncio.Socket | None = None
        self._out: zmq.Socket[bytes] | None = None
        self._identities: dict[str, bytes] = {}
        self._told_unknown: dict[bytes, float] = {}
        self._waiters: dict[str, list[asyncio.Future[TaskState]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pump_scheduled = False
        self._closed = False
        self.bound_endpoint = ""
        self._handlers: dict[type, Callable[[str, Any], None]] = {
            Ready: self._on_ready,
            Heartbeat: self._on_heartbeat,
            Result: self._on_result,
            Failed: self._on_failed,
            Progress: self._on_progress,
            Disconnect: self._on_disconnect,
        }

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Restore tasks from the store, bind the ROUTER and start the loops."""
        now = self._clock()
        rows = await self.store.load()
        for row in rows:
            self.dispatcher.restore(row.spec, row.state, row.attempt, now)
        requeued = sum(1 for r in rows if r.state is TaskState.RUNNING)
        log.info("restored %d tasks (%d were running, now queued)", len(rows), requeued)
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.bind(self.config.endpoint)
        self.bound_endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._sock = sock
        self._out = zmq.Socket.shadow(sock.underlying)
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name="broker-receive"),
            asyncio.create_task(self._tick_loop(), name="broker-tick"),
        ]
        log.info("broker listening on %s", self.bound_endpoint)

    async def close(self) -> None:
        """Stop the loops, close the socket and commit what is pending (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sock is not None:
            self._sock.close(linger=0)
        self._ctx.term()
        for waiters in self._waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.cancel()
        await asyncio.shield(self.store.close())

    # ---- API used by REST and benchmarks -------------------------------------------------

    def submit_nowait(self, specs: Iterable[TaskSpec]) -> tuple[list[Submitted], asyncio.Future]:
        """Submit tasks; returns their submissions and a future for the insert commit."""
        now = self._clock()
        effects = Effects()
        answers = []
        for spec in specs:
            submitted, more = self.dispatcher.submit(spec, now)
            answers.append(submitted)
            effects.extend(more)
        committed = self._apply(effects)
        self._schedule_pump()
        return answers, committed

    async def submit(self, specs: Iterable[TaskSpec]) -> list[Submitted]:
        """Submit tasks and wait until they are durable."""
        answers, committed = self.submit_nowait(specs)
        await committed
        return answers

    async def cancel(self, task_id: str) -> None:
        """Cancel a queued or running task and wait until that is durable.

        Raises:
            SchedulerError: the task is unknown or already final.
        """
        effects = self.dispatcher.cancel(task_id)
        await self._apply(effects)
        self._schedule_pump()

    def wait_final(self, task_id: str) -> asyncio.Future[TaskState]:
        """A future resolved with the task's final state once that state is committed."""
        future: asyncio.Future[TaskState] = asyncio.get_running_loop().create_future()
        state = self.dispatcher.state_of(task_id)
        if state is not None and state.final:
            final = state

            def settle(_: object) -> None:
                if not future.done():
                    future.set_result(final)

            self.store.barrier().add_done_callback(settle)
        else:
            self._waiters.setdefault(task_id, []).append(future)
        return future

    def workers_json(self) -> list[dict[str, Any]]:
        """The live workers for REST."""
        now = self._clock()
        return [
            {
                "id": w.worker_id,
                "device": w.device,
                "memory_bytes": w.memory_bytes,
                "capabilities": sorted(w.capabilities),
                "prefetch": w.prefetch,
                "inflight": sorted(w.inflight),
                "models": list(w.models),
                "silent_s": round(self.liveness.silent_s(w.worker_id, now), 3),
            }
            for w in self.dispatcher.workers.values()
        ]

    def metrics_text(self) -> str:
        """Prometheus text for ``/metrics``."""
        devices: dict[str, int] = {}
        for worker in self.dispatcher.workers.values():
            devices[worker.device] = devices.get(worker.device, 0) + 1
        return render(
            tasks_by_state={s.value: n for s, n in self.dispatcher.counts().items()},
            workers_by_device=devices,
            queue_depth=self.dispatcher.queue_depth(),
            counters=self.counters,
            dispatch_latency=self.dispatch_latency,
        )

    # ---- loops ---------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        sock, out = self._sock, self._out
        if sock is None or out is None:
            raise SchedulerError("broker socket is not bound")
        while True:
            frames = await sock.recv_multipart()
            self._handle(frames)
            for _ in range(DRAIN_LIMIT):
                try:
                    frames = out.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._handle(frames)
            self._pump()

    async def _tick_loop(self) -> None:
        interval = self.config.timing.heartbeat_s
        while True:
            await asyncio.sleep(interval)
            try:
                self._tick()
            except Exception:  # a bug here must not stop liveness checks for good
                log.exception("broker tick failed")

    def _tick(self) -> None:
        now = self._clock()
        effects = Effects()
        for worker_id in self.liveness.expired(now):
            log.warning(
                "worker %s silent for %.1f s: declared dead", worker_id, self.config.timing.expiry_s
            )
            self.counters.workers_lost += 1
            self._identities.pop(worker_id, None)
            effects.extend(self.dispatcher.worker_lost(worker_id, now))
        self._apply(effects)
        for worker_id in list(self.dispatcher.workers):
            self._send(worker_id, Heartbeat())
        cutoff = now - self.config.timing.expiry_s
        self._told_unknown = {k: t for k, t in self._told_unknown.items() if t > cutoff}
        self._pump()

    # ---- frames --------------------------------------------------------------------------

    def _handle(self, frames: list[bytes]) -> None:
        self.counters.frames_in += 1
        try:
            identity, message = from_frames(frames, routed=True)
            worker_id = identity.decode("utf-8")
        except (ProtocolError, UnicodeDecodeError) as error:
            self.counters.bad_frames += 1
            if self.counters.bad_frames <= 10 or self.counters.bad_frames % 1000 == 0:
                log.warning("dropped bad frame #%d: %s", self.counters.bad_frames, error)
            return
        handler = self._handlers.get(type(message))
        if handler is None:
            self.counters.bad_frames += 1
            log.warning(
                "dropped %s from %s: not a worker-to-broker command",
                type(message).__name__,
                worker_id,
            )
            return
        if not isinstance(message, Ready) and worker_id not in self.dispatcher.workers:
            self._tell_unknown(identity)
            if not isinstance(message, Result):
                return
        else:
            self.liveness.seen(worker_id, self._clock())
        handler(worker_id, message)

    def _tell_unknown(self, identity: bytes) -> None:
        now = self._clock()
        if now - self._told_unknown.get(identity, -1e9) > self.config.timing.heartbeat_s:
            self._told_unknown[identity] = now
            self._send_raw(identity, Disconnect("unknown worker; send READY"))

    def _on_ready(self, worker_id: str, ready: Ready) -> None:
        if ready.worker_id != worker_id:
            self.counters.bad_frames += 1
            log.warning("READY from %r names another worker id %r", worker_id, ready.worker_id)
            return
        now = self._clock()
        self._identities[worker_id] = worker_id.encode()
        self.liveness.seen(worker_id, now)
        self._told_unknown.pop(worker_id.encode(), None)
        log.info("worker %s ready (%s, prefetch %d)", worker_id, ready.device, ready.prefetch)
        self._apply(self.dispatcher.worker_ready(ready, now))

    def _on_heartbeat(self, worker_id: str, heartbeat: Heartbeat) -> None:
        self.dispatcher.worker_models(worker_id, heartbeat.models)

    def _on_result(self, worker_id: str, result: Result) -> None:
        effects = Effects()
        for outcome in result.outcomes:
            effects.extend(self.dispatcher.complete(worker_id, outcome))
            self.progress.pop(outcome.task_id, None)
        self._apply(effects)

    def _on_failed(self, worker_id: str, failed: Failed) -> None:
        self.progress.pop(failed.task_id, None)
        self._apply(self.dispatcher.fail(worker_id, failed, self._clock()))

    def _on_progress(self, worker_id: str, progress: Progress) -> None:
        if self.dispatcher.state_of(progress.task_id) is TaskState.RUNNING:
            self.progress[progress.task_id] = ProgressReport(
                progress.done, progress.total, progress.message
            )

    def _on_disconnect(self, worker_id: str, disconnect: Disconnect) -> None:
        log.info("worker %s left: %s", worker_id, disconnect.reason or "no reason given")
        self.liveness.forget(worker_id)
        self._identities.pop(worker_id, None)
        self._apply(self.dispatcher.worker_left(worker_id, self._clock()))

    # ---- effects -------------------------------------------------------------------------

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        if self._out is not None and not self._closed:
            self._apply(self.dispatcher.assign(self._clock()))

    def _apply(self, effects: Effects) -> asyncio.Future[None]:
        committed = self.store.write(effects.changes) if effects.changes else _done()
        finals = [c.task_id for c in effects.changes if c.state.final]
        for task_id in finals:
            self.progress.pop(task_id, None)
        if finals and self._waiters:
            committed.add_done_callback(functools.partial(self._wake_waiters, finals))
        for dispatch in effects.dispatches:
            self._send(dispatch.worker_id, Task(dispatch.items))
        for order in effects.cancels:
            self._send(order.worker_id, Cancel(order.task_id))
        if effects.dispatch_latency_s:
            self.dispatch_latency.observe_many(effects.dispatch_latency_s)
        return committed

    def _wake_waiters(self, task_ids: list[str], _: object = None) -> None:
        for task_id in task_ids:
            state = self.dispatcher.state_of(task_id)
            for waiter in self._waiters.pop(task_id, ()):
                if not waiter.done() and state is not None:
                    waiter.set_result(state)

    def _send(self, worker_id: str, message: Message) -> None:
        identity = self._identities.get(worker_id)
        if identity is not None:
            self._send_raw(identity, message)

    def _send_raw(self, identity: bytes, message: Message) -> None:
        if self._sock is None or self._closed:
            return
        # Send through the asyncio socket (never blocks: ROUTER drops on a full pipe) so
        # pyzmq re-arms its edge-triggered wake-up for the pending receive.
        try:
            sent: asyncio.Future[Any] = self._sock.send_multipart(  # type: ignore[assignment]
                to_frames(message, identity), flags=zmq.DONTWAIT
            )
        except ProtocolError as error:
            log.warning("could not encode %s: %s", type(message).__name__, error)
            return
        failure = sent.exception() if sent.done() else None
        if failure is not None:
            log.warning("could not send %s to %r: %s", type(message).__name__, identity, failure)
        else:
            self.counters.frames_out += 1


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
