"""The pure planner: tasks from a query, rankings from hand-made results, no sockets."""

from __future__ import annotations

import pytest

from shift import zoo
from shift.errors import SchedulerError
from shift.payloads import ClassifyResult, Mutation
from shift.planner import (
    BLOCK_ROWS,
    DatasetEntry,
    classify_payload,
    explain,
    pair_test_size,
    pairs_of,
    plan,
    rankings,
    train_size,
)
from shift.ql import parse
from shift.specs import DatasetSpec

MODELS = [zoo.model("efficientnet-lite0"), zoo.model("efficientnet-lite0-random")]
DATASETS = {
    "a": DatasetEntry(DatasetSpec("a", "npz", {"path": "a.npz"}), 300),
    "b": DatasetEntry(DatasetSpec("b", "npz", {"path": "b.npz"}), 10),
    "c": DatasetEntry(DatasetSpec("c", "npz", {"path": "c.npz"}), 20),
}


def query(text: str):
    return parse(text)


def result(err: float, train_rows: int, test_rows: int) -> ClassifyResult:
    return ClassifyResult.from_json(
        {"err": err, "acc": 1 - err, "train_rows": train_rows, "test_rows": test_rows}
    )


def test_embed_and_classify_tasks_with_worker_payloads():
    statement = query(
        'SELECT * FROM models ORDER BY err TRAINED ON "a" TESTED ON "b" '
        'CLASSIFIED BY ["Euclidean NN", Linear(lr=0.1, epochs=5)]'
    )
    planned = plan(statement, MODELS, DATASETS)
    # a has 300 rows = 2 blocks of 256, b one block; per model.
    assert BLOCK_ROWS == 256
    assert len(planned.embeds) == 2 * 3
    first = planned.embeds[0]
    assert first.kind == "embed" and first.model == MODELS[0].key
    assert first.payload == {
        "model": MODELS[0].to_json(),
        "dataset": DATASETS["a"].spec.to_json(),
        "block": 0,
    }
    assert len(planned.classifies) == 2 * 2
    linear = next(c for c in planned.classifies if c.classifier == "linear").spec.payload
    assert linear["params"] == {
        "learning_rate": 0.1,
        "num_epochs": 5,
        "solver": "auto",
        "l2": 1.0,
        "tol": 1e-5,
        "max_iter": 1000,
    }
    assert linear["train"] == [DATASETS["a"].spec.to_json()]
    assert linear["test"] == DATASETS["b"].spec.to_json()
    assert linear["train_rows"] is None and linear["test_rows"] is None
    assert planned.rows[MODELS[0].name] == (300, 10)
    # Content hashing: planning again gives the same task ids.
    again = plan(statement, MODELS, DATASETS)
    assert [t.task_id for t in again.tasks] == [t.task_id for t in planned.tasks]


def test_rankings_per_classifier_ties_by_name_and_limit():
    statement = query(
        'SELECT * FROM models ORDER BY err TRAINED ON "a" TESTED ON "b" '
        'CLASSIFIED BY ["Euclidean NN", "Cosine NN"] LIMIT 1'
    )
    planned = plan(statement, MODELS, DATASETS)
    errs = {
        ("euclidean_nn", "efficientnet-lite0"): 0.1,
        ("euclidean_nn", "efficientnet-lite0-random"): 0.6,
        ("cosine_nn", "efficientnet-lite0"): 0.3,
        ("cosine_nn", "efficientnet-lite0-random"): 0.3,
    }
    results = {
        c.spec.task_id: result(errs[(c.classifier, c.model)], 300, 10) for c in planned.classifies
    }
    ranked = rankings(statement, planned, results)
    assert [r.title for r in ranked] == ["Euclidean NN", "Cosine NN"]
    assert ranked[0].rows == (
        {"name": "efficientnet-lite0", "err": 0.1, "acc": 0.9, "train_rows": 300, "test_rows": 10},
    )
    assert ranked[1].rows[0]["name"] == "efficientnet-lite0"  # tie: by name


def test_acc_desc_orders_best_first():
    statement = query('SELECT * FROM models ORDER BY acc DESC TRAINED ON "a" TESTED ON "b"')
    planned = plan(statement, MODELS, DATASETS)
    errs = {"efficientnet-lite0": 0.5, "efficientnet-lite0-random": 0.2}
    results = {c.spec.task_id: result(errs[c.model], 300, 10) for c in planned.classifies}
    rows = rankings(statement, planned, results)[0].rows
    assert [r["name"] for r in rows] == ["efficientnet-lite0-random", "efficientnet-lite0"]


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [("sum", 0.5), ("avg", 0.25), ("min", 0.1), ("max", 0.4)],
)
def test_benchmark_aggregates_per_pair(aggregate, expected):
    statement = query(
        f'SELECT * FROM models ORDER BY {aggregate}(err) TRAINED ON "a" '
        'TESTED ON BENCHMARK ["b", "c"]'
    )
    planned = plan(statement, MODELS[:1], DATASETS)
    assert [(p.train, p.test) for p in planned.pairs] == [(("a",), "b"), (("a",), "c")]
    pair_err = {0: 0.1, 1: 0.4}
    results = {c.spec.task_id: result(pair_err[c.pair], 300, 10) for c in planned.classifies}
    row = rankings(statement, planned, results)[0].rows[0]
    assert row["err"] == pytest.approx(expected)
    assert (row["train_rows"], row["test_rows"]) == (600, 20)


def test_train_list_is_concatenated_and_test_list_pooled():
    statement = query(
        'SELECT * FROM models ORDER BY err TRAINED ON ["a", "b"] TESTED ON ["b", "c"]'
    )
    planned = plan(statement, MODELS[:1], DATASETS)
    payload = planned.classifies[0].spec.payload
    assert [t["name"] for t in payload["train"]] == ["a", "b"]
    sizes = {0: 10, 1: 20}
    errs = {0: 0.0, 1: 0.5}
    results = {c.spec.task_id: result(errs[c.pair], 310, sizes[c.pair]) for c in planned.classifies}
    row = rankings(statement, planned, results)[0].rows[0]
    assert row["err"] == pytest.approx(10 / 30)  # errors pooled over both test sets


def test_mutations_are_planned_in_trained_on_and_tested_on():
    mutation = query(
        'SELECT * FROM models ORDER BY err TRAINED ON ("a" CHANGE [1] TO "c" [2]) TESTED ON "b"'
    )
    planned = plan(mutation, MODELS[:1], DATASETS)
    (item,) = planned.classifies[0].spec.payload["train"]
    assert item["mutation"]["from"] == [1] and item["mutation"]["to"] == [2]
    assert item["mutation"]["target"] == DATASETS["c"].spec.to_json()
    embedded = {t.payload["dataset"]["name"] for t in planned.embeds}
    assert embedded == {"a", "b", "c"}
    plain = plan(
        query('SELECT * FROM models ORDER BY err TRAINED ON "a" TESTED ON "b"'), MODELS, DATASETS
    )
    tested = plan(
        query(
            'SELECT * FROM models ORDER BY err TRAINED ON "a" TESTED ON ("b" CHANGE [1] TO "b" [2])'
        ),
        MODELS,
        DATASETS,
    )
    test = tested.classifies[0].spec.payload["test"]
    assert test["mutation"]["base"] == test["mutation"]["target"] == DATASETS["b"].spec.to_json()
    assert test["mutation"]["from"] == [1] and test["mutation"]["to"] == [2]
    # a mutated test set never shares a cached score with the plain one
    assert {c.spec.task_id for c in tested.classifies}.isdisjoint(
        c.spec.task_id for c in plain.classifies
    )
    assert {t.task_id for t in tested.embeds} == {t.task_id for t in plain.embeds}
    assert tested.rows == plain.rows  # a label-only change keeps the base's rows
    merged = plan(
        query(
            'SELECT * FROM models ORDER BY err TRAINED ON "a" TESTED ON ("b" CHANGE [1] TO "c" [1])'
        ),
        MODELS[:1],
        DATASETS,
    )
    assert {t.payload["dataset"]["name"] for t in merged.embeds} == {"a", "b", "c"}
    assert explain(merged, {})["pairs"][0]["test"] == '("b" CHANGE [1] TO "c" [1])'


def test_explain_counts_known_tasks_and_estimates_cost():
    statement = query('SELECT * FROM models ORDER BY err TRAINED ON "a" TESTED ON "b"')
    planned = plan(statement, MODELS, DATASETS)
    known = {t.task_id: "succeeded" for t in planned.tasks if t.model == MODELS[0].key}
    timings = {("embed", ""): 2.0, ("classify", ""): 1.0}
    out = explain(planned, known, timings)
    assert (out["tasks"], out["known"], out["to_run"]) == (8, 4, 4)
    by_model = {m["model"]: m for m in out["models"]}
    assert by_model["efficientnet-lite0"]["to_run"] == 0
    assert by_model["efficientnet-lite0-random"]["estimated_s"] == 3 * 2.0 + 1.0
    assert out["estimated_s"] == 7.0
    assert explain(planned, {}, {})["estimated_s"] is None


def test_max_rows_caps_blocks_and_classify_rows():
    capped = {
        "a": DatasetEntry(DatasetSpec("a", "npz", {"path": "a.npz", "max_rows": 100}), 300),
        "b": DatasetEntry(DatasetSpec("b", "npz", {"path": "b.npz", "max_rows": 5}), 10),
    }
    statement = query('SELECT * FROM models ORDER BY err TRAINED ON "a" TESTED ON "b"')
    planned = plan(statement, MODELS[:1], capped)
    assert len(planned.embeds) == 2  # one block of a, one of b
    payload = planned.classifies[0].spec.payload
    assert (payload["train_rows"], payload["test_rows"]) == (100, 5)
    assert planned.rows["efficientnet-lite0"] == (100, 5)
    listed = query('SELECT * FROM models ORDER BY err TRAINED ON ["a", "b"] TESTED ON "b"')
    with pytest.raises(SchedulerError, match="max_rows"):
        plan(listed, MODELS[:1], capped)


def test_sizes_and_prefixes_of_mutated_items():
    def pair(text):
        return pairs_of(query(text))[0]

    label_only = pair(
        'SELECT * FROM models ORDER BY err TRAINED ON ("a" CHANGE [1] TO "a" [2]) '
        'TESTED ON ("b" CHANGE [1] TO "b" [2])'
    )
    merging = pair(
        'SELECT * FROM models ORDER BY err TRAINED ON ("a" CHANGE [1] TO "c" [2]) '
        'TESTED ON ("b" CHANGE [1] TO "c" [2])'
    )
    assert train_size(label_only, DATASETS) == 300 and pair_test_size(label_only, DATASETS) == 10
    assert train_size(merging, DATASETS) is None and pair_test_size(merging, DATASETS) is None
    # a test prefix below a label-only change's size is kept; its whole size means all rows
    short = classify_payload(MODELS[0], "euclidean_nn", {}, label_only, DATASETS, 256, 4)
    whole = classify_payload(MODELS[0], "euclidean_nn", {}, label_only, DATASETS, 300, 10)
    assert (short.train_rows, short.test_rows) == (256, 4)
    assert (whole.train_rows, whole.test_rows) == (None, None)
    # a replacement's size is unknown: a prefix given is always kept
    merged = classify_payload(MODELS[0], "euclidean_nn", {}, merging, DATASETS, None, 10)
    assert merged.test_rows == 10 and isinstance(merged.test, Mutation)
