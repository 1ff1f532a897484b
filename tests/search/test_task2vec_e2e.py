"""``SELECT vec`` end to end: a real broker, two worker processes, the offline zoo, REST only.

Three small datasets (48 rows each: the first rows of the zoo's MNIST train and test splits,
and of its photo crops) are embedded with EfficientNet-Lite0 as the probe; the two MNIST
halves must come out closer to each other than to the photos. A repeated query, a WHERE that
keeps a subset, and ``EXPLAIN`` after the run reuse the three tasks.
"""

from __future__ import annotations

import json
import time

import pytest

from shift import zoo

from .conftest import Cluster

ROWS = 48
VEC = 'SELECT vec FROM ["mnist-a", "mnist-b", "photos-small"] WHERE probe = "efficientnet-lite0"'
TIMES: dict[str, float] = {}


def _small(name: str, new: str) -> dict:
    spec = zoo.dataset(name).to_json()
    return {**spec, "name": new, "params": {**spec["params"], "max_rows": ROWS}}


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> Cluster:
    """The zoo installed with ``shift zoo install``, plus three 48-row datasets."""
    started = time.monotonic()
    cluster.install_zoo()
    cluster.register(
        [
            ("/v1/datasets", _small("mnist-train", "mnist-a")),
            ("/v1/datasets", _small("mnist-test", "mnist-b")),
            ("/v1/datasets", _small("photos-train", "photos-small")),
        ]
    )
    TIMES["zoo install"] = time.monotonic() - started
    return cluster


def _one(cluster: Cluster, text: str, session: str = "vec") -> dict:
    (query,) = cluster.query(text, session=session)
    return query


def _matrix(query: dict) -> tuple[list[str], list[list[float]]]:
    assert query["status"] == "succeeded", query["error"]
    (table,) = query["result"]["tables"]
    names = table["columns"][1:]
    assert table["columns"][0] == "dataset" and [row[0] for row in table["rows"]] == names
    return names, [row[1:] for row in table["rows"]]


def test_explain_before_running_has_no_estimate(installed: Cluster) -> None:
    query = _one(installed, f"EXPLAIN JSON {VEC}")
    assert query["status"] == "succeeded", query["error"]
    plan = json.loads(query["result"]["message"])
    assert plan["statement"] == "task2vec distances" and plan["probe"] == "efficientnet-lite0"
    assert (plan["tasks"], plan["known"], plan["to_run"]) == (3, 0, 3)
    assert plan["estimated_s"] is None and any("no past timings" in n for n in plan["notes"])
    assert [(s["dataset"], s["sample_rows"], s["state"]) for s in plan["steps"]] == [
        ("mnist-a", ROWS, "new"),
        ("mnist-b", ROWS, "new"),
        ("photos-small", ROWS, "new"),
    ]


def test_mnist_halves_are_closer_than_photos(installed: Cluster) -> None:
    before = installed.task_count()
    started = time.monotonic()
    query = _one(installed, VEC)
    TIMES["select vec"] = time.monotonic() - started
    names, d = _matrix(query)
    assert names == ["mnist-a", "mnist-b", "photos-small"]
    assert all(d[i][j] == d[j][i] for i in range(3) for j in range(3))
    assert [d[i][i] for i in range(3)] == [0.0, 0.0, 0.0]
    assert d[0][1] < d[0][2] and d[0][1] < d[1][2], d
    assert installed.task_count() == before + 3
    assert "closest pair: mnist-a and mnist-b" in query["result"]["message"]
    print("\nselect vec:", json.dumps(d))


def test_same_query_again_runs_no_task(installed: Cluster) -> None:
    first = _matrix(_one(installed, VEC))
    before = installed.task_count()
    started = time.monotonic()
    again = _one(installed, VEC)
    TIMES["select vec again"] = time.monotonic() - started
    assert _matrix(again) == first and installed.task_count() == before
    subset = _one(
        installed,
        'SELECT vec FROM readers WHERE probe = "efficientnet-lite0" '
        f"AND name LIKE 'mnist-%' AND size <= {ROWS}",
    )
    names, d = _matrix(subset)
    assert names == ["mnist-a", "mnist-b"] and d[0][1] == first[1][0][1]
    installed.query("DECLARE halves AS SELECT name FROM readers WHERE size = 48", session="vec")
    declared = _one(installed, 'SELECT vec FROM halves WHERE probe = "efficientnet-lite0"')
    assert _matrix(declared) == first
    assert installed.task_count() == before


def test_rest_endpoint_is_the_same_query(installed: Cluster) -> None:
    first = _matrix(_one(installed, VEC))
    before = installed.task_count()
    body = {"probe": "efficientnet-lite0", "datasets": ["mnist-a", "mnist-b", "photos-small"]}
    status, query = installed.call("POST", "/v1/task2vec?wait=true", body)
    assert status == 202, query
    assert _matrix(installed.final(query["id"])) == first
    assert installed.task_count() == before


def test_explain_after_running(installed: Cluster) -> None:
    query = _one(installed, f"EXPLAIN {VEC}")
    assert query["status"] == "succeeded", query["error"]
    assert "3 task(s), 3 known, 0 to run" in query["result"]["message"]
    (table,) = query["result"]["tables"]
    assert table["title"] == "plan"
    assert table["columns"] == ["dataset", "sample_rows", "task", "state", "estimated_s"]
    assert {(row[2], row[3], row[4]) for row in table["rows"]} == {("task2vec", "succeeded", 0.0)}
    # a ranking query embeds with the probe, which measures its forward seconds per row
    rank = _one(
        installed,
        'SELECT name FROM ["efficientnet-lite0"] ORDER BY err TRAINED ON "mnist-a" '
        'TESTED ON "mnist-b"',
    )
    assert rank["status"] == "succeeded", rank["error"]
    wider = _one(
        installed,
        'EXPLAIN JSON SELECT vec FROM readers WHERE probe = "efficientnet-lite0" '
        "AND modality = 'vision'",
    )
    plan = json.loads(wider["result"]["message"])
    assert plan["known"] == 3 and plan["to_run"] == plan["tasks"] - 3 > 0
    assert plan["estimated_s"] is not None and plan["estimated_s"] > 0
    per_row = {s["estimated_s"] / s["sample_rows"] for s in plan["steps"] if s["state"] == "new"}
    assert len({round(r, 9) for r in per_row}) == 1 and min(per_row) > 0
    assert plan["estimated_s"] == pytest.approx(
        sum(s["estimated_s"] for s in plan["steps"]), rel=1e-9
    )
    print("\ntimings:", json.dumps({k: round(v, 2) for k, v in TIMES.items()}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'SELECT vec FROM readers WHERE probe = "efficientnet-lite0"',
            "is text data but the probe 'efficientnet-lite0' is a vision model",
        ),
        (
            'SELECT vec FROM readers WHERE probe = "efficientnet-lite0"',
            "add AND modality = 'vision'",
        ),
        (
            'SELECT vec FROM ["mnist-a", "mnist-b"] WHERE probe = "efficientnet-lite9"',
            "unknown model 'efficientnet-lite9'; did you mean 'efficientnet-lite",
        ),
        (
            'SELECT vec FROM ["mnist-a", "mnist-c"] WHERE probe = "efficientnet-lite0"',
            "unknown dataset 'mnist-c'; did you mean 'mnist-",
        ),
        (
            'SELECT vec FROM ["mnist-a", "minilm-l6"] WHERE probe = "efficientnet-lite0"',
            "'minilm-l6' is a model",
        ),
        (
            'SELECT vec FROM readers WHERE probe = "efficientnet-lite0" AND size < 0',
            "no dataset left to compare",
        ),
    ],
)
def test_errors_name_the_fix(installed: Cluster, text: str, expected: str) -> None:
    before = installed.task_count()
    query = _one(installed, text, session="vec-errors")
    assert query["status"] == "failed"
    assert expected in query["error"]["message"], query["error"]["message"]
    assert installed.task_count() == before
