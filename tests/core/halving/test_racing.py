"""Racing on the test set: the schedule's test prefixes and the confidence-margin cut."""

from __future__ import annotations

import json
import math
import random

import pytest

from shift.error_bounds import confidently_worse, kl_bernoulli, lower_bound, upper_bound
from shift.errors import SchedulerError
from shift.halving import (
    Evaluation,
    HalvingConfig,
    HalvingStatus,
    RankedArm,
    RoundDecided,
    SuccessiveHalving,
    plan_schedule,
)

FOUR = ("a", "b", "c", "d")


def four(racing: bool = True, test_rows: int | None = 1000) -> SuccessiveHalving:
    """4 arms, 1,000 training rows, CHUNK 100: round 0 on 100 rows, round 1 on 300."""
    return SuccessiveHalving(HalvingConfig(FOUR, 1000, 100, "auto", test_rows=test_rows,
                                           racing=racing))  # fmt: skip


def test_schedule_test_prefixes_grow_with_the_training_prefix() -> None:
    schedule = plan_schedule(6, 4000, "auto", "auto", test_rows=1000)
    assert [(r.train_rows, r.test_rows) for r in schedule.rounds] == [
        (667, 256),  # 1/6 of the test set is 167 rows: at least one block of 256
        (2001, 512),  # half of it, 500 rows, rounded up to whole blocks
        (4000, 1000),  # the finalists: the whole test set
    ]
    assert [schedule.sampled(k) for k in range(3)] == [True, True, False]
    assert schedule.to_dict()["racing"] is True
    assert schedule.to_dict()["rounds"][0]["test_rows"] == 256


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"racing": False}, [1000, 1000, 1000]),  # plain halving: the whole test set
        ({"test_rows": None}, [None, None, None]),  # size unknown: the whole test set
        ({"test_rows": 200}, [200, 200, 200]),  # smaller than one block
        ({"test_min_rows": 600}, [768, 768, 1000]),
    ],
)
def test_schedule_test_prefix_settings(kwargs: dict[str, object], expected: list[object]) -> None:
    options: dict[str, object] = {"test_rows": 1000, **kwargs}
    schedule = plan_schedule(6, 4000, "auto", "auto", **options)  # type: ignore[arg-type]
    assert [r.test_rows for r in schedule.rounds] == expected


def test_one_arm_and_exhausted_data_score_on_the_whole_test_set() -> None:
    assert [r.test_rows for r in plan_schedule(1, 5000, 10, 5, test_rows=900).rounds] == [900]
    # 8 arms on 7 rows: round 0 covers the data, so it is the last round.
    assert [r.test_rows for r in plan_schedule(8, 7, 10, 24, test_rows=900).rounds] == [900]


def test_an_arm_within_the_margin_of_the_cut_is_kept() -> None:
    machine = four()
    assert machine.next_requests() == [Evaluation(arm, 0, 100, 256) for arm in FOUR]
    # Round 0 on 256 test rows: 2 survive by rank (a, b). c is 2 errors behind b: well
    # within the margin, so it plays round 1 too. d is far behind: it goes.
    machine.record("a", 100, 26 / 256, 26)
    machine.record("b", 100, 31 / 256, 31)
    machine.record("d", 100, 154 / 256, 154)
    update = machine.record("c", 100, 33 / 256, 33)
    assert update.decided == (RoundDecided(0, 100, ("a", "b", "c"), ("d",)),)
    assert machine.round_arms(1) == 3
    assert sorted(machine.next_requests(), key=lambda e: e.arm) == [
        Evaluation(arm, 1, 300, 1000) for arm in "abc"
    ]
    for arm, errors in (("a", 120), ("b", 100), ("c", 110)):
        update = machine.record(arm, 300, errors / 1000, errors, 1000)
    assert update.status is HalvingStatus.DONE
    assert machine.ranking() == [
        RankedArm("b", 0.1, 300, None, 1000),
        RankedArm("c", 0.11, 300, None, 1000),
        RankedArm("a", 0.12, 300, None, 1000),
        RankedArm("d", 154 / 256, 100, 0, 256),
    ]


def test_an_arm_confidently_worse_than_the_leader_goes_even_within_the_top() -> None:
    machine = four()
    # b and c are in the top two by rank, but a's 5 errors in 256 rows against their 60
    # and 62 is beyond the margin: only a plays on.
    for arm, errors in (("a", 5), ("b", 60), ("c", 62), ("d", 200)):
        update = machine.record(arm, 100, errors / 256, errors)
    assert update.decided == (RoundDecided(0, 100, ("a",), ("b", "c", "d")),)
    assert machine.next_requests() == [Evaluation("a", 1, 300, 1000)]  # asked for early
    update = machine.record("a", 300, 0.02, 20, 1000)
    assert update.status is HalvingStatus.DONE
    assert [(r.arm, r.eliminated_in) for r in machine.ranking()] == [
        ("a", None),
        ("b", 0),
        ("c", 0),
        ("d", 0),
    ]


def test_an_early_request_the_decision_drops_is_withdrawn_and_its_result_ignored() -> None:
    machine = four()
    for arm, errors in (("b", 60), ("c", 62)):
        assert machine.record(arm, 100, errors / 256, errors).requests == ()
    # Three losses in, one missing: b is certain by rank and not worse than the leader so
    # far (itself), so its round-1 evaluation goes out early.
    assert machine.record("d", 100, 200 / 256, 200).requests == (Evaluation("b", 1, 300, 1000),)
    update = machine.record("a", 100, 5 / 256, 5)
    # a is far ahead of b: the decision drops b and withdraws its early request.
    assert update.decided == (RoundDecided(0, 100, ("a",), ("b", "c", "d")),)
    assert update.withdrawn == (Evaluation("b", 1, 300, 1000),)
    assert update.requests == (Evaluation("a", 1, 300, 1000),)
    before = machine.to_json()
    late = machine.record("b", 300, 0.2, 200, 1000)  # a worker ran it anyway
    assert (late.requests, late.decided, late.withdrawn) == ((), (), ())
    assert machine.to_json() == before
    assert machine.next_requests() == [Evaluation("a", 1, 300, 1000)]


def test_a_lone_survivor_goes_straight_to_the_last_round() -> None:
    arms = tuple("abcdefgh")
    machine = SuccessiveHalving(HalvingConfig(arms, 1000, 10, 24, test_rows=1000))
    assert [(r.train_rows, r.test_rows) for r in machine.schedule.rounds] == [
        (10, 256),
        (30, 256),
        (70, 1000),
    ]
    for arm in arms:
        errors = 3 if arm == "h" else 180
        update = machine.record(arm, 10, errors / 256, errors)
    assert update.decided == (
        RoundDecided(0, 10, ("h",), tuple("abcdefg")),
        RoundDecided(1, 30, ("h",), ()),  # passed through: nothing left to compare
    )
    assert update.requests == (Evaluation("h", 2, 70, 1000),)
    update = machine.record("h", 70, 0.01, 10, 1000)
    assert update.status is HalvingStatus.DONE
    assert machine.ranking()[0] == RankedArm("h", 0.01, 70, None, 1000)
    assert [s.round for s in machine.scores() if s.arm == "h"] == [0, 2]
    restored = SuccessiveHalving.from_json(machine.to_json())
    assert restored.ranking() == machine.ranking()


def test_plain_halving_drops_the_same_arm() -> None:
    machine = four(racing=False)
    assert machine.next_requests() == [Evaluation(arm, 0, 100, 1000) for arm in FOUR]
    for arm, errors in (("a", 100), ("b", 120), ("c", 130), ("d", 600)):
        update = machine.record(arm, 100, errors / 1000, errors)
    assert update.decided == (RoundDecided(0, 100, ("a", "b"), ("c", "d")),)


def test_a_tie_at_the_cut_survives_on_a_test_prefix() -> None:
    machine = four()
    for arm, errors in (("a", 20), ("b", 40), ("c", 40), ("d", 40)):
        update = machine.record(arm, 100, errors / 256, errors)
    # b, c and d tie: b is the cut by name, c and d cannot be worse than it.
    assert update.decided == (RoundDecided(0, 100, ("a", "b", "c", "d"), ()),)


def test_arms_without_error_counts_are_never_found_worse() -> None:
    machine = four()
    for arm, loss in (("a", 0.1), ("b", 0.2), ("c", 0.9), ("d", 0.95)):
        update = machine.record(arm, 100, loss)
    assert update.decided[0].eliminated == ()


def test_a_failed_evaluation_goes_and_keeps_its_place() -> None:
    machine = four()
    for arm, errors in (("a", 20), ("b", 40), ("c", 41)):
        machine.record(arm, 100, errors / 256, errors)
    update = machine.record("d", 100, math.inf)
    assert update.decided == (RoundDecided(0, 100, ("a", "b", "c"), ("d",)),)


def test_early_requests_wait_for_the_round_that_may_keep_extra_arms() -> None:
    machine = four()
    machine.record("a", 100, 0.1, 26)
    # a is certain to survive round 0 (only b, c, d could beat it and 2 survive)...
    update = machine.record("b", 100, 0.2, 51)
    assert update.requests == ()
    update = machine.record("c", 100, 0.45, 115)
    assert update.requests == (Evaluation("a", 1, 300, 1000),)
    # ...round 1 is the last: its arms are only known when round 0 ends.
    update = machine.record("d", 100, 0.5, 128)
    assert update.decided == (RoundDecided(0, 100, ("a", "b"), ("c", "d")),)
    assert update.requests == (Evaluation("b", 1, 300, 1000),)


def test_bad_racing_records_and_settings() -> None:
    machine = four()
    with pytest.raises(SchedulerError, match="scored on 1000 test rows; round 0 scores on 256"):
        machine.record("a", 100, 0.1, 10, test_rows=1000)
    with pytest.raises(SchedulerError, match="at most 256 \\(the test rows\\), got 300"):
        machine.record("a", 100, 0.1, 300)
    machine.record("a", 100, 0.1, 26)
    with pytest.raises(SchedulerError, match="with 26 errors, not 27"):
        machine.record("a", 100, 0.1, 27)
    with pytest.raises(SchedulerError, match="delta must be a probability strictly between"):
        HalvingConfig(FOUR, 1000, delta=1.5)
    with pytest.raises(SchedulerError, match="racing must be true or false"):
        HalvingConfig(FOUR, 1000, racing="yes")  # type: ignore[arg-type]
    with pytest.raises(SchedulerError, match="the test-set size"):
        HalvingConfig(FOUR, 1000, test_rows=0)


def test_racing_state_round_trips_and_the_old_format_is_refused() -> None:
    machine = four()
    for arm, errors in (("a", 26), ("b", 31), ("c", 33), ("d", 154)):
        machine.record(arm, 100, errors / 256, errors)
    machine.record("b", 300, 0.1, 100)
    restored = SuccessiveHalving.from_json(machine.to_json())
    assert restored.config == machine.config
    assert restored.to_json() == machine.to_json()
    assert restored.next_requests() == machine.next_requests()
    assert restored.round_arms(1) == 3
    old = json.loads(machine.to_json())
    old["version"] = 1
    old["results"] = [item[:3] for item in old["results"]]
    with pytest.raises(SchedulerError, match="state version 1; this shift reads version 3"):
        SuccessiveHalving.from_json(json.dumps(old))


def test_confidence_bounds() -> None:
    assert kl_bernoulli(0.0, 0.5) == pytest.approx(math.log(2))
    assert kl_bernoulli(0.3, 0.0) == math.inf
    assert upper_bound(0, 100, 0.05) == pytest.approx(1 - 0.05 ** (1 / 100))
    assert lower_bound(100, 100, 0.05) == pytest.approx(0.05 ** (1 / 100))
    assert upper_bound(256, 256, 0.05) == 1.0
    assert lower_bound(0, 256, 0.05) == 0.0
    # The bounds hold the observed rate and tighten with rows.
    assert lower_bound(20, 100, 0.05) < 0.2 < upper_bound(20, 100, 0.05)
    assert upper_bound(200, 1000, 0.05) < upper_bound(20, 100, 0.05)
    assert not confidently_worse(40, 40, 256, 0.01)
    assert confidently_worse(150, 30, 256, 0.01)
    assert not confidently_worse(30, 150, 256, 0.01)


def test_the_bounds_cover_the_true_rate_when_sampling_without_replacement() -> None:
    # A test set of 2,000 rows with 300 errors, shuffled 400 times: the first 256 rows'
    # bounds at level 0.05 miss the whole-set rate 0.15 at most 5% of the time each.
    rng = random.Random(7)
    rows = [1] * 300 + [0] * 1700
    above = below = 0
    for _ in range(400):
        rng.shuffle(rows)
        errors = sum(rows[:256])
        above += upper_bound(errors, 256, 0.05) < 0.15
        below += lower_bound(errors, 256, 0.05) > 0.15
    assert above <= 20 and below <= 20
