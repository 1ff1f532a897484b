"""Liveness and backoff, driven by hand-made times."""

from __future__ import annotations

import random

import pytest

from shift.errors import SettingsError
from shift.liveness import Backoff, Liveness


def test_peer_expires_after_silence():
    live = Liveness(expiry_s=3.0)
    live.seen("a", 0.0)
    live.seen("b", 0.0)
    assert live.expired(2.9) == []
    live.seen("a", 2.9)
    assert live.expired(3.1) == ["b"]
    assert "b" not in live and "a" in live
    assert live.silent_s("a", 4.0) == pytest.approx(1.1)
    assert live.expired(6.0) == ["a"]
    assert live.silent_s("a", 6.0) == float("inf")


def test_forget_and_bad_expiry():
    live = Liveness(1.0)
    live.seen("a", 0.0)
    live.forget("a")
    live.forget("a")
    assert live.expired(10.0) == []
    with pytest.raises(SettingsError):
        Liveness(0)


def test_backoff_grows_caps_and_resets():
    backoff = Backoff(base_s=0.1, max_s=1.0, rng=random.Random(7))
    delays = [backoff.next_delay_s() for _ in range(8)]
    ceilings = [min(1.0, 0.1 * 2**i) for i in range(8)]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay_s() <= 0.1
