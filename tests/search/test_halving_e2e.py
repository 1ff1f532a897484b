"""Successive halving and incremental execution end to end: a real broker, two workers.

Three Lite0-sized models (pretrained, cut after stage 2, random) on photo crops: 512
training rows (two feature blocks of 256), 64 test rows. Everything is checked through
REST: rankings against a machine replayed from EXPLAIN's scores, the task list (which
blocks were embedded, which tasks ran, their attempts), and the classify results'
``distance_pairs`` and ``prior_rows`` counters.
"""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

from shift import zoo
from shift.halving import HalvingConfig, SuccessiveHalving

from .conftest import Cluster

MODELS = ("efficientnet-lite0", "efficientnet-lite0-stage2", "efficientnet-lite0-random")
POOL = json.dumps(list(MODELS))
A, B, TEST = "photos-a", "photos-b", "photos-t"
ROWS_A, ROWS_B, ROWS_TEST = 512, 64, 64


def _photos(split: str, name: str, crops: int, seed: int = 0) -> dict[str, Any]:
    spec = zoo.dataset(f"photos-{split}").to_json()
    per_photo = {"train": crops, "test": crops}
    return {
        **spec,
        "name": name,
        "params": {**spec["params"], "crops_per_photo": per_photo, "seed": seed},
    }


def _halving(chunk: int, classifier: str = "Euclidean NN", budget: str = "AUTO") -> str:
    return (
        f'SELECT * FROM {POOL} ORDER BY err ASC TRAINED ON "{A}" TESTED ON "{TEST}" '
        f'CLASSIFIED BY "{classifier}" CHUNK {chunk} BUDGET {budget}'
    )


@pytest.fixture(scope="module")
def ready(cluster: Cluster) -> Cluster:
    """Three models and three small photo datasets registered and measured."""
    bodies = [("/v1/models", zoo.model(m).to_json()) for m in MODELS] + [
        ("/v1/datasets", _photos("train", A, ROWS_A // 16)),
        ("/v1/datasets", _photos("train", B, ROWS_B // 16, seed=1)),
        ("/v1/datasets", _photos("test", TEST, ROWS_TEST // 16)),
    ]
    cluster.register(bodies)
    return cluster


def tasks(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    """Every task of a kind, in submission order."""
    out, after = [], 0
    while True:
        page = cluster.get(f"/v1/tasks?kind={kind}&limit=1000&after={after}")
        out += page["tasks"]
        if page["next"] is None:
            return out
        after = page["next"]


def ranking(query: dict[str, Any]) -> list[list[Any]]:
    assert query["status"] == "succeeded", query["error"]
    return query["result"]["tables"][0]["rows"]


def blocks(cluster: Cluster, dataset: str) -> set[tuple[str, int]]:
    return {
        (t["payload"]["model"]["name"], t["payload"]["block"])
        for t in tasks(cluster, "embed")
        if t["payload"]["dataset"]["name"] == dataset
    }


def test_halving_ranks_like_the_machine_and_embeds_only_needed_blocks(ready: Cluster) -> None:
    (query,) = ready.query(_halving(64))
    rows = ranking(query)
    columns = query["result"]["tables"][0]["columns"]
    # the scores, then (SELECT *) every catalog column of the model
    assert columns[:7] == ["name", "err", "acc", "train_rows", "test_rows", "eliminated_in", "tied"]
    # 3 arms: 2 rounds, BUDGET AUTO = 6 pulls: 64 rows, then 128 rows for the 2 survivors.
    assert [(r[3], r[5]) for r in rows] == [(128, None), (128, None), (64, 0)], rows
    (explain,) = ready.query(f"EXPLAIN JSON {_halving(64)}")
    (search,) = json.loads(explain["result"]["message"])["halving"]
    assert [(r["arms"], r["train_rows"]) for r in search["schedule"]["rounds"]] == [
        (3, 64),
        (2, 128),
    ]
    machine = SuccessiveHalving(HalvingConfig(MODELS, ROWS_A, 64, "auto"))
    for score in sorted(search["scores"], key=lambda s: s["round"]):
        machine.record(score["model"], score["train_rows"], score["err"])  # err ASC: the loss
    assert [r.arm for r in machine.ranking()] == [r[0] for r in rows]
    assert {r[0]: r[1] for r in rows} == {r.arm: pytest.approx(r.loss) for r in machine.ranking()}
    # Rows beyond the largest prefix (128 < 256) are never embedded: block 1 of A is not.
    assert blocks(ready, A) == {(m, 0) for m in MODELS}
    assert blocks(ready, TEST) == {(m, 0) for m in MODELS}
    grown = [t for t in tasks(ready, "classify") if t["payload"].get("train_rows") == 128]
    assert grown and all(t["result"]["prior_rows"] == 64 for t in grown)
    assert all(t["result"]["distance_pairs"] == 64 * ROWS_TEST for t in grown)


def test_another_chunk_reuses_features(ready: Cluster) -> None:
    before = len(tasks(ready, "embed"))
    (query,) = ready.query(_halving(32))
    assert len(ranking(query)) == 3
    assert len(tasks(ready, "embed")) == before


def test_broker_killed_mid_halving_resumes_to_the_same_ranking(ready: Cluster) -> None:
    text = _halving(192, classifier="Cosine NN", budget="6")  # round 1 embeds block 1
    status, body = ready.call("POST", "/v1/queries", {"text": text, "session": "kill"})
    assert status == 202
    query_id = body["queries"][0]["id"]

    def some_cosine_done() -> list[dict[str, Any]]:
        done = [
            t
            for t in tasks(ready, "classify")
            if t["payload"]["classifier"] == "cosine_nn" and t["state"] == "succeeded"
        ]
        return done

    ready.wait_for(some_cosine_done, "a first cosine evaluation")
    assert ready.broker is not None
    ready.broker.send_signal(signal.SIGKILL)
    ready.broker.wait(timeout=30)
    finished = {
        t["id"]: t
        for kind in ("embed", "classify")
        for t in _stored(ready, kind)
        if t["state"] == "succeeded"
    }
    assert _query_status(ready, query_id) == "running"  # killed in the middle
    ready.start_broker()
    resumed = ranking(ready.final(query_id))
    for kind in ("embed", "classify"):
        for task in tasks(ready, kind):
            before = finished.get(task["id"])
            if before is not None:  # finished before the kill: never run again
                assert (task["updated_at"], task["worker"], task["attempt"]) == (
                    before["updated_at"],
                    before["worker"],
                    before["attempt"],
                )
    cosine = [t for t in tasks(ready, "classify") if t["payload"]["classifier"] == "cosine_nn"]
    assert len(
        {(t["payload"]["model"]["name"], t["payload"]["train_rows"]) for t in cosine}
    ) == len(cosine)
    (purged,) = ready.query("PURGE RESULTS", session="kill")
    assert purged["status"] == "succeeded"
    (again,) = ready.query(text, session="kill")
    assert ranking(again) == resumed


def _stored(cluster: Cluster, kind: str) -> list[dict[str, Any]]:
    """Tasks as committed in SQLite while the broker is down (read-only)."""
    import sqlite3

    from shift.codec import unpack

    path = cluster.tmp / "state" / "shift.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT id, state, worker, attempt, updated_at, payload FROM tasks WHERE kind = ?",
            (kind,),
        ).fetchall()
    return [
        {
            "id": r[0],
            "state": r[1],
            "worker": r[2],
            "attempt": r[3],
            "updated_at": r[4],
            "payload": unpack(r[5]),
        }
        for r in rows
    ]


def _query_status(cluster: Cluster, query_id: str) -> str:
    import sqlite3

    path = cluster.tmp / "state" / "shift.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (status,) = db.execute("SELECT status FROM queries WHERE id = ?", (query_id,)).fetchone()
    return str(status)


def _newest_classify(cluster: Cluster) -> dict[str, Any]:
    return tasks(cluster, "classify")[-1]


def test_growth_and_mutations_compute_only_what_changed(ready: Cluster) -> None:
    one = json.dumps(["efficientnet-lite0-stage2"])
    base = f'SELECT * FROM {one} ORDER BY err TRAINED ON "{A}" TESTED ON "{TEST}"'
    first = ranking(ready.query(base, session="grow")[0])
    assert first[0][3] == ROWS_A
    embeds = len(tasks(ready, "embed"))

    grown = ranking(ready.query(base.replace(f'"{A}"', f'["{A}", "{B}"]'), session="grow")[0])
    assert grown[0][3] == ROWS_A + ROWS_B
    result = _newest_classify(ready)["result"]
    assert result["prior_rows"] == ROWS_A
    assert result["distance_pairs"] == ROWS_B * ROWS_TEST  # only the new rows' distances
    new_embeds = tasks(ready, "embed")[embeds:]
    assert {t["payload"]["dataset"]["name"] for t in new_embeds} == {B}

    embeds = len(tasks(ready, "embed"))
    swap = f'("{A}" CHANGE ["cat", "coffee"] TO "{A}" ["coffee", "cat"])'
    relabelled = ranking(ready.query(base.replace(f'"{A}"', swap), session="grow")[0])
    assert relabelled[0][3] == ROWS_A
    result = _newest_classify(ready)["result"]
    assert result["distance_pairs"] == 0 and result["prior_rows"] == ROWS_A
    assert len(tasks(ready, "embed")) == embeds

    replaced = f'("{A}" CHANGE ["cat"] TO "{B}" ["cat"])'
    ranking(ready.query(base.replace(f'"{A}"', replaced), session="grow")[0])
    result = _newest_classify(ready)["result"]
    per_photo_a, per_photo_b = ROWS_A // 16, ROWS_B // 16
    kept = ROWS_A - per_photo_a
    assert result["train_rows"] == kept + per_photo_b
    assert 0 < result["distance_pairs"] < (kept + per_photo_b) * ROWS_TEST
    assert len(tasks(ready, "embed")) == embeds
