"""Ties in a task-aware ranking: ordered by the stated rule, not the name alone, and marked."""

from __future__ import annotations

from shift.ties import break_ties

PARAMS = {"big": 80_000_000, "mid": 20_000_000, "small": 5_000_000, "alpha": 20_000_000}


def _row(name: str, err: float, test_rows: int = 100, train_rows: int = 400, **extra):
    return {"name": name, "err": err, "train_rows": train_rows, "test_rows": test_rows, **extra}


def test_four_models_at_err_zero_go_cheapest_first_and_are_marked() -> None:
    rows = [_row(n, 0.0) for n in ("alpha", "big", "mid", "small")] + [_row("worse", 0.1)]
    ranked = break_ties(rows, "err", PARAMS)
    assert [r["name"] for r in ranked] == ["small", "alpha", "mid", "big", "worse"]
    assert [r["tied"] for r in ranked] == [True, True, True, True, False]


def test_more_test_rows_come_before_fewer_parameters() -> None:
    rows = [_row("small", 0.25, test_rows=100), _row("big", 0.25, test_rows=200)]
    assert [r["name"] for r in break_ties(rows, "err", PARAMS)] == ["big", "small"]


def test_the_same_score_in_other_rounds_or_rows_is_no_tie() -> None:
    rows = [
        _row("big", 0.2, eliminated_in=None),
        _row("small", 0.2, eliminated_in=1),
        _row("mid", 0.2, train_rows=128, eliminated_in=0),
    ]
    ranked = break_ties(rows, "err", PARAMS)
    assert [r["name"] for r in ranked] == ["big", "small", "mid"]
    assert not any(r["tied"] for r in ranked)


def test_unknown_size_counts_as_most_expensive_then_name() -> None:
    rows = [_row("zeta", 0.5), _row("ghost", 0.5), _row("small", 0.5)]
    ranked = break_ties(rows, "err", {"small": 5, "zeta": None})
    assert [r["name"] for r in ranked] == ["small", "ghost", "zeta"]


def test_float_noise_in_an_average_is_still_a_tie() -> None:
    rows = [_row("mid", (0.1 + 0.2) / 3), _row("small", 0.3 / 3)]
    ranked = break_ties(rows, "err", PARAMS)
    assert [r["name"] for r in ranked] == ["small", "mid"] and ranked[0]["tied"]
