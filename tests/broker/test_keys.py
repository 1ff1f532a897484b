"""CurveZMQ on the worker link: key files, the ``shift keys`` command, refused peers."""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from broker_helpers import DEADLINE_S, ROOT, Api, wait_until
from peers import RawPeer, metric

from broker.curve import add_worker, curve_server, init_broker, new_pair
from shift.errors import SettingsError
from shift.keys import CurveClient, KeyPaths, read_bundle, read_cert
from shift.settings import load_settings


def _keys(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "shift", "keys", *args, "--state-dir", str(state)]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=DEADLINE_S)


def test_keys_command_makes_a_broker_pair_and_worker_bundles(tmp_path):
    state = tmp_path / "state"
    assert _keys(state, "show").returncode == 1
    made = _keys(state, "init")
    assert made.returncode == 0 and "made the broker key pair" in made.stdout
    public = read_cert(KeyPaths.of(state).broker_public).public
    assert public in made.stdout
    assert "kept" in _keys(state, "init").stdout  # never replaced by accident
    added = _keys(state, "add-worker", "gpu-1")
    assert added.returncode == 0 and "--worker-keys" in added.stdout
    bundle = KeyPaths.of(state).bundle("gpu-1")
    client = read_bundle(bundle)
    assert client.server_public == public
    assert stat.S_IMODE((bundle / "worker.key_secret").stat().st_mode) == 0o600
    assert stat.S_IMODE(KeyPaths.of(state).broker_secret.stat().st_mode) == 0o600
    assert _keys(state, "add-worker", "gpu-1").returncode == 2  # taken
    assert _keys(state, "add-worker", "../escape").returncode == 2
    shown = _keys(state, "show").stdout
    assert "gpu-1" in shown and client.keys.public in shown
    assert _keys(state, "remove-worker", "gpu-1").returncode == 0
    assert "gpu-1" not in _keys(state, "show").stdout
    assert not bundle.exists()


def test_which_links_need_keys(tmp_path):
    def settings(**values):
        return load_settings({"state_dir": str(tmp_path / "s"), **values}, environ={})

    assert curve_server(settings(), create=False) is None  # loopback, no keys: plain
    with pytest.raises(SettingsError, match="shift keys init"):
        curve_server(settings(zmq_host="0.0.0.0"), create=False)
    with pytest.raises(SettingsError, match="refused"):
        curve_server(settings(zmq_host="10.1.2.3", zmq_auth="off"), create=True)
    with pytest.raises(SettingsError, match="zmq_auth must be one of"):
        curve_server(settings(zmq_auth="maybe"), create=False)
    made = curve_server(settings(), create=True)  # shift up: on, keys made
    assert made is not None and made.allowed_dir == KeyPaths.of(tmp_path / "s").allowed_dir
    assert curve_server(settings(), create=False) == made  # keys exist: on for the broker
    assert curve_server(settings(zmq_auth="off"), create=False) is None


async def test_only_a_worker_with_an_allowed_key_gets_tasks(tmp_path, processes, http):
    state = tmp_path / "state"
    paths = KeyPaths.of(state)
    init_broker(paths)
    good = add_worker(paths, "good")
    broker = processes["broker"]()  # keys in the state dir: CurveZMQ on
    api = Api(http, broker.http)
    processes["worker"](broker, "no-keys")
    processes["worker"](broker, "good", worker_keys=good)
    await wait_until(lambda: _ids(api, {"good"}), "the keyed worker to register")
    broker_public = read_cert(paths.broker_public).public
    strangers = [
        RawPeer(broker.zmq, b"plain"),  # no Curve at all
        RawPeer(broker.zmq, b"made-up", CurveClient(new_pair(), broker_public)),  # not allowed
    ]
    try:
        for peer in strangers:
            peer.ready(capabilities=("echo", "sleep"), prefetch=8)
        body = {"tasks": [{"kind": "echo", "payload": {"value": i}} for i in range(20)]}
        ids = [t["id"] for t in (await api.post("/v1/tasks", body))["tasks"]]

        async def done():
            rows = [await api.get(f"/v1/tasks/{i}") for i in ids]
            return rows if all(r["state"] == "succeeded" for r in rows) else None

        rows = await wait_until(done, "the tasks to finish")
        assert {r["worker"] for r in rows} == {"good"}
        for peer in strangers:
            assert await asyncio.to_thread(peer.receive, 1.0) is None  # got nothing at all
        assert await _ids(api, {"good"})
        assert await metric(http, broker.http, "shift_auth_denied_total") >= 1
    finally:
        for peer in strangers:
            peer.close()
    log = (processes["logs"] / "no-keys.log").read_text()
    assert "CurveZMQ handshake failed" in log or "refused this worker's CurveZMQ key" in log


async def _ids(api: Api, expected: set[str]) -> bool:
    return {w["id"] for w in (await api.get("/v1/workers"))["workers"]} == expected
