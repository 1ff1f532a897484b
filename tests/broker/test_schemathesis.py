"""The OpenAPI document and the API agree: ``schemathesis run --checks all`` finds nothing.

A real broker process on loopback, without and with a token; a bounded run (few examples
per operation, every phase: coverage, fuzzing, stateful). ``scripts/bench_schemathesis``
runs the same with more examples and prints the figures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "schemathesis", reason="schemathesis is not installed (pip install schemathesis==4.32.5)"
)

CONFIG = Path(__file__).with_name("schemathesis.toml")
TOKEN = "s3cret-for-schemathesis"


def _cli() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    if found.exists():
        return str(found)
    located = shutil.which("schemathesis")
    if located is None:
        pytest.skip("the schemathesis command is not on this environment's path")
    return located


def _run(url: str, report: Path, token: str = "") -> tuple[subprocess.CompletedProcess[str], dict]:
    command = [
        _cli(), "--config-file", str(CONFIG), "run", f"{url}/v1/openapi.json",
        "--checks", "all", "--max-examples", "5", "--workers", "1", "--seed", "7",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=400, check=False, cwd=report.parent
    )
    return done, json.loads(report.read_text())


@pytest.mark.parametrize("token", ["", TOKEN], ids=["no-token", "token"])
def test_schemathesis_finds_no_failure(processes, tmp_path: Path, token: str) -> None:
    broker = processes["broker"](**({"token": token} if token else {}))
    done, report = _run(broker.http, tmp_path / "report.json", token)
    summary = done.stdout[-3000:]
    assert report["failures"] == [], summary
    assert report["errors"] == [], summary
    assert report["operations"]["tested"] == report["operations"]["total"] >= 20, summary
    assert report["test_cases"]["generated"] > 100, summary
    assert done.returncode == 0, summary
