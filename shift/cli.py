"""The ``shift`` console script: a registry of subcommands, loaded lazily.

Each subcommand lives in its own module exposing ``configure(parser)`` and
``run(args) -> int``. The registry names modules as strings so that this core module
imports nothing from ``broker``, ``workers`` or ``repl`` until that command runs.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from shift import __version__


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one line of help and the module implementing it."""

    name: str
    help: str
    module: str

    def load(self) -> ModuleType:
        """Import the implementing module."""
        return importlib.import_module(self.module)


COMMANDS: dict[str, Command] = {}


def register_command(name: str, help: str, module: str) -> None:
    """Add a subcommand to the registry (names must be unique)."""
    if name in COMMANDS:
        raise ValueError(f"command {name!r} registered twice")
    COMMANDS[name] = Command(name, help, module)


register_command(
    "parse", "Parse SHiFT-QL and print the query tree as JSON.", "shift.commands.parse"
)
register_command(
    "query", "Run SHiFT-QL statements against a broker and print results.", "repl.query_command"
)
register_command(
    "zoo", "Install or list the offline zoo in a running broker.", "shift.commands.zoo"
)
register_command("repl", "The interactive SHiFT-QL client: completion, progress.", "repl.app")
register_command("demo", "The main job: a real search on the offline zoo, end to end.", "repl.demo")
register_command("up", "Run a broker and local workers in the foreground.", "broker.up")
register_command("broker", "Run the broker alone (REST API and ZeroMQ ROUTER).", "broker.command")
register_command(
    "keys", "Create and hand out the CurveZMQ keys of the worker link.", "broker.keys_command"
)
register_command(
    "worker", "Run one worker for one device, connected to a broker.", "workers.command"
)
register_command(
    "simulate", "Simulate searches: replay strategies on recorded runs.", "simulator.command"
)


class _Parser(argparse.ArgumentParser):
    """argparse with a closest-match hint for mistyped subcommands."""

    def error(self, message: str) -> None:  # type: ignore[override]
        if "invalid choice" in message:
            word = message.split("'")[1] if "'" in message else ""
            close = difflib.get_close_matches(word, list(COMMANDS), n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = _Parser(prog="shift", description="shift: a search engine for transfer learning.")
    parser.add_argument("--version", action="version", version=f"shift {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in COMMANDS.values():
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        command.load().configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shift`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    module = COMMANDS[args.command].load()
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``shift ... | head``): stop quietly, like other CLI tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
