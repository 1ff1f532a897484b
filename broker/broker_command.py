"""``shift broker``: run the broker alone (REST + ROUTER + store) in the foreground."""

from __future__ import annotations

import argparse
import asyncio

from shift.cliflags import Flag, add_setting_flags, setting_flags

HELP = "Run the broker alone (REST API and ZeroMQ ROUTER)."
"""One line of ``shift --help``."""

BROKER_FLAGS: tuple[Flag, ...] = setting_flags(
    "state_dir",
    "data_roots",
    "http_host",
    "http_port",
    "zmq_host",
    "zmq_port",
    "token",
    "heartbeat_ms",
    "liveness",
    "max_attempts",
    "zmq_auth",
    "prefetch_max",
    "max_frame_bytes",
    "halving",
    "rank_strategy",
)
"""Flags that override settings of the same name."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``shift broker`` flags."""
    add_setting_flags(parser, BROKER_FLAGS)
    parser.add_argument("--log-level", default="info", help="Logging level (default info).")


def run(args: argparse.Namespace) -> int:
    """Run the broker until SIGINT or SIGTERM; returns the exit code."""
    from broker.server import (
        command_settings,
        install_stop_signals,
        print_listening,
        run_command,
        serve,
    )

    settings = command_settings(args, BROKER_FLAGS, "broker")
    if settings is None:
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop.set)
        await serve(settings, stop, print_listening)

    return run_command(main, "broker")
