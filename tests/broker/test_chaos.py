"""A bounded chaos run: garbage frames, forged results and a killed worker change no result."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest
from broker_helpers import Api, BrokerProcess, wait_until
from peers import RawPeer

from shift.protocol import HEADER, Failed, Outcome, Result

pytestmark = pytest.mark.slow

N = 120


def _tasks() -> list[dict]:
    sleeps = [{"kind": "sleep", "payload": {"seconds": 0.02, "value": i}} for i in range(N)]
    return sleeps + [{"kind": "echo", "payload": {"value": [i, "x"]}} for i in range(N)]


async def _run(api: Api) -> tuple[list[str], dict[str, object]]:
    ids = [t["id"] for t in (await api.post("/v1/tasks", {"tasks": _tasks()}))["tasks"]]
    return ids, {}


async def _results(api: Api, ids: list[str]) -> dict[str, object] | None:
    done = {t["id"]: t for t in await api.tasks()}
    if not all(done.get(i, {}).get("state") in ("succeeded", "failed") for i in ids):
        return None
    return {i: (done[i]["state"], done[i]["result"]) for i in ids}


def _garbage(rng: random.Random) -> list[bytes]:
    return rng.choice(
        [
            [rng.randbytes(rng.randint(0, 40))],
            [b"", HEADER, b"RESULT", rng.randbytes(30)],
            [b"", HEADER, b"READY", b"\x80"],
            [b"", HEADER, b"EXPLODE", b"\x80"],
            [b"", HEADER, b"RESULT", b"\x91" * 3000],
        ]
    )


def _attack(endpoint: str, ids: list[str], stop: threading.Event, seed: int) -> int:
    rng = random.Random(seed)
    stranger = RawPeer(endpoint, b"stranger")
    impostor = RawPeer(endpoint, b"impostor")
    sent = 0
    try:
        impostor.ready(capabilities=("nothing",))
        while not stop.is_set() and sent < 20000:
            for peer in (stranger, impostor):
                task_id = rng.choice(ids)
                peer.send(Result((Outcome(task_id, {"value": "forged"}, 0.0, rng.randint(1, 2)),)))
                peer.send(Failed(task_id, "forged", attempt=1))
                peer.send_raw(_garbage(rng))
                sent += 3
            impostor.ready(capabilities=("nothing",))  # keeps it registered
    finally:
        stranger.close()
        impostor.close()
    return sent


async def test_chaos_ends_with_the_results_of_an_undisturbed_run(tmp_path, processes, http):
    quiet_broker = processes["broker"]()
    for name in ("q-a", "q-b"):
        processes["worker"](quiet_broker, name, prefetch=2)
    quiet = Api(http, quiet_broker.http)
    ids, _ = await _run(quiet)
    expected = await wait_until(lambda: _results(quiet, ids), "the undisturbed run")
    quiet_broker.stop()

    broker = BrokerProcess(tmp_path / "chaos", processes["logs"] / "chaos.log").start()
    stop = threading.Event()
    try:
        victim = processes["worker"](broker, "w-a", prefetch=2)
        processes["worker"](broker, "w-b", prefetch=2)
        api = Api(http, broker.http)
        await wait_until(lambda: _n_workers(api, 2), "two workers")
        ids_again, _ = await _run(api)
        assert ids_again == ids  # the same content-hashed work
        attack = asyncio.create_task(asyncio.to_thread(_attack, broker.zmq, ids, stop, 7))

        async def some_done():
            return len(await api.tasks("succeeded")) >= N // 2

        await wait_until(some_done, "the run to get going")
        victim.kill()
        processes["worker"](broker, "w-c", prefetch=2)
        got = await wait_until(lambda: _results(api, ids), "the disturbed run")
        stop.set()
        assert await attack >= 30
    finally:
        stop.set()
        broker.stop()
    assert got == expected
    assert {state for state, _ in got.values()} == {"succeeded"}


async def _n_workers(api: Api, n: int) -> bool:
    return len((await api.get("/v1/workers"))["workers"]) >= n
