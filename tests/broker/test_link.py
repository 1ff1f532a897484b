"""The worker link under attack: forged reports, greedy fake workers, huge frames, floods.

Real broker and worker processes on loopback; the hostile peers are raw DEALER sockets.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import msgpack
import pytest
from broker_helpers import DEADLINE_S, HEARTBEAT_MS, ROOT, Api, wait_until
from peers import RawPeer, memory_kb, metric

from shift.protocol import (
    HEADER,
    Disconnect,
    Failed,
    Heartbeat,
    Outcome,
    Progress,
    Result,
    Started,
    Task,
)

pytestmark = pytest.mark.slow


async def _workers(api: Api) -> dict[str, dict]:
    return {w["id"]: w for w in (await api.get("/v1/workers"))["workers"]}


async def _task(api: Api, task_id: str) -> dict:
    return await api.get(f"/v1/tasks/{task_id}")


async def test_forged_reports_are_refused_and_the_real_value_wins(processes, http):
    broker = processes["broker"]()
    processes["worker"](broker, "real", prefetch=1)
    api = Api(http, broker.http)
    await wait_until(lambda: _workers(api), "the real worker to register")
    task = await api.post(
        "/v1/tasks", {"kind": "sleep", "payload": {"seconds": 2, "steps": 20, "value": 42}}
    )

    async def running():
        t = await _task(api, task["id"])
        return t["state"] == "running" and t.get("progress") is not None

    await wait_until(running, "the task to run")
    stranger = RawPeer(broker.zmq, b"stranger")  # never sends READY
    impostor = RawPeer(broker.zmq, b"impostor")  # registered, but not given the task
    try:
        impostor.ready(capabilities=("nothing",))
        await wait_until(lambda: _has(api, "impostor"), "the impostor to register")
        for peer in (stranger, impostor):
            for attempt in (1, 2):
                peer.send(Result((Outcome(task["id"], {"value": "forged"}, 0.0, attempt),)))
                peer.send(Failed(task["id"], "forged failure", attempt=attempt))
                peer.send(Progress(task["id"], 9, 9, "forged", attempt))
                peer.send(Started(task["id"], attempt))
            peer.send(Heartbeat())

        async def all_refused():
            return await metric(http, broker.http, "shift_reports_refused_total") >= 16

        await wait_until(all_refused, "the broker to refuse the forged reports")
        assert (await _task(api, task["id"]))["state"] == "running"
        told = [stranger.receive(1.0) for _ in range(2)]
        assert told[0] == Disconnect("unknown worker; send READY") and told[1] is None
        done = await wait_until(lambda: _succeeded(api, task["id"]), "the real result")
        assert done["result"] == {"slept_s": 2, "value": 42}
        assert done["worker"] == "real" and done["attempt"] == 1
    finally:
        stranger.close()
        impostor.close()
    log = (processes["logs"] / "broker.log").read_text()
    assert "refused RESULT from 'stranger': it never sent READY" in log
    assert "refused RESULT from impostor about task" in log


async def _has(api: Api, worker_id: str) -> bool:
    return worker_id in await _workers(api)


async def _succeeded(api: Api, task_id: str) -> dict | None:
    t = await _task(api, task_id)
    return t if t["state"] == "succeeded" else None


async def test_two_greedy_fake_workers_that_vanish_cannot_fail_a_task(processes, http):
    broker = processes["broker"](max_attempts=3, prefetch_max=4, heartbeat_ms=300)
    api = Api(http, broker.http)
    n = 20
    tasks = [{"kind": "sleep", "payload": {"seconds": 0.01, "value": i}} for i in range(n)]
    ids = [t["id"] for t in (await api.post("/v1/tasks", {"tasks": tasks}))["tasks"]]
    fakes = [RawPeer(broker.zmq, f"fake-{i}".encode()) for i in range(2)]
    taken = 0
    try:
        for cycle in range(4):  # each fake registers anew, swallows tasks, goes silent
            for fake in fakes:
                fake.ready(prefetch=1_000_000, capabilities=("sleep",), session=f"s{cycle}")
            if cycle == 0:
                await wait_until(lambda: _has(api, "fake-1"), "the fakes to register")
                seen = await _workers(api)
                assert {seen[f"fake-{i}"]["prefetch"] for i in range(2)} == {4}
            for fake in fakes:
                got = []
                while (message := fake.receive(0.1)) is not None:
                    if isinstance(message, Task):
                        got += message.items
                assert len(got) <= 4  # capped by prefetch_max, not the 1,000,000 asked
                taken += len(got)
            await asyncio.sleep(4 * 0.3)  # both declared dead
    finally:
        for fake in fakes:
            fake.close()
    assert taken >= 8
    processes["worker"](broker, "real", prefetch=2)

    async def finished():
        rows = [await _task(api, i) for i in ids]
        return rows if all(r["state"] in ("succeeded", "failed") for r in rows) else None

    rows = await wait_until(finished, "every task to finish")
    assert [r["state"] for r in rows] == ["succeeded"] * n
    assert sorted(r["result"]["value"] for r in rows) == list(range(n))
    assert {r["attempt"] for r in rows} == {1}  # a task never started is never charged


async def test_huge_and_explosive_frames_are_refused_without_memory_growth(processes, http):
    broker = processes["broker"]()
    processes["worker"](broker, "real", prefetch=1)
    api = Api(http, broker.http)
    await wait_until(lambda: _workers(api), "the real worker to register")
    pid = broker.process.pid
    before = memory_kb(pid)
    empty_maps = b"\xdd" + (50 * 1024 * 1024).to_bytes(4, "big") + b"\x80" * (50 * 1024 * 1024)
    maps = 4_000_000  # under every length limit: refused by the count of maps
    just_under = b"\xdd" + maps.to_bytes(4, "big") + b"\x80" * maps
    nested = (b"\x91" * 2000) + b"\x80"  # deeper than msgpack's stack
    registered = RawPeer(broker.zmq, b"registered")
    stranger = RawPeer(broker.zmq, b"stranger")
    health_s: list[float] = []

    async def probe_health():
        for _ in range(20):
            t0 = time.perf_counter()
            assert (await api.get("/v1/health"))["status"] == "ok"
            health_s.append(time.perf_counter() - t0)
            await asyncio.sleep(0.05)

    try:
        registered.ready()
        await wait_until(lambda: _has(api, "registered"), "the peer to register")
        probe = asyncio.create_task(probe_health())
        for peer in (registered, stranger):
            for body in (empty_maps, just_under, nested):
                await asyncio.to_thread(peer.send_raw, [b"", HEADER, b"RESULT", body])
        await probe

        async def refused():  # the 10 MB and nested bodies of both peers
            return await metric(http, broker.http, "shift_bad_frames_total") >= 4

        await wait_until(refused, "the broker to refuse the bodies")
    finally:
        registered.close()
        stranger.close()
    after = memory_kb(pid)
    assert after["VmHWM"] - before["VmRSS"] < 100 * 1024, (before, after)
    assert max(health_s) < 2.0, health_s
    task = await api.post("/v1/tasks", {"kind": "echo", "payload": {"value": "still here"}})
    done = await wait_until(lambda: _succeeded(api, task["id"]), "a task after the attack")
    assert done["result"] == "still here" and done["worker"] == "real"


async def test_floods_are_logged_a_few_times_and_rejected_ready_is_no_lost_worker(processes, http):
    broker = processes["broker"]()
    api = Api(http, broker.http)
    liar = RawPeer(broker.zmq, b"liar")
    try:
        frames = [
            [b"", HEADER, b"READY", msgpack.packb(_ready_body("someone-else"))],
            [b"", HEADER, b"HEARTBEAT", b"\xc1garbage"],
        ]
        for _ in range(10000):
            for f in frames:
                liar.send_raw(f)

        async def counted():
            return await metric(http, broker.http, "shift_bad_frames_total") >= 20000

        await wait_until(counted, "the broker to count the flood")
    finally:
        liar.close()
    await asyncio.sleep(6 * HEARTBEAT_MS / 1000)  # past the liveness expiry
    assert await metric(http, broker.http, "shift_workers_lost_total") == 0
    assert await _workers(api) == {}
    log = (processes["logs"] / "broker.log").read_text()
    assert 1 <= log.count("names another worker id") <= 3
    assert 1 <= log.count("dropped a bad frame from b'liar'") <= 3
    assert len(log) < 100_000


def _ready_body(worker_id: str) -> dict:
    return {
        "v": 1,
        "worker_id": worker_id,
        "session": "s",
        "device": "cpu",
        "memory_bytes": 0,
        "capabilities": ["echo"],
        "prefetch": 1,
        "models": [],
    }


@pytest.mark.parametrize("auth", ["auto", "off"])
def test_a_plain_router_on_a_reachable_address_is_refused(tmp_path, auth):
    command = [
        sys.executable, "-m", "broker", "--state-dir", str(tmp_path / "state"),
        "--http-port", "0", "--zmq-port", "0", "--zmq-host", "0.0.0.0", "--zmq-auth", auth,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=DEADLINE_S)
    assert result.returncode == 2, result.stderr
    assert "0.0.0.0" in result.stderr and "shift keys init" in result.stderr
    assert result.stdout == ""  # it never listened
