"""The halving schedule against hand-computed tables, AUTO rules and invalid inputs."""

from __future__ import annotations

import pytest

from shift.errors import SchedulerError
from shift.halving import HalvingConfig, plan_schedule, planned_rounds

# 8 arms, budget 24, chunk 10 (train set large enough): L = ceil(log2 8) = 3.
#   round 0: 8 arms x floor(24 / (8 * 3)) = 1 pull  -> R_0 = 1 -> 10 rows, 4 advance
#   round 1: 4 arms x floor(24 / (4 * 3)) = 2 pulls -> R_1 = 3 -> 30 rows, 2 advance
#   round 2: 2 arms x floor(24 / (2 * 3)) = 4 pulls -> R_2 = 7 -> 70 rows, finalists
# pulls spent: 8 * 1 + 4 * 2 + 2 * 4 = 24 = the budget.
#
# 64 arms, AUTO on 50,000 rows: L = 6, B = 64 * 6 = 384,
#   r_k = floor(384 / (|S_k| * 6)) = 64 / |S_k| = 1, 2, 4, 8, 16, 32; R_k = 1, 3, 7, 15, 31, 63;
#   C = ceil(50,000 / 63) = 794 (63 * 793 = 49,959 < 50,000 <= 63 * 794 = 50,022);
#   rows = 794, 2382, 5558, 11910, 24614, min(50022, 50000) = 50000.
#
# 5 arms, AUTO on 100 rows: L = 3, |S_k| = 5, 3, 2, B = 15, r_k = 1, 1, 2, R_k = 1, 2, 4,
#   C = 25, rows = 25, 50, 100; pulls spent 5 + 3 + 4 = 12 <= 15.
#
# Exhausted: 8 arms, budget 24, chunk 10 on 25 rows: round 1 wants 30 rows, gets all 25 and
#   is the last round; its 4 arms are finalists. On 10 rows round 0 already covers everything.
TABLES = [
    # (arms, train_rows, chunk, budget) -> C, B, L, [(arms, pulls, R, rows, advancing)]
    (
        (8, 1000, 10, 24),
        (10, 24, 3, [(8, 1, 1, 10, 4), (4, 2, 3, 30, 2), (2, 4, 7, 70, 0)]),
    ),
    (
        (64, 50_000, "auto", "auto"),
        (
            794,
            384,
            6,
            [
                (64, 1, 1, 794, 32),
                (32, 2, 3, 2382, 16),
                (16, 4, 7, 5558, 8),
                (8, 8, 15, 11910, 4),
                (4, 16, 31, 24614, 2),
                (2, 32, 63, 50_000, 0),
            ],
        ),
    ),
    ((5, 100, "auto", "auto"),
     (25, 15, 3, [(5, 1, 1, 25, 3), (3, 1, 2, 50, 2), (2, 2, 4, 100, 0)])),
    ((8, 25, 10, 24), (10, 24, 3, [(8, 1, 1, 10, 4), (4, 2, 3, 25, 0)])),
    ((8, 10, 10, 24), (10, 24, 3, [(8, 1, 1, 10, 0)])),
    # One arm: one round on the whole data, whatever CHUNK and BUDGET say.
    ((1, 1000, "auto", "auto"), (1000, 1, 1, [(1, 1, 1, 1000, 0)])),
    ((1, 1000, 10, 5), (10, 5, 1, [(1, 100, 100, 1000, 0)])),
    ((1, 1000, "auto", 3), (334, 3, 1, [(1, 3, 3, 1000, 0)])),
    # Two arms: L = 1, B = 2, r_0 = floor(2 / (2 * 1)) = 1, so C = 100: one round, both finalists.
    ((2, 100, "auto", "auto"), (100, 2, 1, [(2, 1, 1, 100, 0)])),
    # AUTO chunk with a given budget; AUTO budget with a given chunk.
    ((8, 1000, "auto", 24),
     (143, 24, 3, [(8, 1, 1, 143, 4), (4, 2, 3, 429, 2), (2, 4, 7, 1000, 0)])),
    ((8, 1000, 50, "auto"),
     (50, 24, 3, [(8, 1, 1, 50, 4), (4, 2, 3, 150, 2), (2, 4, 7, 350, 0)])),
    # eta = 3 on 10 arms: L = 3, |S_k| = 10, 4, 2; B = 30; r = 1, 2, 5; R = 1, 3, 8.
    ((10, 800, "auto", "auto", 3),
     (100, 30, 3, [(10, 1, 1, 100, 4), (4, 2, 3, 300, 2), (2, 5, 8, 800, 0)])),
]  # fmt: skip


@pytest.mark.parametrize(("given", "expected"), TABLES, ids=[str(t[0]) for t in TABLES])
def test_schedule_tables(
    given: tuple[int, int, int | str, int | str] | tuple[int, int, int | str, int | str, int],
    expected: tuple[int, int, int, list[tuple[int, int, int, int, int]]],
) -> None:
    schedule = plan_schedule(*given)
    chunk, budget, rounds_l, rows = expected
    assert (schedule.chunk_rows, schedule.budget_pulls, schedule.planned_rounds) == (
        chunk,
        budget,
        rounds_l,
    )
    got = [(r.arms, r.pulls, r.total_pulls, r.train_rows, r.advancing) for r in schedule.rounds]
    assert got == rows
    assert [r.index for r in schedule.rounds] == list(range(len(rows)))
    assert schedule.truncated == (len(rows) < rounds_l)


def test_eight_arms_spend_exactly_the_budget() -> None:
    schedule = plan_schedule(8, 1000, 10, 24)
    assert schedule.pulls_used == 24
    assert schedule.fitted_rows == 8 * 10 + 4 * 30 + 2 * 70
    assert schedule.final_rows == 70
    assert schedule.round_of(30) == 1


def test_auto_chunk_is_the_smallest_that_covers_the_data() -> None:
    schedule = plan_schedule(64, 50_000)
    assert schedule.final_rows == 50_000
    smaller = plan_schedule(64, 50_000, schedule.chunk_rows - 1, "auto")
    assert smaller.final_rows < 50_000


def test_schedule_to_dict() -> None:
    data = plan_schedule(8, 1000, 10, 24).to_dict()
    assert data["rounds"][1] == {
        "round": 1,
        "arms": 4,
        "pulls": 2,
        "total_pulls": 3,
        "train_rows": 30,
        "test_rows": None,
        "advancing": 2,
    }
    assert (data["chunk_rows"], data["budget_pulls"], data["pulls_used"]) == (10, 24, 24)


@pytest.mark.parametrize(
    ("arms", "expected"),
    [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (8, 3), (9, 4), (64, 6), (65, 7), (1024, 10)],
)
def test_planned_rounds(arms: int, expected: int) -> None:
    assert planned_rounds(arms) == expected


def test_planned_rounds_eta_three() -> None:
    assert [planned_rounds(m, 3) for m in (1, 3, 4, 9, 10, 27, 28)] == [1, 1, 2, 2, 3, 3, 4]


# r_k = 0: a budget below M * L pulls would score round 0 on no rows; refused with the minimum.
ZERO_PULLS = [
    ((8, 1000, 10, 23), "BUDGET 23 is too small for 8 models", "use BUDGET 24 or more"),
    ((16, 1000, 10, 24), "floor(24 / (16 x 4)) = 0 pulls", "use BUDGET 64 or more"),
    ((64, 50_000, "auto", 100), "BUDGET 100 is too small for 64 models", "BUDGET 384"),
    ((3, 100, 5, 1), "BUDGET 1 is too small for 3 models", "or BUDGET AUTO"),
]


@pytest.mark.parametrize(("given", "what", "fix"), ZERO_PULLS)
def test_budget_that_gives_no_pulls_is_refused(
    given: tuple[int, int, int | str, int], what: str, fix: str
) -> None:
    with pytest.raises(SchedulerError) as info:
        plan_schedule(*given)  # type: ignore[arg-type]
    assert what in str(info.value)
    assert fix in str(info.value)


def test_smallest_working_budget_is_the_auto_budget() -> None:
    assert plan_schedule(16, 1000, 10, 64).rounds[0].pulls == 1
    assert plan_schedule(16, 1000, 10, "auto").budget_pulls == 64


INVALID = [
    (dict(chunk=0), "CHUNK must be a positive whole number of training rows or AUTO, got 0"),
    (dict(chunk=-5), "got -5; use e.g. CHUNK 1000 or CHUNK AUTO"),
    (dict(chunk=2.5), "CHUNK must be a positive whole number"),
    (dict(chunk=True), "got True"),
    (dict(chunk="big"), "got 'big'"),
    (dict(budget=-1), "BUDGET must be a positive whole number of pulls (chunks) or AUTO, got -1"),
    (dict(budget=0), "got 0; use e.g. BUDGET 24 or BUDGET AUTO"),
    (dict(eta=1), "eta must be a whole number >= 2, got 1; use eta=2"),
    (dict(eta=0), "eta must be a whole number >= 2, got 0"),
    (dict(train_rows=0), "training-set size (rows) must be a whole number >= 1, got 0"),
    (dict(train_rows=-3), "needs a non-empty training set"),
    (dict(arms=()), "needs at least one model, got none; widen the pool"),
    (dict(arms=("a", "b", "a")), "model 'a' is listed twice"),
    (dict(arms="abc"), "arms must be a list of model names, got 'abc'"),
    (dict(arms=("a", "")), "a model name must be a non-empty string, got ''"),
    (dict(arms=("a", 3)), "got 3"),
]


@pytest.mark.parametrize(("change", "message"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_config(change: dict[str, object], message: str) -> None:
    given: dict[str, object] = dict(
        arms=tuple("abcdefgh"), train_rows=1000, chunk=10, budget=24, eta=2
    )
    given.update(change)
    with pytest.raises(SchedulerError) as info:
        HalvingConfig(**given)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_auto_is_case_insensitive() -> None:
    config = HalvingConfig(tuple("abcd"), 100, "AUTO", "Auto")  # type: ignore[arg-type]
    assert (config.chunk, config.budget) == ("auto", "auto")
    assert HalvingConfig(["a", "b"], 100).arms == ("a", "b")  # type: ignore[arg-type]
