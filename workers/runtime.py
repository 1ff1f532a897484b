"""The worker runtime: a DEALER that announces itself, runs tasks and reports back.

One worker per device. Lifecycle (Paranoid Pirate style): connect and send READY; heartbeat
every interval, also while a task runs (model work runs on a device thread, never on the
event loop); when the broker is silent for ``liveness`` intervals, close the socket and
reconnect with exponential backoff; on :meth:`Worker.stop`, take no more tasks, let the
running one finish (up to a grace period), send its result and DISCONNECT, then close.

Every report names the task's attempt. Before a task runs on the device thread the worker
sends the results it has and STARTED, and waits (up to one heartbeat interval) for the
broker to answer STARTED: if the process then dies, the broker knows which task was running
and charges that one (and only it) for the death. Frames stay within ``max_frame_bytes``
(results are split into batches that fit; a single result too large fails its task). With
:class:`shift.keys.CurveClient` keys the DEALER is a CurveZMQ client; a refused key is
logged (rate-limited) from the socket monitor.

The broker answers READY with WELCOME, naming its feature store. When that is not this
worker's store (another host, no shared path), a :class:`workers.blocklink.BlockLink` is
attached to it: blocks a task lacks are fetched (FETCH/BLOCK) and blocks it writes are
uploaded (UPLOAD), all through this socket.
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
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from shift.codec import DEFAULT_MAX_FRAME_BYTES, Limits, encode, encode_batches, from_frames
from shift.errors import ProtocolError, WorkerError
from shift.keys import CurveClient
from shift.liveness import Backoff, Liveness
from shift.protocol import (
    MAX_BATCH,
    Block,
    Cancel,
    Disconnect,
    Failed,
    Heartbeat,
    Message,
    Outcome,
    Progress,
    Ready,
    Result,
    Started,
    Task,
    TaskItem,
    Timing,
    Welcome,
    join_frames,
)
from shift.ratelimit import WarningLimit
from workers.blocklink import BlockLink
from workers.features import attach_remote, store_id
from workers.kinds import KINDS, Cancelled, Retry, TaskContext, TaskKind, get_kind
from workers.parent import parent_gone

log = logging.getLogger(__name__)

BROKER = "broker"

RCV_HWM = 1000
"""Most messages queued from the broker before ZeroMQ stops reading."""

_AUTH_EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


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
        max_frame_bytes: Largest frame sent or accepted (as on the broker).
        curve: CurveZMQ client keys; ``None`` for a plain link.
        parent_pid: Exit when this process stops being the parent (``shift up``).
        feature_store: This worker's feature store root; when the broker's WELCOME names
            another store, blocks move over the link (``None``: never).
    """

    broker: str
    worker_id: str
    device: str = "cpu"
    prefetch: int = 2
    timing: Timing = field(default_factory=Timing)
    reconnect_max_s: float = 5.0
    shutdown_grace_s: float = 10.0
    memory_bytes: int = 0
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    curve: CurveClient | None = None
    parent_pid: int | None = None
    feature_store: Path | None = None


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
        self._acks: dict[str, asyncio.Event] = {}
        self._limits = Limits(max_bytes=config.max_frame_bytes)
        self._warnings = WarningLimit(10.0)
        self._stopping = asyncio.Event()
        self._broker = Liveness(config.timing.expiry_s)
        self._device: DeviceThread | None = None
        self.tasks_done = 0
        self.sessions = 0
        self.blocks: BlockLink | None = None

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
            if self.config.feature_store is not None:
                attach_remote(self.config.feature_store, None)
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
        sock.setsockopt(zmq.RCVHWM, RCV_HWM)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_frame_bytes)
        curve = self.config.curve
        if curve is not None:
            sock.setsockopt(zmq.CURVE_SECRETKEY, curve.keys.secret.encode("ascii"))
            sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.keys.public.encode("ascii"))
            sock.setsockopt(zmq.CURVE_SERVERKEY, curve.server_public.encode("ascii"))
        monitor = sock.get_monitor_socket(_AUTH_EVENTS)
        sock.connect(self.config.broker)
        self._sock = sock
        self.sessions += 1
        self._broker.seen(BROKER, self._clock())
        self._announce()
        tasks = [
            asyncio.create_task(self._receive(sock), name="worker-receive"),
            asyncio.create_task(self._heartbeat(), name="worker-heartbeat"),
            asyncio.create_task(self._stopping.wait(), name="worker-stop"),
            asyncio.create_task(self._watch_handshakes(monitor), name="worker-monitor"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            sock.disable_monitor()
            monitor.close(linger=0)
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

    async def _watch_handshakes(self, monitor: zmq.asyncio.Socket) -> None:
        """Log (rate-limited) when the broker refuses this worker's CurveZMQ handshake."""
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())
            if self._warnings.allow("handshake", self._clock()) is None:
                continue
            if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                why = "the broker refused this worker's CurveZMQ key"
            else:
                why = "the CurveZMQ handshake failed (keys or security settings do not match)"
            log.error(
                "%s on %s; get a key bundle with `shift keys add-worker NAME` on the broker's "
                "machine and pass --worker-keys DIR",
                why,
                self.config.broker,
            )

    async def _receive(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            self._broker.seen(BROKER, self._clock())
            self._backoff.reset()
            try:
                _, message = from_frames(frames, routed=False, limits=self._limits)
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
                case Started():
                    ack = self._acks.get(message.task_id)
                    if ack is not None:
                        ack.set()
                case Block():
                    if self.blocks is not None:
                        self.blocks.answered(message)
                case Welcome():
                    self._welcome(message)
                case Disconnect():
                    log.info("broker does not know this worker (%s); announcing", message.reason)
                    self._announce()
                case Heartbeat():
                    pass
                case _:
                    log.warning("dropped unexpected %s from broker", type(message).__name__)

    def _welcome(self, welcome: Welcome) -> None:
        """Move blocks over the link unless this worker's store is the broker's."""
        root = self.config.feature_store
        if root is None:
            return
        own = store_id(root)
        if not welcome.store_id or welcome.store_id == own:
            if self.blocks is not None:
                log.info("feature store %s is the broker's: no blocks move", root)
            attach_remote(root, None)
            self.blocks = None
            return
        if self.blocks is None:
            log.info(
                "feature store %s is not the broker's (%s): blocks it lacks are fetched, "
                "blocks it writes are uploaded",
                root,
                welcome.store_id,
            )
            self.blocks = BlockLink(
                asyncio.get_running_loop(),
                self._send,
                self._send_frames,
                self._running_task,
                max(5.0, 4 * self.config.timing.expiry_s),
                self.config.max_frame_bytes,
            )
        attach_remote(root, self.blocks)

    def _running_task(self) -> tuple[str, int] | None:
        running = self._running
        return None if running is None else (running[0].task_id, running[0].attempt)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.timing.heartbeat_s)
            parent = self.config.parent_pid
            if parent is not None and parent_gone(parent):
                log.error("parent process %d is gone; exiting", parent)
                os._exit(1)  # nothing to deliver to: the broker was the parent
            if self._broker.expired(self._clock()):
                return
            self._send(Heartbeat(tuple(self.models)))

    def _cancel(self, task_id: str) -> None:
        for item in self._pending:
            if item.task_id == task_id:
                self._pending.remove(item)
                self._send(
                    Failed(
                        task_id, "cancelled before it started", cancelled=True, attempt=item.attempt
                    )
                )
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
        attempt = item.attempt
        try:
            kind = get_kind(item.kind, self.kinds)
            if kind.inline:
                value = kind.run(item.payload, ctx)
            else:
                if self._device is None:
                    raise WorkerError("worker device thread is not running")
                self._flush()  # finished results leave before a long task starts
                await self._announce_start(item)
                value = await self._device.run(kind.run, item.payload, ctx)
            self._check_size(Outcome(item.task_id, value, 0.0, attempt))
        except Cancelled as error:
            self._send(Failed(item.task_id, str(error), cancelled=True, attempt=attempt))
        except Retry as error:
            self._send(Failed(item.task_id, str(error), retryable=True, attempt=attempt))
        except Exception as error:  # a task's own failure is reported, never fatal
            log.info("task %s (%s) failed: %s", item.task_id, item.kind, error)
            self._send(Failed(item.task_id, f"{type(error).__name__}: {error}", attempt=attempt))
        else:
            self._results.append(Outcome(item.task_id, value, self._clock() - started, attempt))
            self.tasks_done += 1
            if item.model and item.model not in self.models:
                self.models.append(item.model)
        finally:
            self._running = None

    async def _announce_start(self, item: TaskItem) -> None:
        """Send STARTED and wait until the broker has it (a heartbeat interval at most)."""
        ack = self._acks[item.task_id] = asyncio.Event()
        try:
            if self._send(Started(item.task_id, item.attempt)):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ack.wait(), self.config.timing.heartbeat_s)
        finally:
            self._acks.pop(item.task_id, None)

    def _check_size(self, outcome: Outcome) -> None:
        """Refuse a value msgpack cannot carry or too large for one frame.

        Raises:
            WorkerError: the value cannot be sent.
        """
        _, body = encode(Result((outcome,)))
        if len(body) > self.config.max_frame_bytes:
            raise WorkerError(
                f"the result is {len(body)} bytes, more than max_frame_bytes="
                f"{self.config.max_frame_bytes}; raise max_frame_bytes on the broker and workers"
            )

    def _progress_reporter(self, item: TaskItem) -> Callable[[float, float, str], None]:
        loop = asyncio.get_running_loop()

        def report(done: float, total: float, message: str) -> None:
            progress = Progress(item.task_id, float(done), float(total), message, item.attempt)
            loop.call_soon_threadsafe(self._send, progress)

        return report

    async def _drain(self, runner: asyncio.Task[None]) -> None:
        """Stop intake, let the running task finish (up to the grace period), say goodbye."""
        self._pending.clear()
        deadline = self._clock() + self.config.shutdown_grace_s
        beat = self._clock()
        while self._running is not None and self._clock() < deadline:
            if self._clock() >= beat:  # still alive: the broker must not requeue the task
                self._send(Heartbeat(tuple(self.models)))
                beat = self._clock() + self.config.timing.heartbeat_s
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
        """Send the finished results, in batches whose frames fit ``max_frame_bytes``."""
        while self._results and self._sock is not None:
            batch = self._results[:MAX_BATCH]
            try:
                fitting, too_big = encode_batches(batch, _result, self.config.max_frame_bytes)
            except ProtocolError as error:  # each value was checked when its task ended
                log.warning("could not encode results: %s", error)
                fitting, too_big = [], batch
            for outcome in too_big:
                log.warning("result of task %s does not fit in a frame; dropped", outcome.task_id)
            gone = {id(o) for o in too_big}
            for items, command, body in fitting:
                if not self._send_frames(join_frames(command, body), "RESULT"):
                    break
                gone.update(id(o) for o in items)
            self._results = [o for o in self._results if id(o) not in gone]
            if len(gone) < len(batch):
                return  # the socket is full: the rest goes with the next flush

    def _send(self, message: Message) -> bool:
        """Send without blocking; False when the message could not be queued."""
        try:
            command, body = encode(message)
        except ProtocolError as error:
            log.warning("could not encode %s: %s", type(message).__name__, error)
            return False
        return self._send_frames(join_frames(command, body), type(message).__name__)

    def _send_frames(self, frames: list[bytes], what: str) -> bool:
        if self._sock is None:
            return False
        # Through the asyncio socket, so pyzmq re-arms the wake-up of the pending receive.
        sent: asyncio.Future[Any] = self._sock.send_multipart(  # type: ignore[assignment]
            frames, flags=zmq.DONTWAIT
        )
        failure = sent.exception() if sent.done() else None
        if failure is not None and not isinstance(failure, zmq.Again):
            log.warning("could not send %s: %s", what, failure)
        return sent.done() and failure is None


def _result(outcomes: tuple[Outcome, ...]) -> Result:
    return Result(outcomes)
