"""A real broker and two worker processes on loopback, shared by a test module.

The tests talk plain HTTP (``urllib``) so the module-scoped fixture needs no event loop.
Workers run with one thread each (the machine has two cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 240.0
"""Longest any wait may take before the test fails (never a timing assertion)."""


def _env(tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "SHIFT_DATA_ROOTS": str(tmp / "data"),
        "SHIFT_STATE_DIR": str(tmp / "state"),
    }


class Cluster:
    """A broker and its workers; ``api`` calls go to the broker's REST API."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        (tmp / "data").mkdir(exist_ok=True)
        self.logs = tmp / "logs"
        self.logs.mkdir(exist_ok=True)
        self.broker: subprocess.Popen[str] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.url = ""
        self.zmq = ""
        self.ports = ("0", "0")

    def start_broker(self) -> None:
        command = [
            sys.executable, "-m", "broker", "--state-dir", str(self.tmp / "state"),
            "--http-port", self.ports[0], "--zmq-port", self.ports[1], "--heartbeat-ms", "200",
        ]  # fmt: skip
        with open(self.logs / "broker.log", "a") as log:
            self.broker = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT, env=_env(self.tmp)
            )
        assert self.broker.stdout is not None
        line = self.broker.stdout.readline()
        if not line:
            raise RuntimeError((self.logs / "broker.log").read_text())
        where = json.loads(line)
        self.url, self.zmq = where["http"], where["zmq"]
        self.ports = (self.url.rsplit(":", 1)[1], self.zmq.rsplit(":", 1)[1])

    def stop_broker(self) -> None:
        if self.broker is not None and self.broker.poll() is None:
            self.broker.send_signal(signal.SIGTERM)
            self.broker.wait(timeout=30)

    def start_workers(self, count: int) -> None:
        for i in range(count):
            command = [
                sys.executable, "-m", "workers", "--broker", self.zmq, "--id", f"w{i}",
                "--heartbeat-ms", "200",
            ]  # fmt: skip
            with open(self.logs / f"w{i}.log", "a") as log:
                self.workers.append(
                    subprocess.Popen(command, stderr=log, cwd=ROOT, env=_env(self.tmp))
                )
        self.wait_for(lambda: len(self.get("/v1/workers")["workers"]) >= count, "workers")

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        self.stop_broker()

    # ---- HTTP ----------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data, {"Content-Type": "application/json"}, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, body
        return body

    def wait_for(self, check: Any, what: str) -> Any:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                value = check()
            except (urllib.error.URLError, ConnectionError):
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}")
            time.sleep(0.1)

    def register(self, bodies: list[tuple[str, dict[str, Any]]]) -> None:
        """Register models/datasets (``(path, body)`` pairs) and wait until each is measured."""
        for path, body in bodies:
            status, answer = self.call("POST", path + "?wait=true", body)
            assert status in (200, 201) and answer["status"] == "ready", answer

    def install_zoo(self) -> str:
        """``shift zoo install`` into this broker; returns what it printed."""
        out = subprocess.run(
            [sys.executable, "-m", "shift", "zoo", "install", "--url", self.url],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=600,
        )
        assert "efficientnet-lite0" in out.stdout and "installed" in out.stdout, out.stderr
        return out.stdout

    def query(self, text: str, session: str = "default") -> list[dict[str, Any]]:
        """Run SHiFT-QL and return every query once final."""
        status, body = self.call("POST", "/v1/queries", {"text": text, "session": session})
        assert status == 202, body
        return [self.final(q["id"]) for q in body["queries"]]

    def final(self, query_id: str) -> dict[str, Any]:
        def done() -> Any:
            query = self.get(f"/v1/queries/{query_id}")
            return query if query["status"] in ("succeeded", "failed", "cancelled") else None

        return self.wait_for(done, f"query {query_id}")

    def task_count(self) -> int:
        """Every task the broker knows (all states)."""
        text = urllib.request.urlopen(self.url + "/metrics", timeout=30).read().decode()
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("shift_tasks{")
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A broker with two workers for the whole module."""
    running = Cluster(tmp_path_factory.mktemp("search"))
    try:
        running.start_broker()
        running.start_workers(2)
        yield running
    finally:
        running.stop()
