"""``shift simulate replay``: replay strategies on the recorded runs and print the report.

Exit codes: 0 printed, 1 a records or ranking file is bad (the reason on stderr), 2 bad
arguments (argparse).
"""

from __future__ import annotations

import argparse
import sys

from shift.errors import ShiftError

HELP = "Replay search strategies on recorded fine-tuning results (regret and cost per task)."
"""One line of ``shift simulate --help``."""

# Spelled out so that building the parser (``shift --help``) imports no pandas; a test
# checks them against simulator.records.Modality and simulator.report.RENDERERS.
MODALITIES = ("vision", "text")
FORMATS = ("table", "csv", "json")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift simulate replay``."""
    parser.add_argument(
        "--records",
        metavar="FILE",
        help="fine-tuning records CSV (default: the SHiFT paper's ftrecords.csv shipped "
        "with shift)",
    )
    parser.add_argument(
        "--modality",
        choices=MODALITIES,
        help="only tasks of this modality (default: both)",
    )
    parser.add_argument(
        "--k",
        type=_positive,
        nargs="+",
        default=[1, 2],
        help="numbers of models the random, meta and ranking strategies fine-tune (default: 1 2)",
    )
    parser.add_argument(
        "--repeats",
        type=_positive,
        default=100,
        help="repeats of the random strategy (default: 100)",
    )
    parser.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    parser.add_argument(
        "--ranking",
        metavar="FILE",
        help="JSON of ranked model ids (a list, or per task) to replay as strategy 'ranking'",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    """Load, replay, print; see the module docstring for exit codes."""
    from simulator.ranking import load_ranking
    from simulator.records import DEFAULT_RECORDS, Modality, load_records
    from simulator.replay import replay
    from simulator.report import render

    try:
        records = load_records(args.records or DEFAULT_RECORDS)
        ranking = load_ranking(args.ranking) if args.ranking else None
        result = replay(
            records,
            modality=Modality(args.modality) if args.modality else None,
            ks=args.k,
            repeats=args.repeats,
            seed=args.seed,
            ranking=ranking,
        )
    except ShiftError as error:
        print(f"shift simulate replay: {error}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(render(result, args.format))
    return 0
