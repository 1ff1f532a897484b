"""RANK with CHUNK/BUDGET: plain halving on negated ranker scores, hand-made scores.

The machine is the search's (``shift.halving``); these tests check what RANK adds: the loss
is the negated score, no round keeps more than its top (no test set to race on), the
finalists' payload is the exhaustive RANK's, a prefix embeds only its blocks, and a ranker
that cannot be halved is refused with the ones that can.
"""

from __future__ import annotations

import math

import pytest

from broker.rank_halving import RankSearch, loss_of
from shift import zoo
from shift.errors import QueryError
from shift.halving import HalvingConfig, SuccessiveHalving
from shift.methods import RANKERS
from shift.payloads import RankPayload, RankResult
from shift.planner import DatasetEntry, Pair, train_items, train_prefix
from shift.ql import nodes as n
from shift.ql.parser import parse
from shift.specs import DatasetSpec

MODELS = ("a", "b", "c", "d", "e")


def _result(score: float, rows: int = 10) -> RankResult:
    return RankResult("logme", {}, score, rows, 2)


def _run(search: SuccessiveHalving, scores: dict[tuple[str, int], float]) -> None:
    queue = search.next_requests()
    while queue:
        request = queue.pop(0)
        update = search.record(
            request.arm, request.train_rows, loss_of(_result(scores[(request.arm, request.round)]))
        )
        queue.extend(update.requests)


def _search(statement: str, rows: int = 1000, cap: int | None = None) -> RankSearch:
    node = parse(statement)
    assert isinstance(node, n.Rank)
    spec = zoo.dataset("photos-train").to_json()
    params = {**spec["params"], **({"max_rows": cap} if cap is not None else {})}
    entry = DatasetEntry(DatasetSpec.from_json({**spec, "name": "d", "params": params}), rows)
    models = tuple(zoo.model(m) for m in ("efficientnet-lite0", "efficientnet-lite0-random"))
    return RankSearch(node, node.rankers[0].name, {}, models, {"d": entry})


def test_higher_score_wins_and_each_round_keeps_exactly_its_top() -> None:
    # 5 models, CHUNK 100, BUDGET AUTO = 15 pulls: rounds on 100, 200 and 400 rows.
    machine = SuccessiveHalving(HalvingConfig(MODELS, 1000, 100, "auto", racing=False))
    assert [(r.arms, r.train_rows) for r in machine.schedule.rounds] == [
        (5, 100),
        (3, 200),
        (2, 400),
    ]
    # Round 0: c, d and e tie at 1.0 across the cut; e goes on the name. No margin keeps
    # an arm below the cut: exactly ceil(5 / 2) = 3 survive.
    scores = {
        ("a", 0): 2.0,
        ("b", 0): -5.0,
        ("c", 0): 1.0,
        ("d", 0): 1.0,
        ("e", 0): 1.0,
        ("a", 1): 1.5,
        ("c", 1): 1.9,
        ("d", 1): 0.1,
        ("a", 2): 1.2,
        ("c", 2): 1.4,
    }
    _run(machine, scores)
    ranking = machine.ranking()
    assert [(r.arm, r.eliminated_in) for r in ranking] == [
        ("c", None),
        ("a", None),
        ("d", 1),
        ("e", 0),
        ("b", 0),
    ]
    # The loss is the negated score: the finalists' losses are their scores negated.
    assert [-r.loss for r in ranking[:2]] == [1.4, 1.2]
    assert [r.train_rows for r in ranking] == [400, 400, 200, 100, 100]


def test_a_score_that_is_not_finite_sorts_last() -> None:
    assert loss_of(_result(math.nan)) == math.inf
    assert loss_of(_result(-math.inf)) == math.inf
    assert loss_of(_result(3.0)) == -3.0


def test_config_is_plain_halving_on_the_training_rows() -> None:
    search = _search('RANK * FROM image_models TRAINED ON "d" BY "knn" CHUNK AUTO BUDGET AUTO')
    config = search.config()
    assert (config.racing, config.test_rows, config.train_rows) == (False, None, 1000)
    # Two models: one round (L = ceil(log2 2) = 1), which sees every training row.
    assert [r.train_rows for r in config.schedule().rounds] == [1000]


def test_finalists_use_the_exhaustive_payload_and_a_prefix_embeds_its_blocks() -> None:
    search = _search('RANK * FROM image_models TRAINED ON "d" BY "logme" CHUNK 300', cap=600)
    model = search.models[0]
    pair = Pair(("d",), "")
    exhaustive = RankPayload(
        model, train_items(pair, search.entries), train_prefix(pair, search.entries), "logme", {}
    )
    assert search.config().train_rows == 600
    assert search.payload(model, 600).task().task_id == exhaustive.task().task_id
    assert search.payload(model, 300).train_rows == 300
    assert [e.block for e in search.embeds(model, 300)] == [0, 1]  # 256-row blocks
    assert [e.block for e in search.embeds(model, 600)] == [0, 1, 2]


@pytest.mark.parametrize("ranker", [r for r, spec in RANKERS.items() if not spec.halvable])
def test_a_ranker_that_cannot_be_halved_is_refused_naming_those_that_can(ranker: str) -> None:
    with pytest.raises(QueryError) as error:
        parse(f'RANK * FROM image_models TRAINED ON "d" BY "{ranker}" CHUNK 64')
    message = str(error.value)
    assert "cannot be halved" in message
    assert "logme, knn" in message


def test_halvable_rankers_are_logme_and_knn() -> None:
    assert [r for r, spec in RANKERS.items() if spec.halvable] == ["logme", "knn"]
