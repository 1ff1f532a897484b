"""``shift simulate halving``: project halving's ratio to larger pools from measured costs.

Exit codes: 0 printed, 1 bad inputs, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shift.errors import ShiftError
from simulator.projection import POOLS

HELP = "Project halving/exhaustive ratios for 64 to 1,000 models from a bench_halving cost file."
"""One line of ``shift simulate --help``."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift simulate halving``."""
    parser.add_argument(
        "--costs",
        type=Path,
        required=True,
        help="cost file written by scripts/bench_halving --write-costs FILE",
    )
    parser.add_argument("--models", type=int, nargs="+", default=list(POOLS))
    parser.add_argument("--train-rows", type=int, help="override the measured training rows")
    parser.add_argument("--test-rows", type=int, help="override the measured test rows")


def report(args: argparse.Namespace) -> str:
    """The table for the arguments."""
    import dataclasses

    from simulator.projection import Costs, markdown, projections

    costs = Costs.load(args.costs)
    changes = {
        k: v for k, v in (("train_rows", args.train_rows), ("test_rows", args.test_rows)) if v
    }
    costs = dataclasses.replace(costs, **changes)
    head = (
        f"{len(costs.models)} measured models, {costs.train_rows:,} training and "
        f"{costs.test_rows:,} test rows, CHUNK AUTO BUDGET AUTO; device seconds "
        "(racing with the planned arms per round; the measured run keeps more where its "
        "margin holds arms and fewer where it drops arms far behind the leader)"
    )
    return f"{head}\n\n{markdown(projections(costs, args.models))}"


def run(args: argparse.Namespace) -> int:
    """Print the table."""
    try:
        print(report(args))
    except (ShiftError, ValueError) as error:
        print(f"shift simulate halving: {error}", file=sys.stderr)
        return 1
    return 0
