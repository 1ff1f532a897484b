"""``shift simulate run`` and ``shift simulate sweep``: simulate a search on a fake clock.

Exit codes: 0 printed, 1 bad inputs (the reason on stderr), 2 bad arguments (argparse).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from shift.errors import ShiftError

HELP = (
    "Simulate a search (exhaustive or successive halving) on a fake clock with the broker's "
    "dispatcher: makespan, utilisation, speedups, Gantt chart."
)
"""One line of ``shift simulate --help``."""

SWEEP_HELP = "Simulate searches over chunk/budget settings and device counts (table and plot)."
"""One line of ``shift simulate --help`` for ``sweep``."""

FORMATS = ("table", "json")


def _setting_value(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number or auto, got {text}")
    return value


def _failure(text: str) -> tuple[int, float, float | None]:
    try:
        device, rest = text.split("@", 1)
        at, _, back = rest.partition(":")
        return int(device), float(at), float(back) if back else None
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a failure is DEVICE@SECONDS[:BACK_SECONDS], e.g. 0@30 or 1@30:90; got {text!r}"
        ) from None


def configure_common(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``run`` and ``sweep``: models, costs, data, cluster."""
    pool = parser.add_argument_group("models and costs")
    which = pool.add_mutually_exclusive_group()
    which.add_argument("--models", type=int, default=8, help="identical models (default 8)")
    which.add_argument(
        "--catalog",
        metavar="FILE",
        help="JSON list of model rows (name, and "
        "optionally load_s embed_s_per_row classify_s proxy_s_per_pair finetune_s)",
    )
    which.add_argument("--zoo", choices=("vision", "text"), help="the offline zoo's models")
    pool.add_argument("--from-state", metavar="DIR", help="measure costs from a broker's state dir")
    pool.add_argument(
        "--from-url",
        metavar="URL",
        help="measure costs from a broker's GET /v1/tasks (with the token setting)",
    )
    pool.add_argument("--load-s", type=float, default=2.0, help="model load (default 2.0 s)")
    pool.add_argument("--embed-s-per-row", type=float, default=0.02, help="default 0.02 s")
    pool.add_argument("--classify-s", type=float, default=0.05, help="default 0.05 s")
    pool.add_argument("--proxy-s-per-pair", type=float, default=1e-7, help="default 1e-7 s")
    pool.add_argument(
        "--finetune-s",
        type=float,
        help="fine-tuning one model (default: the "
        "median elapsed_time of the modality in the replay records)",
    )
    pool.add_argument("--modality", choices=("vision", "text"), default="vision")
    data = parser.add_argument_group("data")
    data.add_argument("--train-rows", type=int, default=1000)
    data.add_argument("--test-rows", type=int, default=500)
    data.add_argument("--block-rows", type=int, default=256, help="rows per embed task (256)")
    data.add_argument("--classifiers", type=int, default=1)
    cluster = parser.add_argument_group("cluster and shell")
    cluster.add_argument("--prefetch", type=int, default=2)
    cluster.add_argument("--lru-models", type=int, default=2)
    cluster.add_argument("--detect-s", type=float, default=3.0, help="liveness timeout (3 s)")
    cluster.add_argument(
        "--broker-rate",
        type=float,
        default=14_000.0,
        help="broker round trips per second (docs/broker.md: 14,000)",
    )
    for name in ("start", "phase", "end", "task"):
        cluster.add_argument(f"--{name}-s", type=float, default=0.0, help=f"{name} overhead")
    parser.add_argument("--seed", type=int, default=0, help="seed of the halving losses")
    parser.add_argument("--format", choices=FORMATS, default="table")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift simulate run``."""
    configure_common(parser)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--chunk", type=_setting_value, help="CHUNK rows or auto (halving)")
    parser.add_argument("--budget", type=_setting_value, help="BUDGET pulls or auto (halving)")
    parser.add_argument(
        "--fail",
        type=_failure,
        action="append",
        default=[],
        metavar="DEVICE@T[:BACK]",
        help="a device dies at T (and returns at BACK)",
    )
    parser.add_argument("--gantt", metavar="PNG", help="write a Gantt chart of the devices")


def configure_sweep(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift simulate sweep``."""
    configure_common(parser)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument(
        "--settings",
        nargs="+",
        default=["exhaustive", "auto/auto"],
        help="exhaustive or CHUNK/BUDGET pairs, e.g. auto/auto 64/auto 128/48",
    )
    parser.add_argument("--plot", metavar="PNG", help="write makespan against devices")


def finetune_default(modality: str) -> float:
    """Median fine-tuning time of one model of ``modality`` in the replay records."""
    from simulator.records import DEFAULT_RECORDS, load_records

    records = load_records(DEFAULT_RECORDS)
    runs = records.runs[(records.runs["modality"] == modality) & records.runs["kept"]]
    return float(statistics.median(runs["cost_s"]))


def workload_of(args: argparse.Namespace) -> Any:
    """Build the workload the arguments describe (measured costs win over given ones)."""
    from simulator.costs import ModelCost, Workload, uniform_models
    from simulator.measure import measure_costs, read_state, read_url

    finetune = args.finetune_s if args.finetune_s is not None else finetune_default(args.modality)
    base = {
        "load_s": args.load_s,
        "embed_s_per_row": args.embed_s_per_row,
        "classify_s": args.classify_s,
        "proxy_s_per_pair": args.proxy_s_per_pair,
        "finetune_s": finetune,
    }
    rows: list[dict[str, Any]]
    if args.catalog:
        rows = json.loads(Path(args.catalog).read_text())
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "name" in r for r in rows):
            raise ShiftError(f"{args.catalog}: expected a JSON list of objects with a 'name'")
    elif args.zoo:
        from shift import zoo

        rows = [{"name": m.name} for m in zoo.MODELS if m.modality == args.zoo]
    else:
        rows = [{"name": m.name} for m in uniform_models(args.models, 0, 0)]
    records = None
    if args.from_state:
        records = read_state(args.from_state)
    elif args.from_url:
        from shift.settings import load_settings

        records = read_url(args.from_url, str(load_settings()["token"]))
    measured = measure_costs(records) if records is not None else None
    models = []
    for row in rows:
        cost = {**base, **{k: row[k] for k in base if k in row}}
        if measured is not None:
            name = row["name"]
            cost["load_s"] = measured.load_s.get(name, cost["load_s"])
            cost["embed_s_per_row"] = measured.embed_s_per_row.get(name, cost["embed_s_per_row"])
            cost["classify_s"] = measured.classify_s.get(name, cost["classify_s"])
            cost["proxy_s_per_pair"] = measured.proxy_s_per_pair
        models.append(ModelCost(str(row["name"]), **cost))
    return Workload(
        tuple(models), args.train_rows, args.test_rows, args.block_rows, args.classifiers
    )


def _shell(args: argparse.Namespace, devices: int) -> tuple[Any, Any]:
    from simulator.costs import Overheads
    from simulator.engine import Cluster

    cluster = Cluster(devices, args.prefetch, args.lru_models, args.detect_s)
    overheads = Overheads(args.start_s, args.phase_s, args.end_s, args.task_s, 1 / args.broker_rate)
    return cluster, overheads


def run(args: argparse.Namespace) -> int:
    """Simulate one configuration; print the table (and write the Gantt chart)."""
    from simulator.engine import Failure
    from simulator.study import Setting, render, study

    try:
        workload = workload_of(args)
        cluster, overheads = _shell(args, args.devices)
        failures = tuple(Failure(*f) for f in args.fail)
        result = study(
            workload, Setting(args.chunk, args.budget), cluster, overheads, failures, args.seed
        )
    except (ShiftError, OSError, ValueError) as error:
        print(f"shift simulate run: {error}", file=sys.stderr)
        return 1
    print(render([result], args.format))
    if args.gantt:
        from simulator.plots import gantt

        print(f"wrote {gantt(result.result, args.gantt)}", file=sys.stderr)
    return 0


def _parse_setting(text: str) -> Any:
    from simulator.study import Setting

    if text == "exhaustive":
        return Setting()
    chunk, _, budget = text.partition("/")
    return Setting(_setting_value(chunk), _setting_value(budget or "auto"))


def run_sweep(args: argparse.Namespace) -> int:
    """Simulate every setting on every device count; print the table (and plot)."""
    from simulator.study import render, sweep

    try:
        workload = workload_of(args)
        settings = [_parse_setting(s) for s in args.settings]
        cluster, overheads = _shell(args, 1)
        studies = sweep(workload, settings, args.devices, cluster, overheads, args.seed)
    except (ShiftError, OSError, ValueError, argparse.ArgumentTypeError) as error:
        print(f"shift simulate sweep: {error}", file=sys.stderr)
        return 1
    print(render(studies, args.format))
    if args.plot:
        from simulator.plots import sweep_plot

        print(f"wrote {sweep_plot(studies, args.plot)}", file=sys.stderr)
    return 0
