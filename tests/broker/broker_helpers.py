"""Real broker and worker processes on loopback for the integration tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_MS = 100
DEADLINE_S = 60.0
"""Longest any wait in these tests may take before the test fails (never a timing check)."""


class BrokerProcess:
    """A ``python -m broker`` child process."""

    def __init__(self, state_dir: Path, log_path: Path, **flags: Any) -> None:
        self.state_dir = state_dir
        self.log_path = log_path
        self.flags = {"http_port": 0, "zmq_port": 0, "heartbeat_ms": HEARTBEAT_MS, **flags}
        self.process: subprocess.Popen[str] | None = None
        self.http = ""
        self.zmq = ""

    def start(self) -> BrokerProcess:
        command = [sys.executable, "-m", "broker", "--state-dir", str(self.state_dir)]
        for name, value in self.flags.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"broker did not start; see {self.log_path.read_text()}")
        where = json.loads(line)
        self.http, self.zmq = where["http"], where["zmq"]
        # Restarts must come back on the same ports so workers find the broker again.
        self.flags["http_port"] = int(self.http.rsplit(":", 1)[1])
        self.flags["zmq_port"] = int(self.zmq.rsplit(":", 1)[1])
        return self

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self) -> int:
        assert self.process is not None
        return self.process.wait(timeout=DEADLINE_S)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class WorkerProcess:
    """A ``python -m workers`` child process."""

    def __init__(self, broker: str, worker_id: str, log_path: Path, **flags: Any) -> None:
        command = [
            sys.executable, "-m", "workers", "--broker", broker, "--id", worker_id,
            "--heartbeat-ms", str(HEARTBEAT_MS), "--plugin", "kinds_for_tests",
        ]  # fmt: skip
        for name, value in flags.items():
            command += [f"--{name.replace('_', '-')}", str(value)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
        with open(log_path, "a") as log:
            self.process = subprocess.Popen(command, stderr=log, cwd=ROOT, env=env)
        self.worker_id = worker_id

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Factories for broker and worker processes; everything is stopped afterwards."""
    started: list[Any] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def broker(**flags: Any) -> BrokerProcess:
        b = BrokerProcess(tmp_path / "state", logs / "broker.log", **flags).start()
        started.append(b)
        return b

    def worker(b: BrokerProcess, worker_id: str, **flags: Any) -> WorkerProcess:
        w = WorkerProcess(b.zmq, worker_id, logs / f"{worker_id}.log", **flags)
        started.append(w)
        return w

    yield {"broker": broker, "worker": worker, "logs": logs}
    for p in reversed(started):
        p.stop()


class Api:
    """A small REST client for the tests."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def get(self, path: str, **params: Any) -> Any:
        async with self.session.get(self.base + path, params=params) as r:
            assert r.status == 200, await r.text()
            return await r.json()

    async def post(self, path: str, body: Any = None) -> Any:
        async with self.session.post(self.base + path, json=body) as r:
            assert r.status in (200, 201), await r.text()
            return await r.json()

    async def tasks(self, state: str | None = None) -> list[dict[str, Any]]:
        """Every task (all pages)."""
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            params: dict[str, Any] = {"limit": 1000, "after": after}
            if state:
                params["state"] = state
            page = await self.get("/v1/tasks", **params)
            out += page["tasks"]
            if page["next"] is None:
                return out
            after = page["next"]


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


async def wait_until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll ``check`` until it returns something truthy; fail after :data:`DEADLINE_S`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while True:
        try:
            value = await check()
        except aiohttp.ClientError:
            value = None
        if value:
            return value
        if loop.time() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)
