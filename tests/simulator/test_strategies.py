"""Strategies on the hand-made records: exact picks, leave-one-task-out, rankings."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from types import MappingProxyType

import pytest

from simulator.ranking import RankedList, Ranking, parse_ranking
from simulator.records import Modality, Outcome, Records, Task, load_records
from simulator.simulator_errors import RankingError, StrategyError
from simulator.strategies import STRATEGIES, Context, Selection, get_strategy, mean_ranks


@pytest.fixture
def records(small_csv: Path) -> Records:
    return load_records(small_csv)


def select(
    records: Records, name: str, task: str, k: int = 1, ranking: Ranking | None = None
) -> Selection | None:
    """What strategy ``name`` returns for ``task`` of the records (others: same modality)."""
    target = records.task(task)
    others = tuple(t for t in records.of_modality(target.modality) if t is not target)
    return get_strategy(name).pick(Context(target, others, k, random.Random(0), ranking))


def pick(
    records: Records, name: str, task: str, k: int = 1, ranking: Ranking | None = None
) -> Selection:
    """Like :func:`select`, for strategies that apply to the task."""
    selection = select(records, name, task, k, ranking)
    assert selection is not None
    return selection


def test_registry_holds_the_four_strategies() -> None:
    assert list(STRATEGIES) == ["enumeration", "random", "meta", "ranking"]
    assert STRATEGIES["random"].randomized
    assert not STRATEGIES["enumeration"].uses_k


def test_unknown_strategy_names_valid_ones_and_closest() -> None:
    with pytest.raises(
        StrategyError, match="valid: enumeration, random, meta, ranking; did you mean 'random'"
    ):
        get_strategy("randon")


def test_enumeration_takes_every_model(records: Records) -> None:
    assert pick(records, "enumeration", "cifar100").models == ("m1", "m2", "m3")


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_random_draws_k_distinct_candidates(records: Records, k: int) -> None:
    models = pick(records, "random", "dtd", k).models
    assert len(models) == len(set(models)) == min(k, 3)
    assert set(models) <= {"m1", "m2", "m3"}


def test_mean_ranks_by_hand(records: Records) -> None:
    # dtd: m2 0, m1 .5, m3 1; clevr/count: m1 0, m2 .5, m3 1; clevr/distance: m2 0, m3 .5, m1 1
    others = [records.task(n) for n in ("dtd", "clevr/count", "clevr/distance")]
    assert mean_ranks(others) == pytest.approx({"m1": 0.5, "m2": 1 / 6, "m3": 2.5 / 3})


def test_mean_ranks_share_ties_and_skip_absent_models() -> None:
    def task(name: str, accuracies: dict[str, float]) -> Task:
        outcomes = {m: Outcome(m, a, 1.0, 2) for m, a in accuracies.items()}
        return Task(name, Modality.VISION, MappingProxyType(outcomes))

    tied = task("a", {"x": 0.5, "y": 0.5, "z": 0.1})
    alone = task("b", {"z": 0.9})
    assert mean_ranks([tied, alone]) == {"x": 0.25, "y": 0.25, "z": 0.5}


def test_meta_picks_best_mean_rank_on_other_tasks(records: Records) -> None:
    assert pick(records, "meta", "cifar100", 1).models == ("m2",)
    assert pick(records, "meta", "cifar100", 2).models == ("m2", "m1")
    # On dtd the others are cifar100 (m1 0, m3 .5, m2 1) and the two clevr tasks.
    assert pick(records, "meta", "dtd", 1).models == ("m1",)


def test_meta_really_leaves_the_task_out(records: Records) -> None:
    """Whatever the target task's accuracies, meta picks the same models."""
    target = records.task("cifar100")
    others = tuple(t for t in records.of_modality(target.modality) if t is not target)
    picks = set()
    for accuracies in itertools.permutations([0.1, 0.5, 0.99]):
        outcomes = {
            m: Outcome(m, a, o.cost_s, o.line)
            for (m, o), a in zip(sorted(target.outcomes.items()), accuracies, strict=True)
        }
        changed = Task(target.name, target.modality, MappingProxyType(outcomes))
        ctx = Context(changed, others, 2, random.Random(0))
        selection = get_strategy("meta").pick(ctx)
        assert selection is not None
        picks.add(selection.models)
    assert picks == {("m2", "m1")}
    # Had cifar100 (m1 0, m3 .5, m2 1) counted, m1 would tie m2 and win on its name.
    assert mean_ranks([*others, target])["m1"] == mean_ranks([*others, target])["m2"]


def test_meta_without_other_tasks_orders_by_name(records: Records) -> None:
    assert pick(records, "meta", "glue/sst2", 1).models == ("t1",)


def test_ranking_takes_top_k_and_skips_ids_without_runs(records: Records) -> None:
    ranking = parse_ranking({"models": ["m3", "zz/unknown", "m1", "m2"], "search_time_s": 50})
    one = pick(records, "ranking", "cifar100", 1, ranking)
    assert (one.models, one.skipped, one.search_time_s) == (("m3",), (), 50.0)
    two = pick(records, "ranking", "cifar100", 2, ranking)
    assert (two.models, two.skipped) == (("m3", "m1"), ("zz/unknown",))


def test_ranking_per_task_leaves_other_tasks_out(records: Records) -> None:
    ranking = parse_ranking({"tasks": {"dtd": ["m3"]}})
    assert pick(records, "ranking", "dtd", 1, ranking).models == ("m3",)
    assert select(records, "ranking", "cifar100", 1, ranking) is None


def test_ranking_strategy_needs_a_ranking(records: Records) -> None:
    with pytest.raises(StrategyError, match="--ranking FILE"):
        select(records, "ranking", "dtd", 1)


@pytest.mark.parametrize(
    ("data", "models", "search_time_s"),
    [
        (["a", "b", "a"], ("a", "b"), 0.0),
        ([{"model": "a"}, {"name": "b"}, {"model_identifier": "c"}], ("a", "b", "c"), 0.0),
        ({"models": ["a"], "search_time_s": 7}, ("a",), 7.0),
        (
            {
                "tables": [
                    {"columns": ["rank", "name", "err"], "rows": [[1, "b", 0.1], [2, "a", 0.2]]}
                ]
            },
            ("b", "a"),
            0.0,
        ),
    ],
)
def test_ranking_shapes(data: object, models: tuple[str, ...], search_time_s: float) -> None:
    assert parse_ranking(data).default == RankedList(models, search_time_s)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rows": []}, "expected a list of model ids"),
        ([], "the ranking is empty"),
        (["a", 3], "entry 1 is not a model id"),
        ({"models": ["a"], "search_time_s": -1}, "'search_time_s' must be a number >= 0"),
        ({"tables": [{"columns": ["x"], "rows": []}]}, "no table with a column named model"),
        ({"tasks": []}, "'tasks' must be a non-empty object"),
        ({"tasks": {"dtd": 5}}, "task 'dtd': expected a list of model ids"),
    ],
)
def test_bad_rankings_say_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(RankingError, match=message):
        parse_ranking(data)


def test_ranking_files(tmp_path: Path) -> None:
    from simulator.ranking import load_ranking

    with pytest.raises(RankingError, match="no such ranking file"):
        load_ranking(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("[1,", encoding="utf-8")
    with pytest.raises(RankingError, match=r"bad\.json: not JSON"):
        load_ranking(tmp_path / "bad.json")
