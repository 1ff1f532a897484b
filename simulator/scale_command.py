"""``shift simulate scale``: the scale study's table and the broker bottleneck point.

Exit codes: 0 printed, 1 bad inputs, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import sys

from shift.errors import ShiftError
from simulator.scale import DEVICES, MODELS

HELP = "Scale study: makespan and broker load for 10 to 10,000 models on 1 to 512 devices."
"""One line of ``shift simulate --help``."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift simulate scale``."""
    parser.add_argument("--models", type=int, nargs="+", default=list(MODELS))
    parser.add_argument("--devices", type=int, nargs="+", default=list(DEVICES))
    parser.add_argument("--load-s", type=float, default=2.0)
    parser.add_argument(
        "--embed-s-per-row",
        type=float,
        nargs="+",
        default=[0.02],
        help="per-row inference; several values give several tables",
    )
    parser.add_argument("--classify-s", type=float, default=0.05)
    parser.add_argument("--proxy-s-per-pair", type=float, default=1e-7)
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--test-rows", type=int, default=500)
    parser.add_argument("--block-rows", type=int, default=256)
    parser.add_argument(
        "--broker-rate",
        type=float,
        default=14_000.0,
        help="broker round trips per second (docs/broker.md: 14,000)",
    )


def report(args: argparse.Namespace) -> str:
    """The Markdown tables and bottleneck lines for the arguments."""
    from simulator.costs import Overheads, Workload, uniform_models
    from simulator.scale import bottleneck_devices, markdown, mean_task_s, scale

    out = []
    overheads = Overheads(broker_task_s=1 / args.broker_rate)
    for per_row in args.embed_s_per_row:

        def make(n: int, per_row: float = per_row) -> Workload:
            models = uniform_models(n, args.load_s, per_row, args.classify_s, args.proxy_s_per_pair)
            return Workload(models, args.train_rows, args.test_rows, args.block_rows)

        cells = scale(make, args.models, args.devices, overheads)
        one = make(1)
        limit = bottleneck_devices(one, args.broker_rate)
        out.append(
            f"### embed {per_row * 1000:g} ms/row, load {args.load_s:g} s "
            f"(mean task {mean_task_s(one):.3f} s)\n\n{markdown(cells)}\n\n"
            f"Broker bottleneck at about {limit:,.0f} devices "
            f"({args.broker_rate:,.0f} tasks/s x {mean_task_s(one):.3f} s per task)."
        )
    return "\n\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Print the tables."""
    try:
        print(report(args))
    except (ShiftError, ValueError) as error:
        print(f"shift simulate scale: {error}", file=sys.stderr)
        return 1
    return 0
