"""The halving state machine driven by hand-made losses: no sockets, no clock."""

from __future__ import annotations

import json
import math

import pytest

from shift.errors import SchedulerError
from shift.halving import (
    Evaluation,
    HalvingConfig,
    HalvingStatus,
    RankedArm,
    RoundDecided,
    SuccessiveHalving,
)

ARMS = tuple("abcdefgh")
# Hand-made losses for 8 arms, budget 24, chunk 10 (rounds on 10, 30 and 70 rows).
LOSSES = {
    10: {"a": 0.8, "b": 0.3, "c": 0.5, "d": 0.1, "e": 0.7, "f": 0.3, "g": 0.9, "h": 0.6},
    30: {"b": 0.15, "c": 0.35, "d": 0.2, "f": 0.4},
    70: {"b": 0.5, "d": 0.45},
}


def run(machine: SuccessiveHalving, losses: dict[int, dict[str, float]]) -> list[RoundDecided]:
    """Record every requested evaluation, oldest first, until the machine is done."""
    decided: list[RoundDecided] = []
    queue = list(machine.next_requests())
    while queue:
        request = queue.pop(0)
        update = machine.record(
            request.arm, request.train_rows, losses[request.train_rows][request.arm]
        )
        queue.extend(update.requests)
        decided.extend(update.decided)
    return decided


def test_eight_arms_budget_24_chunk_10() -> None:
    machine = SuccessiveHalving(HalvingConfig(ARMS, 1000, 10, 24))
    assert machine.next_requests() == [Evaluation(arm, 0, 10) for arm in ARMS]
    decided = run(machine, LOSSES)
    # Round 0 by (loss, name): d .1, b .3, f .3 (tie, name), c .5 | h .6, e .7, a .8, g .9.
    # Round 1: b .15, d .2 | c .35, f .4.  Round 2: d .45, b .5 (finalists).
    assert decided == [
        RoundDecided(0, 10, ("d", "b", "f", "c"), ("h", "e", "a", "g")),
        RoundDecided(1, 30, ("b", "d"), ("c", "f")),
        RoundDecided(2, 70, ("d", "b"), ()),
    ]
    assert machine.status is HalvingStatus.DONE
    # c (.35 on 30 rows) beat nothing that survived: it ranks below both finalists although
    # their losses on 70 rows are higher.
    assert machine.ranking() == [
        RankedArm("d", 0.45, 70, None),
        RankedArm("b", 0.5, 70, None),
        RankedArm("c", 0.35, 30, 1),
        RankedArm("f", 0.4, 30, 1),
        RankedArm("h", 0.6, 10, 0),
        RankedArm("e", 0.7, 10, 0),
        RankedArm("a", 0.8, 10, 0),
        RankedArm("g", 0.9, 10, 0),
    ]
    assert [(s.arm, s.round, s.loss) for s in machine.scores()][-2:] == [
        ("b", 2, 0.5),
        ("d", 2, 0.45),
    ]


def test_certain_survivors_are_requested_before_the_round_ends() -> None:
    machine = SuccessiveHalving(HalvingConfig(("a", "b", "c", "d"), 1000, 10, "auto"))
    # 4 arms, AUTO budget 8: rounds on 10 rows (1 pull) and 30 rows (2 more); 2 advance.
    # A known arm is certain once fewer than 2 arms can still beat it.
    assert machine.record("a", 10, 0.1).requests == ()  # b, c, d unknown: 3 could beat a
    assert machine.record("b", 10, 0.2).requests == ()  # c, d unknown: 2 could beat a
    update = machine.record("c", 10, 0.3)  # only d could beat a: a survives either way
    assert update.requests == (Evaluation("a", 1, 30),)
    assert update.decided == ()
    assert machine.next_requests() == [Evaluation("d", 0, 10), Evaluation("a", 1, 30)]
    update = machine.record("d", 10, 0.9)  # d is last: b takes the second place
    assert update.requests == (Evaluation("b", 1, 30),)
    assert update.decided == (RoundDecided(0, 10, ("a", "b"), ("c", "d")),)
    assert update.status is HalvingStatus.RUNNING
    machine.record("b", 30, 0.05)
    final = machine.record("a", 30, 0.05)
    assert final.status is HalvingStatus.DONE
    assert final.decided == (RoundDecided(1, 30, ("a", "b"), ()),)


def test_a_late_best_arm_is_promoted_itself() -> None:
    machine = SuccessiveHalving(HalvingConfig(("a", "b", "c", "d"), 1000, 10, "auto"))
    for arm, loss in (("a", 0.1), ("b", 0.2), ("c", 0.3)):
        machine.record(arm, 10, loss)
    assert machine.record("d", 10, 0.05).requests == (Evaluation("d", 1, 30),)


def test_ties_break_by_name_in_every_round() -> None:
    arms = ("m3", "m1", "m2", "m0")
    machine = SuccessiveHalving(HalvingConfig(arms, 100, 10, "auto"))
    decided = run(machine, {10: dict.fromkeys(arms, 0.5), 30: dict.fromkeys(arms, 0.5)})
    assert decided[0] == RoundDecided(0, 10, ("m0", "m1"), ("m2", "m3"))
    assert [r.arm for r in machine.ranking()] == ["m0", "m1", "m2", "m3"]


def test_exhausted_data_ends_at_the_round_that_covers_it() -> None:
    # Round 1 wants 30 rows of 25: it is the last round, with 4 finalists on all 25 rows.
    machine = SuccessiveHalving(HalvingConfig(ARMS, 25, 10, 24))
    assert machine.schedule.truncated
    losses = {10: LOSSES[10], 25: {"b": 0.15, "c": 0.35, "d": 0.2, "f": 0.4}}
    decided = run(machine, losses)
    assert decided[-1] == RoundDecided(1, 25, ("b", "d", "c", "f"), ())
    ranking = machine.ranking()
    assert [(r.arm, r.train_rows, r.eliminated_in) for r in ranking[:4]] == [
        ("b", 25, None),
        ("d", 25, None),
        ("c", 25, None),
        ("f", 25, None),
    ]
    assert all(r.train_rows <= 25 for r in ranking)
    # No evaluation repeated a prefix: one per arm and round.
    assert len(machine.scores()) == 8 + 4


def test_data_smaller_than_one_chunk_is_an_exhaustive_search() -> None:
    machine = SuccessiveHalving(HalvingConfig(ARMS, 7, 10, 24))
    assert [r.train_rows for r in machine.schedule.rounds] == [7]
    run(machine, {7: LOSSES[10]})
    ranking = machine.ranking()
    assert [r.arm for r in ranking] == ["d", "b", "f", "c", "h", "e", "a", "g"]
    assert {r.eliminated_in for r in ranking} == {None}


def test_one_arm_sees_the_whole_data() -> None:
    machine = SuccessiveHalving(HalvingConfig(("only",), 5000, 10, 5))
    assert machine.next_requests() == [Evaluation("only", 0, 5000)]
    update = machine.record("only", 5000, 0.25)
    assert update.status is HalvingStatus.DONE
    assert update.decided == (RoundDecided(0, 5000, ("only",), ()),)
    assert machine.ranking() == [RankedArm("only", 0.25, 5000, None)]


def test_failed_evaluation_as_inf_is_eliminated_and_persists_as_strict_json() -> None:
    machine = SuccessiveHalving(HalvingConfig(("a", "b"), 100, "auto", "auto"))
    machine.record("a", 100, math.inf)
    text = machine.to_json()
    assert "Infinity" not in text
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard {name}"))
    restored = SuccessiveHalving.from_json(text)
    restored.record("b", 100, 0.4)
    assert [(r.arm, r.loss) for r in restored.ranking()] == [("b", 0.4), ("a", math.inf)]


def test_redelivered_result_is_a_no_op() -> None:
    machine = SuccessiveHalving(HalvingConfig(ARMS, 1000, 10, 24))
    machine.record("a", 10, 0.5)
    assert machine.record("a", 10, 0.5).requests == ()
    assert len(machine.scores()) == 1


BAD_RECORDS = [
    (("zz", 10, 0.1), "'zz' is not a model of this search"),
    (("a", 30, 0.1), "'a' was not asked for an evaluation on 30 rows (round 1)"),
    (("a", 11, 0.1), "no halving round fits a proxy on 11 training rows; this schedule uses 10"),
    (("a", 10, math.nan), "the loss of 'a' on 10 rows must be a number or +inf"),
    (("a", 10, -math.inf), "got -inf"),
    (("a", 10, "0.1"), "got '0.1'"),
    (("a", 10, True), "got True"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "message"), BAD_RECORDS, ids=[m for _, m in BAD_RECORDS])
def test_bad_records(args: tuple[str, int, float], message: str) -> None:
    machine = SuccessiveHalving(HalvingConfig(ARMS, 1000, 10, 24))
    with pytest.raises(SchedulerError) as info:
        machine.record(*args)
    assert message in str(info.value)
    assert machine.scores() == []


def test_a_recorded_loss_cannot_change() -> None:
    machine = SuccessiveHalving(HalvingConfig(ARMS, 1000, 10, 24))
    machine.record("a", 10, 0.5)
    with pytest.raises(SchedulerError, match=r"already has loss 0\.5, not 0\.6"):
        machine.record("a", 10, 0.6)


def test_ranking_before_the_end_is_refused() -> None:
    machine = SuccessiveHalving(HalvingConfig(ARMS, 1000, 10, 24))
    machine.record("a", 10, 0.5)
    with pytest.raises(SchedulerError, match=r"not finished: 7 evaluations are missing"):
        machine.ranking()


def test_json_round_trip_mid_round_continues_exactly() -> None:
    machine = SuccessiveHalving(HalvingConfig(ARMS, 1000, 10, 24))
    for arm in "abcdef":
        machine.record(arm, 10, LOSSES[10][arm])
    restored = SuccessiveHalving.from_json(machine.to_json())
    assert restored.next_requests() == machine.next_requests()
    assert restored.to_json() == machine.to_json()
    run(machine, LOSSES)
    run(restored, LOSSES)
    assert restored.ranking() == machine.ranking()


def _state() -> dict[str, object]:
    machine = SuccessiveHalving(HalvingConfig(ARMS, 1000, 10, 24))
    machine.record("a", 10, 0.5)
    return machine.to_dict()


BAD_STATES = [
    ("{not json", "cannot restore successive halving: Expecting property name"),
    ("[]", "not a halving state"),
    (json.dumps({**_state(), "version": 99}), "state version 99; this shift reads version 3"),
    (
        json.dumps({**_state(), "chunk_rows": 11}),
        "planned with CHUNK 11 and BUDGET 24, this shift plans CHUNK 10 and BUDGET 24",
    ),
    (json.dumps({**_state(), "config": "x"}), "a halving config must be an object"),
    (json.dumps({**_state(), "config": {"arms": []}}), "halving config lacks budget, chunk"),
    (json.dumps({**_state(), "results": {}}), "results must be a list"),
    (json.dumps({**_state(), "results": [["a", 12, 0.5, 1]]}), "bad result ['a', 12, 0.5, 1]"),
    (json.dumps({**_state(), "results": [["a", 10, 0.5]]}), "bad result ['a', 10, 0.5]"),
    (json.dumps({**_state(), "results": [["a", 10, None, 1]]}), "got None"),
    (json.dumps({**_state(), "results": [["a", 10, 0.5, -1]]}), "error count of 'a'"),
    (json.dumps({**_state(), "results": [["a", 30, 0.5, 1]]}), "'a' was not asked"),
    (
        json.dumps(
            {
                **_state(),
                "config": {"arms": ["a"], "train_rows": 9, "chunk": 1, "budget": 1, "eta": 2},
            }
        ),
        "halving config lacks delta, racing",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_STATES, ids=[m for _, m in BAD_STATES])
def test_bad_states(text: str, message: str) -> None:
    with pytest.raises(SchedulerError) as info:
        SuccessiveHalving.from_json(text)
    assert message in str(info.value)


def test_many_arms_run_quickly() -> None:
    arms = tuple(f"m{i:04d}" for i in range(4096))
    machine = SuccessiveHalving(HalvingConfig(arms, 1_000_000))
    losses = {
        plan.train_rows: {
            arm: (i * 7919 % 4096) / 4096 / (plan.index + 1) for i, arm in enumerate(arms)
        }
        for plan in machine.schedule.rounds
    }
    run(machine, losses)
    ranking = machine.ranking()
    assert len(ranking) == 4096
    assert ranking[0].train_rows == 1_000_000
