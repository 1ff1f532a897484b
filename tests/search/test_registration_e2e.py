"""Registrations that cannot work fail at registration, with a message that says why.

A real broker and two worker processes: an empty and a one-class dataset fail their
measurement; a relative checkpoint path resolves against the data roots on the broker and on
the worker alike; a corrupt checkpoint is named corrupt; a model path outside the data roots
(whichever loader key holds it) is refused before anything is measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from .conftest import Cluster


def _register(cluster: Cluster, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    return cluster.call("POST", path + "?wait=true", body)


def _npz(cluster: Cluster, name: str, labels: list[int]) -> dict[str, Any]:
    images = np.zeros((len(labels), 8, 8), dtype=np.uint8)
    np.savez(cluster.tmp / "data" / f"{name}.npz", x=images, y=np.array(labels, dtype=np.int64))
    return {"name": name, "reader": "npz", "params": {"path": f"{name}.npz"}}


def _timm(name: str, checkpoint: Any) -> dict[str, Any]:
    loader = {"arch": "resnet10t", "checkpoint": checkpoint}
    return {"name": name, "family": "timm", "modality": "vision", "loader": loader}


@pytest.mark.parametrize(
    ("labels", "message"),
    [([], "has no rows"), ([7, 7, 7, 7], "has 1 class(es) in its 4 row(s)")],
)
def test_empty_and_one_class_datasets_fail_registration(
    cluster: Cluster, labels: list[int], message: str
) -> None:
    name = f"set-{len(labels)}"
    status, entry = _register(cluster, "/v1/datasets", _npz(cluster, name, labels))
    assert status == 201 and entry["status"] == "failed", entry
    assert message in entry["error"], entry["error"]
    listed = {d["name"]: d for d in cluster.get("/v1/datasets")["datasets"]}
    assert listed[name]["status"] == "failed"


def test_a_two_class_dataset_still_registers(cluster: Cluster) -> None:
    status, entry = _register(cluster, "/v1/datasets", _npz(cluster, "two", [0, 1, 0, 1]))
    assert status == 201 and entry["status"] == "ready", entry
    assert (entry["size"], entry["num_classes"]) == (4, 2)


def test_a_relative_checkpoint_resolves_against_the_data_roots(cluster: Cluster) -> None:
    import timm
    import torch

    (cluster.tmp / "data" / "ckpt").mkdir(exist_ok=True)
    torch.save(timm.create_model("resnet10t").state_dict(), cluster.tmp / "data" / "ckpt" / "r.pth")
    status, entry = _register(cluster, "/v1/models", _timm("relative", "ckpt/r.pth"))
    assert status == 201 and entry["status"] == "ready", entry
    assert entry["feature_dim"] == 512


def test_a_corrupt_checkpoint_is_named_corrupt(cluster: Cluster) -> None:
    (cluster.tmp / "data" / "ckpt").mkdir(exist_ok=True)
    (cluster.tmp / "data" / "ckpt" / "bad.pth").write_bytes(b"not a checkpoint at all")
    status, entry = _register(cluster, "/v1/models", _timm("corrupt", "ckpt/bad.pth"))
    assert status == 201 and entry["status"] == "failed", entry
    assert "bad.pth is corrupt or not a PyTorch state-dict file" in entry["error"], entry
    assert "does not exist" not in entry["error"]


@pytest.mark.parametrize(
    "body",
    [
        {
            "name": "hf-out",
            "family": "huggingface",
            "modality": "text",
            "loader": {"model": "/etc"},
        },
        {
            "name": "hf-ref-out",
            "family": "huggingface",
            "modality": "text",
            "loader": {"model": {"path": "/etc"}},
        },
        {
            "name": "onnx-tok-out",
            "family": "onnx_bert",
            "modality": "text",
            "loader": {"onnx": "m.onnx", "tokenizer": "/etc"},
        },
        _timm("timm-out", "/etc/hostname"),
        _timm("timm-climb", "ckpt/../../state/x.pth"),
    ],
)
def test_model_paths_outside_the_data_roots_are_refused(
    cluster: Cluster, body: dict[str, Any]
) -> None:
    (cluster.tmp / "data" / "m.onnx").write_bytes(b"exists, so only the tokenizer is refused")
    status, answer = cluster.call("POST", "/v1/models", body)
    assert status == 400, answer
    message = answer["error"]["message"]
    assert "outside the data roots" in message or "may not climb" in message, message
    names = [m["name"] for m in cluster.get("/v1/models")["models"]]
    assert body["name"] not in names
