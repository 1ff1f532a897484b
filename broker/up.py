"""``shift up``: a broker plus local workers in the foreground; Ctrl-C drains and stops all.

Workers run as child processes (``python -m workers``) so model work never shares the
broker's event loop. On SIGINT/SIGTERM the workers are asked to stop first (they finish
their running task and say goodbye), then the broker closes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import logging
import os
import sys
from typing import Any

from broker.broker_command import BROKER_FLAGS
from shift.cliflags import Flag, add_setting_flags

HELP = "Run a broker and local workers in the foreground."
"""One line of ``shift --help``."""

UP_FLAGS: tuple[Flag, ...] = (
    *BROKER_FLAGS,
    ("--prefetch", "prefetch", int),
    ("--shutdown-grace-ms", "shutdown_grace_ms", int),
)
"""Flags that override settings of the same name."""

log = logging.getLogger(__name__)


def default_devices() -> list[str]:
    """One ``cuda:i`` per NVIDIA device node, else ``cpu`` (no torch import needed)."""
    gpus = sorted(glob.glob("/dev/nvidia[0-9]*"))
    return [f"cuda:{i}" for i in range(len(gpus))] or ["cpu"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``shift up`` flags."""
    add_setting_flags(parser, UP_FLAGS)
    parser.add_argument("--workers", type=int, default=None, help="Workers per device (default 1).")
    parser.add_argument(
        "--device",
        action="append",
        default=None,
        help="Device for local workers (repeatable; default: every GPU, else cpu).",
    )
    parser.add_argument("--log-level", default="info", help="Logging level (default info).")


def worker_command(
    endpoint: str, device: str, worker_id: str, settings: dict[str, Any], level: str
) -> list[str]:
    """The command line of one local worker."""
    return [
        sys.executable, "-m", "workers",
        "--broker", endpoint,
        "--device", device,
        "--id", worker_id,
        "--heartbeat-ms", str(settings["heartbeat_ms"]),
        "--liveness", str(settings["liveness"]),
        "--prefetch", str(settings["prefetch"]),
        "--shutdown-grace-ms", str(settings["shutdown_grace_ms"]),
        "--log-level", level,
    ]  # fmt: skip


def worker_environment(settings: dict[str, Any], device: str, cpu_workers: int) -> dict[str, str]:
    """The environment of a local worker.

    Local workers share the broker's state directory (so features land in
    ``<state_dir>/features``) and data roots. CPU workers split the cores between them
    (``OMP_NUM_THREADS``), so two workers on two cores do not each start two compute
    threads and fight over the cores; a value the user set is kept.
    """
    env = dict(os.environ)
    env["SHIFT_STATE_DIR"] = str(settings["state_dir"])
    env["SHIFT_DATA_ROOTS"] = str(settings["data_roots"])
    if device == "cpu" and cpu_workers > 0 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // cpu_workers))
    return env


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
    from broker.server import command_settings, install_stop_signals, print_listening, serve

    settings = command_settings(args, UP_FLAGS, "up")
    if settings is None:
        return 2
    devices = args.device or default_devices()
    per_device = 1 if args.workers is None else args.workers
    if per_device < 0:
        print("shift up: --workers must be 0 or more", file=sys.stderr)
        return 2

    async def main() -> None:
        stopping = asyncio.Event()
        broker_stop = asyncio.Event()
        install_stop_signals(stopping.set)
        listening: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

        def on_listening(where: dict[str, str]) -> None:
            print_listening(where)
            listening.set_result(where)

        server = asyncio.create_task(serve(settings, broker_stop, on_listening))
        waiting: set[asyncio.Future[Any]] = {server, listening}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if server in done:
            await server  # raises why it could not start
            return
        endpoint = listening.result()["zmq"]
        processes = []
        cpu_workers = per_device * sum(1 for d in devices if d == "cpu")
        for device in devices:
            env = worker_environment(settings, device, cpu_workers)
            for i in range(per_device):
                worker_id = f"local-{device.replace(':', '')}-{i}"
                command = worker_command(endpoint, device, worker_id, settings, args.log_level)
                processes.append(await asyncio.create_subprocess_exec(*command, env=env))
        await stopping.wait()
        await _stop_workers(processes, int(settings["shutdown_grace_ms"]) / 1000)
        broker_stop.set()
        await server

    try:
        asyncio.run(main())
    except OSError as error:
        print(f"shift up: cannot listen: {error}", file=sys.stderr)
        return 1
    return 0
