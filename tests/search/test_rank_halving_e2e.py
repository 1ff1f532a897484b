"""RANK ... CHUNK end to end: a real broker, two workers, three starter models.

Three Lite0-sized models (pretrained, cut after stage 2, random) and 256 photo crops for
training. ``RANK ... BY "logme" CHUNK AUTO`` plays two rounds (128, then 256 rows); its first
model is the one RANK without CHUNK puts first, a rerun creates no task, EXPLAIN shows the
rounds, and the exhaustive RANK afterwards only adds the eliminated model's whole-set score.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from shift import zoo

from .conftest import Cluster

MODELS = ("efficientnet-lite0", "efficientnet-lite0-stage2", "efficientnet-lite0-random")
POOL = json.dumps(list(MODELS))
TRAIN, ROWS = "photos-rank", 256
HALVING = f'RANK * FROM {POOL} TRAINED ON "{TRAIN}" BY "logme" CHUNK AUTO BUDGET AUTO'
EXHAUSTIVE = f'RANK * FROM {POOL} TRAINED ON "{TRAIN}" BY "logme"'


@pytest.fixture(scope="module")
def ready(cluster: Cluster) -> Cluster:
    spec = zoo.dataset("photos-train").to_json()
    dataset = {
        **spec,
        "name": TRAIN,
        "params": {**spec["params"], "crops_per_photo": {"train": ROWS // 16, "test": 1}},
    }
    cluster.register([("/v1/models", zoo.model(m).to_json()) for m in MODELS])
    cluster.register([("/v1/datasets", dataset)])
    return cluster


def _table(query: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    assert query["status"] == "succeeded", query["error"]
    table = query["result"]["tables"][0]
    return table["columns"], table["rows"]


def test_rank_with_chunk_picks_the_exhaustive_first_and_reruns_for_free(ready: Cluster) -> None:
    (halving,) = ready.query(HALVING)
    columns, rows = _table(halving)
    name, train_rows, out = (columns.index(c) for c in ("name", "train_rows", "eliminated_in"))
    # 3 models: 2 rounds, CHUNK AUTO = 128 rows; two finalists on all 256 rows.
    assert [(r[train_rows], r[out]) for r in rows] == [(256, None), (256, None), (128, 0)], rows
    assert "successive halving" in halving["result"]["message"]

    before = ready.task_count()
    (again,) = ready.query(HALVING)
    assert _table(again)[1] == rows
    assert ready.task_count() == before  # a rerun creates no task

    (explain,) = ready.query(f"EXPLAIN JSON {HALVING}")
    body = json.loads(explain["result"]["message"])
    (search,) = body["halving"]
    assert [(r["arms"], r["train_rows"], r["advancing"]) for r in search["schedule"]["rounds"]] == [
        (3, 128, 2),
        (2, 256, "final"),
    ]
    assert body["to_run"] == 0 and body["known"] == body["tasks"] > 0
    assert {(s["model"], s["round"]) for s in search["scores"]} == {
        *((m, 0) for m in MODELS),
        *((r[name], 1) for r in rows[:2]),
    }

    (exhaustive,) = ready.query(EXHAUSTIVE)
    full_columns, full = _table(exhaustive)
    assert full[0][full_columns.index("name")] == rows[0][name]
    scores = {r[full_columns.index("name")]: r[full_columns.index("score")] for r in full}
    score = columns.index("score")
    assert {r[name]: r[score] for r in rows[:2]} == {r[name]: scores[r[name]] for r in rows[:2]}
    # Only the eliminated model's whole-set rank task was new (its blocks were embedded).
    assert ready.task_count() == before + 1
