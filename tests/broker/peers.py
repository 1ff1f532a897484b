"""Hostile peers for the link tests: raw DEALER sockets speaking (or abusing) the protocol."""

from __future__ import annotations

from typing import Any

import aiohttp
import zmq

from shift.codec import decode, to_frames
from shift.keys import CurveClient
from shift.protocol import Message, Ready, split_frames


class RawPeer:
    """A DEALER on loopback that sends whatever a test tells it to.

    Args:
        endpoint: The broker's ROUTER endpoint.
        identity: Its routing identity (a worker id, or anything).
        curve: CurveZMQ client keys, for peers that hold (or fake) some.
    """

    def __init__(self, endpoint: str, identity: bytes, curve: CurveClient | None = None) -> None:
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.IDENTITY, identity)
        self.sock.setsockopt(zmq.LINGER, 2000)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        if curve is not None:
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve.keys.secret.encode())
            self.sock.setsockopt(zmq.CURVE_PUBLICKEY, curve.keys.public.encode())
            self.sock.setsockopt(zmq.CURVE_SERVERKEY, curve.server_public.encode())
        self.sock.connect(endpoint)
        self.identity = identity

    def send(self, message: Message) -> None:
        self.sock.send_multipart(to_frames(message))

    def send_raw(self, frames: list[bytes]) -> None:
        self.sock.send_multipart(frames)

    def ready(
        self, prefetch: int = 1, capabilities: tuple[str, ...] = ("nothing",), **kw: Any
    ) -> None:
        """Register as a worker (a READY naming its own identity)."""
        session = kw.pop("session", "hostile")
        self.send(Ready(self.identity.decode(), session, "cpu", 0, capabilities, prefetch, **kw))

    def receive(self, timeout_s: float) -> Message | None:
        """The next message from the broker, or ``None`` after ``timeout_s``."""
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        envelope = split_frames(self.sock.recv_multipart(), routed=False)
        return decode(envelope.command, envelope.body)

    def close(self) -> None:
        self.sock.close(linger=2000)
        self.context.term()


async def metric(http: aiohttp.ClientSession, base: str, name: str) -> float:
    """One unlabelled value from ``/metrics``."""
    async with http.get(base + "/metrics") as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name} in /metrics")


def memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` (peak) of a process, from ``/proc/PID/status``."""
    out = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    return out
