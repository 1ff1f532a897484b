"""``shift zoo install | list``: the offline zoo (``shift.zoo``) in a running broker.

``install`` registers every zoo model and dataset over REST (``POST /v1/models`` and
``/v1/datasets``), waits until the broker has measured them, and prints a table; it is
idempotent (already registered entries answer 200 and are left alone). ``list`` prints
what the zoo offers and, when a broker answers, whether each entry is installed.
Plain ``urllib`` keeps this client free of aiohttp.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from shift import zoo
from shift.errors import ShiftError

INSTALL_TIMEOUT_S = 600.0
"""Longest ``install`` waits for the broker to measure every entry."""


class ClientError(ShiftError):
    """The broker could not be reached or refused a request."""

    code = "client_error"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``shift zoo`` arguments."""
    parser.add_argument("action", choices=("install", "list"), help="what to do")
    parser.add_argument("--url", default=None, help="Broker URL (default: the url setting).")
    parser.add_argument("--token", default=None, help="Bearer token (default: the token setting).")
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=INSTALL_TIMEOUT_S,
        help="How long install waits for the broker to measure the entries.",
    )


def request(url: str, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One JSON request; returns (status, decoded body).

    Raises:
        ClientError: the broker cannot be reached.
    """
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url.rstrip("/") + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except (urllib.error.URLError, OSError) as error:
        raise ClientError(f"cannot reach the broker at {url}: {error}") from None


def _entries(url: str, token: str) -> dict[str, dict[str, dict[str, Any]]]:
    out = {}
    for kind in ("models", "datasets"):
        status, body = request(url, token, "GET", f"/v1/{kind}")
        if status != 200:
            raise ClientError(f"GET /v1/{kind}: {body.get('error', {}).get('message', status)}")
        out[kind] = {e["name"]: e for e in body[kind]}
    return out


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def _rows(installed: dict[str, dict[str, dict[str, Any]]] | None) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for kind, specs in (("models", zoo.MODELS), ("datasets", zoo.DATASETS)):
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


def install(url: str, token: str, timeout_s: float) -> int:
    """Register every zoo entry, wait for the measurements, print the table."""
    for kind, specs in (("models", zoo.MODELS), ("datasets", zoo.DATASETS)):
        for spec in specs:
            status, body = request(url, token, "POST", f"/v1/{kind}", spec.to_json())
            if status not in (200, 201):
                message = body.get("error", {}).get("message", status)
                print(f"shift zoo: {spec.name}: {message}", file=sys.stderr)
    deadline = time.monotonic() + timeout_s
    while True:
        installed = _entries(url, token)
        pending = [e for k in installed.values() for e in k.values() if e["status"] == "pending"]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rows = _rows(installed)
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
    try:
        if args.action == "install":
            return install(url, token, args.timeout_s)
        try:
            installed = _entries(url, token)
        except ClientError as error:
            print(f"shift zoo: {error}; showing the zoo only", file=sys.stderr)
            installed = None
        print(format_table(COLUMNS, _rows(installed)))
        return 0
    except ShiftError as error:
        print(f"shift zoo: {error}", file=sys.stderr)
        return 1
