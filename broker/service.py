"""The broker service: the ZeroMQ ROUTER loop gluing the dispatcher to the store.

This is the thin shell around :class:`shift.dispatch.Dispatcher`: it reads the clock,
decodes frames, feeds events to the dispatcher and carries out the returned effects
(persist changes, send batches, forward cancellations). A frame that does not decode is
counted, logged and dropped; nothing a peer sends can stop the loop.

What a peer can send is bounded: frames past ``max_frame_bytes`` are dropped by ZeroMQ
before they are read, each peer's inbound queue holds at most :data:`RCV_HWM` messages,
bodies are unpacked under :class:`shift.codec.Limits` (a peer that has not registered only
gets :data:`shift.codec.SMALL_LIMITS`), and every warning about a peer's frames is
rate-limited per peer. With :class:`shift.keys.CurveServer` keys the ROUTER is a CurveZMQ
server and a ZAP handler admits only workers whose public key is in the allowed folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
from zmq.auth.asyncio import AsyncioAuthenticator

from broker.blocks import BlockStore
from broker.curve import AllowedKeys
from broker.metrics import Counters, Histogram, render
from broker.store import Store
from shift.codec import (
    DEFAULT_MAX_FRAME_BYTES,
    SMALL_LIMITS,
    Limits,
    decode,
    encode,
    encode_batches,
)
from shift.dispatch import Change, Dispatch, Dispatcher, Effects, Refusal, Submitted
from shift.errors import ProtocolError, SchedulerError, SettingsError
from shift.keys import CurveServer
from shift.liveness import Liveness
from shift.netaddr import endpoint_host, is_loopback
from shift.protocol import (
    Block,
    Cancel,
    Command,
    Disconnect,
    Failed,
    Fetch,
    Heartbeat,
    Message,
    Progress,
    Ready,
    Result,
    Started,
    Task,
    TaskItem,
    Timing,
    Upload,
    Welcome,
    join_frames,
    split_frames,
)
from shift.ratelimit import WarningLimit
from shift.tasks import Outcome, TaskSpec, TaskState

log = logging.getLogger(__name__)

DRAIN_LIMIT = 4096
"""Most frames handled in one turn of the receive loop before yielding to the event loop."""

RCV_HWM = 1000
"""Most messages queued from one peer before ZeroMQ stops reading from it."""

WARN_INTERVAL_S = 10.0
"""Seconds between two warnings of the same kind about the same peer."""

_REPORTS = (Command.RESULT, Command.FAILED, Command.PROGRESS, Command.STARTED)


@dataclass(frozen=True)
class BrokerConfig:
    """How the broker binds, authenticates, limits and times out.

    Attributes:
        endpoint: ZeroMQ endpoint to bind, e.g. ``tcp://127.0.0.1:5555``.
        timing: Heartbeat interval and liveness.
        max_attempts: Workers a task may kill before it fails.
        prefetch_max: Most tasks in flight on one worker, whatever its READY asks.
        max_frame_bytes: Largest frame accepted (``ZMQ_MAXMSGSIZE``) and sent.
        curve: CurveZMQ server keys; ``None`` for a plain link (loopback only).
        blocks_dir: The broker's feature folder, the hub of feature blocks for workers that
            do not share it; ``None``: no blocks move (every worker shares one disk).
    """

    endpoint: str
    timing: Timing = field(default_factory=Timing)
    max_attempts: int = 3
    prefetch_max: int = 256
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    curve: CurveServer | None = None
    blocks_dir: Path | None = None


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
        self.dispatcher = Dispatcher(config.max_attempts, config.prefetch_max)
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
        self._limits = Limits(max_bytes=config.max_frame_bytes)
        self._warnings = WarningLimit(WARN_INTERVAL_S)
        self._auth: AsyncioAuthenticator | None = None
        self._waiters: dict[str, list[asyncio.Future[TaskState]]] = {}
        self._outcome_waiters: dict[str, list[asyncio.Future[Outcome]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pump_scheduled = False
        self._closed = False
        self.blocks = None if config.blocks_dir is None else BlockStore(config.blocks_dir)
        self._fetches: set[asyncio.Task[None]] = set()
        self.bound_endpoint = ""
        self._handlers: dict[type, Callable[[str, Any], None]] = {
            Ready: self._on_ready,
            Heartbeat: self._on_heartbeat,
            Result: self._on_result,
            Failed: self._on_failed,
            Progress: self._on_progress,
            Started: self._on_started,
            Disconnect: self._on_disconnect,
            Fetch: self._on_fetch,
            Upload: self._on_upload,
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
        self._check_bind()
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, RCV_HWM)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, self.config.max_frame_bytes)
        curve = self.config.curve
        if curve is not None:
            self._auth = AsyncioAuthenticator(self._ctx)
            self._auth.start()
            allowed = AllowedKeys(curve.allowed_dir, self._on_key_denied)
            self._auth.configure_curve_callback("*", allowed)
            sock.setsockopt(zmq.CURVE_SERVER, 1)
            sock.setsockopt(zmq.CURVE_SECRETKEY, curve.keys.secret.encode("ascii"))
            sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.keys.public.encode("ascii"))
            log.info(
                "worker link: CurveZMQ; %d worker keys allowed in %s",
                len(allowed.names()),
                curve.allowed_dir,
            )
        else:
            log.info("worker link: plain (no CurveZMQ keys); any local process may connect")
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
        for task in (*self._tasks, *self._fetches):
            task.cancel()
        for task in (*self._tasks, *self._fetches):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sock is not None:
            self._sock.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()
        for pending in (*self._waiters.values(), *self._outcome_waiters.values()):
            for waiter in pending:
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

    async def outcome(self, task_id: str) -> Outcome:
        """The task's final state and result once committed.

        A task that becomes final while this waits is answered with the value of the write
        that committed it; one that was final already is read from the store once.

        Raises:
            SchedulerError: the task is unknown.
        """
        state = self.dispatcher.state_of(task_id)
        if state is None or not state.final:
            future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            self._outcome_waiters.setdefault(task_id, []).append(future)
            return await future
        await self.store.barrier()
        row = await self.store.get(task_id)
        if row is None:
            raise SchedulerError(f"task {task_id} is not in the store")
        return Outcome(row.state, row.result, row.error)

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
            if worker_id not in self.dispatcher.workers:
                continue
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
        self._warnings.prune(now)
        self._pump()

    # ---- frames --------------------------------------------------------------------------

    def _check_bind(self) -> None:
        """Refuse a plain link on a non-loopback address; warn about a reachable one."""
        host = endpoint_host(self.config.endpoint)
        if host is None or is_loopback(host):
            return
        if self.config.curve is None:
            raise SettingsError(
                f"refusing to bind the ZeroMQ ROUTER to {self.config.endpoint} without CurveZMQ "
                "keys: any process that can reach it could take tasks and forge results; "
                "bind 127.0.0.1, or create keys with `shift keys init` and `shift keys add-worker`"
            )
        log.warning(
            "the ZeroMQ ROUTER binds %s, reachable from other machines; only workers whose "
            "key is in %s can connect",
            self.config.endpoint,
            self.config.curve.allowed_dir,
        )

    def _handle(self, frames: list[bytes]) -> None:
        self.counters.frames_in += 1
        try:
            envelope = split_frames(frames, routed=True)
            identity = envelope.identity
            worker_id = identity.decode("utf-8")
        except (ProtocolError, UnicodeDecodeError) as error:
            self._bad_frame(frames[0] if frames else b"", error)
            return
        registered = worker_id in self.dispatcher.workers
        small = not registered or envelope.command is Command.READY
        limits = SMALL_LIMITS if small else self._limits
        try:
            message = decode(envelope.command, envelope.body, limits)
        except ProtocolError as error:
            self._bad_frame(identity, error)
            return
        handler = self._handlers.get(type(message))
        if handler is None:
            self.counters.bad_frames += 1
            self._warn(
                ("command", identity),
                "dropped %s from %r: not a worker-to-broker command",
                type(message).__name__,
                worker_id,
            )
            return
        if isinstance(message, Ready):
            self._on_ready(worker_id, message)
            return
        if not registered:
            self._tell_unknown(identity)
            if envelope.command in _REPORTS:
                self.counters.reports_refused += 1
                self._warn(
                    ("unregistered", identity),
                    "refused %s from %r: it never sent READY",
                    envelope.command.value,
                    worker_id,
                )
            return
        self.liveness.seen(worker_id, self._clock())
        handler(worker_id, message)

    def _bad_frame(self, identity: bytes, error: Exception) -> None:
        self.counters.bad_frames += 1
        self._warn(("bad", identity[:64]), "dropped a bad frame from %r: %s", identity[:64], error)

    def _warn(self, key: object, message: str, *args: Any) -> None:
        """Log a warning about a peer unless one with the same key went out recently."""
        held = self._warnings.allow(key, self._clock())
        if held is None:
            return
        if held:
            message += " (and %d more like it in the last %.0f s)"
            args = (*args, held, WARN_INTERVAL_S)
        log.warning(message, *args)

    def _refused(self, refusals: list[Refusal], command: Command) -> None:
        for refusal in refusals:
            self.counters.reports_refused += 1
            self._warn(
                ("refused", refusal.worker_id, refusal.reason),
                "refused %s from %s about task %s attempt %d: %s",
                command.value,
                refusal.worker_id,
                refusal.task_id,
                refusal.attempt,
                refusal.reason.value.replace("_", " "),
            )

    def _on_key_denied(self, key: str) -> None:
        self.counters.auth_denied += 1
        self._warn(
            ("key", key),
            "refused a worker connection: CurveZMQ key %s is not in the allowed folder "
            "(shift keys add-worker NAME makes one)",
            key,
        )

    def _tell_unknown(self, identity: bytes) -> None:
        now = self._clock()
        if now - self._told_unknown.get(identity, -1e9) > self.config.timing.heartbeat_s:
            self._told_unknown[identity] = now
            self._send_raw(identity, Disconnect("unknown worker; send READY"))

    def _on_ready(self, worker_id: str, ready: Ready) -> None:
        if ready.worker_id != worker_id:
            self.counters.bad_frames += 1
            self._warn(
                ("ready", worker_id),
                "READY from %r names another worker id %r; ignored",
                worker_id,
                ready.worker_id,
            )
            return
        now = self._clock()
        self._identities[worker_id] = worker_id.encode()
        self.liveness.seen(worker_id, now)
        self._told_unknown.pop(worker_id.encode(), None)
        cap = self.dispatcher.prefetch_max
        if ready.prefetch > cap:
            self._warn(
                ("prefetch", worker_id),
                "worker %s asked for prefetch %d; capped at prefetch_max=%d",
                worker_id,
                ready.prefetch,
                cap,
            )
        known = self.dispatcher.workers.get(worker_id)
        if known is None or known.session != ready.session:
            log.info(
                "worker %s ready (%s, prefetch %d)",
                worker_id,
                ready.device,
                min(ready.prefetch, cap),
            )
        else:  # a reconnect, or a peer repeating itself: not worth a line each time
            self._warn(("reconnect", worker_id), "worker %s announced itself again", worker_id)
        self._send(worker_id, Welcome(self.blocks.current_id() if self.blocks else ""))
        self._apply(self.dispatcher.worker_ready(ready, now))

    def _on_heartbeat(self, worker_id: str, heartbeat: Heartbeat) -> None:
        self.dispatcher.worker_models(worker_id, heartbeat.models)

    def _on_result(self, worker_id: str, result: Result) -> None:
        effects = Effects()
        for outcome in result.outcomes:
            effects.extend(self.dispatcher.complete(worker_id, outcome))
        self._refused(effects.refused, Command.RESULT)
        self._apply(effects)

    def _on_failed(self, worker_id: str, failed: Failed) -> None:
        effects = self.dispatcher.fail(worker_id, failed, self._clock())
        self._refused(effects.refused, Command.FAILED)
        self._apply(effects)

    def _on_started(self, worker_id: str, started: Started) -> None:
        effects = self.dispatcher.started(worker_id, started)
        if effects.refused:
            self._refused(effects.refused, Command.STARTED)
        else:
            self._send(worker_id, started)  # the worker runs the task once it has this

    def _on_progress(self, worker_id: str, progress: Progress) -> None:
        effects = self.dispatcher.progress(worker_id, progress)
        if effects.refused:
            self._refused(effects.refused, Command.PROGRESS)
        else:
            self.progress[progress.task_id] = ProgressReport(
                progress.done, progress.total, progress.message
            )

    def _on_fetch(self, worker_id: str, fetch: Fetch) -> None:
        task = asyncio.create_task(self._answer_fetch(worker_id, fetch), name="broker-fetch")
        self._fetches.add(task)
        task.add_done_callback(self._fetches.discard)

    async def _answer_fetch(self, worker_id: str, fetch: Fetch) -> None:
        """Send the block asked for, or say why not (never more than one frame)."""
        data, error = None, "the broker keeps no blocks"
        if self.blocks is not None:
            try:
                data = await self.blocks.get(fetch.ref)
                error = "" if data is not None else "the broker does not have this block"
            except ProtocolError as refused:
                self._warn(("fetch", worker_id), "refused FETCH from %s: %s", worker_id, refused)
                error = str(refused)
        answer = Block(fetch.request, fetch.ref, data, error)
        try:
            command, body = encode(answer)
        except ProtocolError as failure:
            log.warning("could not encode block %s: %s", fetch.ref, failure)
            return
        if len(body) > self.config.max_frame_bytes:
            limit = self.config.max_frame_bytes
            answer = Block(fetch.request, fetch.ref, None, f"larger than max_frame_bytes={limit}")
            command, body = encode(answer)
        identity = self._identities.get(worker_id)
        if identity is not None:
            self._send_body(identity, command, body, "BLOCK")

    def _on_upload(self, worker_id: str, upload: Upload) -> None:
        ref = upload.data.ref
        spec = self.dispatcher.assigned(worker_id, upload.task_id, upload.attempt)
        if self.blocks is None or spec is None or spec.model != ref.model_key:
            self.counters.reports_refused += 1
            why = (
                "the broker keeps no blocks"
                if self.blocks is None
                else ("it does not run that task for that model")
            )
            self._warn(("upload", worker_id), "refused block %s from %s: %s", ref, worker_id, why)
            return
        self.blocks.keep(
            upload.data,
            lambda error: self._warn(
                ("bad-block", worker_id), "refused block from %s: %s", worker_id, error
            ),
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
        final_changes = [c for c in effects.changes if c.state.final]
        finals = [c.task_id for c in final_changes]
        for task_id in finals:
            self.progress.pop(task_id, None)
        if finals and self._waiters:
            committed.add_done_callback(functools.partial(self._wake_waiters, finals))
        if finals and self._outcome_waiters:
            committed.add_done_callback(functools.partial(self._wake_outcomes, final_changes))
        for dispatch in effects.dispatches:
            self._send_tasks(dispatch)
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

    def _wake_outcomes(self, changes: list[Change], committed: asyncio.Future[None]) -> None:
        for change in changes:
            waiters = self._outcome_waiters.pop(change.task_id, ())
            for waiter in waiters:
                if waiter.done():
                    continue
                if committed.cancelled() or committed.exception() is not None:
                    waiter.set_exception(
                        SchedulerError(f"the final state of task {change.task_id} was not stored")
                    )
                else:
                    waiter.set_result(Outcome(change.state, change.value, change.error))

    def _send(self, worker_id: str, message: Message) -> None:
        identity = self._identities.get(worker_id)
        if identity is not None:
            self._send_raw(identity, message)

    def _send_tasks(self, dispatch: Dispatch) -> None:
        """Send a batch in as many TASK frames as fit; fail a task too large for any frame."""
        identity = self._identities.get(dispatch.worker_id)
        if identity is None:
            return
        try:
            fitting, too_big = encode_batches(dispatch.items, _task, self.config.max_frame_bytes)
        except ProtocolError as error:
            log.warning("could not encode a TASK batch for %s: %s", dispatch.worker_id, error)
            return
        for _, command, body in fitting:
            self._send_body(identity, command, body, "TASK")
        for item in too_big:
            log.warning("task %s is larger than max_frame_bytes; failing it", item.task_id)
            error = (
                f"the task's payload does not fit in one frame of max_frame_bytes="
                f"{self.config.max_frame_bytes}; raise max_frame_bytes on the broker and workers"
            )
            failed = Failed(item.task_id, error, attempt=item.attempt)
            self._apply(self.dispatcher.fail(dispatch.worker_id, failed, self._clock()))

    def _send_raw(self, identity: bytes, message: Message) -> None:
        try:
            command, body = encode(message)
        except ProtocolError as error:
            log.warning("could not encode %s: %s", type(message).__name__, error)
            return
        self._send_body(identity, command, body, type(message).__name__)

    def _send_body(self, identity: bytes, command: Command, body: bytes, what: str) -> None:
        if self._sock is None or self._closed:
            return
        # Send through the asyncio socket (never blocks: ROUTER drops on a full pipe) so
        # pyzmq re-arms its edge-triggered wake-up for the pending receive.
        sent: asyncio.Future[Any] = self._sock.send_multipart(  # type: ignore[assignment]
            join_frames(command, body, identity), flags=zmq.DONTWAIT
        )
        failure = sent.exception() if sent.done() else None
        if failure is not None:
            log.warning("could not send %s to %r: %s", what, identity, failure)
        else:
            self.counters.frames_out += 1


def _task(items: tuple[TaskItem, ...]) -> Task:
    return Task(items)


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
