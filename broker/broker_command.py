"""``shift broker``: run the broker alone (REST + ROUTER + store) in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shift.cliflags import Flag, add_setting_flags

HELP = "Run the broker alone (REST API and ZeroMQ ROUTER)."
"""One line of ``shift --help``."""

BROKER_FLAGS: tuple[Flag, ...] = (
    ("--state-dir", "state_dir", str),
    ("--http-host", "http_host", str),
    ("--http-port", "http_port", int),
    ("--zmq-host", "zmq_host", str),
    ("--zmq-port", "zmq_port", int),
    ("--token", "token", str),
    ("--heartbeat-ms", "heartbeat_ms", int),
    ("--liveness", "liveness", int),
    ("--max-attempts", "max_attempts", int),
)
"""Flags that override settings of the same name."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``shift broker`` flags."""
    add_setting_flags(parser, BROKER_FLAGS)
    parser.add_argument("--log-level", default="info", help="Logging level (default info).")


def run(args: argparse.Namespace) -> int:
    """Run the broker until SIGINT or SIGTERM; returns the exit code."""
    from broker.server import command_settings, install_stop_signals, print_listening, serve

    settings = command_settings(args, BROKER_FLAGS, "broker")
    if settings is None:
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop.set)
        await serve(settings, stop, print_listening)

    try:
        asyncio.run(main())
    except OSError as error:
        print(f"shift broker: cannot listen: {error}", file=sys.stderr)
        return 1
    return 0
