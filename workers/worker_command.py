"""``shift worker``: one worker process for one device, connected to a broker."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys

from shift.cliflags import Flag, add_setting_flags, setting_flags, setting_overrides

HELP = "Run one worker for one device, connected to a broker."
"""One line of ``shift --help``."""

WORKER_FLAGS: tuple[Flag, ...] = setting_flags(
    "heartbeat_ms",
    "liveness",
    "prefetch",
    "reconnect_max_ms",
    "shutdown_grace_ms",
    "worker_keys",
    "max_frame_bytes",
)
"""Flags that override settings of the same name."""


def default_worker_id(device: str) -> str:
    """``host-pid-device``: unique per process, readable in ``/v1/workers``."""
    return f"{socket.gethostname()}-{os.getpid()}-{device.replace(':', '')}"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``shift worker`` flags."""
    parser.add_argument(
        "--broker",
        default=None,
        help="Broker endpoint, e.g. tcp://HOST:5555 (default from zmq_host and zmq_port).",
    )
    parser.add_argument("--device", default="cpu", help="Device to run on (cpu, cuda:0, ...).")
    parser.add_argument("--id", dest="worker_id", default=None, help="Worker id (unique).")
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="Import MODULE to register more task kinds (repeatable).",
    )
    add_setting_flags(parser, WORKER_FLAGS)
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="Exit when process PID (the shift up that started this worker) ends.",
    )
    parser.add_argument("--log-level", default="info", help="Logging level (default info).")


def run(args: argparse.Namespace) -> int:
    """Run the worker until SIGINT or SIGTERM; returns the exit code."""
    import importlib
    import logging
    from pathlib import Path

    if args.parent_pid is not None:  # first, before the slow imports below
        from workers.parent import die_with_parent

        die_with_parent(args.parent_pid)

    from workers.quiet import quiet_third_party

    quiet_third_party()  # before transformers is imported: it reads its verbosity once
    from shift.errors import ShiftError
    from shift.keys import read_bundle
    from shift.payloads import FEATURES_DIR
    from shift.protocol import Timing
    from shift.settings import load_settings
    from workers import (  # noqa: F401  (registers the kinds)
        builtin,
        classify,
        describe,
        embed,
        finetune,
        model_registry,
        purge,
        rank,
        task2vec,
    )
    from workers.runtime import Worker, WorkerConfig, default_memory_bytes

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings(setting_overrides(args, WORKER_FLAGS))
        for module in args.plugin:
            importlib.import_module(module)
        config = WorkerConfig(
            broker=args.broker or f"tcp://{settings['zmq_host']}:{settings['zmq_port']}",
            worker_id=args.worker_id or default_worker_id(args.device),
            device=args.device,
            prefetch=max(1, int(settings["prefetch"])),
            timing=Timing.from_settings(settings),
            reconnect_max_s=int(settings["reconnect_max_ms"]) / 1000,
            shutdown_grace_s=int(settings["shutdown_grace_ms"]) / 1000,
            memory_bytes=default_memory_bytes(),
            max_frame_bytes=int(settings["max_frame_bytes"]),
            curve=read_bundle(settings["worker_keys"]) if settings["worker_keys"] else None,
            parent_pid=args.parent_pid,
            feature_store=Path(settings["state_dir"]).expanduser() / FEATURES_DIR,
        )
    except (ShiftError, ImportError) as error:
        print(f"shift worker: {error}", file=sys.stderr)
        return 2

    async def main() -> None:
        worker = Worker(config)
        loop = asyncio.get_running_loop()
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.stop)
        await worker.run()

    asyncio.run(main())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m workers`` and ``scripts/worker``."""
    parser = argparse.ArgumentParser(prog="shift worker", description=__doc__)
    configure(parser)
    return run(parser.parse_args(argv))
