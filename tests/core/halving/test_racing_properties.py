"""Property tests of racing: random pools whose arms score per test row, ties and duplicates."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from shift.error_bounds import confidently_worse
from shift.halving import (
    AUTO,
    Evaluation,
    HalvingConfig,
    HalvingStatus,
    Round,
    SuccessiveHalving,
    planned_rounds,
)

RATES = [0.0, 0.05, 0.1, 0.3, 0.5, 0.9]


class Pool:
    """Arms that misclassify fixed test rows per round: a prefix's errors are counts of them.

    Arms of one ``group`` share their rows (exact ties on every prefix).
    """

    def __init__(self, seed: int, groups: dict[str, int], rates: dict[tuple[int, int], float],
                 test_rows: int) -> None:  # fmt: skip
        self.rows: dict[tuple[str, int], list[int]] = {}
        for arm, group in groups.items():
            for k in range(8):
                rng = random.Random(f"{seed}-{group}-{k}")
                rate = rates[group, k]
                self.rows[arm, k] = [int(rng.random() < rate) for _ in range(test_rows)]

    def score(self, request: Evaluation, test_rows: int) -> tuple[float, int]:
        rows = request.test_rows or test_rows
        errors = sum(self.rows[request.arm, request.round][:rows])
        return errors / rows, errors


@st.composite
def races(draw: st.DrawFn) -> tuple[HalvingConfig, Pool, random.Random]:
    num_arms = draw(st.integers(1, 12))
    eta = draw(st.sampled_from([2, 2, 3]))
    rounds_l = planned_rounds(num_arms, eta)
    train_rows = draw(st.integers(1, 4000))
    test_rows = draw(st.integers(1, 1500))
    chunk = draw(st.one_of(st.just(AUTO), st.integers(1, 300)))
    budget = draw(
        st.one_of(st.just(AUTO), st.integers(num_arms * rounds_l, num_arms * rounds_l * 3))
    )
    names = [f"m{i:02d}" for i in range(num_arms)]
    groups = {arm: draw(st.integers(0, max(0, num_arms - 2))) for arm in names}
    rates = {(g, k): draw(st.sampled_from(RATES)) for g in set(groups.values()) for k in range(8)}
    config = HalvingConfig(
        tuple(names),
        train_rows,
        chunk,
        budget,
        eta,
        test_rows=test_rows,
        racing=draw(st.booleans()),
        delta=draw(st.sampled_from([0.01, 0.05, 0.3])),
        test_min_rows=draw(st.sampled_from([1, 100, 256])),
    )
    pool = Pool(draw(st.integers(0, 10_000)), groups, rates, test_rows)
    return config, pool, draw(st.randoms(use_true_random=False))


def drive(
    machine: SuccessiveHalving, pool: Pool, rng: random.Random, stop_after: int | None = None
) -> int:
    """Complete outstanding evaluations in a random order; return how many were recorded.

    The results of withdrawn requests still come, at random later times (as from a worker
    that ran them anyway): each must change nothing.
    """
    done = 0
    outstanding = machine.next_requests()
    asked = set(outstanding) | {
        Evaluation(s.arm, s.round, s.train_rows, s.test_rows) for s in machine.scores()
    }
    late: list[Evaluation] = []
    test_rows = machine.config.test_rows or 0
    while outstanding and done != stop_after:
        if late and rng.random() < 0.5:
            stale = late.pop(rng.randrange(len(late)))
            loss, errors = pool.score(stale, test_rows)
            before = machine.to_json()
            ignored = machine.record(stale.arm, stale.train_rows, loss, errors)
            assert (ignored.requests, ignored.decided, ignored.withdrawn) == ((), (), ())
            assert machine.to_json() == before
            continue
        request = outstanding.pop(rng.randrange(len(outstanding)))
        loss, errors = pool.score(request, test_rows)
        update = machine.record(request.arm, request.train_rows, loss, errors, request.test_rows)
        assert not set(update.requests) & set(outstanding)
        assert set(update.withdrawn) <= asked
        assert not set(update.withdrawn) & set(update.requests)
        late += [r for r in update.withdrawn if r in outstanding]
        outstanding = [r for r in outstanding if r not in update.withdrawn]
        outstanding.extend(update.requests)
        asked |= set(update.requests)
        assert sorted(outstanding, key=repr) == sorted(machine.next_requests(), key=repr)
        done += 1
    return done


@settings(max_examples=250, deadline=None)
@given(races())
def test_racing_ranks_survivors_first_and_finalists_exactly(
    race: tuple[HalvingConfig, Pool, random.Random],
) -> None:
    config, pool, rng = race
    machine = SuccessiveHalving(config)
    decided = []
    outstanding = machine.next_requests()
    while outstanding:
        request = outstanding.pop(rng.randrange(len(outstanding)))
        loss, errors = pool.score(request, config.test_rows or 0)
        update = machine.record(request.arm, request.train_rows, loss, errors)
        outstanding = [r for r in outstanding if r not in update.withdrawn]
        outstanding.extend(update.requests)
        decided.extend(update.decided)
    assert machine.status is HalvingStatus.DONE
    ranking = machine.ranking()
    assert sorted(r.arm for r in ranking) == sorted(config.arms)
    schedule = machine.schedule
    last = len(schedule.rounds) - 1
    # An eliminated arm is never ranked above an arm that outlived it.
    place = {r.arm: (last + 1 if r.eliminated_in is None else r.eliminated_in) for r in ranking}
    order = [place[r.arm] for r in ranking]
    assert order == sorted(order, reverse=True)
    # The finalists' scores are the exhaustive scores on the same rows: the whole test set.
    finalists = [r for r in ranking if r.eliminated_in is None]
    for r in finalists:
        full = Evaluation(r.arm, last, schedule.final_rows, None)
        assert (r.loss, r.test_rows) == (pool.score(full, config.test_rows or 0)[0],
                                         config.test_rows)  # fmt: skip
    assert [r.arm for r in finalists] == sorted(
        (r.arm for r in finalists),
        key=lambda a: (pool.score(Evaluation(a, last, 0), config.test_rows or 0)[0], a),
    )
    # A round keeps its leader; what it drops is confidently worse than the leader, or,
    # below its top by rank, than the cut arm, on the round's test prefix (or failed); a
    # full test set keeps exactly the top. A round passed through (a lone survivor) keeps it.
    by_round = {d.round: d for d in decided}
    for k, plan in enumerate(schedule.rounds):
        outcome = by_round[k]
        if plan.advancing == 0:
            assert outcome.eliminated == ()
            continue
        playing = len(outcome.survivors) + len(outcome.eliminated)
        if playing == 1:
            assert len(outcome.survivors) == 1
            continue
        rows = plan.test_rows or 0

        def scored(arm: str, k: int = k, rows: int = rows, plan: Round = plan) -> tuple[float, int]:
            return pool.score(Evaluation(arm, k, plan.train_rows, rows), rows)

        ordered = sorted((*outcome.survivors, *outcome.eliminated), key=lambda a: (scored(a)[0], a))
        top = -(-playing // config.eta)
        leader, cut = ordered[0], ordered[top - 1]
        assert leader in outcome.survivors
        level = config.delta / playing
        for arm in outcome.eliminated:
            errors = scored(arm)[1]
            if schedule.sampled(k):
                assert confidently_worse(errors, scored(leader)[1], rows, level) or (
                    ordered.index(arm) >= top
                    and confidently_worse(errors, scored(cut)[1], rows, level)
                )
        if not schedule.sampled(k):
            assert set(outcome.survivors) == set(ordered[:top])


@settings(max_examples=200, deadline=None)
@given(races(), st.floats(0, 1))
def test_racing_resumes_from_json_exactly(
    race: tuple[HalvingConfig, Pool, random.Random], cut: float
) -> None:
    config, pool, rng = race
    seed = rng.random()
    uninterrupted = SuccessiveHalving(config)
    total = drive(uninterrupted, pool, random.Random(seed))
    machine = SuccessiveHalving(config)
    drive(machine, pool, random.Random(seed), stop_after=int(cut * total))
    restored = SuccessiveHalving.from_json(machine.to_json())
    assert restored.next_requests() == machine.next_requests()
    assert restored.scores() == machine.scores()
    drive(restored, pool, rng)
    assert restored.ranking() == uninterrupted.ranking()
    assert restored.scores() == uninterrupted.scores()
