"""A broker and two workers on three "hosts" (network namespaces) that share no path.

The broker runs in one namespace and binds its ROUTER to 10.77.0.1 (so CurveZMQ keys are
required: ``shift keys init`` and ``add-worker``, each bundle copied into its worker's own
state directory); each worker runs in a namespace of its own with its own state directory,
linked to the broker by a veth pair on a bridge. A halving query (CHUNK/BUDGET over three
small zoo models on photo crops) must give the ranking the same query gives on one host
with a shared state directory, even though one worker is killed mid-query; the blocks the
killed worker embedded reach the survivor through the broker's store.

Skipped, with the reason, where namespaces cannot be made (not root, no ``ip``, no
CAP_NET_ADMIN). Namespaces are removed in a finalizer, also when the test fails.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from shift import zoo

from .conftest import ROOT, Cluster, _env

T = TypeVar("T")

MODELS = ("efficientnet-lite0-stage1", "efficientnet-lite0-stage0", "test-vit-random")
TRAIN, TEST = "photos-mh-train", "photos-mh-test"
SUBNET = "10.77.0"
BROKER_IP = f"{SUBNET}.1"
CLONE_NEWNET = 0x40000000
QUERY = (
    f'SELECT * FROM {json.dumps(list(MODELS))} ORDER BY err ASC TRAINED ON "{TRAIN}" '
    f'TESTED ON "{TEST}" CLASSIFIED BY "Euclidean NN" CHUNK 64 BUDGET AUTO'
)


def _photos(split: str, name: str, crops: int) -> dict[str, Any]:
    spec = zoo.dataset(f"photos-{split}").to_json()
    per_photo = {"train": crops, "test": crops}
    return {**spec, "name": name, "params": {**spec["params"], "crops_per_photo": per_photo}}


BODIES = [("/v1/models", zoo.model(m).to_json()) for m in MODELS] + [
    ("/v1/datasets", _photos("train", TRAIN, 32)),  # 512 rows: two feature blocks
    ("/v1/datasets", _photos("test", TEST, 4)),  # 64 rows
]


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def _unavailable() -> str | None:
    """Why network namespaces cannot be used here, or ``None``."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs this test as root)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"shprobe{os.getpid()}"
    made = _ip("netns", "add", probe)
    if made.returncode != 0:
        return f"`ip netns add` failed (no CAP_NET_ADMIN?): {made.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


class Namespaces:
    """Three hosts and a switch: namespaces, a bridge, one veth pair per host."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000:05d}"
        self.switch = f"shsw{tag}"
        self.hosts = {name: f"sh{name}{tag}" for name in ("b", "w1", "w2")}
        self.addresses = {"b": BROKER_IP, "w1": f"{SUBNET}.2", "w2": f"{SUBNET}.3"}
        self.made: list[str] = []
        self.tag = tag

    def create(self) -> None:
        def run(*args: str) -> None:
            done = _ip(*args)
            if done.returncode != 0:
                raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")

        for ns in (self.switch, *self.hosts.values()):
            run("netns", "add", ns)
            self.made.append(ns)
            run("-n", ns, "link", "set", "lo", "up")
        run("-n", self.switch, "link", "add", "br0", "type", "bridge")
        run("-n", self.switch, "link", "set", "br0", "up")
        for name, ns in self.hosts.items():
            inner, outer = f"v{name}{self.tag}", f"p{name}{self.tag}"
            run("link", "add", inner, "netns", ns, "type", "veth", "peer", outer)
            run("link", "set", outer, "netns", self.switch)
            run("-n", self.switch, "link", "set", outer, "master", "br0", "up")
            run("-n", ns, "addr", "add", f"{self.addresses[name]}/24", "dev", inner)
            run("-n", ns, "link", "set", inner, "up")

    def remove(self) -> None:
        """Delete every namespace made (their veth ends go with them)."""
        for ns in reversed(self.made):
            _ip("netns", "del", ns)
        self.made.clear()

    def inside(self, name: str, function: Callable[[], T]) -> T:
        """Run ``function`` on a thread that lives in host ``name``'s namespace."""

        def enter() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{self.hosts[name]}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)

        with concurrent.futures.ThreadPoolExecutor(1, initializer=enter) as pool:
            return pool.submit(function).result()


class MultiHost(Cluster):
    """The broker in one namespace, each worker in its own, every state directory apart."""

    def __init__(self, tmp: Path, spaces: Namespaces) -> None:
        super().__init__(tmp)
        self.spaces = spaces
        self.named: dict[str, subprocess.Popen[bytes]] = {}

    def env(self, state: Path) -> dict[str, str]:
        return {**_env(self.tmp), "SHIFT_STATE_DIR": str(state)}

    def start_broker(self) -> None:
        state = self.tmp / "broker-state"
        for args in (["init"], ["add-worker", "w1"], ["add-worker", "w2"]):
            subprocess.run(
                [sys.executable, "-m", "shift", "keys", *args, "--state-dir", str(state)],
                check=True, capture_output=True, cwd=ROOT, env=self.env(state), timeout=120,
            )  # fmt: skip
        command = [
            "ip", "netns", "exec", self.spaces.hosts["b"], sys.executable, "-m", "broker",
            "--state-dir", str(state), "--zmq-host", BROKER_IP, "--http-port", "0",
            "--zmq-port", "0", "--heartbeat-ms", "200",
        ]  # fmt: skip
        with open(self.logs / "broker.log", "a") as log:
            self.broker = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
                env=self.env(state),
            )  # fmt: skip
        assert self.broker.stdout is not None
        line = self.broker.stdout.readline()
        if not line:
            raise RuntimeError((self.logs / "broker.log").read_text())
        where = json.loads(line)
        self.url, self.zmq = where["http"], where["zmq"]

    def start_worker(self, name: str) -> None:
        state = self.tmp / f"{name}-state"
        bundle = state / "keys"  # the bundle, copied to the worker's "machine"
        shutil.copytree(self.tmp / "broker-state" / "keys" / "bundles" / name, bundle)
        command = [
            "ip", "netns", "exec", self.spaces.hosts[name], sys.executable, "-m", "workers",
            "--broker", self.zmq, "--id", name, "--worker-keys", str(bundle),
            "--heartbeat-ms", "200",
        ]  # fmt: skip
        with open(self.logs / f"{name}.log", "a") as log:
            process = subprocess.Popen(command, stderr=log, cwd=ROOT, env=self.env(state))
        self.named[name] = process
        self.workers.append(process)


@pytest.fixture
def spaces() -> Iterator[Namespaces]:
    reason = _unavailable()
    if reason is not None:
        pytest.skip(reason)
    made = Namespaces()
    try:
        made.create()
        yield made
    finally:
        made.remove()


def _rows(query: dict[str, Any]) -> list[list[Any]]:
    assert query["status"] == "succeeded", query["error"]
    return query["result"]["tables"][0]["rows"]


def test_a_halving_query_across_hosts_matches_one_host_and_survives_a_dead_worker(
    spaces: Namespaces, tmp_path: Path
) -> None:
    for name in ("one-host", "hosts"):
        (tmp_path / name).mkdir()
    single = Cluster(tmp_path / "one-host")
    try:
        single.start_broker()
        single.start_workers(2)
        single.register(BODIES)
        expected = _rows(single.query(QUERY)[0])
    finally:
        single.stop()
    assert len(expected) == len(MODELS)

    hosts = MultiHost(tmp_path / "hosts", spaces)
    try:
        got, killed = spaces.inside("b", lambda: _run_across(hosts))
    finally:
        spaces.inside("b", hosts.stop)
    assert got == expected
    broker_store = tmp_path / "hosts" / "broker-state" / "features"
    ids = {
        (tmp_path / "hosts" / f"{n}-state" / "features" / ".store-id").read_text()
        for n in ("w1", "w2")
    }
    assert (broker_store / ".store-id").read_text() not in ids and len(ids) == 2
    # Every block the killed worker embedded reached the broker's store; the survivor
    # fetched those it needed from there, byte for byte.
    assert killed
    survivor = tmp_path / "hosts" / "w2-state" / "features"
    for path in killed:
        assert (broker_store / path).is_file(), path
    fetched = [p for p in killed if (survivor / p).is_file()]
    assert fetched, "the survivor read none of the killed worker's blocks"
    for path in fetched:
        assert (broker_store / path).read_bytes() == (survivor / path).read_bytes()
    log = (tmp_path / "hosts" / "logs" / "w2.log").read_text()
    assert "not the broker's" in log


def _run_across(hosts: MultiHost) -> tuple[list[list[Any]], list[str]]:
    """Register, run the query, kill w1 once it has embedded a block; the ranking and the
    blocks w1 embedded (paths relative to a feature store)."""
    hosts.start_broker()
    hosts.start_worker("w1")
    hosts.start_worker("w2")
    hosts.wait_for(lambda: len(hosts.get("/v1/workers")["workers"]) >= 2, "two workers")
    hosts.register(BODIES)
    status, body = hosts.call("POST", "/v1/queries", {"text": QUERY})
    assert status == 202, body
    query_id = body["queries"][0]["id"]

    def embedded_by_w1() -> list[dict[str, Any]]:
        tasks = hosts.get("/v1/tasks?kind=embed&limit=1000")["tasks"]
        return [t for t in tasks if t["worker"] == "w1" and t["state"] == "succeeded"]

    hosts.wait_for(embedded_by_w1, "w1 to embed a block")
    hosts.named["w1"].send_signal(signal.SIGKILL)
    hosts.named["w1"].wait(timeout=30)
    assert hosts.get(f"/v1/queries/{query_id}")["status"] in ("queued", "running")
    rows = _rows(hosts.final(query_id))
    killed = []
    for task in hosts.get("/v1/tasks?kind=embed&limit=1000")["tasks"]:
        if task["worker"] == "w1" and task["state"] == "succeeded":
            r = task["result"]
            killed.append(f"{r['model_key']}/{r['dataset_key']}/b256/block-{r['block']:06d}.npy")
    return rows, killed
