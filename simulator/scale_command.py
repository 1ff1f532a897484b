"""``shift simulate scale``: the scale study's table, the broker bottleneck point, and how
many workers one broker can feed (from given costs, or measured ones with ``--from-state``
or ``--from-url``; ``--feeds`` prints only that).

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
        help="broker tasks per second (scripts/bench_broker's round trips: 14,000; "
        "scripts/bench_scale prints the query path's rate)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--from-state",
        metavar="DIR",
        help="per-model costs measured from a broker's stored tasks (DIR/shift.sqlite)",
    )
    source.add_argument(
        "--from-url", metavar="URL", help="the same from a running broker's GET /v1/tasks"
    )
    parser.add_argument(
        "--feeds",
        action="store_true",
        help="only say how many workers one broker can feed (no simulation)",
    )


def _measured(args: argparse.Namespace) -> tuple[float, float, float, float, str] | None:
    """Mean measured ``(load_s, embed_s_per_row, classify_s, proxy_s_per_pair, where)``
    over the models of the stored records, or ``None`` without ``--from-*``."""
    from simulator.measure import measure_costs, read_state, read_url

    if args.from_state:
        records, where = read_state(args.from_state), f"stored tasks in {args.from_state}"
    elif args.from_url:
        from shift.settings import load_settings

        token = str(load_settings()["token"])
        records, where = read_url(args.from_url, token), f"tasks of {args.from_url}"
    else:
        return None
    costs = measure_costs(records)
    per_row = costs.embed_s_per_row
    models = sorted(per_row)
    load = sum(costs.load_s.get(m, args.load_s) for m in models) / len(models)
    classify = sum(costs.classify_s.get(m, args.classify_s) for m in models) / len(models)
    embed = sum(per_row[m] for m in models) / len(models)
    where = f"{where}: {costs.tasks} task records, {len(models)} models"
    return load, embed, classify, costs.proxy_s_per_pair, where


def report(args: argparse.Namespace) -> str:
    """The Markdown tables and bottleneck lines for the arguments."""
    from simulator.costs import Overheads, Workload, uniform_models
    from simulator.scale import bottleneck_devices, feeds_line, markdown, mean_task_s, scale

    if args.broker_rate <= 0:
        raise ValueError(f"--broker-rate must be > 0 tasks/s, got {args.broker_rate:g}")
    out = []
    overheads = Overheads(broker_task_s=1 / args.broker_rate)
    measured = _measured(args)
    if measured is not None:
        load_s, per_row, classify_s, proxy_s, where = measured
        cases = [(load_s, per_row, classify_s, proxy_s, where)]
    else:
        where = "given costs"
        cases = [
            (args.load_s, r, args.classify_s, args.proxy_s_per_pair, where)
            for r in args.embed_s_per_row
        ]
    for load_s, per_row, classify_s, proxy_s, where in cases:

        def make(
            n: int,
            load_s: float = load_s,
            per_row: float = per_row,
            classify_s: float = classify_s,
            proxy_s: float = proxy_s,
        ) -> Workload:
            models = uniform_models(n, load_s, per_row, classify_s, proxy_s)
            return Workload(models, args.train_rows, args.test_rows, args.block_rows)

        one = make(1)
        feeds = feeds_line(one, args.broker_rate, where)
        if args.feeds:
            out.append(feeds)
            continue
        cells = scale(make, args.models, args.devices, overheads)
        limit = bottleneck_devices(one, args.broker_rate)
        out.append(
            f"### embed {per_row * 1000:.3g} ms/row, load {load_s:.3g} s "
            f"(mean task {mean_task_s(one):.3f} s)\n\n{markdown(cells)}\n\n"
            f"Broker bottleneck at about {limit:,.0f} devices "
            f"({args.broker_rate:,.0f} tasks/s x {mean_task_s(one):.3f} s per task).\n\n{feeds}"
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
