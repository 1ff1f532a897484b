"""Liveness and reconnect backoff: pure bookkeeping over times the caller supplies.

The broker keeps a :class:`Liveness` of its workers and a worker keeps one of its broker;
both call :meth:`Liveness.seen` on every message and ask :meth:`Liveness.expired` on every
tick. :class:`Backoff` spaces a worker's reconnect attempts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from shift.errors import SettingsError


class Liveness:
    """Tracks when each peer was last heard from.

    Args:
        expiry_s: Seconds of silence after which a peer is dead
            (heartbeat interval times liveness).
    """

    def __init__(self, expiry_s: float) -> None:
        if expiry_s <= 0:
            raise SettingsError(
                f"liveness expiry must be positive, got {expiry_s} s; "
                "check heartbeat_ms and liveness"
            )
        self.expiry_s = expiry_s
        self._last: dict[str, float] = {}

    def seen(self, peer: str, now: float) -> None:
        """Record that ``peer`` sent something at ``now``."""
        self._last[peer] = now

    def forget(self, peer: str) -> None:
        """Stop tracking ``peer`` (it left or was declared dead)."""
        self._last.pop(peer, None)

    def silent_s(self, peer: str, now: float) -> float:
        """Seconds since ``peer`` was last heard from (``inf`` if never)."""
        last = self._last.get(peer)
        return float("inf") if last is None else now - last

    def expired(self, now: float) -> list[str]:
        """Return (and forget) every peer silent for longer than ``expiry_s``."""
        dead = [p for p, last in self._last.items() if now - last > self.expiry_s]
        for peer in dead:
            del self._last[peer]
        return dead

    def __contains__(self, peer: object) -> bool:
        return peer in self._last


@dataclass
class Backoff:
    """Exponential backoff with equal jitter (half fixed, half random) for reconnects.

    Attributes:
        base_s: First delay ceiling.
        max_s: Largest delay ceiling.
        rng: Source of jitter (seed it in tests).
        failures: Consecutive failures so far.
    """

    base_s: float
    max_s: float
    rng: random.Random
    failures: int = 0

    def next_delay_s(self) -> float:
        """Return the delay before the next attempt and count one more failure."""
        ceiling = min(self.max_s, self.base_s * (2**self.failures))
        self.failures += 1
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Forget past failures (called once a connection works again)."""
        self.failures = 0
