"""``shift simulate ACTION ...``: a registry of simulator subcommands, loaded lazily.

Each action lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``,
like the top-level commands of :mod:`shift.cli`. Add one with :func:`register_action`.
"""

from __future__ import annotations

import argparse

from shift.cli import Command

ACTIONS: dict[str, Command] = {}
"""Action name -> the module implementing ``shift simulate <action>``."""


def register_action(name: str, help: str, module: str) -> None:
    """Add a ``shift simulate`` action (names must be unique)."""
    if name in ACTIONS:
        raise ValueError(f"simulate action {name!r} registered twice")
    ACTIONS[name] = Command(name, help, module)


register_action(
    "replay",
    "Replay search strategies on recorded fine-tuning results (regret and cost per task).",
    "simulator.replay_command",
)
register_action(
    "run",
    "Simulate a search (exhaustive or successive halving) on a fake clock with the broker's "
    "dispatcher: makespan, utilisation, speedups, Gantt chart.",
    "simulator.run_command",
)
register_action(
    "sweep",
    "Simulate searches over chunk/budget settings and device counts (table and plot).",
    "simulator.sweep_command",
)
register_action(
    "scale",
    "Scale study: makespan and broker load for 10 to 10,000 models on 1 to 512 devices.",
    "simulator.scale_command",
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add one subparser per registered action."""
    actions = parser.add_subparsers(dest="simulate_action", metavar="ACTION")
    actions.required = True
    for action in ACTIONS.values():
        sub = actions.add_parser(action.name, help=action.help, description=action.help)
        action.load().configure(sub)


def run(args: argparse.Namespace) -> int:
    """Run the chosen action; returns its exit code."""
    return int(ACTIONS[args.simulate_action].load().run(args))
