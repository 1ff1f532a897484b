"""Upstream SHiFT's readers and model sources through a real broker and worker process.

Datasets in torchvision's MNIST idx format and in TensorFlow Datasets' TFRecord format are
written here; a torchvision architecture with random init is registered with REGISTER
columns, searched (embedded and classified by the worker), and found by ``torchvision_name``;
a TF-Hub model registers as a catalog row, and a search over it fails saying why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from tests.search.conftest import Cluster
from tests.workers.test_tfds_reader import example, png, prepare
from tests.workers.test_torchvision_reader import idx

TF_URL = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5"


def write_digits(root: Path) -> None:
    """sklearn's 8x8 digits as MNIST idx files (16 train, 12 test rows, upscaled to 28x28)."""
    digits = load_digits()
    images = np.kron(digits.images[:28] * 16, np.ones((3, 3)))[:, :, :]
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))).clip(0, 255).astype(np.uint8)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, rows in (("train", slice(0, 16)), ("t10k", slice(16, 28))):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx(images[rows]))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(digits.target[rows] % 2))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A broker and one worker; the torch cache is an empty folder (nothing to download)."""
    tmp = tmp_path_factory.mktemp("upstream")
    saved = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(tmp / "torch")
    running = Cluster(tmp)
    write_digits(tmp / "data" / "digits")
    try:
        running.start_broker()
        running.start_workers(1)
        yield running
    finally:
        running.stop()
        if saved is None:
            os.environ.pop("TORCH_HOME", None)
        else:
            os.environ["TORCH_HOME"] = saved


def one(cluster: Cluster, text: str) -> dict:
    (query,) = cluster.query(text)
    return query


@pytest.fixture(scope="module")
def digits(cluster: Cluster) -> Cluster:
    """The digits registered as two torchvision-reader datasets with REGISTER columns."""
    for name, split in (("digits-train", "train"), ("digits-test", "test")):
        query = one(
            cluster,
            f'REGISTER DATASET "{name}" (reader, dataset, root, split) '
            f"VALUES ('torchvision', 'MNIST', 'digits', '{split}')",
        )
        assert query["status"] == "succeeded", query["error"]
        size = query["result"]["tables"][0]["rows"][0][2]
        assert size == (16 if split == "train" else 12)
    return cluster


def test_torchvision_data_and_a_random_init_torchvision_model_search(digits: Cluster) -> None:
    cluster = digits
    query = one(
        cluster,
        'REGISTER MODEL "mnv3-random" (source, torchvision_name, pretrained) '
        "VALUES ('torchvision', 'MobileNet_V3_Small', 'false')",
    )
    assert query["status"] == "succeeded", query["error"]
    row = dict(
        zip(
            query["result"]["tables"][0]["columns"],
            query["result"]["tables"][0]["rows"][0],
            strict=True,
        )
    )
    assert row["torchvision_name"] == "MobileNet_V3_Small" and row["feature_dim"] == 1024
    found = one(
        cluster,
        "SELECT name, torchvision_name FROM image_models "
        "WHERE torchvision_name = 'MobileNet_V3_Small'",
    )
    assert found["result"]["tables"][0]["rows"] == [["mnv3-random", "MobileNet_V3_Small"]]
    search = one(
        cluster,
        "SELECT * FROM image_models WHERE source = 'torchvision' ORDER BY err ASC "
        'TRAINED ON "digits-train" TESTED ON "digits-test" CLASSIFIED BY ["Cosine NN"]',
    )
    assert search["status"] == "succeeded", search["error"]
    (table,) = search["result"]["tables"]
    rows = [dict(zip(table["columns"], r, strict=True)) for r in table["rows"]]
    assert [r["name"] for r in rows] == ["mnv3-random"]
    assert (rows[0]["train_rows"], rows[0]["test_rows"]) == (16, 12)
    assert 0.0 <= rows[0]["err"] <= 1.0


def test_a_tfds_dataset_registers_through_the_broker(cluster: Cluster) -> None:
    data_dir = cluster.tmp / "data" / "tensorflow_datasets"
    train = [[example(image=png(10 * i), label=[i % 2]) for i in range(5)]]
    prepare(data_dir, "cifar10", "3.0.2", {"train": train, "test": train})
    status, entry = cluster.call(
        "POST",
        "/v1/datasets?wait=true",
        {"name": "vtab-c10", "reader": "vtab", "params": {"task": "CIFAR-10", "split": "train800"}},
    )
    assert status == 201 and entry["status"] == "ready", entry
    assert (entry["size"], entry["num_classes"]) == (5, 2)
    status, body = cluster.call(
        "POST",
        "/v1/datasets",
        {"name": "escape", "reader": "tfds", "params": {"name": "x", "data_dir": "/etc"}},
    )
    assert status == 400 and "outside the data roots" in body["error"]["message"], body


def test_a_tf_hub_model_is_a_catalog_row_and_searching_it_says_why_not(digits: Cluster) -> None:
    cluster = digits
    query = one(
        cluster,
        'REGISTER MODEL "tf-mobilenet" (source, tf_image_model_url) '
        f"VALUES ('tensorflow', '{TF_URL}')",
    )
    assert query["status"] == "succeeded", query["error"]
    listed = one(cluster, f"SELECT name FROM image_models WHERE tf_image_model_url = '{TF_URL}'")
    assert listed["result"]["tables"][0]["rows"] == [["tf-mobilenet"]]
    search = one(
        cluster,
        "SELECT * FROM image_models WHERE source = 'tensorflow' "
        'TRAINED ON "digits-train" TESTED ON "digits-test"',
    )
    assert search["status"] == "failed", search
    message = search["error"]["message"]
    assert f"model 'tf-mobilenet' is the TF-Hub model {TF_URL}" in message, message
    assert "cannot run (shift runs PyTorch models only)" in message
