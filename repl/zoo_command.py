"""``shift zoo install | list``: the offline zoo (``shift.zoo``) in a running broker.

``install`` registers the zoo's starter models (``--pools``: every model) and every dataset
over REST (``POST /v1/models`` and
``/v1/datasets``), waits until the broker has measured them, and prints a table; it is
idempotent (already registered entries answer 200 and are left alone). ``list`` prints
what the zoo offers and, when a broker answers, whether each entry is installed. It talks
to the broker through :class:`repl.client.BrokerClient`, the one HTTP client of shift.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from repl.client import BrokerClient, ClientError
from shift import zoo
from shift.errors import ShiftError

HELP = "Install or list the offline zoo in a running broker."
"""One line of ``shift --help``."""

INSTALL_TIMEOUT_S = 600.0
"""Longest ``install`` waits for the broker to measure every entry."""

REQUEST_TIMEOUT_S = 60.0
"""Timeout of one request (registering an entry answers at once; measuring is polled)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``shift zoo`` arguments."""
    parser.add_argument("action", choices=("install", "list"), help="what to do")
    parser.add_argument("--url", default=None, help="Broker URL (default: the url setting).")
    parser.add_argument("--token", default=None, help="Bearer token (default: the token setting).")
    parser.add_argument(
        "--pools",
        action="store_true",
        help="also install the benchmark pools (every stage/layer, random-init controls: "
        f"{len(zoo.POOL_MODELS)} more models)",
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=INSTALL_TIMEOUT_S,
        help="How long install waits for the broker to measure the entries.",
    )


def _entries(client: BrokerClient) -> dict[str, dict[str, dict[str, Any]]]:
    """The broker's models and datasets by name.

    Raises:
        ClientError: The broker cannot be reached, refuses, or answers another shape.
    """
    out = {}
    for kind in ("models", "datasets"):
        body = client.request("GET", f"/v1/{kind}")
        entries = body.get(kind) if isinstance(body, dict) else None
        if not isinstance(entries, list):
            raise ClientError(f"GET /v1/{kind}: unexpected answer from the broker: {body!r}")
        out[kind] = {e["name"]: e for e in entries}
    return out


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _rows(
    installed: dict[str, dict[str, dict[str, Any]]] | None,
    models: Sequence[Any] = zoo.MODELS,
) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for kind, specs in (("models", models), ("datasets", zoo.DATASETS)):
        for spec in specs:
            entry = (installed or {}).get(kind, {}).get(spec.name)
            if installed is None:
                state = "?"
            elif entry is None:
                state = "no"
            elif entry["key"] != spec.key:
                state = "other spec"
            else:
                state = entry["status"]
            detail = ""
            if entry is not None and kind == "models":
                detail = f"{entry.get('num_params')} params, {entry.get('feature_dim')}-d"
            elif entry is not None:
                detail = f"{entry.get('size')} rows, {entry.get('num_classes')} classes"
            if entry is not None and entry.get("error"):
                detail = entry["error"]
            rows.append([kind[:-1], spec.name, spec.modality, state, detail])
    return rows


COLUMNS = ("kind", "name", "modality", "installed", "measured")


def install(client: BrokerClient, timeout_s: float, pools: bool = False) -> int:
    """Register the zoo's starter models (and, with ``pools``, the benchmark pools) and its
    datasets, wait for the measurements, print the table.

    Raises:
        ClientError: The broker cannot be reached.
    """
    models = zoo.MODELS if pools else zoo.STARTER_MODELS
    for kind, specs in (("models", models), ("datasets", zoo.DATASETS)):
        for spec in specs:
            try:
                client.request("POST", f"/v1/{kind}", spec.to_json())
            except ShiftError as error:
                if isinstance(error, ClientError) and error.unreachable:
                    raise
                print(f"shift zoo: {spec.name}: {error}", file=sys.stderr)
    deadline = time.monotonic() + timeout_s
    while True:
        installed = _entries(client)
        pending = [e for k in installed.values() for e in k.values() if e["status"] == "pending"]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rows = _rows(installed, models)
    print(format_table(COLUMNS, rows))
    failed = [r for r in rows if r[3] not in ("ready",)]
    if failed:
        print(f"shift zoo: {len(failed)} entr(ies) not ready", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``shift zoo``; returns the exit code."""
    from shift.settings import load_settings

    settings = load_settings()
    url = args.url or settings["url"]
    token = args.token if args.token is not None else settings["token"]
    client = BrokerClient(url, token, REQUEST_TIMEOUT_S)
    try:
        if args.action == "install":
            return install(client, args.timeout_s, args.pools)
        try:
            installed = _entries(client)
        except ClientError as error:
            print(f"shift zoo: {error}; showing the zoo only", file=sys.stderr)
            installed = None
        print(format_table(COLUMNS, _rows(installed)))
        return 0
    except ShiftError as error:
        print(f"shift zoo: {error}", file=sys.stderr)
        return 1
