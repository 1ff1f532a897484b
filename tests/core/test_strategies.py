"""Strategies: the registry, the text form, and combining rankings with confidence (pure)."""

from __future__ import annotations

import pytest

from shift.confidence import Scored
from shift.errors import SchedulerError
from shift.methods import CLASSIFIERS, RANKERS
from shift.ql import nodes as n
from shift.ql import parse
from shift.settings import SETTINGS
from shift.strategies import (
    DEFAULT_STRATEGY,
    KINDS,
    STRATEGIES,
    find_strategy,
    rank_strategy,
    split_text,
)

PROXIES = ("Cosine NN", "Euclidean NN", "Linear")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rank:logme+knn", ("rank", ["logme", "knn"])),
        (" Z : logme + Cosine NN ", ("z", ["logme", "Cosine NN"])),
        ("rank:transrate(eps=1e+3)+sfda", ("rank", ["transrate(eps=1e+3)", "sfda"])),
        ("rank:knn(metric='a+b')+logme", ("rank", ["knn(metric='a+b')", "logme"])),
        ("rank:logme+", ("rank", ["logme", ""])),
        ("logme", None),
        ("logme_knn", None),
        ("knn(metric='x:y')", None),
        ("two words:logme+knn", None),
    ],
)
def test_split_text(text: str, expected: object) -> None:
    assert split_text(text) == expected


def test_every_registered_strategy_parses_to_its_components() -> None:
    for spec in STRATEGIES.values():
        assert spec.kind in KINDS
        assert len(spec.components) >= 2, spec.name
        assert spec.rationale and "\n" not in spec.rationale
        tested = (
            " TESTED ON b"
            if any(c in ("Cosine NN", "Euclidean NN", "Linear") for c in spec.components)
            else ""
        )
        statement = parse(f'RANK * FROM models TRAINED ON a{tested} BY "{spec.name}"')
        assert isinstance(statement, n.Rank)
        (strategy,) = statement.rankers
        assert isinstance(strategy, n.Strategy)
        assert strategy.name == spec.name and strategy.kind == spec.kind
        assert len(strategy.components) == len(spec.components)
        assert all(c.name in RANKERS or c.name in CLASSIFIERS for c in strategy.components)


def test_the_default_is_registered_and_works_without_a_test_set() -> None:
    assert DEFAULT_STRATEGY in STRATEGIES
    (setting,) = [s for s in SETTINGS if s.name == "rank_strategy"]
    assert setting.default == DEFAULT_STRATEGY
    # a RANK without TESTED ON must be able to use the default: it has no proxy, or it
    # names a registered fallback of rankers only
    proxies = ("Cosine NN", "Euclidean NN", "Linear")
    spec = STRATEGIES[DEFAULT_STRATEGY]
    if any(c in proxies for c in spec.components):
        fallback = STRATEGIES[spec.without_test]
        assert all(c not in proxies for c in fallback.components)


def test_find_strategy_ignores_case_and_dashes() -> None:
    assert find_strategy("LogME-KNN") is STRATEGIES["logme_knn"]
    assert find_strategy("logme") is None


def scored(name: str, score: float, half: float = 0.0, rows: int = 100) -> Scored:
    return Scored(name, score, score - half, score + half, rows)


def table(*entries: Scored) -> dict[str, Scored]:
    return {e.name: e for e in entries}


def test_rank_average_orders_and_marks_ties_only_where_every_component_overlaps() -> None:
    first = table(scored("a", 0.9, 0.05), scored("b", 0.87, 0.05), scored("c", 0.5, 0.05))
    second = table(scored("a", 3.0, 0.1), scored("b", 2.95, 0.1), scored("c", 2.9, 0.1))
    rows = rank_strategy("rank", [first, second])
    assert [r.name for r in rows] == ["a", "b", "c"]
    assert [r.score for r in rows] == [3.0, 2.0, 1.0]
    # b overlaps a in both components; c overlaps a in the second only
    assert [r.tied_with_first for r in rows] == [True, True, False]
    assert rows[0].positions == (1, 1) and rows[2].positions == (3, 3)
    assert rows[1].components == (first["b"], second["b"])


def test_equal_combined_scores_go_to_the_better_first_component_not_the_name() -> None:
    # zeta is first by the first component, alpha by the second: equal mean ranks
    first = table(scored("zeta", 0.9), scored("alpha", 0.8))
    second = table(scored("zeta", 1.0), scored("alpha", 2.0))
    rows = rank_strategy("rank", [first, second])
    assert rows[0].score == rows[1].score
    assert [r.name for r in rows] == ["zeta", "alpha"]
    # the component order decides: swapped components, swapped order
    assert [r.name for r in rank_strategy("rank", [second, first])] == ["alpha", "zeta"]
    # zero-width intervals that differ: not tied
    assert [r.tied_with_first for r in rows] == [True, False]


def test_z_average_weighs_the_size_of_a_lead_and_ignores_a_constant_component() -> None:
    big_lead = table(scored("a", 10.0), scored("b", 1.0), scored("c", 0.0), scored("d", 0.5))
    narrow = table(scored("a", 0.9), scored("b", 1.0), scored("c", 0.0), scored("d", 0.5))
    by_z = {r.name: r.score for r in rank_strategy("z", [big_lead, narrow])}
    by_rank = {r.name: r.score for r in rank_strategy("rank", [big_lead, narrow])}
    # by ranks a's large lead counts no more than b's small one
    assert by_rank["a"] == by_rank["b"] == 3.5
    assert by_z["a"] > by_z["b"] + 0.5
    constant = table(scored("a", 1.0), scored("b", 1.0), scored("c", 1.0), scored("d", 1.0))
    alone = rank_strategy("z", [narrow, constant])
    assert [r.name for r in alone] == ["b", "a", "d", "c"]
    assert sum(r.score for r in alone) == pytest.approx(0.0)


def test_only_models_every_component_scores_are_ranked() -> None:
    first = table(scored("a", 1.0), scored("b", 0.5))
    second = table(scored("a", 1.0), scored("c", 0.5))
    assert [r.name for r in rank_strategy("rank", [first, second])] == ["a"]


def test_bad_strategies_are_refused() -> None:
    one = table(scored("a", 1.0))
    with pytest.raises(SchedulerError, match="unknown strategy kind 'mean'"):
        rank_strategy("mean", [one, one])
    with pytest.raises(SchedulerError, match="at least two components, got 1"):
        rank_strategy("rank", [one])
    with pytest.raises(SchedulerError, match="empty interval"):
        rank_strategy("rank", [one, {"a": Scored("a", 1.0, 2.0, 0.0, 10)}])
