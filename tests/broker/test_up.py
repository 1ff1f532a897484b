"""``shift up`` supervision: workers die with it, dead workers come back, old ones stay out."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from broker_helpers import DEADLINE_S, HEARTBEAT_MS, ROOT, Api, WorkerProcess, wait_until
from peers import metric

from shift.keys import KeyPaths

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (from ``/proc``)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Up:
    """A ``python -m shift up`` process with two local CPU workers."""

    def __init__(self, state: Path, log: Path) -> None:
        command = [
            sys.executable, "-m", "shift", "up", "--state-dir", str(state),
            "--http-port", "0", "--zmq-port", "0", "--workers", "2", "--device", "cpu",
            "--heartbeat-ms", str(HEARTBEAT_MS), "--shutdown-grace-ms", "2000",
        ]  # fmt: skip
        with open(log, "a") as err:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT
            )
        assert self.process.stdout is not None
        where = json.loads(self.process.stdout.readline())
        self.http, self.zmq = where["http"], where["zmq"]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def _workers(api: Api) -> set[str]:
    return {w["id"] for w in (await api.get("/v1/workers"))["workers"]}


async def test_up_restarts_workers_and_leaves_nothing_behind_on_kill_9(tmp_path, http):
    state, log = tmp_path / "state", tmp_path / "up.log"
    first = Up(state, log)
    started: list[Up] = [first]
    leftover: WorkerProcess | None = None
    try:
        api = Api(http, first.http)
        local = {"local-cpu-0", "local-cpu-1"}
        await wait_until(lambda: _is(api, local), "both local workers")
        workers = _children(first.process.pid)
        assert len(workers) == 2

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)

        async def replaced():
            now = _children(first.process.pid)
            return len(now) == 2 and victim not in now and await _is(api, local)

        await wait_until(replaced, "the killed worker to be restarted")
        assert "restarting it in" in log.read_text()
        task = await api.post("/v1/tasks", {"kind": "echo", "payload": {"value": "after"}})
        await wait_until(lambda: _state(api, task["id"], "succeeded"), "a task on the new worker")

        old_keys = tmp_path / "old-local-keys"  # what a leftover worker of this run holds
        shutil.copytree(KeyPaths.of(state).bundle("local"), old_keys)
        workers = _children(first.process.pid)
        first.process.kill()  # kill -9 of the parent
        first.process.wait()

        async def all_gone():
            return not any(_alive(pid) for pid in workers)

        await wait_until(all_gone, "the workers to die with their parent")

        second = Up(state, log)
        started.append(second)
        api = Api(http, second.http)
        leftover = WorkerProcess(
            second.zmq, "local-cpu-0", tmp_path / "leftover.log", worker_keys=old_keys
        )
        await wait_until(lambda: _is(api, local), "the new run's workers")

        async def refused():
            return await metric(http, second.http, "shift_auth_denied_total") >= 1

        await wait_until(refused, "the broker to refuse the leftover's old key")
        assert await _is(api, local) and leftover.process.poll() is None
        assert len(_children(second.process.pid)) == 2
    finally:
        if leftover is not None:
            leftover.kill()
        for up in started:
            up.stop()
    assert second.process.returncode == 0


async def _is(api: Api, ids: set[str]) -> bool:
    return await _workers(api) == ids


async def _state(api: Api, task_id: str, state: str) -> bool:
    return (await api.get(f"/v1/tasks/{task_id}"))["state"] == state
