"""An upstream-style SHiFT-QL script, end to end: a real broker, two workers.

``examples/upstream_style.shiftql`` is written the way upstream SHiFT's example scripts are
(quoted REGISTER columns, ``select all``, a probe DECLAREd by ``torchvision_name``, ``tested
on task``, ``chunk auto budget auto``). The test writes the files it names in torchvision's
on-disk formats: MNIST idx files of scikit-learn's digits drawn at MNIST's size, a second
MNIST root with the test split's 7s labelled 1, and CIFAR-10 binary batches of crops of
scikit-image's photos (train crops from the top half of each photo, test crops from the
bottom half). It registers two zoo timm models over REST (as ``shift zoo install`` does),
runs the script's text through ``POST /v1/queries``, and checks real outcomes: every
statement succeeds, ``size`` caps the rows, the mutated test set answers like the same rows
registered as a dataset, BENCHMARK with CHUNK picks the exhaustive winner with the same
score; then ``shift query -f`` runs the file again and creates no task.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shift import zoo

from .conftest import ROOT, Cluster

SCRIPT = ROOT / "examples" / "upstream_style.shiftql"
ZOO_MODELS = ("efficientnet-lite0", "efficientnet-lite0-random")
POOL = {*ZOO_MODELS, "mobilenet-v3-small"}
DIGITS = (0, 1, 3, 7)
"""The digit classes written; the script's mutation relabels the 7s as 1."""
DIGITS_PER_CLASS = {"train": 15, "test": 6}
PHOTOS = ("astronaut", "coffee", "cat", "rocket")
"""The scikit-image photos cut into CIFAR-10 records, labelled 0..3 in this order."""
CROPS_PER_PHOTO = {"train": 12, "test": 6}


def _idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an idx file (magic 0x0000 0x08 ndim, big-endian sizes)."""
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits drawn at 20x20 inside a 28x28 frame, as MNIST centres them."""
    from skimage.transform import resize
    from sklearn.datasets import load_digits

    bunch = load_digits()
    skip = 0 if split == "train" else DIGITS_PER_CLASS["train"]
    images, labels = [], []
    for digit in DIGITS:
        rows = np.flatnonzero(bunch.target == digit)[skip : skip + DIGITS_PER_CLASS[split]]
        for row in rows:
            frame = np.zeros((28, 28), dtype=np.uint8)
            frame[4:24, 4:24] = np.round(resize(bunch.images[row] / 16.0, (20, 20)) * 255)
            images.append(frame)
            labels.append(digit)
    return np.stack(images), np.array(labels, dtype=np.uint8)


def _write_mnist(root: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    stem = "train" if split == "train" else "t10k"
    _idx(raw / f"{stem}-images-idx3-ubyte", images)
    _idx(raw / f"{stem}-labels-idx1-ubyte", labels)


def _crops(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Seeded 96-pixel crops of each photo, shrunk to 32x32 (train: top half, test: bottom)."""
    import skimage.data
    from skimage.transform import resize

    images, labels = [], []
    for label, name in enumerate(PHOTOS):
        photo = getattr(skimage.data, name)()[:, :, :3]
        half = photo.shape[0] // 2
        top = 0 if split == "train" else half
        rng = np.random.default_rng([label, 0 if split == "train" else 1])
        for _ in range(CROPS_PER_PHOTO[split]):
            y = int(rng.integers(top, top + half - 96 + 1))
            x = int(rng.integers(0, photo.shape[1] - 96 + 1))
            crop = resize(photo[y : y + 96, x : x + 96], (32, 32), anti_aliasing=True)
            images.append(np.round(crop * 255).astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.uint8)


def _cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: one label byte, then the R, G and B planes of 32x32."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([labels[:, None], planes], axis=1).astype(np.uint8).tobytes()


def _write_cifar(root: Path) -> None:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = _crops("train")
    order = np.random.default_rng(7).permutation(len(images))  # batches mix the classes
    for batch, rows in enumerate(np.array_split(order, 5), start=1):
        (folder / f"data_batch_{batch}.bin").write_bytes(_cifar_records(images[rows], labels[rows]))
    (folder / "test_batch.bin").write_bytes(_cifar_records(*_crops("test")))


def write_data(data: Path) -> None:
    """Every file the script names, under the data root ``data``."""
    for split in ("train", "test"):
        _write_mnist(data / "torch-data", split, *_digits(split))
    images, labels = _digits("test")
    _write_mnist(data / "torch-relabelled", "test", images, np.where(labels == 7, 1, labels))
    _write_cifar(data / "torch-data")


@pytest.fixture(scope="module")
def ran(cluster: Cluster) -> tuple[Cluster, list[dict[str, Any]]]:
    """The cluster after the script ran once through ``POST /v1/queries``, and its queries."""
    write_data(cluster.tmp / "data")
    cluster.register([("/v1/models", zoo.model(m).to_json()) for m in ZOO_MODELS])
    queries = cluster.query(SCRIPT.read_text(encoding="utf-8"), session="upstream")
    return cluster, queries


def _table(query: dict[str, Any]) -> dict[str, Any]:
    return query["result"]["tables"][0]


def _rows(query: dict[str, Any]) -> list[dict[str, Any]]:
    table = _table(query)
    return [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]


def _of(queries: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [q for q in queries if q["kind"] == kind]


def test_every_statement_succeeds(ran: tuple[Cluster, list[dict[str, Any]]]) -> None:
    _, queries = ran
    statements = [line for line in SCRIPT.read_text().splitlines() if line.endswith(";")]
    assert len(queries) == len(statements) == 15
    failed = [(q["statement"], q["error"]) for q in queries if q["status"] != "succeeded"]
    assert failed == []


def test_upstream_register_columns_become_torchvision_readers(
    ran: tuple[Cluster, list[dict[str, Any]]],
) -> None:
    _, queries = ran
    rows = {row["name"]: row for q in _of(queries, "register") for row in _rows(q)}
    model = rows["mobilenet-v3-small"]
    assert (model["source"], model["torchvision_name"]) == ("torchvision", "MobileNet_V3_Small")
    assert model["feature_dim"] == 1024  # the input of its last linear layer
    sizes = {
        name: (row["reader"], row["size"], row["num_classes"])
        for name, row in rows.items()
        if name != "mobilenet-v3-small"
    }
    assert sizes["mnist-train"] == ("torchvision", 40, 4)  # 60 rows on disk, size 40
    assert sizes["mnist-test"] == ("torchvision", 24, 4)
    assert sizes["mnist-test-7as1"] == ("torchvision", 24, 3)  # the 7s are 1s: no 7 left
    assert sizes["cifar10-train"] == ("torchvision", 48, 4)
    assert sizes["cifar10-test"] == ("torchvision", 24, 4)
    assert rows["cifar10-train"]["date_added"] == "2022-03-01"


def test_select_all_and_the_torchvision_probe(ran: tuple[Cluster, list[dict[str, Any]]]) -> None:
    _, queries = ran
    listed = _of(queries, "select")[0]
    assert {row["name"] for row in _rows(listed)} == POOL
    assert "tf_image_model_url" in _table(listed)["columns"]  # all: every model column
    declared = {q["statement"].split()[1]: q for q in _of(queries, "declare")}
    assert {row["name"] for row in _rows(declared["my_probe"])} == {"mobilenet-v3-small"}
    assert {row["name"] for row in _rows(declared["my_models"])} == POOL
    (vec,) = _of(queries, "vec_select")
    table = _table(vec)
    names = [row[0] for row in table["rows"]]
    assert sorted(names) == ["cifar10-test", "mnist-test", "mnist-train"]
    matrix = np.array([row[1:] for row in table["rows"]], dtype=float)
    assert np.array_equal(matrix, matrix.T) and np.all(np.diag(matrix) == 0)
    assert np.all(matrix[~np.eye(3, dtype=bool)] > 0)
    # MNIST's two splits are the closest pair
    assert "probe mobilenet-v3-small" in vec["result"]["message"]
    assert "closest pair: mnist-train and mnist-test" in vec["result"]["message"]


def _scores(query: dict[str, Any]) -> dict[str, tuple[float, int]]:
    return {row["name"]: (row["err"], row["test_rows"]) for row in _rows(query)}


def test_the_mutation_answers_like_the_same_rows_registered(
    ran: tuple[Cluster, list[dict[str, Any]]],
) -> None:
    _, queries = ran
    mutated, registered = _of(queries, "task_select")[:2]
    assert "CHANGE" in mutated["statement"] and "CHANGE" not in registered["statement"]
    assert _scores(mutated) == _scores(registered)
    assert set(_scores(mutated)) == POOL
    assert all(rows == 24 for _, rows in _scores(mutated).values())


def test_benchmark_with_chunk_picks_the_exhaustive_winner(
    ran: tuple[Cluster, list[dict[str, Any]]],
) -> None:
    _, queries = ran
    exhaustive, halving = _of(queries, "task_select")[2:]
    assert "CHUNK AUTO" in halving["statement"] and "CHUNK" not in exhaustive["statement"]
    best = _rows(exhaustive)[0]
    assert best["name"] == "efficientnet-lite0"  # the pretrained model beats both random ones
    top = _rows(halving)[0]
    assert top["name"] == best["name"] and top["err"] == best["err"]


def test_the_script_again_through_the_cli_creates_no_task(
    ran: tuple[Cluster, list[dict[str, Any]]],
) -> None:
    cluster, _ = ran
    before = cluster.task_count()
    out = subprocess.run(
        [sys.executable, "-m", "shift", "query", "--url", cluster.url, "-f", str(SCRIPT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("already registered") == 6, out.stdout
    assert "efficientnet-lite0" in out.stdout and "cifar10-test" in out.stdout
    assert cluster.task_count() == before
