"""Property tests: random pools, losses (with ties), settings and completion orders."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from shift.errors import SchedulerError
from shift.halving import (
    AUTO,
    BudgetSetting,
    ChunkSetting,
    Evaluation,
    HalvingConfig,
    HalvingStatus,
    RankedArm,
    Schedule,
    SuccessiveHalving,
    plan_schedule,
    planned_rounds,
)

LOSS_VALUES = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0, float("inf")]  # few values: many ties


def reference(
    schedule: Schedule, arms: tuple[str, ...], loss: dict[tuple[str, int], float]
) -> list[RankedArm]:
    """Synchronous successive halving written straight from the rule in docs/halving.md."""
    alive = list(arms)
    ranking: list[RankedArm] = []
    for plan in schedule.rounds:
        ordered = sorted(alive, key=lambda arm: (loss[arm, plan.index], arm))
        keep = plan.advancing or len(ordered)
        dropped = [
            RankedArm(
                a, loss[a, plan.index], plan.train_rows, plan.index if plan.advancing else None
            )
            for a in ordered[keep:]
        ]
        ranking = dropped + ranking
        alive = ordered[:keep]
    finalists = [
        RankedArm(a, loss[a, schedule.rounds[-1].index], schedule.final_rows, None) for a in alive
    ]
    return finalists + ranking


@st.composite
def searches(draw: st.DrawFn) -> tuple[HalvingConfig, dict[tuple[str, int], float], random.Random]:
    num_arms = draw(st.integers(1, 40))
    eta = draw(st.sampled_from([2, 2, 3, 4]))
    rounds_l = planned_rounds(num_arms, eta)
    train_rows = draw(st.integers(1, 5000))
    chunk: ChunkSetting = draw(st.one_of(st.just(AUTO), st.integers(1, 400)))
    budget: BudgetSetting = draw(
        st.one_of(st.just("auto"), st.integers(num_arms * rounds_l, num_arms * rounds_l * 5))
    )
    names = draw(st.permutations([f"m{i:02d}" for i in range(num_arms)]))
    config = HalvingConfig(tuple(names), train_rows, chunk, budget, eta)
    rounds = len(config.schedule().rounds)
    loss = {(arm, k): draw(st.sampled_from(LOSS_VALUES)) for arm in names for k in range(rounds)}
    return config, loss, draw(st.randoms(use_true_random=False))


def drive(
    machine: SuccessiveHalving,
    loss: dict[tuple[str, int], float],
    rng: random.Random,
    stop_after: int | None = None,
) -> int:
    """Complete outstanding evaluations in a random order; return how many were recorded."""
    done = 0
    outstanding: list[Evaluation] = machine.next_requests()
    while outstanding and done != stop_after:
        request = outstanding.pop(rng.randrange(len(outstanding)))
        update = machine.record(request.arm, request.train_rows, loss[request.arm, request.round])
        assert not set(update.requests) & set(outstanding)
        outstanding.extend(update.requests)
        assert sorted(outstanding, key=repr) == sorted(machine.next_requests(), key=repr)
        done += 1
    return done


@settings(max_examples=300, deadline=None)
@given(searches())
def test_machine_matches_synchronous_halving(
    search: tuple[HalvingConfig, dict[tuple[str, int], float], random.Random],
) -> None:
    config, loss, rng = search
    machine = SuccessiveHalving(config)
    drive(machine, loss, rng)
    assert machine.status is HalvingStatus.DONE
    ranking = machine.ranking()
    assert ranking == reference(machine.schedule, config.arms, loss)
    assert sorted(r.arm for r in ranking) == sorted(config.arms)
    # Finalists first, then later eliminations before earlier ones; rows never increase.
    order = [
        len(machine.schedule.rounds) if r.eliminated_in is None else r.eliminated_in
        for r in ranking
    ]
    assert order == sorted(order, reverse=True)
    rows = [r.train_rows for r in ranking]
    assert rows == sorted(rows, reverse=True)
    # One evaluation per arm and round it played: nothing re-scored.
    assert len(machine.scores()) == sum(plan.arms for plan in machine.schedule.rounds)


@settings(max_examples=300, deadline=None)
@given(searches(), st.floats(0, 1))
def test_resume_from_json_gives_the_same_result(
    search: tuple[HalvingConfig, dict[tuple[str, int], float], random.Random], cut: float
) -> None:
    config, loss, rng = search
    total = sum(plan.arms for plan in config.schedule().rounds)
    seed = rng.random()
    uninterrupted = SuccessiveHalving(config)
    drive(uninterrupted, loss, random.Random(seed))

    machine = SuccessiveHalving(config)
    drive(machine, loss, random.Random(seed), stop_after=int(cut * total))
    restored = SuccessiveHalving.from_json(machine.to_json())
    assert restored.next_requests() == machine.next_requests()
    assert restored.scores() == machine.scores()
    drive(restored, loss, rng)
    assert restored.ranking() == uninterrupted.ranking()
    assert restored.scores() == uninterrupted.scores()


@settings(max_examples=500, deadline=None)
@given(
    num_arms=st.integers(1, 10_000),
    train_rows=st.integers(1, 10_000_000),
    chunk=st.one_of(st.just("auto"), st.integers(1, 100_000)),
    extra_budget=st.one_of(st.none(), st.integers(0, 100_000)),
    eta=st.integers(2, 5),
)
def test_schedule_invariants(
    num_arms: int, train_rows: int, chunk: int | str, extra_budget: int | None, eta: int
) -> None:
    rounds_l = planned_rounds(num_arms, eta)
    budget = "auto" if extra_budget is None else num_arms * rounds_l + extra_budget
    schedule = plan_schedule(num_arms, train_rows, chunk, budget, eta)  # type: ignore[arg-type]
    rounds = schedule.rounds
    assert rounds[0].arms == num_arms
    assert len(rounds) <= rounds_l
    for before, after in itertools.pairwise(rounds):
        assert after.arms == before.advancing == -(-before.arms // eta)
        assert after.train_rows > before.train_rows
        assert after.pulls >= before.pulls >= 1
    assert all(1 <= plan.train_rows <= train_rows for plan in rounds)
    assert rounds[-1].advancing == 0
    if num_arms > 1:
        assert schedule.pulls_used <= schedule.budget_pulls
        # Truncated exactly when the data ran out; otherwise the last round leaves one winner.
        assert schedule.truncated == (len(rounds) < rounds_l)
        if not schedule.truncated:
            assert -(-rounds[-1].arms // eta) == 1
        else:
            assert rounds[-1].train_rows == train_rows
    else:
        assert schedule.final_rows == train_rows
    if chunk == "auto":
        assert schedule.final_rows == train_rows
        if schedule.chunk_rows > 1 and num_arms > 1:
            smaller = plan_schedule(num_arms, train_rows, schedule.chunk_rows - 1, budget, eta)  # type: ignore[arg-type]
            assert smaller.final_rows < train_rows


@given(num_arms=st.integers(2, 10_000), eta=st.integers(2, 5), short=st.integers(1, 10_000))
def test_budget_below_models_times_rounds_is_refused(num_arms: int, eta: int, short: int) -> None:
    minimum = num_arms * planned_rounds(num_arms, eta)
    budget = max(1, minimum - short)
    try:
        plan_schedule(num_arms, 1000, 10, budget, eta)
    except SchedulerError as error:
        assert f"use BUDGET {minimum} or more" in str(error)
    else:
        raise AssertionError(f"budget {budget} < {minimum} was accepted")
