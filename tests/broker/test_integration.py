"""Real broker and worker processes on loopback: draining, crashes, restarts, bad frames."""

from __future__ import annotations

import asyncio
import random

import msgpack
import pytest
import zmq
from broker_helpers import Api, wait_until

from shift.protocol import HEADER

pytestmark = pytest.mark.slow


async def counts(api: Api) -> dict[str, int]:
    out: dict[str, int] = {}
    for task in await api.tasks():
        out[task["state"]] = out.get(task["state"], 0) + 1
    return out


async def all_succeeded(api: Api, n: int) -> list[dict]:
    async def check():
        done = await api.tasks("succeeded")
        return done if len(done) == n else None

    return await wait_until(check, f"{n} tasks to succeed")


async def test_two_workers_drain_1000_tasks(processes, http):
    broker = processes["broker"]()
    processes["worker"](broker, "w-a", prefetch=16)
    processes["worker"](broker, "w-b", prefetch=16)
    api = Api(http, broker.http)
    await wait_until(lambda: _n_workers(api, 2), "two workers to register")
    body = {"tasks": [{"kind": "echo", "payload": {"value": i}} for i in range(1000)]}
    submitted = await api.post("/v1/tasks", body)
    assert len({t["id"] for t in submitted["tasks"]}) == 1000
    done = await all_succeeded(api, 1000)
    assert sorted(t["result"] for t in done) == list(range(1000))
    assert {t["worker"] for t in done} == {"w-a", "w-b"}
    assert all(t["attempt"] == 1 for t in done)
    again = await api.post("/v1/tasks", body)  # identical work is not done twice
    assert not any(t["created"] for t in again["tasks"])
    assert {t["state"] for t in again["tasks"]} == {"succeeded"}


async def _n_workers(api: Api, n: int) -> bool:
    return len((await api.get("/v1/workers"))["workers"]) == n


async def test_kill_9_of_a_busy_worker_still_completes_every_task_once(processes, http):
    broker = processes["broker"]()
    victim = processes["worker"](broker, "victim", prefetch=1)
    processes["worker"](broker, "survivor", prefetch=1)
    api = Api(http, broker.http)
    await wait_until(lambda: _n_workers(api, 2), "two workers to register")
    n = 30
    tasks = [{"kind": "sleep", "payload": {"seconds": 0.05, "value": i}} for i in range(n)]
    await api.post("/v1/tasks", {"tasks": tasks})

    async def victim_busy():
        workers = {w["id"]: w for w in (await api.get("/v1/workers"))["workers"]}
        done = len(await api.tasks("succeeded"))
        return "victim" in workers and workers["victim"]["inflight"] and done >= 4

    await wait_until(victim_busy, "the victim to be mid-task")
    victim.kill()
    done = await all_succeeded(api, n)
    assert sorted(t["result"]["value"] for t in done) == list(range(n))
    assert len({t["id"] for t in done}) == n
    retried = [t for t in done if t["attempt"] == 2]
    assert retried and all(t["worker"] == "survivor" for t in retried)
    health = await api.get("/v1/health")
    assert health["workers"] == 1 and health["queue_depth"] == 0
    metrics = await (await http.get(broker.http + "/metrics")).text()
    assert "shift_workers_lost_total 1" in metrics


async def test_broker_killed_and_restarted_keeps_results_and_finishes(processes, http):
    broker = processes["broker"]()
    for name in ("w-a", "w-b"):
        processes["worker"](broker, name, prefetch=2)
    api = Api(http, broker.http)
    await wait_until(lambda: _n_workers(api, 2), "two workers to register")
    n = 120
    tasks = [{"kind": "sleep", "payload": {"seconds": 0.02, "value": i}} for i in range(n)]
    await api.post("/v1/tasks", {"tasks": tasks})

    async def some_done():
        done = await api.tasks("succeeded")
        return done if len(done) >= 20 else None

    await wait_until(some_done, "some tasks to finish")
    broker.signal(9)
    broker.wait()
    before = {t["id"]: t for t in await _read_db_succeeded(broker)}
    assert 20 <= len(before) < n
    broker.start()
    api = Api(http, broker.http)
    done = await all_succeeded(api, n)
    assert sorted(t["result"]["value"] for t in done) == list(range(n))
    after = {t["id"]: t for t in done}
    for task_id, task in before.items():  # finished work was neither lost nor redone
        assert after[task_id]["updated_at"] == task["updated_at"]
        assert after[task_id]["result"] == task["result"]


async def _read_db_succeeded(broker) -> list[dict]:
    """Read the store of a dead broker directly (what it had made durable)."""
    from broker.store import Store

    store = Store(broker.state_dir / "shift.sqlite")
    await store.open()
    try:
        rows, _ = await store.list(state=None, limit=1000)
        return [r.to_json() for r in rows if r.state.value == "succeeded"]
    finally:
        await store.close()


def _malformed(rng: random.Random) -> tuple[list[bytes], bool]:
    """A frame list and whether the broker must count it as bad."""
    good_body = msgpack.packb({"v": 1, "id": "t"})
    choices = [
        lambda: [rng.randbytes(rng.randint(0, 40))],
        lambda: [b"", rng.randbytes(8), b"HEARTBEAT", msgpack.packb({"v": 1})],
        lambda: [b"", b"SHIFTW0", b"HEARTBEAT", msgpack.packb({"v": 1})],
        lambda: [b"", HEADER, b"RESULT", msgpack.packb({"v": 1, "results": [{"id": "t"}]})[:-3]],
        lambda: [b"", HEADER, b"EXPLODE", good_body],
        lambda: [b"", HEADER, b"CANCEL", msgpack.packb({"v": 9, "id": "t"})],
        lambda: [b"", HEADER, b"READY", msgpack.packb({"v": 1, "worker_id": 7})],
        lambda: [b"", HEADER, b"TASK", msgpack.packb({"v": 1, "tasks": [{"id": "t"}]})],
        lambda: [b"", HEADER, b"HEARTBEAT", rng.randbytes(30)],
        lambda: [b"x"] * rng.randint(1, 9),
        lambda: [b"", HEADER, b"CANCEL", good_body],  # valid, but workers do not send it
        lambda: [b"", HEADER, b"RESULT", msgpack.packb({"v": 1, "results": [{"id": "nope"}]})],
    ]
    index = rng.randrange(len(choices))
    return choices[index](), index != len(choices) - 1


async def test_1000_malformed_frames_leave_the_broker_serving(processes, http):
    broker = processes["broker"]()
    processes["worker"](broker, "w-a")
    api = Api(http, broker.http)
    await wait_until(lambda: _n_workers(api, 1), "the worker to register")
    rng = random.Random(1234)
    context = zmq.Context()
    expected_bad = 0
    try:
        for i in range(1000):
            sock = context.socket(zmq.DEALER)
            bad_identity = i % 7 == 3
            if i % 2 or bad_identity:
                sock.setsockopt(
                    zmq.IDENTITY, b"\xff\xfe%d" % i if bad_identity else f"bad-{i}".encode()
                )
            sock.connect(broker.zmq)
            for _ in range(1 if i % 50 else 20):
                frames, bad = _malformed(rng)
                expected_bad += bad or bad_identity
                sock.send_multipart(frames)
            sock.close(linger=5000)
    finally:
        context.term()
    assert expected_bad >= 1000

    async def frames_seen():
        text = await (await http.get(broker.http + "/metrics")).text()
        bad = next(line for line in text.splitlines() if line.startswith("shift_bad_frames_total"))
        return int(bad.split()[1]) >= expected_bad

    await wait_until(frames_seen, "the broker to count the bad frames")
    result = await api.post("/v1/tasks", {"kind": "echo", "payload": {"value": "still here"}})
    done = await all_succeeded(api, 1)
    assert done[0]["id"] == result["id"] and done[0]["result"] == "still here"
    assert (await api.get("/v1/health"))["workers"] == 1
    assert broker.process.poll() is None


async def test_a_task_that_kills_three_workers_fails_clearly(processes, http):
    broker = processes["broker"](max_attempts=3)
    for name in ("w-a", "w-b", "w-c"):
        processes["worker"](broker, name, prefetch=1)
    api = Api(http, broker.http)
    await wait_until(lambda: _n_workers(api, 3), "three workers to register")
    task = await api.post("/v1/tasks", {"kind": "crash", "payload": {}})

    async def failed():
        t = await api.get(f"/v1/tasks/{task['id']}")
        return t if t["state"] == "failed" else None

    t = await wait_until(failed, "the crashing task to fail")
    assert t["attempt"] == 3
    assert "killed 3 workers" in t["error"] and "max_attempts=3" in t["error"]
    assert (await api.get("/v1/health"))["workers"] == 0


async def test_cancel_progress_and_clean_worker_shutdown(processes, http):
    broker = processes["broker"]()
    worker = processes["worker"](broker, "w-a", prefetch=1)
    api = Api(http, broker.http)
    await wait_until(lambda: _n_workers(api, 1), "the worker to register")
    long = await api.post("/v1/tasks", {"kind": "sleep", "payload": {"seconds": 30, "steps": 300}})
    short = await api.post("/v1/tasks", {"kind": "sleep", "payload": {"seconds": 0.2, "steps": 2}})

    async def progressing():
        t = await api.get(f"/v1/tasks/{long['id']}")
        return t.get("progress", {}).get("done", 0) >= 2

    await wait_until(progressing, "progress reports")
    cancelled = await api.post(f"/v1/tasks/{long['id']}/cancel")
    assert cancelled["state"] == "cancelled"
    await all_succeeded(api, 1)  # the worker was freed and ran the next task
    assert (await api.get(f"/v1/tasks/{long['id']}"))["state"] == "cancelled"
    third = await api.post("/v1/tasks", {"kind": "sleep", "payload": {"seconds": 0.5}})

    async def running():
        return (await api.get(f"/v1/tasks/{third['id']}"))["state"] == "running"

    await wait_until(running, "the third task to start")
    assert await asyncio.to_thread(worker.stop) == 0  # drains: finishes the running task
    assert (await api.get(f"/v1/tasks/{third['id']}"))["state"] in ("succeeded", "running")
    await all_succeeded(api, 2)
    assert await _n_workers(api, 0)
    assert short["id"] != third["id"]
