"""``shift simulate ACTION ...``: a registry of simulator subcommands, loaded lazily.

Each action lives in its own module exposing ``HELP``, ``configure(parser)`` and
``run(args) -> int``, like the top-level commands of :mod:`shift.cli`. Add one with
:func:`register_action`.
"""

from __future__ import annotations

import argparse

from shift.cli import Command, add_commands

HELP = "Simulate searches: replay recorded runs, simulate a cluster, study scale."
"""One line of ``shift --help``."""

ACTIONS: dict[str, Command] = {}
"""Action name -> the module implementing ``shift simulate <action>``."""


def register_action(name: str, module: str) -> None:
    """Add a ``shift simulate`` action (names must be unique)."""
    if name in ACTIONS:
        raise ValueError(f"simulate action {name!r} registered twice")
    ACTIONS[name] = Command(name, module)


register_action("replay", "simulator.replay_command")
register_action("run", "simulator.run_command")
register_action("sweep", "simulator.sweep_command")
register_action("scale", "simulator.scale_command")
register_action("halving", "simulator.halving_command")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add one subparser per registered action."""
    add_commands(parser, ACTIONS.values(), "simulate_action", "ACTION")


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; returns its exit code."""
    return int(ACTIONS[args.simulate_action].load().run(args))
