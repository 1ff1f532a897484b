"""Confidence helpers: bootstrap and binomial intervals, and ties with the first model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shift.confidence import (
    TIE_RULE,
    Scored,
    binomial_interval,
    binomial_se,
    bootstrap_interval,
    bootstrap_mean_interval,
    rank_with_confidence,
)
from shift.errors import SchedulerError


def test_bootstrap_is_seeded():
    values = np.random.default_rng(0).normal(size=50)

    def run(seed):
        rng = np.random.default_rng(seed)
        return bootstrap_mean_interval(values, resamples=200, level=0.9, rng=rng)

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_bootstrap_of_the_mean_has_the_textbook_width():
    values = np.random.default_rng(1).normal(size=400)
    interval = bootstrap_mean_interval(
        values, resamples=2000, level=0.95, rng=np.random.default_rng(2)
    )
    se = values.std() / math.sqrt(len(values))
    assert interval.low < values.mean() < interval.high
    assert interval.width == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert interval.level == 0.95 and interval.method == "bootstrap percentile"


def test_bootstrap_interval_is_the_stated_percentiles_of_the_resampled_statistic():
    rows = 7
    seen = []

    def statistic(index):
        seen.append(index)
        return float(index.sum())

    interval = bootstrap_interval(
        statistic, rows, resamples=40, level=0.8, rng=np.random.default_rng(3)
    )
    sums = np.array([s.sum() for s in seen])
    assert len(seen) == 40 and all(len(s) == rows and s.max() < rows for s in seen)
    assert (interval.low, interval.high) == pytest.approx(tuple(np.quantile(sums, [0.1, 0.9])))


def test_stratified_resamples_keep_every_class_count():
    strata = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    counts = []
    bootstrap_interval(
        lambda index: counts.append(np.bincount(strata[index], minlength=3).tolist()) or 0.0,
        len(strata),
        resamples=25,
        level=0.9,
        rng=np.random.default_rng(4),
        strata=strata,
    )
    assert counts == [[3, 2, 5]] * 25


def test_constant_rows_give_a_zero_width_interval():
    interval = bootstrap_mean_interval(
        np.full(10, 0.3), resamples=20, level=0.95, rng=np.random.default_rng(0)
    )
    assert interval.low == pytest.approx(0.3) and interval.high == pytest.approx(0.3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"level": 1.0}, "strictly between 0 and 1"),
        ({"level": 0.0}, "strictly between 0 and 1"),
        ({"resamples": 0}, "at least one resample"),
        ({"strata": np.zeros(3)}, "strata give 3 values for 5 rows"),
    ],
)
def test_bootstrap_refuses_bad_settings(kwargs, message):
    settings = {"resamples": 5, "level": 0.9, "rng": np.random.default_rng(0)} | kwargs
    with pytest.raises(SchedulerError, match=message):
        bootstrap_interval(lambda index: 0.0, 5, **settings)


def test_binomial_standard_error_by_hand():
    assert binomial_se(0.2, 100) == pytest.approx(0.04)
    assert binomial_se(0.0, 50) == 0.0
    assert binomial_se(0.5, 25) == pytest.approx(0.1)


def test_wilson_interval_by_hand():
    # 0 errors in 10 rows: the 95% Wilson interval is [0, 0.2775] (z = 1.96)
    interval = binomial_interval(0.0, 10)
    assert interval.low == 0.0 and interval.high == pytest.approx(0.2775, abs=1e-4)
    # 20 errors in 100: centre (0.2 + z^2/200) / (1 + z^2/100), half-width per Wilson
    interval = binomial_interval(0.2, 100)
    assert (interval.low, interval.high) == pytest.approx((0.1334, 0.2888), abs=1e-4)
    assert interval.method == "wilson"


@pytest.mark.parametrize("error, rows", [(-0.1, 10), (1.5, 10), (0.5, 0), (0.5, 2.5)])
def test_binomial_helpers_refuse_impossible_rates(error, rows):
    with pytest.raises(SchedulerError):
        binomial_se(error, rows)


def test_ranking_marks_the_models_whose_interval_reaches_the_first():
    ranked = rank_with_confidence(
        [
            Scored("c", 0.70, 0.60, 0.80, 100),
            Scored("a", 0.90, 0.85, 0.95, 100),
            Scored("b", 0.82, 0.70, 0.85, 100),  # touches a's lower end: not separable
            Scored("d", 0.20, 0.10, 0.84, 100),  # poor score, wide interval: not separable
        ]
    )
    assert [r.name for r in ranked] == ["a", "b", "c", "d"]
    assert [r.position for r in ranked] == [1, 2, 3, 4]
    assert [r.tied_with_first for r in ranked] == [True, True, False, False]


def test_errors_rank_lowest_first():
    entries = [Scored(name, err, *_wilson(err, 200), 200) for name, err in SCORES]
    ranked = rank_with_confidence(entries, higher_is_better=False)
    assert [(r.name, r.tied_with_first) for r in ranked] == [
        ("m2", True),
        ("m3", True),  # 0.12 vs 0.10 on 200 test rows: within the noise
        ("m1", False),
    ]


SCORES = [("m1", 0.30), ("m2", 0.10), ("m3", 0.12)]


def _wilson(error, rows):
    interval = binomial_interval(error, rows)
    return interval.low, interval.high


def test_equal_scores_follow_the_stated_tie_rule_not_the_name_alone():
    ranked = rank_with_confidence(
        [
            Scored("a-wide", 0.5, 0.3, 0.7, 100),
            Scored("z-narrow", 0.5, 0.45, 0.55, 100),
            Scored("b-few-rows", 0.5, 0.4, 0.6, 50),
            Scored("c-many-rows", 0.5, 0.4, 0.6, 500),
            Scored("a-many-rows", 0.5, 0.4, 0.6, 500),
        ]
    )
    assert [r.name for r in ranked] == [
        "z-narrow",  # narrowest interval
        "a-many-rows",  # same width: more rows, then the name
        "c-many-rows",
        "b-few-rows",
        "a-wide",
    ]
    assert "narrower interval" in TIE_RULE and "more rows" in TIE_RULE


@pytest.mark.parametrize(
    "entries, message",
    [
        ([Scored("a", 1.0, 0.0, 2.0, 5), Scored("a", 2.0, 1.0, 3.0, 5)], "scored twice"),
        ([Scored("a", math.nan, 0.0, 2.0, 5)], "non-finite"),
        ([Scored("a", 1.0, 2.0, 0.0, 5)], "empty interval"),
        ([Scored("a", 1.0, 0.0, 2.0, 0)], "on 0 rows"),
    ],
)
def test_ranking_refuses_inconsistent_scores(entries, message):
    with pytest.raises(SchedulerError, match=message):
        rank_with_confidence(entries)


def test_an_empty_ranking_is_empty():
    assert rank_with_confidence([]) == ()
