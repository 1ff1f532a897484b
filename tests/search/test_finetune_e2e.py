"""FINETUNE end to end: a real broker, two worker processes, a ``kill -9`` mid-fine-tune.

EfficientNet-Lite0 (the zoo's real pretrained weights) is fine-tuned on a small photo-crop
task (4 crops per photo: 64 training rows, 16 of them held out; 32 test rows) for three
epochs with a batch of 16. The worker running it is killed after its first checkpoint;
the other worker resumes from that checkpoint, and the result is registered as a model
that a catalog query and a ranking query then find like any other.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from shift import zoo

from .conftest import DEADLINE_S, Cluster

CROPS = {"train": 4, "test": 2}
OPTIONS = {"epochs": 3, "batch_size": 16, "val_fraction": 0.25, "test": "photos-ft-test"}


def _small(name: str, new: str) -> dict[str, Any]:
    spec = zoo.dataset(name).to_json()
    return {**spec, "name": new, "params": {**spec["params"], "crops_per_photo": CROPS}}


@pytest.fixture(scope="module")
def ready(cluster: Cluster) -> Cluster:
    """The pretrained and the random EfficientNet-Lite0 and a small photo-crop task."""
    cluster.register(
        [
            ("/v1/models", zoo.model("efficientnet-lite0").to_json()),
            ("/v1/models", zoo.model("efficientnet-lite0-random").to_json()),
            ("/v1/datasets", _small("photos-train", "photos-ft-train")),
            ("/v1/datasets", _small("photos-test", "photos-ft-test")),
            ("/v1/datasets", zoo.dataset("rotten-tomatoes-train").to_json()),
        ]
    )
    return cluster


def _finetune_task(cluster: Cluster) -> dict[str, Any]:
    def found() -> Any:
        tasks = cluster.get("/v1/tasks?kind=finetune")["tasks"]
        return tasks[0] if tasks else None

    return cluster.wait_for(found, "the finetune task")


def _checkpoint_epoch(path: Path) -> int:
    import torch

    if not path.exists():
        return -1
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


def test_finetune_survives_a_killed_worker_and_registers_the_model(ready: Cluster) -> None:
    body = {"models": ["efficientnet-lite0"], "datasets": ["photos-ft-train"], "options": OPTIONS}
    status, query = ready.call("POST", "/v1/finetunes", body)
    assert status == 202, query
    assert query["statement"].startswith('FINETUNE ["efficientnet-lite0"] WITH "photos-ft-train"')
    task = _finetune_task(ready)
    state = ready.tmp / "state" / "finetune" / task["id"] / "state.pt"
    deadline = time.monotonic() + DEADLINE_S
    while _checkpoint_epoch(state) < 1:
        assert time.monotonic() < deadline, "no checkpoint after the first epoch"
        assert ready.get(f"/v1/tasks/{task['id']}")["state"] in ("queued", "running")
        time.sleep(0.2)
    holders = [w for w in ready.get("/v1/workers")["workers"] if task["id"] in w["inflight"]]
    assert len(holders) == 1, holders
    victim = ready.workers[int(holders[0]["id"].removeprefix("w"))]
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)

    final = ready.final(query["id"])
    assert final["status"] == "succeeded", final["error"]
    (table,) = final["result"]["tables"]
    row = dict(zip(table["columns"], table["rows"][0], strict=True))
    print("\nfine-tune:", json.dumps(row))
    assert row["resumed_from_epoch"] is not None and row["resumed_from_epoch"] >= 1
    assert row["base_model"] == "efficientnet-lite0" and row["epochs"] == 3
    assert (row["train_rows"], row["val_rows"], row["test_rows"]) == (48, 16, 32)
    assert 0.0 <= row["test_acc"] <= 1.0
    assert ready.get(f"/v1/tasks/{task['id']}")["attempt"] >= 2

    name = row["name"]
    (found,) = ready.query(
        "SELECT name, base_model, finetuned, feature_dim FROM models WHERE FINETUNED"
    )
    assert found["result"]["tables"][0]["rows"] == [[name, "efficientnet-lite0", True, 1280]]
    entry = ready.get(f"/v1/models/{name}")
    assert entry["status"] == "ready" and "finetuned" in entry["tags"]
    assert entry["spec"]["info"]["finetune"]["hparams"]["learning_rate"] == 1e-4

    (ranked,) = ready.query(
        f'SELECT * FROM ["efficientnet-lite0", "{name}", "efficientnet-lite0-random"] '
        'ORDER BY err ASC TRAINED ON "photos-ft-train" TESTED ON "photos-ft-test" '
        'CLASSIFIED BY ["Cosine NN"]'
    )
    assert ranked["status"] == "succeeded", ranked["error"]
    rows = ranked["result"]["tables"][0]["rows"]
    print("ranking with the fine-tuned model:", json.dumps(rows))
    assert {r[0] for r in rows} == {"efficientnet-lite0", name, "efficientnet-lite0-random"}
    assert rows[-1][0] == "efficientnet-lite0-random"


def test_finetune_again_is_answered_from_the_cache(ready: Cluster) -> None:
    text = (
        'FINETUNE ["efficientnet-lite0"] WITH "photos-ft-train" (epochs=3, batch_size=16, '
        'val_fraction=0.25, test="photos-ft-test") WAIT'
    )
    (explained,) = ready.query("EXPLAIN JSON " + text)
    plan = json.loads(explained["result"]["message"])
    assert (plan["tasks"], plan["known"], plan["to_run"], plan["estimated_s"]) == (1, 1, 0, 0.0)
    before = ready.task_count()
    (again,) = ready.query(text)
    assert again["status"] == "succeeded", again["error"]
    assert ready.task_count() == before
    assert len(ready.get("/v1/models")["models"]) == 3


def test_explain_estimates_a_new_finetune_from_measured_forward_time(ready: Cluster) -> None:
    (explained,) = ready.query(
        'EXPLAIN JSON FINETUNE ["efficientnet-lite0-random"] WITH "photos-ft-train" (epochs=2)'
    )
    plan = json.loads(explained["result"]["message"])
    assert (plan["tasks"], plan["known"], plan["to_run"]) == (1, 0, 1)
    assert plan["estimated_s"] is not None and plan["estimated_s"] > 0
    (step,) = plan["steps"]
    assert (step["model"], step["epochs"], step["train_rows"], step["state"]) == (
        "efficientnet-lite0-random",
        2,
        64,
        "new",
    )
    (text,) = ready.query(
        'EXPLAIN FINETUNE ["efficientnet-lite0-random"] WITH "photos-ft-train" (epochs=2)'
    )
    assert (
        "fine-tuning: 1 task(s), 0 known, 1 to run, estimated cost ~" in text["result"]["message"]
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('FINETUNE ["efficientnet-lite00"] WITH "photos-ft-train"', "did you mean"),
        ('FINETUNE ["efficientnet-lite0"] WITH "photos-ft-trian"', "did you mean"),
        (
            'FINETUNE ["efficientnet-lite0"] WITH "photos-ft-train" (test="photos-ft-tst")',
            "did you mean 'photos-ft-test'",
        ),
        (
            'FINETUNE ["efficientnet-lite0"] WITH "rotten-tomatoes-train"',
            "left out 1 model(s): 1 vision (text data); list them: SELECT name, modality, "
            'status, error FROM ["efficientnet-lite0"] WHERE modality != "text"',
        ),
    ],
)
def test_finetune_errors_name_the_problem(ready: Cluster, text: str, expected: str) -> None:
    (query,) = ready.query(text)
    assert query["status"] == "failed"
    assert expected in query["error"]["message"], query["error"]


def test_rest_finetune_body_errors_are_400(ready: Cluster) -> None:
    status, body = ready.call("POST", "/v1/finetunes", {"models": ["efficientnet-lite0"]})
    assert status == 400 and "'datasets'" in body["error"]["message"]
    status, body = ready.call(
        "POST",
        "/v1/finetunes",
        {"models": ["efficientnet-lite0"], "datasets": ["photos-ft-train"], "optoins": {}},
    )
    assert status == 400 and "did you mean 'options'" in body["error"]["message"]
    status, body = ready.call(
        "POST",
        "/v1/finetunes",
        {
            "models": ["efficientnet-lite0"],
            "datasets": ["photos-ft-train"],
            "options": {"epochs": 0},
        },
    )
    assert status == 400 and "epochs must be at least 1" in json.dumps(body)
