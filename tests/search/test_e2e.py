"""The search end to end: a real broker, two worker processes, the offline zoo, REST only.

Row counts are kept small (photo crops 128 train / 64 test, Rotten Tomatoes 256 / 128) so
the module runs in a few minutes on two cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from shift import zoo

from .conftest import ROOT, Cluster

PRETRAINED = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
RANDOM = ("efficientnet-lite0-random", "efficientnet-lite1-random")
PHOTO_QUERY = (
    'SELECT * FROM image_models ORDER BY err ASC TRAINED ON "photos-small-train" '
    'TESTED ON "photos-small-test" CLASSIFIED BY ["Euclidean NN", "Cosine NN"]'
)
TEXT_QUERY = (
    'SELECT * FROM text_models ORDER BY err ASC TRAINED ON "rt-small-train" '
    'TESTED ON "rt-small-test"'
)
TIMES: dict[str, float] = {}


def _small(name: str, new: str, **params: object) -> dict:
    spec = zoo.dataset(name).to_json()
    return {**spec, "name": new, "params": {**spec["params"], **params}}


@pytest.fixture(scope="module")
def installed(cluster: Cluster) -> Cluster:
    """The zoo installed with ``shift zoo install``, plus small versions of its datasets."""
    started = time.monotonic()
    cluster.install_zoo()
    TIMES["zoo install"] = time.monotonic() - started
    crops = {"train": 8, "test": 4}
    extra = [
        ("/v1/datasets", _small("photos-train", "photos-small-train", crops_per_photo=crops)),
        ("/v1/datasets", _small("photos-test", "photos-small-test", crops_per_photo=crops)),
        ("/v1/datasets", _small("rotten-tomatoes-train", "rt-small-train", max_rows=256)),
        ("/v1/datasets", _small("rotten-tomatoes-test", "rt-small-test", max_rows=128)),
    ]
    cluster.register(extra)
    return cluster


def test_zoo_install_is_idempotent_and_measures(installed: Cluster) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shift", "zoo", "list", "--url", installed.url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0
    for model in zoo.MODELS:
        assert model.name in out.stdout
    models = {m["name"]: m for m in installed.get("/v1/models")["models"]}
    assert {m.name for m in zoo.STARTER_MODELS} <= set(models)
    assert not {m.name for m in zoo.POOL_MODELS} & set(models)  # pools only with --pools
    lite0 = models["efficientnet-lite0"]
    assert lite0["status"] == "ready" and lite0["feature_dim"] == 1280
    assert 3_000_000 < lite0["num_params"] < 7_000_000
    assert models["minilm-l6"]["feature_dim"] == 384
    status, again = installed.call("POST", "/v1/models", zoo.model("efficientnet-lite0").to_json())
    assert status == 200 and again["key"] == lite0["key"]
    datasets = {d["name"]: d for d in installed.get("/v1/datasets")["datasets"]}
    assert datasets["photos-small-train"]["size"] == 8 * len(zoo.PHOTOS)
    assert datasets["rt-small-train"]["size"] == 256


def test_photo_task_ranks_pretrained_above_random(installed: Cluster) -> None:
    before = installed.task_count()
    started = time.monotonic()
    (query,) = installed.query(PHOTO_QUERY)
    TIMES["photo query"] = time.monotonic() - started
    assert query["status"] == "succeeded", query["error"]
    assert installed.task_count() > before
    tables = query["result"]["tables"]
    assert [t["title"] for t in tables] == ["Euclidean NN", "Cosine NN"]
    for table in tables:
        names = [row[0] for row in table["rows"]]
        assert len(names) >= 6 and set(PRETRAINED + RANDOM) <= set(names)
        worst_pretrained = max(names.index(m) for m in PRETRAINED)
        assert all(names.index(m) > worst_pretrained for m in RANDOM), table["rows"]
        scores = ["name", "err", "acc", "train_rows", "test_rows", "tied"]
        assert table["columns"][:6] == scores and "num_params" in table["columns"]
        assert {(row[3], row[4]) for row in table["rows"]} == {(128, 64)}
    print("\nphoto ranking (Euclidean NN):", json.dumps(tables[0]["rows"]))


def test_same_query_again_creates_no_task(installed: Cluster) -> None:
    before = installed.task_count()
    started = time.monotonic()
    (query,) = installed.query(PHOTO_QUERY)
    TIMES["photo query again"] = time.monotonic() - started
    assert query["status"] == "succeeded"
    assert installed.task_count() == before
    assert query["progress"]["done"] == query["progress"]["total"] > 0
    assert query["progress"]["cached"] == query["progress"]["total"]
    print("\ntimings:", json.dumps({k: round(v, 2) for k, v in TIMES.items()}))


@pytest.mark.parametrize(
    ("text", "named", "closest"),
    [
        (
            'SELECT * FROM ["efficientnet-lite9"] ORDER BY err TRAINED ON "photos-small-train" '
            'TESTED ON "photos-small-test"',
            "'efficientnet-lite9'",
            "did you mean 'efficientnet-lite",
        ),
        (
            'SELECT * FROM image_models ORDER BY err TRAINED ON "photos-smal-train" '
            'TESTED ON "photos-small-test"',
            "'photos-smal-train'",
            "did you mean 'photos-small-train'",
        ),
        ("SELECT * FROM top_modles", "'top_modles'", "did you mean 'top_models'"),
    ],
)
def test_unknown_names_fail_with_the_closest_match(
    installed: Cluster, text: str, named: str, closest: str
) -> None:
    installed.query("DECLARE top_models AS SELECT name FROM models LIMIT 1", session="errors")
    (query,) = installed.query(text, session="errors")
    assert query["status"] == "failed"
    message = query["error"]["message"]
    assert named in message and closest in message, message


def test_unknown_column_is_a_located_400(installed: Cluster) -> None:
    status, body = installed.call(
        "POST", "/v1/queries", {"text": "SELECT * FROM models WHERE nam = 1"}
    )
    assert status == 400
    error = body["error"]
    assert error["code"] == "query_error" and "unknown column 'nam'" in error["message"]
    assert error["diagnostics"][0]["hint"] == "did you mean 'name'?"
    assert error["diagnostics"][0]["column"] == 28


def test_text_search_on_rotten_tomatoes(installed: Cluster) -> None:
    (query,) = installed.query(TEXT_QUERY)
    assert query["status"] == "succeeded", query["error"]
    rows = query["result"]["tables"][0]["rows"]
    errs = {row[0]: row[1] for row in rows}
    assert {"minilm-l6", "minilm-l3", "minilm-l6-layer2", "bert-random"} <= set(errs)
    assert min(errs["minilm-l6"], errs["minilm-l3"]) < errs["bert-random"]
    assert {(row[3], row[4]) for row in rows} == {(256, 128)}
    print("\ntext ranking:", json.dumps(rows))


def test_catalog_statements_over_rest(installed: Cluster) -> None:
    script = """
    SELECT name, num_params FROM image_models WHERE num_params < 10M AND name LIKE '%lite%'
        ORDER BY num_params DESC, name ASC LIMIT 3;
    DECLARE top AS SELECT name FROM models WHERE up_acc IS NOT NULL ORDER BY up_acc DESC LIMIT 2;
    PRINT top;
    PRINT *;
    SELECT name FROM image_models OTHER THAN top ORDER BY name;
    SELECT name FROM image_models LIMIT 1 UNION SELECT name FROM text_models LIMIT 1
        UNION SELECT name FROM image_models LIMIT 1;
    SELECT * FROM readers WHERE num_classes >= 10 AND size BETWEEN 100 AND 1000 ORDER BY name;
    EXPLAIN SELECT * FROM image_models ORDER BY err TRAINED ON "photos-small-train"
        TESTED ON "photos-small-test";
    EXPLAIN JSON SELECT * FROM image_models ORDER BY err TRAINED ON "photos-small-train"
        TESTED ON "photos-small-test" CLASSIFIED BY Linear(lr=0.05, epochs=3);
    RANK name FROM models TRAINED ON "photos-small-train" TESTED ON "photos-small-test" BY "logme"
    """
    results = installed.query(script, session="catalog")
    assert [q["status"] for q in results[:-1]] == ["succeeded"] * 9, [q["error"] for q in results]
    first = results[0]["result"]["tables"][0]
    assert first["columns"] == ["name", "num_params"]
    params = [row[1] for row in first["rows"]]
    assert len(params) == 3 and params == sorted(params, reverse=True)
    assert results[1]["result"]["message"] == "top = [efficientnet-lite2, efficientnet-lite1]"
    assert results[2]["result"]["tables"][0]["rows"] == [
        ["efficientnet-lite2"],
        ["efficientnet-lite1"],
    ]
    assert ["top", "efficientnet-lite2, efficientnet-lite1"] in results[3]["result"]["tables"][0][
        "rows"
    ]
    others = [row[0] for row in results[4]["result"]["tables"][0]["rows"]]
    assert "efficientnet-lite2" not in others and "efficientnet-lite0" in others
    union = [row[0] for row in results[5]["result"]["tables"][0]["rows"]]
    assert len(union) == 2 and len(set(union)) == 2
    readers = [row[0] for row in results[6]["result"]["tables"][0]["rows"]]
    assert "photos-small-train" in readers and "rt-small-train" not in readers
    explain = results[7]["result"]
    assert "0 to run" in explain["message"], explain["message"]
    plan = json.loads(results[8]["result"]["message"])
    assert plan["to_run"] == len(plan["models"]) and plan["known"] > 0
    assert plan["estimated_s"] is not None and plan["estimated_s"] > 0
    # RANK runs now: text models are left out of vision data, TESTED ON is noted as unused.
    assert results[9]["status"] == "succeeded", results[9]["error"]
    ranked = results[9]["result"]
    assert ranked["tables"][0]["title"] == "logme (score: higher is better)"
    assert ranked["tables"][0]["columns"][0] == "name"
    assert {row[0] for row in ranked["tables"][0]["rows"]} >= set(PRETRAINED)
    assert "TESTED ON is not used by RANK" in ranked["message"]
    assert (
        "left out 4 model(s): 4 text (vision data); list them: "
        'SELECT name, modality, status, error FROM models WHERE modality != "vision"'
    ) in ranked["message"]


def test_events_stream_progress_then_done(installed: Cluster) -> None:
    _, body = installed.call("POST", "/v1/queries", {"text": PHOTO_QUERY})
    query_id = body["queries"][0]["id"]
    stream = urllib.request.urlopen(f"{installed.url}/v1/queries/{query_id}/events", timeout=120)
    events = []
    for raw in stream:
        line = raw.decode().strip()
        if line.startswith("event: "):
            events.append(line.split(": ", 1)[1])
        if line.startswith("data: ") and events[-1] == "done":
            assert json.loads(line[6:])["status"] == "succeeded"
            break
    assert events[-1] == "done"


def test_purge_register_and_paths(installed: Cluster) -> None:
    (purge,) = installed.query("PURGE RESULTS", session="purge")
    assert purge["status"] == "succeeded"
    message = purge["result"]["message"]
    assert "cached results" in message and "features kept" in message, message
    (explain,) = installed.query(f"EXPLAIN JSON {PHOTO_QUERY}", session="purge")
    plan = json.loads(explain["result"]["message"])
    classify = 2 * len(plan["models"])
    assert plan["to_run"] == classify, plan  # embeds kept, classify results purged
    (register,) = installed.query(
        'REGISTER DATASET "rt-tiny" (reader, bundle, split, max_rows) '
        "VALUES ('bundled', 'rotten_tomatoes', 'test', 32)",
        session="purge",
    )
    assert register["status"] == "succeeded", register["error"]
    assert register["result"]["tables"][0]["rows"][0][2] == 32
    status, body = installed.call(
        "POST", "/v1/datasets", {"name": "secret", "reader": "csv", "path": "/etc/passwd"}
    )
    assert status == 400 and "outside the data roots" in body["error"]["message"]
    status, body = installed.call(
        "POST", "/v1/datasets", {"name": "x", "reader": "csv", "pth": "a"}
    )
    assert status == 400 and "did you mean 'path'" in body["error"]["message"]
    status, body = installed.call("POST", "/v1/queries", {"text": "USE localhost:9000"})
    assert status == 400 and "client" in body["error"]["message"]


def test_restarted_broker_still_answers(installed: Cluster) -> None:
    (declared,) = installed.query("DECLARE kept AS SELECT name FROM text_models", session="s2")
    installed.stop_broker()
    installed.start_broker()
    again = installed.get(f"/v1/queries/{declared['id']}")
    assert again["status"] == "succeeded" and again["result"] == declared["result"]
    (printed,) = installed.query("PRINT kept", session="s2")
    assert len(printed["result"]["tables"][0]["rows"]) == 4


def _shift_query(installed: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shift", "query", "--url", installed.url, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def test_the_cli_says_cache_and_waits_by_id(installed: Cluster) -> None:
    """`shift query` says when the cache answered, and `--id` waits for an earlier query."""
    installed.query(PHOTO_QUERY)
    cached = _shift_query(installed, PHOTO_QUERY + " WAIT")
    assert cached.returncode == 0, cached.stderr
    assert "answered from cache (0 tasks run" in cached.stdout
    started = _shift_query(installed, PHOTO_QUERY.replace("ORDER BY err ASC", "ORDER BY acc DESC"))
    assert started.returncode == 0, started.stderr
    if "--id" in started.stdout:  # still running after the short look: wait for it by id
        query_id = started.stdout.split("shift query --id ")[1].split("`")[0]
        later = _shift_query(installed, "--id", query_id)
        assert later.returncode == 0, later.stderr
        assert "efficientnet-lite" in later.stdout
    else:
        assert "efficientnet-lite" in started.stdout
    missing = _shift_query(installed, "--id", "0123456789abcdef")
    assert missing.returncode == 1 and "404" in missing.stderr


def test_a_refused_statement_without_wait_fails_the_run(installed: Cluster) -> None:
    """A statement the broker refuses at once fails the run even without WAIT."""
    text = (
        'SELECT * FROM models ORDER BY err ASC TRAINED ON "rt-small-train" '
        'TESTED ON "photos-small-test"'
    )
    out = _shift_query(installed, text)
    assert out.returncode == 1, out.stdout
    assert "failed" in out.stderr and "mixes text and vision" in out.stderr


def test_text_training_data_with_an_image_test_set_fails_before_any_task(
    installed: Cluster,
) -> None:
    before = installed.task_count()
    (query,) = installed.query(
        'SELECT * FROM models ORDER BY err ASC TRAINED ON "rt-small-train" '
        'TESTED ON "photos-small-test" CLASSIFIED BY ["Cosine NN"]'
    )
    assert query["status"] == "failed"
    assert "mixes text and vision data" in query["error"]["message"]
    assert installed.task_count() == before


FEATURE_RANKERS = ("logme", "sfda", "hscore", "hscore_shrinkage", "transrate", "knn", "random")
RANK_QUERY = (
    'RANK * FROM image_models TRAINED ON "photos-small-train" BY ['
    + ", ".join(f'"{r}"' for r in FEATURE_RANKERS)
    + "]"
)


def _embeds(installed: Cluster) -> int:
    tasks = installed.get("/v1/tasks?kind=embed&limit=1000")["tasks"]
    return len(tasks)


def test_rank_reuses_the_search_features_and_puts_pretrained_first(installed: Cluster) -> None:
    """RANK with every feature ranker over the image pool, on the features the photo search
    stored: no embed task, one table per ranker, pretrained models above random-init ones."""
    installed.query(PHOTO_QUERY)
    embeds = _embeds(installed)
    (explained,) = installed.query("EXPLAIN " + RANK_QUERY)
    assert explained["status"] == "succeeded", explained["error"]
    plan = explained["result"]["tables"][0]
    assert plan["columns"][:4] == ["model", "tasks", "known", "to_run"]
    (query,) = installed.query(RANK_QUERY)
    assert query["status"] == "succeeded", query["error"]
    assert _embeds(installed) == embeds
    tables = {t["title"].split(" (")[0]: t for t in query["result"]["tables"]}
    assert list(tables) == list(FEATURE_RANKERS)
    order = {}
    for ranker, table in tables.items():
        name = table["columns"].index("name")
        order[ranker] = [row[name] for row in table["rows"]]
        low, high = table["columns"].index("ci_low"), table["columns"].index("ci_high")
        assert all(row[low] <= row[high] for row in table["rows"])
    print("\nRANK orders:", json.dumps(order))
    for ranker in ("logme", "sfda", "hscore", "hscore_shrinkage", "knn"):
        worst_pretrained = max(order[ranker].index(m) for m in PRETRAINED)
        best_random = min(order[ranker].index(m) for m in RANDOM)
        assert worst_pretrained < best_random, (ranker, order[ranker])
    before = installed.task_count()
    (again,) = installed.query(RANK_QUERY)
    assert again["status"] == "succeeded" and installed.task_count() == before


def test_rank_errors_before_any_task(installed: Cluster) -> None:
    before = installed.task_count()
    for text, expected in (
        ('RANK * FROM image_models TRAINED ON "photos-small-train" BY "logmee"', "did you mean"),
        (
            'RANK * FROM image_models TRAINED ON "photos-small-train" BY "leep"',
            "keep no source head",
        ),
        ('RANK * FROM image_models TRAINED ON "photos-small-train" BY "knn(k=2.5)"', "integer"),
    ):
        status, body = installed.call("POST", "/v1/queries", {"text": text})
        if status == 202:
            (query,) = [installed.final(q["id"]) for q in body["queries"]]
            assert query["status"] == "failed" and expected in query["error"]["message"]
        else:
            assert status == 400 and expected in json.dumps(body), body
    assert installed.task_count() == before


def test_leep_and_nce_read_the_pretrained_heads(installed: Cluster) -> None:
    (query,) = installed.query(
        'RANK * FROM ["efficientnet-lite0", "efficientnet-lite1"] '
        'TRAINED ON "photos-small-train" BY ["leep", "nce"]'
    )
    assert query["status"] == "succeeded", query["error"]
    for table in query["result"]["tables"]:
        score = table["columns"].index("score")
        assert all(row[score] < 0 for row in table["rows"])  # log-likelihoods
