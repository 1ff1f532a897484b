"""The machine with hundreds of arms: incremental promotion, stored state and resume.

A search is driven in a seeded random order of arrival (results of concurrent evaluations
arrive in any order). Promotion of certain survivors is incremental; a reference machine
that walks the whole certain prefix on every loss (the definition) must ask for the same
evaluations in the same order. A machine rebuilt from its state plus the results appended
since (as the broker stores it) and driven to the end must rank exactly as one that ran
without interruption.
"""

from __future__ import annotations

import random
import zlib

import pytest

from shift.halving import Evaluation, HalvingConfig, SuccessiveHalving

ARMS = 300
TRAIN_ROWS, TEST_ROWS = 2048, 512


class WalkingMachine(SuccessiveHalving):
    """The definition: every certain arm of the prefix, walked again on each loss."""

    @staticmethod
    def _newly_certain(state, certain):  # type: ignore[no-untyped-def, override]
        return [arm for _, arm in state.ranked[:certain]]


def _config(racing: bool) -> HalvingConfig:
    arms = tuple(f"m{i:04d}" for i in range(ARMS))
    return HalvingConfig(arms, TRAIN_ROWS, test_rows=TEST_ROWS, racing=racing)


def _result(request: Evaluation) -> tuple[float, int]:
    quality = (zlib.crc32(request.arm.encode()) % 1000) / 2000
    rows = request.test_rows or TEST_ROWS
    errors = round(min(1.0, 0.05 + quality + 2.0 / request.train_rows**0.5) * rows)
    return errors / rows, errors


def _drive(machine: SuccessiveHalving, rng: random.Random, stop: int | None = None) -> list:
    """Record results in a random order of arrival; the requests in the order asked."""
    pending = machine.next_requests()
    asked = list(pending)
    while pending and (stop is None or machine.recorded < stop):
        request = pending.pop(rng.randrange(len(pending)))
        loss, errors = _result(request)
        update = machine.record(request.arm, request.train_rows, loss, errors)
        pending += update.requests
        asked += update.requests
    return asked


@pytest.mark.parametrize("racing", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_incremental_promotion_asks_what_walking_the_prefix_asks(racing: bool, seed: int) -> None:
    fast, walking = SuccessiveHalving(_config(racing)), WalkingMachine(_config(racing))
    assert _drive(fast, random.Random(seed)) == _drive(walking, random.Random(seed))
    assert fast.ranking() == walking.ranking()
    assert fast.recorded > ARMS  # later rounds ran


@pytest.mark.parametrize("racing", [True, False])
def test_a_machine_resumed_from_its_stored_state_ranks_as_an_uninterrupted_one(
    racing: bool,
) -> None:
    whole = SuccessiveHalving(_config(racing))
    _drive(whole, random.Random(7))
    total = whole.recorded

    first = SuccessiveHalving(_config(racing))
    _drive(first, random.Random(8), stop=total // 3)
    saved = first.to_dict()  # written whole when the search started its run ...
    _drive(first, random.Random(9), stop=2 * total // 3)
    appended = first.results_since(len(saved["results"]))  # ... and appended since
    assert appended and len(saved["results"]) + len(appended) == first.recorded

    stored = {**saved, "results": saved["results"] + appended}
    resumed = SuccessiveHalving.from_dict(stored)
    assert resumed.recorded == first.recorded
    assert resumed.next_requests() == first.next_requests()
    _drive(resumed, random.Random(10))
    assert resumed.ranking() == whole.ranking()
    assert resumed.recorded == total
