"""Replay figures on the hand-made records: regret and cost exact to the second."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.ranking import parse_ranking
from simulator.records import Modality, Records, load_records
from simulator.replay import Replay, Stats, evaluate, replay, summarize
from simulator.report import CSV_COLUMNS, render
from simulator.simulator_errors import SimulatorError, StrategyError
from simulator.strategies import Selection


@pytest.fixture
def records(small_csv: Path) -> Records:
    return load_records(small_csv)


@pytest.fixture
def result(records: Records) -> Replay:
    ranking = parse_ranking({"models": ["m3", "zz/unknown", "m1", "t1"], "search_time_s": 50})
    return replay(records, ks=(1, 2), repeats=60, seed=0, ranking=ranking)


def stats(result: Replay, task: str, label: str) -> tuple[Stats, Stats, Stats]:
    found = next(t for t in result.tasks if t.task == task).get(label)
    assert found is not None, label
    return found.accuracy, found.regret, found.cost_s


def test_enumeration_is_the_reference(result: Replay) -> None:
    assert stats(result, "cifar100", "enumeration") == (
        Stats(0.9, 0.9, 0.9),
        Stats(0.0, 0.0, 0.0),
        Stats(600.0, 600.0, 600.0),
    )
    accuracy, _, cost = stats(result, "glue/sst2", "enumeration")
    assert (accuracy.mean, cost.mean) == (0.65, 110.0)


@pytest.mark.parametrize(
    ("task", "label", "regret", "cost_s"),
    [
        ("cifar100", "meta-1", 0.4, 200.0),  # m2
        ("cifar100", "meta-2", 0.0, 300.0),  # m2, m1
        ("dtd", "meta-1", 0.2, 10.0),  # m1
        ("clevr/count", "meta-1", 0.1, 2.0),  # m2
        ("clevr/distance", "meta-1", 0.8, 4.0),  # m1
        ("glue/sst2", "meta-1", 0.05, 70.0),  # t1
        ("cifar100", "ranking-1", 0.2, 350.0),  # m3 + 50 s of search
        ("cifar100", "ranking-2", 0.0, 450.0),  # m3, m1 (zz/unknown passed over)
        ("glue/sst2", "ranking-1", 0.05, 120.0),  # t1
        ("glue/sst2", "ranking-2", 0.05, 120.0),  # t1 alone: the ranking names no other text model
    ],
)
def test_deterministic_strategies_exact(
    result: Replay, task: str, label: str, regret: float, cost_s: float
) -> None:
    _, got_regret, got_cost = stats(result, task, label)
    assert got_regret.mean == pytest.approx(regret)
    assert got_cost.mean == pytest.approx(cost_s)
    assert (got_regret.min, got_cost.min) == (got_regret.max, got_cost.max)


def test_random_bounds_exact(result: Replay) -> None:
    accuracy, regret, cost = stats(result, "cifar100", "random-1")
    assert (accuracy.min, accuracy.max) == (0.5, 0.9)
    assert (regret.min, regret.max) == (0.0, pytest.approx(0.4))
    assert (cost.min, cost.max) == (100.0, 300.0)
    assert regret.mean == pytest.approx(0.9 - accuracy.mean)
    # Pairs: {m1,m2} 0 / 300 s, {m1,m3} 0 / 400 s, {m2,m3} 0.2 / 500 s.
    _, regret, cost = stats(result, "cifar100", "random-2")
    assert (regret.min, regret.max) == (0.0, pytest.approx(0.2))
    assert (cost.min, cost.max) == (300.0, 500.0)


def test_random_is_seeded(records: Records) -> None:
    def mean_cost(seed: int) -> float:
        return stats(replay(records, ks=(1,), repeats=5, seed=seed), "cifar100", "random-1")[2].mean

    assert mean_cost(1) == mean_cost(1)
    assert len({mean_cost(s) for s in range(6)}) > 1


def test_each_model_is_counted_once(records: Records) -> None:
    trial = evaluate(records.task("cifar100"), Selection(("m3", "m1", "m3"), 5.0))
    assert (trial.models, trial.best_accuracy, trial.cost_s) == (("m3", "m1"), 0.9, 405.0)


def test_evaluate_rejects_models_without_runs(records: Records) -> None:
    with pytest.raises(StrategyError, match="no run of t1"):
        evaluate(records.task("cifar100"), Selection(("m1", "t1")))
    with pytest.raises(StrategyError, match="returned no model"):
        evaluate(records.task("cifar100"), Selection(()))


def test_unknown_ranked_ids_are_reported(result: Replay) -> None:
    assert len(result.warnings) == 1
    assert "1 ranked id(s) have no run" in result.warnings[0]
    assert result.warnings[0].endswith("zz/unknown")
    ranked = next(t for t in result.tasks if t.task == "cifar100").get("ranking-2")
    assert ranked is not None and ranked.skipped == ("zz/unknown",)


def test_tasks_a_ranking_does_not_cover_are_reported(records: Records) -> None:
    result = replay(records, repeats=2, ranking=parse_ranking({"tasks": {"dtd": ["m1"]}}))
    assert result.warnings[-1].endswith(
        "no ranked model has a run on 4 task(s), left out of the ranking figures: "
        "cifar100, clevr/count, clevr/distance, glue/sst2"
    )
    assert "ranking-1" in result.labels
    assert next(t for t in result.tasks if t.task == "cifar100").get("ranking-1") is None


def test_summary_by_hand(result: Replay) -> None:
    rows = {(s.modality, s.label): s for s in summarize(result)}
    meta = rows[(Modality.VISION, "meta-1")]
    assert meta.tasks == 4
    assert meta.mean_regret == pytest.approx((0.4 + 0.2 + 0.1 + 0.8) / 4)
    assert meta.max_regret == pytest.approx(0.8)
    assert meta.cost_s == pytest.approx(216.0)
    assert meta.cost_ratio == pytest.approx(216.0 / 681.0)
    assert rows[(Modality.VISION, "enumeration")].cost_ratio == 1.0


def test_modality_filter_and_bad_arguments(records: Records) -> None:
    text = replay(records, modality=Modality.TEXT, repeats=2)
    assert [t.task for t in text.tasks] == ["glue/sst2"]
    with pytest.raises(SimulatorError, match="every k must be at least 1"):
        replay(records, ks=(0,))
    with pytest.raises(SimulatorError, match="repeats must be at least 1"):
        replay(records, repeats=0)
    with pytest.raises(StrategyError, match="unknown strategy 'mta'"):
        replay(records, strategies=("mta",))


def test_renderings(result: Replay) -> None:
    table = render(result, "table")
    assert "cifar100" in table and "meta-1 regret" in table and "summary" in table
    lines = render(result, "csv").splitlines()
    assert lines[0].split(",") == list(CSV_COLUMNS)
    assert len(lines) == 1 + sum(len(t.results) for t in result.tasks)
    document = json.loads(render(result, "json"))
    assert document["tasks"][0]["results"][0]["label"] == "enumeration"
    assert document["summary"][0]["modality"] == "vision"
