"""Bulk import from timm's registry through a real broker and workers, offline.

Registration measures num_params/feature_dim on the meta device and loads no weights: no
``describe`` task runs for an imported model, and the catalog answers over the imported
rows at once.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.search.conftest import Cluster

IMPORT = (
    "REGISTER MODELS FROM timm WHERE (name LIKE 'convnext%' OR name LIKE 'resnet1%') AND pretrained"
)


def one(cluster: Cluster, text: str) -> dict[str, Any]:
    (query,) = cluster.query(text)
    return query


def rows_of(query: dict[str, Any]) -> list[dict[str, Any]]:
    assert query["status"] == "succeeded", query["error"]
    table = query["result"]["tables"][0]
    return [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]


def kinds(cluster: Cluster) -> list[str]:
    return [t["kind"] for t in cluster.get("/v1/tasks?limit=1000")["tasks"]]


@pytest.fixture(scope="module")
def imported(cluster: Cluster) -> dict[str, Any]:
    started = time.monotonic()
    query = one(cluster, IMPORT)
    seconds = time.monotonic() - started
    print(f"\nimported {len(rows_of(query))} timm models in {seconds:.1f} s: "
          f"{query['result']['message']}")  # fmt: skip
    return query


def test_import_registers_over_100_measured_models_without_weights(cluster, imported) -> None:
    rows = rows_of(imported)
    assert len(rows) >= 100
    assert all(r["source"] == "timm" and r["modality"] == "vision" for r in rows)
    assert all(isinstance(r["num_params"], int) and r["num_params"] > 0 for r in rows)
    assert all(isinstance(r["feature_dim"], int) and r["feature_dim"] > 0 for r in rows)
    by_name = {r["name"]: r for r in rows}
    # timm's convnext_atto without its classifier: 3,374,520 parameters, 320 features
    assert by_name["convnext_atto.d2_in1k"]["num_params"] == 3_374_520
    assert by_name["convnext_atto.d2_in1k"]["feature_dim"] == 320
    assert by_name["convnext_base.fb_in22k_ft_in1k_384"]["input_size"] == 384
    assert by_name["resnet18.a1_in1k"]["feature_dim"] == 512
    assert by_name["convnext_atto.d2_in1k"]["license"] == "apache-2.0"
    assert "describe" not in kinds(cluster) and "embed" not in kinds(cluster)
    models = cluster.get("/v1/models")["models"]
    assert {m["name"] for m in models} >= set(by_name)
    assert all(m["status"] == "ready" for m in models if m["name"] in by_name)


def test_catalog_query_over_the_imported_models(cluster, imported) -> None:
    text = "SELECT name, num_params FROM models WHERE num_params < 10M ORDER BY num_params LIMIT 5"
    rows = rows_of(one(cluster, text))
    sizes = [r["num_params"] for r in rows]
    assert len(rows) == 5 and sizes == sorted(sizes) and sizes[-1] < 10_000_000
    assert all(r["name"].startswith(("convnext", "resnet1")) for r in rows)


def test_a_second_import_is_already_registered_and_measures_nothing(cluster, imported) -> None:
    query = one(cluster, IMPORT)
    message = query["result"]["message"]
    assert "registered 0 model(s)" in message and "measured 0 architecture(s)" in message


def test_browse_lists_without_registering(cluster, imported) -> None:
    before = len(cluster.get("/v1/models")["models"])
    text = (
        "SELECT name, pretrained, num_params, feature_dim FROM timm_registry "
        "WHERE architecture = 'vit_tiny_patch16_224' ORDER BY name"
    )
    rows = rows_of(one(cluster, text))
    assert rows[0] == {"name": "vit_tiny_patch16_224", "pretrained": False,
                       "num_params": 5_524_416, "feature_dim": 192}  # fmt: skip
    assert len(rows) >= 2 and all(r["pretrained"] for r in rows[1:])
    assert len(cluster.get("/v1/models")["models"]) == before


def test_bad_imports_fail_before_any_registration(cluster, imported) -> None:
    status, body = cluster.call("POST", "/v1/queries", {"text": "REGISTER MODELS FROM timmm"})
    assert status == 400 and "did you mean 'timm'" in str(body["error"]), body
    text = "REGISTER MODELS FROM timm WHERE nmae LIKE 'convnext%'"
    status, body = cluster.call("POST", "/v1/queries", {"text": text})
    assert status == 400 and "did you mean 'name'" in str(body["error"]), body
    nothing = one(cluster, "REGISTER MODELS FROM timm WHERE name LIKE 'no_such_model%'")
    assert nothing["status"] == "failed" and "matched no model" in nothing["error"]["message"]
    loader = {"arch": "tf_efficientnet_lite0", "pretrained": False, "seed": 1}
    control = {"name": "tf_efficientnet_lite0", "family": "timm", "modality": "vision",
               "loader": loader}  # fmt: skip
    cluster.register([("/v1/models", control)])
    clash = one(cluster, "REGISTER MODELS FROM timm WHERE architecture = 'tf_efficientnet_lite0'")
    assert clash["status"] == "failed"
    assert "'tf_efficientnet_lite0'" in clash["error"]["message"]
    assert "nothing was registered" in clash["error"]["message"]
    names = {m["name"] for m in cluster.get("/v1/models")["models"]}
    assert "tf_efficientnet_lite0.in1k" not in names


def test_shift_models_browse_prints_the_rows(cluster, imported, capsys) -> None:
    import argparse

    from repl import models_command

    parser = argparse.ArgumentParser()
    models_command.configure(parser)
    args = parser.parse_args(
        ["browse", "timm", "--where", "architecture = 'resnet18' AND pretrained",
         "--columns", "name, num_params", "--format", "csv", "--url", cluster.url]
    )  # fmt: skip
    assert models_command.run(args) == 0
    out = capsys.readouterr()
    assert "SELECT name, num_params FROM timm_registry" in out.err
    assert "resnet18.a1_in1k,11176512" in out.out, out.out


def test_explain_a_browse_says_it_lists_the_registry(cluster) -> None:
    query = one(cluster, "EXPLAIN JSON SELECT name FROM timm_registry WHERE pretrained")
    assert query["status"] == "succeeded", query["error"]
    assert "registry listing" in json.dumps(query["result"])


def test_hub_search_offline_fails_fast_with_what_to_do(cluster) -> None:
    started = time.monotonic()
    query = one(
        cluster,
        "REGISTER MODELS FROM huggingface WHERE pipeline_tag = 'image-classification' "
        "AND library = 'timm' LIMIT 20",
    )
    seconds = time.monotonic() - started
    assert query["status"] == "failed"
    message = query["error"]["message"]
    assert "offline" in message and "HF_HUB_OFFLINE" in message and "timm_registry" in message
    # the worker answers at once (tests/workers); this bounds queueing and polling on a
    # loaded machine, far below the ~47 s of Hub retries a hub id used to wait
    assert seconds < 20, seconds
