"""The worker runtime: a DEALER that announces itself, runs tasks and reports back.

One worker per device. Lifecycle (Paranoid Pirate style): connect and send READY; heartbeat
every interval, also while a task runs (model work runs on a device thread, never on the
event loop); when the broker is silent for ``liveness`` intervals, close the socket and
reconnect with exponential backoff; on :meth:`Worker.stop`, take no more tasks, let the
running one finish (up to a grace period), send its result and DISCONNECT, then close.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from shift.codec import encode, from_frames, to_frames
from shift.errors import ProtocolError, WorkerError
from shift.liveness import Backoff, Liveness
from shift.protocol import (
    MAX_BATCH,
    Cancel,
    Disconnect,
    Failed,
    Heartbeat,
    Message,
    Outcome,
    Progress,
    Ready,
    Result,
    Task,
    TaskItem,
    Timing,
)
from workers.kinds import KINDS, Cancelled, Retry, TaskContext, TaskKind, get_kind

log = logging.getLogger(__name__)

BROKER = "broker"


def default_memory_bytes() -> int:
    """Physical memory of this machine (what a CPU worker offers)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker connects and behaves.

    Attributes:
        broker: Broker endpoint, e.g. ``tcp://127.0.0.1:5555``.
        worker_id: Unique name, also the socket identity.
        device: ``cpu``, ``cuda:0``, ...
        prefetch: Tasks the broker may keep in flight here (so the device never waits).
        timing: Heartbeat interval and liveness.
        reconnect_max_s: Longest pause between reconnect attempts.
        shutdown_grace_s: How long a clean shutdown waits for the running task.
        memory_bytes: Memory the device offers.
    """

    broker: str
    worker_id: str
    device: str = "cpu"
    prefetch: int = 2
    timing: Timing = field(default_factory=Timing)
    reconnect_max_s: float = 5.0
    shutdown_grace_s: float = 10.0
    memory_bytes: int = 0


class DeviceThread:
    """One daemon thread that runs model work in order, off the event loop.

    A daemon thread (not a pool) so that a task ignoring cancellation cannot hold the
    process open after a shutdown gave up on it.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``function(*args)`` on the thread; returns an asyncio future of its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((loop, future, function, args))
        return future

    def stop(self) -> None:
        """Let the thread end after its current job."""
        self._jobs.put(None)

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, function, args = job
            try:
                value = function(*args)
            except BaseException as error:  # handed to the event loop, which decides
                loop.call_soon_threadsafe(_settle, future, None, error)
            else:
                loop.call_soon_threadsafe(_settle, future, value, None)


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class Worker:
    """A worker process's runtime.

    Args:
        config: Endpoint, identity and timing.
        kinds: The task kinds this worker runs (the global registry by default).
        clock: Monotonic seconds.
        rng: Randomness for the session id and backoff jitter.
    """

    def __init__(
        self,
        config: WorkerConfig,
        kinds: dict[str, TaskKind] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.kinds = KINDS if kinds is None else kinds
        self._clock = clock
        rng = rng or random.Random()
        self.session = f"{rng.getrandbits(64):016x}"
        self._backoff = Backoff(0.05, config.reconnect_max_s, rng)
        self.models: list[str] = []
        self._ctx = zmq.asyncio.Context()
        self._sock: zmq.asyncio.Socket | None = None
        self._pending: collections.deque[TaskItem] = collections.deque()
        self._have_work = asyncio.Event()
        self._running: tuple[TaskItem, TaskContext] | None = None
        self._results: list[Outcome] = []
        self._stopping = asyncio.Event()
        self._broker = Liveness(config.timing.expiry_s)
        self._device: DeviceThread | None = None
        self.tasks_done = 0
        self.sessions = 0

    def stop(self) -> None:
        """Ask the worker to drain and stop (safe to call from a signal handler)."""
        self._stopping.set()

    async def run(self) -> None:
        """Serve until :meth:`stop`; reconnects with backoff whenever the broker goes silent."""
        self._device = DeviceThread(f"{self.config.worker_id}-device")
        runner = asyncio.create_task(self._run_tasks(), name="worker-tasks")
        try:
            while not self._stopping.is_set():
                await self._session()
                if self._stopping.is_set():
                    break
                delay = self._backoff.next_delay_s()
                log.warning("broker silent; reconnecting in %.2f s", delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            await self._drain(runner)
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
            self._device.stop()
            if self._sock is not None:
                self._sock.close(linger=0)
            self._ctx.term()

    # ---- sessions ------------------------------------------------------------------------

    async def _session(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self.config.worker_id.encode())
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(self.config.broker)
        self._sock = sock
        self.sessions += 1
        self._broker.seen(BROKER, self._clock())
        self._announce()
        tasks = [
            asyncio.create_task(self._receive(sock), name="worker-receive"),
            asyncio.create_task(self._heartbeat(), name="worker-heartbeat"),
            asyncio.create_task(self._stopping.wait(), name="worker-stop"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not self._stopping.is_set():
            sock.close(linger=0)
            self._sock = None

    def _announce(self) -> None:
        """Send READY; tasks queued for the previous registration are the broker's again."""
        self._pending.clear()
        self._send(
            Ready(
                worker_id=self.config.worker_id,
                session=self.session,
                device=self.config.device,
                memory_bytes=self.config.memory_bytes,
                capabilities=tuple(sorted(self.kinds)),
                prefetch=self.config.prefetch,
                models=tuple(self.models),
            )
        )
        self._flush()

    async def _receive(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            self._broker.seen(BROKER, self._clock())
            self._backoff.reset()
            try:
                _, message = from_frames(frames, routed=False)
            except ProtocolError as error:
                log.warning("dropped bad frame from broker: %s", error)
                continue
            match message:
                case Task():
                    if not self._stopping.is_set():
                        self._pending.extend(message.items)
                        self._have_work.set()
                case Cancel():
                    self._cancel(message.task_id)
                case Disconnect():
                    log.info("broker does not know this worker (%s); announcing", message.reason)
                    self._announce()
                case Heartbeat():
                    pass
                case _:
                    log.warning("dropped unexpected %s from broker", type(message).__name__)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.timing.heartbeat_s)
            if self._broker.expired(self._clock()):
                return
            self._send(Heartbeat(tuple(self.models)))

    def _cancel(self, task_id: str) -> None:
        for item in self._pending:
            if item.task_id == task_id:
                self._pending.remove(item)
                self._send(Failed(task_id, "cancelled before it started", cancelled=True))
                return
        if self._running is not None and self._running[0].task_id == task_id:
            self._running[1].cancelled.set()

    # ---- tasks ---------------------------------------------------------------------------

    async def _run_tasks(self) -> None:
        since_yield = 0
        while True:
            if not self._pending:
                self._flush()
                self._have_work.clear()
                await self._have_work.wait()
                since_yield = 0
                continue
            item = self._pending.popleft()
            await self._run_one(item)
            since_yield += 1
            if len(self._results) >= MAX_BATCH or since_yield >= MAX_BATCH:
                self._flush()
                since_yield = 0
                await asyncio.sleep(0)  # let heartbeats and cancels through

    async def _run_one(self, item: TaskItem) -> None:
        ctx = TaskContext(
            item.task_id,
            item.attempt,
            item.model,
            self._progress_reporter(item),
            self.config.device,
        )
        self._running = (item, ctx)
        started = self._clock()
        try:
            kind = get_kind(item.kind, self.kinds)
            if kind.inline:
                value = kind.run(item.payload, ctx)
            else:
                if self._device is None:
                    raise WorkerError("worker device thread is not running")
                value = await self._device.run(kind.run, item.payload, ctx)
            encode(Result((Outcome(item.task_id, value),)))  # refuse values msgpack cannot carry
        except Cancelled as error:
            self._send(Failed(item.task_id, str(error), cancelled=True))
        except Retry as error:
            self._send(Failed(item.task_id, str(error), retryable=True))
        except Exception as error:  # a task's own failure is reported, never fatal
            log.info("task %s (%s) failed: %s", item.task_id, item.kind, error)
            self._send(Failed(item.task_id, f"{type(error).__name__}: {error}"))
        else:
            self._results.append(Outcome(item.task_id, value, self._clock() - started))
            self.tasks_done += 1
            if item.model and item.model not in self.models:
                self.models.append(item.model)
        finally:
            self._running = None

    def _progress_reporter(self, item: TaskItem) -> Callable[[float, float, str], None]:
        loop = asyncio.get_running_loop()

        def report(done: float, total: float, message: str) -> None:
            progress = Progress(item.task_id, float(done), float(total), message)
            loop.call_soon_threadsafe(self._send, progress)

        return report

    async def _drain(self, runner: asyncio.Task[None]) -> None:
        """Stop intake, let the running task finish (up to the grace period), say goodbye."""
        self._pending.clear()
        deadline = self._clock() + self.config.shutdown_grace_s
        while self._running is not None and self._clock() < deadline:
            await asyncio.sleep(0.01)
        if self._running is not None:
            log.warning(
                "task %s still running after the grace period; leaving it", self._running[0].task_id
            )
            self._running[1].cancelled.set()
        self._flush()
        self._send(Disconnect("worker shutting down"))
        if self._sock is not None:
            self._sock.close(linger=int(1000 * min(1.0, self.config.shutdown_grace_s)))
            self._sock = None

    # ---- sending -------------------------------------------------------------------------

    def _flush(self) -> None:
        while self._results and self._sock is not None:
            batch = self._results[:MAX_BATCH]
            if not self._send(Result(tuple(batch))):
                return
            del self._results[: len(batch)]

    def _send(self, message: Message) -> bool:
        """Send without blocking; False when the message could not be queued."""
        if self._sock is None:
            return False
        # Through the asyncio socket, so pyzmq re-arms the wake-up of the pending receive.
        try:
            sent: asyncio.Future[Any] = self._sock.send_multipart(  # type: ignore[assignment]
                to_frames(message), flags=zmq.DONTWAIT
            )
        except ProtocolError as error:
            log.warning("could not encode %s: %s", type(message).__name__, error)
            return False
        failure = sent.exception() if sent.done() else None
        if failure is not None and not isinstance(failure, zmq.Again):
            log.warning("could not send %s: %s", type(message).__name__, failure)
        return sent.done() and failure is None
