"""The ``shift`` console script: subcommands found through package entry points.

A subcommand is a module exposing ``HELP`` (one line), ``configure(parser)`` and
``run(args) -> int``. The packages that implement commands declare them in the entry-point
group ``shift.commands`` (pyproject.toml's ``[project.entry-points."shift.commands"]``,
e.g. ``up = "broker.up"``), so this core module names no outer package, by import or by
string, and another distribution can add commands of its own. Entry points live in the
installed package metadata: ``scripts/setup`` refreshes the editable install whenever
pyproject.toml changes, and a missing or stale install is reported as such.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shift import __version__
from shift.errors import ShiftError

COMMAND_GROUP = "shift.commands"
"""Entry-point group naming the modules of the ``shift`` subcommands."""

STALE_HINT = "the installed package metadata may be stale: run scripts/setup (or pip install -e .)"

COMMAND_ATTRIBUTES = ("HELP", "configure", "run")
"""What a command module defines."""


class CommandError(ShiftError):
    """A subcommand is missing, registered twice, or its module cannot be loaded."""

    code = "command_error"


@dataclass(frozen=True)
class Command:
    """A subcommand: its name and where it lives (``module`` or ``module:attribute``)."""

    name: str
    target: str

    def load(self) -> Any:
        """Import the implementing module (or object) and check that it is a command.

        Raises:
            CommandError: The module cannot be imported or lacks ``HELP``, ``configure``
                or ``run``.
        """
        module_name, _, attribute = self.target.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
            for part in filter(None, attribute.split(".")):
                found = getattr(found, part)
        except (ImportError, AttributeError) as error:
            raise CommandError(
                f"command {self.name!r} names {self.target!r}, which cannot be loaded "
                f"({error}); {STALE_HINT}"
            ) from None
        missing = [a for a in COMMAND_ATTRIBUTES if not hasattr(found, a)]
        if missing:
            raise CommandError(
                f"command {self.name!r}: {self.target!r} lacks {', '.join(missing)}; a "
                "command module defines HELP, configure(parser) and run(args)"
            )
        return found


def discover(group: str = COMMAND_GROUP) -> dict[str, Command]:
    """The installed subcommands of ``group``, sorted by name (as ``--help`` lists them).

    Raises:
        CommandError: No command is installed, or two distributions claim one name.
    """
    found: dict[str, Command] = {}
    for entry in importlib.metadata.entry_points(group=group):
        known = found.get(entry.name)
        if known is not None and known.target != entry.value:
            raise CommandError(
                f"command {entry.name!r} is registered twice in entry-point group {group!r}: "
                f"{known.target!r} and {entry.value!r}; uninstall one of the distributions"
            )
        found.setdefault(entry.name, Command(entry.name, entry.value))
    if not found:
        raise CommandError(f"no command is installed in entry-point group {group!r}; {STALE_HINT}")
    return dict(sorted(found.items()))


class _Parser(argparse.ArgumentParser):
    """argparse with a closest-match hint for mistyped subcommands (at every level)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Exit 2 with argparse's message plus the closest valid subcommand, if any."""
        word = re.search(r"invalid choice: '([^']*)'", message)
        choices = re.search(r"\(choose from (.*)\)", message)
        if word and choices:
            names = [n.strip().strip("'") for n in choices.group(1).split(",")]
            close = difflib.get_close_matches(word.group(1), names, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def add_commands(
    parser: argparse.ArgumentParser, commands: Iterable[Command], dest: str, metavar: str
) -> None:
    """Add one required subparser per command, configured and described by its module.

    Raises:
        CommandError: A command's module cannot be loaded.
    """
    subparsers = parser.add_subparsers(dest=dest, metavar=metavar)
    subparsers.required = True
    for command in commands:
        module = command.load()
        sub = subparsers.add_parser(command.name, help=module.HELP, description=module.HELP)
        module.configure(sub)


def build_parser(commands: Mapping[str, Command] | None = None) -> argparse.ArgumentParser:
    """Build the argument parser with every installed subcommand.

    Raises:
        CommandError: No command is installed or one cannot be loaded.
    """
    parser = _Parser(prog="shift", description="shift: a search engine for transfer learning.")
    parser.add_argument("--version", action="version", version=f"shift {__version__}")
    add_commands(parser, (commands or discover()).values(), "command", "COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shift`` console script; returns the process exit code."""
    try:
        commands = discover()
        parser = build_parser(commands)
    except CommandError as error:
        print(f"shift: {error}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    module = commands[args.command].load()
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
