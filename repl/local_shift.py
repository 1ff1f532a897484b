"""A local shift for scripts: ``shift up`` (a broker and CPU workers) on a state directory.

``shift demo`` and the benchmarks use it: start it, wait until it listens and its workers
are connected, install the offline zoo, run queries to completion, stop it (SIGINT, then a
kill if it hangs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

from repl.client import BrokerClient

FINAL = ("succeeded", "failed", "cancelled")


class LocalShift:
    """``shift up`` with ``workers`` CPU workers on ``state_dir``, as a context manager.

    Args:
        state_dir: The broker's state directory (also the data root unless
            ``SHIFT_DATA_ROOTS`` is set).
        workers: Local CPU workers.
        timeout_s: Longest wait for the broker to listen and the workers to connect.
        log_level: ``shift up``'s log level.
        settings: Settings for ``shift up`` (as ``SHIFT_<NAME>`` variables).
        device: The workers' device (``cpu``, ``cuda:0``, ``auto``).
    """

    def __init__(
        self,
        state_dir: str,
        workers: int,
        timeout_s: float = 300.0,
        log_level: str = "warning",
        settings: dict[str, str] | None = None,
        device: str = "cpu",
    ) -> None:
        self.settings = dict(settings or {})
        self.device = device
        self.state_dir = state_dir
        self.workers = workers
        self.timeout_s = timeout_s
        self.log_level = log_level
        self.url = ""
        self._up: subprocess.Popen[str] | None = None

    @property
    def client(self) -> BrokerClient:
        """A REST client of the running broker."""
        return BrokerClient(self.url)

    def start(self) -> str:
        """Start ``shift up``; return the broker's URL once every worker is connected.

        Raises:
            SystemExit: it exits early or does not get ready within ``timeout_s``.
        """
        command = [
            sys.executable, "-m", "shift", "up", "--state-dir", self.state_dir,
            "--http-port", "0", "--zmq-port", "0", "--workers", str(self.workers),
            "--device", self.device, "--log-level", self.log_level,
        ]  # fmt: skip
        env = {
            **os.environ,
            "SHIFT_STATE_DIR": self.state_dir,
            "SHIFT_DATA_ROOTS": os.environ.get("SHIFT_DATA_ROOTS", self.state_dir),
            **{"SHIFT_" + name.upper(): value for name, value in self.settings.items()},
        }
        self._up = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + self.timeout_s
        self.url = self._wait_listening(deadline)
        self._wait_workers(deadline)
        return self.url

    def _wait_listening(self, deadline: float) -> str:
        assert self._up is not None
        if self._up.stdout is None:
            raise SystemExit("shift up was started without a pipe for its output")
        while time.monotonic() < deadline:
            line = self._up.stdout.readline()
            if not line:
                raise SystemExit(f"shift up exited with code {self._up.wait()} before listening")
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "listening":
                return str(event["http"])
        raise SystemExit("shift up did not start listening in time")

    def _wait_workers(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            answer: Any = self.client.request("GET", "/v1/workers")
            found = answer.get("workers", []) if isinstance(answer, dict) else []
            if len(found) >= self.workers:
                return
            time.sleep(0.1)
        raise SystemExit(f"{self.workers} worker(s) did not connect in time")

    def stop(self) -> None:
        """Stop ``shift up`` (SIGINT: drain and stop), killing it if it hangs."""
        up, self._up = self._up, None
        if up is None or up.poll() is not None:
            return
        up.send_signal(2)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()

    def __enter__(self) -> LocalShift:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def install_zoo(self, quiet: bool = True, pools: bool = False) -> None:
        """``shift zoo install`` into this broker (``pools``: with ``--pools``, every model).

        Raises:
            SystemExit: the install failed (with its output).
        """
        extra = ["--pools"] if pools else []
        done = subprocess.run(
            [sys.executable, "-m", "shift", "zoo", "install", "--url", self.url, *extra],
            capture_output=quiet,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"zoo install failed: {done.stderr or done.returncode}")

    def run_query(self, text: str, session: str = "script", poll_s: float = 0.2) -> dict[str, Any]:
        """Run one SHiFT-QL statement and return the final query.

        Raises:
            SystemExit: the query did not succeed (with its error).
        """
        answer = self.client.request("POST", "/v1/queries", {"text": text, "session": session})
        query_id = answer["queries"][0]["id"]
        while True:
            body: dict[str, Any] = self.client.request("GET", f"/v1/queries/{query_id}")
            if body["status"] in FINAL:
                break
            time.sleep(poll_s)
        if body["status"] != "succeeded":
            raise SystemExit(f"query {body['status']}: {body['error']}")
        return body
