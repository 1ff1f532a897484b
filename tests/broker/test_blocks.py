"""Feature blocks over the worker link, with real processes and sockets on loopback.

Each broker and worker has its own state directory (no shared path): a block a worker
writes reaches the broker's store (UPLOAD) and a worker lacking it fetches it (FETCH),
verified by digest. Hostile peers: uploads from a peer that does not run the task, bytes
that do not match their digest, unpicklable ``.npy`` bodies, names that are paths, links
out of the store and answers past ``max_frame_bytes`` are all refused.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zmq
from block_kinds import block_values
from broker_helpers import DEADLINE_S, HEARTBEAT_MS, ROOT, Api, wait_until
from peers import RawPeer, metric

from shift.blockfiles import write_received
from shift.blocks import BlockData, BlockRef
from shift.codec import from_frames, pack, to_frames
from shift.protocol import (
    HEADER,
    Block,
    Fetch,
    Heartbeat,
    Ready,
    Result,
    Started,
    Task,
    TaskItem,
    Upload,
    Welcome,
)
from tests.core.test_blocks import object_npy

MODEL, DATA = "a1" * 16, "b2" * 16


def start_worker(
    broker, worker_id: str, state: Path, logs: Path, heartbeat_ms: int = HEARTBEAT_MS
) -> subprocess.Popen[bytes]:
    """A real worker process whose feature store is ``state/features``."""
    env = {
        **os.environ,
        "SHIFT_STATE_DIR": str(state),
        "PYTHONPATH": f"{ROOT}{os.pathsep}{Path(__file__).parent}",
    }
    command = [
        sys.executable, "-m", "workers", "--broker", broker.zmq, "--id", worker_id,
        "--heartbeat-ms", str(heartbeat_ms), "--plugin", "block_kinds",
    ]  # fmt: skip
    with open(logs / f"{worker_id}.log", "a") as log:
        return subprocess.Popen(command, stderr=log, cwd=ROOT, env=env)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    process.wait(timeout=DEADLINE_S)


async def finished(api: Api, body: dict) -> dict:
    task = await api.post("/v1/tasks", body)

    async def done():
        t = await api.get(f"/v1/tasks/{task['id']}")
        return t if t["state"] in ("succeeded", "failed") else None

    return await wait_until(done, f"task {body['kind']}")


def files(root: Path) -> dict[str, bytes]:
    folder = root / "features" / MODEL / DATA / "b256"
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))} if folder.exists() else {}


async def test_blocks_written_on_one_host_reach_a_worker_on_another(processes, http, tmp_path):
    broker = processes["broker"]()
    api = Api(http, broker.http)
    logs = processes["logs"]
    writer = start_worker(broker, "writer", tmp_path / "host-a", logs)
    try:
        await wait_until(lambda: _workers(api, "writer"), "the writer to register")
        body = {"kind": "put_block", "model": MODEL, "payload": _keys(seed=3)}
        assert (await finished(api, body))["state"] == "succeeded"
        await wait_until(
            lambda: _present(broker.state_dir / "features"), "the block in the broker's store"
        )
        assert files(broker.state_dir) == files(tmp_path / "host-a")  # byte for byte
    finally:
        stop(writer)
    reader = start_worker(broker, "reader", tmp_path / "host-b", logs)
    try:
        await wait_until(lambda: _workers(api, "reader"), "the reader to register")
        done = await finished(api, {"kind": "get_rows", "model": MODEL, "payload": _keys()})
        assert done["state"] == "succeeded", done
        assert done["result"] == {"sum": float(block_values(3).sum()), "labels": [0, 1] * 4}
        assert files(tmp_path / "host-b") == files(broker.state_dir)
    finally:
        stop(reader)
    assert "not the broker's" in (logs / "reader.log").read_text()
    # A worker on the broker's own state directory shares its store: nothing moves.
    shared = start_worker(broker, "shared", broker.state_dir, logs)
    try:
        await wait_until(lambda: _workers(api, "shared"), "the shared worker to register")
        body = {"kind": "get_rows", "model": MODEL, "payload": {**_keys(), "again": 1}}
        assert (await finished(api, body))["result"]["sum"] == float(block_values(3).sum())
    finally:
        stop(shared)
    assert "not the broker's" not in (logs / "shared.log").read_text()


async def test_hostile_block_frames_are_refused(processes, http, tmp_path):
    broker = processes["broker"](max_frame_bytes=262144, heartbeat_ms=1000)
    api = Api(http, broker.http)
    store = broker.state_dir / "features"
    peer = RawPeer(broker.zmq, b"peer")
    try:
        peer.ready(capabilities=("sleep",))
        welcome = _next(peer, Welcome)
        assert welcome.store_id == (store / ".store-id").read_text().strip()
        good = _block(BlockRef(MODEL, DATA, 0))
        write_received(store, good, 256)
        # A block the broker has comes back with a digest that matches its bytes.
        peer.send(_fetch(1, good.ref))
        answer = _next(peer, Block)
        assert answer.request == 1 and answer.data == good and not answer.error
        # A block it lacks is said so; one bigger than a frame is refused by size.
        peer.send(_fetch(2, BlockRef(MODEL, DATA, 1)))
        assert "does not have" in _next(peer, Block).error
        big = _block(BlockRef(MODEL, "c3" * 16, 0), rows=256, dim=512, num_rows=256)
        write_received(store, big, 256)
        peer.send(_fetch(3, big.ref))
        assert "max_frame_bytes=262144" in _next(peer, Block).error
        # A link inside the store that leads out of it is not followed.
        outside = tmp_path / "outside"
        write_received(outside, _block(BlockRef("d4" * 16, DATA, 0)), 256)
        (store / ("d4" * 16)).symlink_to(outside / ("d4" * 16))
        peer.send(_fetch(4, BlockRef("d4" * 16, DATA, 0)))
        assert "outside the feature store" in _next(peer, Block).error
        # Names that are paths never decode: dropped and counted, no answer.
        before = await metric(http, broker.http, "shift_bad_frames_total")
        for name in ("../../../etc", "/etc/passwd", "..", "a1" * 16 + "/../x"):
            body = {"v": 1, "request": 9, "model_key": name, "dataset_key": DATA, "block": 0}
            peer.send_raw([b"", HEADER, b"FETCH", pack(body)])
        assert await _bad_frames(http, broker, before + 4)
        assert not [m for m in _drain(peer, 1.0) if isinstance(m, Block)]

        # Uploads from a peer that does not run a task for that model are refused.
        refused = await metric(http, broker.http, "shift_reports_refused_total")
        stray = _block(BlockRef(MODEL, DATA, 2))
        peer.send(Upload("no-such-task", 1, stray))
        await wait_until(
            lambda: _refused(http, broker, refused + 1), "the stray upload to be refused"
        )
        task = await api.post(
            "/v1/tasks", {"kind": "sleep", "model": MODEL, "payload": {"seconds": 30}}
        )
        item = _next(peer, Task).items[0]
        assert item.task_id == task["id"]
        other = _block(BlockRef("e5" * 16, DATA, 0))
        peer.send(Upload(item.task_id, item.attempt, other))  # another model's block
        wrong = _block(BlockRef(MODEL, DATA, 3))
        wrong = BlockData(wrong.ref, wrong.features, wrong.labels, wrong.meta, "0" * 64)
        peer.send(Upload(item.task_id, item.attempt, wrong))  # bytes do not match digest
        pickled = _block(BlockRef(MODEL, DATA, 4))
        pickled = BlockData.of(pickled.ref, object_npy(), pickled.labels, pickled.meta)
        peer.send(Upload(item.task_id, item.attempt, pickled))  # an object array
        kept = _block(BlockRef(MODEL, DATA, 5), num_rows=5 * 256 + 8)
        peer.send(Upload(item.task_id, item.attempt, kept))
        folder = store / MODEL / DATA / "b256"
        await wait_until(lambda: _exists(folder / "block-000005.npy"), "the good upload")
        assert (folder / "block-000005.npy").read_bytes() == kept.features
        for index in (2, 3, 4):
            assert not (folder / f"block-{index:06d}.npy").exists()
        assert not (store / ("e5" * 16)).exists()
        assert await metric(http, broker.http, "shift_reports_refused_total") == refused + 2
    finally:
        peer.close()


def _keys(**extra: int) -> dict:
    return {"model_key": MODEL, "dataset_key": DATA, **extra}


def _block(ref: BlockRef, rows: int = 8, dim: int = 4, num_rows: int = 8) -> BlockData:
    def npy(array: np.ndarray) -> bytes:
        out = io.BytesIO()
        np.save(out, array)
        return out.getvalue()

    features = npy(np.full((rows, dim), ref.block, dtype=np.float32))
    labels = npy(np.zeros(rows, dtype=np.int64))
    meta = json.dumps({"num_rows": num_rows, "classes": ["a"], "feature_dim": dim}).encode()
    return BlockData.of(ref, features, labels, meta)


def _fetch(request: int, ref: BlockRef):
    from shift.protocol import Fetch

    return Fetch(request, ref)


def _next(peer: RawPeer, kind: type):
    """The next message of ``kind`` from the broker (heartbeats skipped)."""
    for _ in range(int(DEADLINE_S * 10)):
        peer.send(Heartbeat())  # stay alive: the broker expires silent peers
        message = peer.receive(0.1)
        if isinstance(message, kind):
            return message
        if isinstance(message, Block | Task | Welcome):
            raise AssertionError(f"expected {kind.__name__}, got {message}")
    raise AssertionError(f"no {kind.__name__} from the broker")


def _drain(peer: RawPeer, seconds: float) -> list:
    """Every message the broker sends within ``seconds``."""
    out, deadline = [], time.monotonic() + seconds
    while deadline > time.monotonic():
        peer.send(Heartbeat())
        message = peer.receive(0.1)
        if message is not None:
            out.append(message)
    return out


async def _workers(api: Api, worker_id: str) -> bool:
    return any(w["id"] == worker_id for w in (await api.get("/v1/workers"))["workers"])


async def _present(root: Path) -> bool:
    return (root / MODEL / DATA / "b256" / "block-000000.npy").exists()


async def _exists(path: Path) -> bool:
    return path.exists()


async def _bad_frames(http, broker, at_least: float) -> bool:
    async def check():
        return await metric(http, broker.http, "shift_bad_frames_total") >= at_least

    return bool(await wait_until(check, "the bad frames to be counted"))


async def _refused(http, broker, at_least: float) -> bool:
    return await metric(http, broker.http, "shift_reports_refused_total") >= at_least


class FakeBroker:
    """A ROUTER on loopback that answers a real worker as the test says."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.zmq = f"tcp://127.0.0.1:{port}"
        self.identity = b""

    def send(self, message) -> None:
        self.sock.send_multipart(to_frames(message, self.identity))

    def next(self, kind: type, answer_fetch=None):
        """The worker's next ``kind`` message; STARTED is acknowledged, FETCH answered."""
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            if not self.sock.poll(200):
                self.send(Heartbeat())
                continue
            identity, message = from_frames(self.sock.recv_multipart(), routed=True)
            self.identity = identity
            if isinstance(message, Started):
                self.send(message)
            if isinstance(message, Fetch) and answer_fetch is not None:
                self.send(answer_fetch(message))
            if isinstance(message, kind):
                return message
        raise AssertionError(f"no {kind.__name__} from the worker")

    def close(self) -> None:
        self.sock.close(linger=0)
        self.context.term()


def test_a_worker_stores_only_a_fetched_block_that_checks_out(processes, tmp_path):
    fake = FakeBroker()
    state = tmp_path / "worker"
    worker = start_worker(fake, "victim", state, processes["logs"], heartbeat_ms=1000)
    good = _block(BlockRef(MODEL, DATA, 0))
    tampered = BlockData(
        good.ref, good.features[:-4] + b"\x00\x00\x80\x3f", good.labels, good.meta, good.digest
    )
    other = _block(BlockRef(MODEL, DATA, 1), num_rows=264)
    try:
        fake.next(Ready)
        fake.send(Welcome("f" * 32))  # another store: the worker fetches what it lacks
        for n, (data, expected) in enumerate(
            [
                (tampered, {"missing": [0]}),  # bytes do not match the digest
                (other, {"missing": [0]}),  # a block it did not ask for
                (good, {"sum": float(np.full((8, 4), 0.0).sum()), "labels": [0] * 8}),
            ]
        ):
            item = TaskItem(f"t{n}", "get_rows", _keys(n=n), 1, MODEL)
            fake.send(Task((item,)))
            result = fake.next(Result, lambda f, d=data: Block(f.request, f.ref, d))
            assert result.outcomes[0].value == expected, n
            if n < 2:
                assert files(state) == {}  # nothing of the refused block was written
        assert files(state)["block-000000.npy"] == good.features
    finally:
        stop(worker)
        fake.close()
    assert "refused a fetched block" in (processes["logs"] / "victim.log").read_text()
