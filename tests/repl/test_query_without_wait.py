"""``shift query`` without WAIT against a real broker (no workers): a statement the broker
already knows has failed prints its error and exits 1, never "queued" and 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state = tmp_path_factory.mktemp("nowait") / "state"
    command = [sys.executable, "-m", "broker", "--state-dir", str(state)]
    command += ["--http-port", "0", "--zmq-port", "0"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, "the broker did not start"
        yield json.loads(line)["http"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('RANK * FROM image_models TRAINED ON "nope" BY "logme"', "unknown dataset 'nope'"),
        (
            'SELECT * FROM models ORDER BY err ASC TRAINED ON "a" TESTED ON "b"',
            "unknown dataset 'a'",
        ),
        ('RANK * FROM image_models TRAINED ON "x" BY "logmee"', "did you mean 'logme'?"),
    ],
)
def test_a_failed_statement_without_wait_fails_the_run(
    broker_url: str, text: str, said: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shift", "query", "--url", broker_url, text],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert out.returncode != 0, out.stdout
    assert said in out.stderr, out.stderr
    assert "queued" not in out.stdout and "WAIT" not in out.stdout, out.stdout
