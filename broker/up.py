"""``shift up``: a broker plus local workers in the foreground; Ctrl-C drains and stops all.

Workers run as child processes (``python -m workers``) so model work never shares the
broker's event loop. On SIGINT/SIGTERM the workers are asked to stop first (they finish
their running task and say goodbye), then the broker closes.

Supervision: each worker is started with ``--parent-pid`` and dies with this process, even
on ``kill -9`` (``workers.parent``). A worker that exits while ``shift up`` runs is started
again after a backoff (0.5 s doubling to 30 s, reset after a minute of good health), and
the log says so. The worker link uses CurveZMQ unless ``zmq_auth=off``: the local workers
get a key pair made afresh for each run, so a worker left over from an earlier run cannot
connect, let alone take a current worker's id.

Devices (:mod:`broker.devices`): ``--device auto``, the default, starts one worker per
visible GPU (``torch.cuda.device_count()``, so ``CUDA_VISIBLE_DEVICES`` decides), and CPU
workers where there is none; ``--workers N`` starts N per device.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
from pathlib import Path
from typing import Any

from broker.broker_command import BROKER_FLAGS
from broker.devices import needs_cuda_count, plan_devices, visible_cuda_count
from shift.cliflags import Flag, add_setting_flags, setting_flags
from shift.liveness import Backoff

HELP = "Run a broker and local workers in the foreground."
"""One line of ``shift --help``."""

UP_FLAGS: tuple[Flag, ...] = (*BROKER_FLAGS, *setting_flags("prefetch", "shutdown_grace_ms"))
"""Flags that override settings of the same name."""

log = logging.getLogger(__name__)


def default_devices() -> list[str]:
    """One ``cuda:i`` per visible CUDA device, else ``cpu`` (see :mod:`broker.devices`)."""
    return plan_devices(None, visible_cuda_count())


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``shift up`` flags."""
    add_setting_flags(parser, UP_FLAGS)
    parser.add_argument("--workers", type=int, default=None, help="Workers per device (default 1).")
    parser.add_argument(
        "--device",
        action="append",
        default=None,
        help=(
            "Device for local workers: auto (one worker per visible GPU, else cpu), cpu, "
            "cuda or cuda:N (repeatable; default auto)."
        ),
    )
    parser.add_argument("--log-level", default="info", help="Logging level (default info).")


RESTART_BASE_S = 0.5
"""First delay before restarting a worker that died."""

RESTART_MAX_S = 30.0
"""Longest delay before restarting a worker that keeps dying."""

HEALTHY_S = 60.0
"""A worker that ran this long before dying is restarted after the shortest delay."""


def worker_command(
    endpoint: str,
    device: str,
    worker_id: str,
    settings: dict[str, Any],
    level: str,
    keys: Path | None = None,
) -> list[str]:
    """The command line of one local worker (tied to this process, with ``keys`` if given)."""
    command = [
        sys.executable, "-m", "workers",
        "--broker", endpoint,
        "--device", device,
        "--id", worker_id,
        "--heartbeat-ms", str(settings["heartbeat_ms"]),
        "--liveness", str(settings["liveness"]),
        "--prefetch", str(settings["prefetch"]),
        "--shutdown-grace-ms", str(settings["shutdown_grace_ms"]),
        "--max-frame-bytes", str(settings["max_frame_bytes"]),
        "--parent-pid", str(os.getpid()),
        "--log-level", level,
    ]  # fmt: skip
    if keys is not None:
        command += ["--worker-keys", str(keys)]
    return command


def worker_environment(settings: dict[str, Any], workers: int) -> dict[str, str]:
    """The environment of a local worker.

    Local workers share the broker's state directory (so features land in
    ``<state_dir>/features``) and data roots. The workers split the cores between them
    (``OMP_NUM_THREADS``): two CPU workers on two cores do not each start two compute
    threads and fight over the cores, and a GPU worker's prefetch threads (decoding and
    preprocessing) do not oversubscribe the cores the other GPUs' workers need. A value
    the user set is kept.
    """
    env = dict(os.environ)
    env["SHIFT_STATE_DIR"] = str(settings["state_dir"])
    env["SHIFT_DATA_ROOTS"] = str(settings["data_roots"])
    if workers > 0 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    return env


async def _supervise(
    worker_id: str,
    command: list[str],
    env: dict[str, str],
    stopping: asyncio.Event,
    processes: dict[str, asyncio.subprocess.Process],
) -> None:
    """Keep one local worker running until ``stopping``: restart it with backoff when it dies."""
    loop = asyncio.get_running_loop()
    backoff = Backoff(RESTART_BASE_S, RESTART_MAX_S, random.Random())
    restarts = 0
    while not stopping.is_set():
        began = loop.time()
        process = await asyncio.create_subprocess_exec(*command, env=env)
        processes[worker_id] = process
        code = await process.wait()
        if stopping.is_set():
            return
        if loop.time() - began > HEALTHY_S:
            backoff.reset()
        delay = backoff.next_delay_s()
        restarts += 1
        log.warning(
            "worker %s (pid %d) exited with code %s; restarting it in %.1f s (restart %d)",
            worker_id,
            process.pid,
            code,
            delay,
            restarts,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), delay)


async def _stop_workers(processes: list[asyncio.subprocess.Process], grace_s: float) -> None:
    for process in processes:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
    for process in processes:
        try:
            await asyncio.wait_for(process.wait(), grace_s + 2)
        except TimeoutError:
            log.warning("worker pid %d did not stop; killing it", process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def run(args: argparse.Namespace) -> int:
    """Run the broker and its local workers until SIGINT or SIGTERM."""
    from broker.curve import curve_server, local_bundle
    from broker.server import (
        command_settings,
        install_stop_signals,
        print_listening,
        run_command,
        serve,
    )
    from shift.errors import ShiftError
    from shift.keys import KeyPaths

    settings = command_settings(args, UP_FLAGS, "up")
    if settings is None:
        return 2
    try:
        count = visible_cuda_count() if needs_cuda_count(args.device) else 0
        devices = plan_devices(args.device, count)
    except ShiftError as error:
        print(f"shift up: {error}", file=sys.stderr)
        return 2
    per_device = 1 if args.workers is None else args.workers
    if per_device < 0:
        print("shift up: --workers must be 0 or more", file=sys.stderr)
        return 2
    try:
        curve = curve_server(settings, create=True)
        keys = local_bundle(KeyPaths.of(settings["state_dir"])) if curve is not None else None
    except ShiftError as error:
        print(f"shift up: {error}", file=sys.stderr)
        return 2

    async def main() -> None:
        stopping = asyncio.Event()
        broker_stop = asyncio.Event()
        install_stop_signals(stopping.set)
        listening: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

        def on_listening(where: dict[str, str]) -> None:
            print_listening(where)
            listening.set_result(where)

        server = asyncio.create_task(serve(settings, broker_stop, on_listening, create_keys=True))
        waiting: set[asyncio.Future[Any]] = {server, listening}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if server in done:
            await server  # raises why it could not start
            return
        endpoint = listening.result()["zmq"]
        processes: dict[str, asyncio.subprocess.Process] = {}
        supervisors = []
        env = worker_environment(settings, per_device * len(devices))
        for device in devices:
            for i in range(per_device):
                worker_id = f"local-{device.replace(':', '')}-{i}"
                command = worker_command(
                    endpoint, device, worker_id, settings, args.log_level, keys
                )
                supervisors.append(
                    asyncio.create_task(_supervise(worker_id, command, env, stopping, processes))
                )
        await stopping.wait()
        for supervisor in supervisors:
            supervisor.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)
        await _stop_workers(list(processes.values()), int(settings["shutdown_grace_ms"]) / 1000)
        broker_stop.set()
        await server

    return run_command(main, "up")
