"""Hub models without internet: a real broker and one worker process, REST and SHiFT-QL.

The worker runs without ``HF_HUB_OFFLINE``, its hub endpoint (``HF_ENDPOINT``) a loopback
socket that accepts and never answers (a hub that hangs), and its caches (``HF_HOME``,
``TORCH_HOME``) in the test's folder. A hub id that is not cached fails within 2 s naming the
cache folder to pre-seed; hub ids the test pre-seeds into that cache (a tiny BERT and a timm
checkpoint, in the hub cache's own layout) register and run; ``pretrained = false`` with an
``input_size`` registers a random ViT at 96 px that a search then runs on; and the worker's
log has none of transformers' load reports or progress bars, but still shift's own warning.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shift import zoo

from .conftest import ROOT, Cluster

COMMIT = "0123456789abcdef0123456789abcdef01234567"
"""The snapshot revision of the pre-seeded hub repositories."""

FAIL_FAST_S = 2.0
"""Longest an uncached hub id may take to fail (the hub client's retries took ~47 s)."""


class SilentHub:
    """A loopback TCP endpoint that accepts connections and never answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


class HubCluster(Cluster):
    """A broker and one worker whose hub is unreachable and whose caches are the test's."""

    def __init__(self, tmp: Path, hub: SilentHub) -> None:
        super().__init__(tmp)
        self.hf_home = tmp / "hf"
        self.torch_home = tmp / "torch"
        self.hub = hub

    def worker_env(self) -> dict[str, str]:
        drop = {"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TRANSFORMERS_VERBOSITY"}
        drop |= {k for k in os.environ if k.lower().endswith("_proxy")}
        return {
            **{k: v for k, v in os.environ.items() if k not in drop},
            "HF_HOME": str(self.hf_home),
            "TORCH_HOME": str(self.torch_home),
            "HF_ENDPOINT": self.hub.url,
            "OMP_NUM_THREADS": "1",
            "SHIFT_DATA_ROOTS": str(self.tmp / "data"),
            "SHIFT_STATE_DIR": str(self.tmp / "state"),
        }

    def start_workers(self, count: int) -> None:
        command = [sys.executable, "-m", "workers", "--broker", self.zmq, "--id", "w0"]
        command += ["--heartbeat-ms", "200"]
        with open(self.logs / "w0.log", "a") as log:
            self.workers.append(
                subprocess.Popen(command, stderr=log, cwd=ROOT, env=self.worker_env())
            )
        self.wait_for(lambda: len(self.get("/v1/workers")["workers"]) >= 1, "the worker")

    def worker_log(self) -> str:
        return (self.logs / "w0.log").read_text()

    def snapshot(self, repo: str) -> Path:
        """The snapshot folder of ``repo`` in the worker's hub cache (refs/main set)."""
        folder = self.hf_home / "hub" / ("models--" + repo.replace("/", "--"))
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text(COMMIT)
        snapshot = folder / "snapshots" / COMMIT
        snapshot.mkdir(parents=True, exist_ok=True)
        return snapshot

    def timed(self, text: str) -> tuple[dict[str, Any], float]:
        started = time.monotonic()
        (query,) = self.query(text)
        return query, time.monotonic() - started


def _seed_tiny_bert(snapshot: Path) -> None:
    """A 2-layer BERT with its tokenizer, saved as save_pretrained does, without the pooler's
    weights (so loading it reports missing weights)."""
    import transformers
    from safetensors.torch import load_file, save_file

    words = ["good", "bad", "film", "plot", "great", "awful", "the", "a", "is", "was"]
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    transformers.BertModel(config).save_pretrained(snapshot)
    transformers.BertTokenizerFast(vocab=vocab).save_pretrained(snapshot)
    weights = snapshot / "model.safetensors"
    state = {k: v for k, v in load_file(str(weights)).items() if "pooler" not in k}
    save_file(state, str(weights), metadata={"format": "pt"})


def _seed_timm(snapshot: Path, arch: str) -> None:
    import timm
    from safetensors.torch import save_file

    state = timm.create_model(arch, pretrained=False).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))


def _images(cluster: Cluster, name: str, rows: int, seed: int) -> None:
    """Two classes of 32x32 grey images, dark and light, with noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % 2
    images = rng.integers(0, 96, size=(rows, 32, 32)) + 128 * labels[:, None, None]
    np.savez(cluster.tmp / "data" / f"{name}.npz", x=images.astype(np.uint8), y=labels)
    status, entry = cluster.call(
        "POST",
        "/v1/datasets?wait=true",
        {"name": name, "reader": "npz", "params": {"path": f"{name}.npz"}},
    )
    assert status in (200, 201) and entry["status"] == "ready", entry


@pytest.fixture(scope="module")
def hub_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubCluster]:
    """The broker and the worker; the worker has timm and transformers loaded (it measured a
    random-init ViT), so the timings below are the hub's, not the imports'."""
    hub = SilentHub()
    running = HubCluster(tmp_path_factory.mktemp("hub"), hub)
    try:
        running.start_broker()
        running.start_workers(1)
        (query,) = running.query(
            'REGISTER MODEL "vit96-random" (source, architecture, pretrained, input_size) '
            "VALUES ('timm', 'vit_tiny_patch16_224', false, 96)"
        )
        assert query["status"] == "succeeded", query["error"]
        status, entry = running.call(
            "POST", "/v1/models?wait=true", zoo.model("minilm-l6-layer2").to_json()
        )
        assert status in (200, 201) and entry["status"] == "ready", entry
        yield running
    finally:
        running.stop()
        hub.close()


@pytest.mark.parametrize(
    ("statement", "folder", "fix"),
    [
        (
            "REGISTER MODEL \"resnet18\" (source, hub_id) VALUES ('timm', 'resnet18')",
            "models--timm--resnet18.a1_in1k",
            "(source, architecture, checkpoint) VALUES ('timm', 'resnet18'",
        ),
        (
            'REGISTER MODEL "bert" (source, hub_id, modality) '
            "VALUES ('huggingface', 'google-bert/bert-base-uncased', 'text')",
            "models--google-bert--bert-base-uncased",
            "(source, path, modality) VALUES ('huggingface', 'FOLDER', 'text')",
        ),
    ],
)
def test_an_uncached_hub_id_fails_fast_saying_what_to_do(
    hub_cluster: HubCluster, statement: str, folder: str, fix: str
) -> None:
    query, took_s = hub_cluster.timed(statement)
    print(f"\n{statement.split('(')[0]}failed in {took_s:.2f} s")
    assert query["status"] == "failed"
    message = query["error"]["message"]
    assert "LocalEntryNotFoundError" not in message
    assert "not in this worker's cache" in message and "hub cannot be reached" in message
    assert f"{hub_cluster.hub.url} did not answer within 1 s" in message
    assert "run this worker once with network access" in message
    assert f"copy the folder {folder}" in message
    assert f"into {hub_cluster.hf_home / 'hub'} (HF_HUB_CACHE, default $HF_HOME/hub" in message
    assert fix in message
    assert took_s < FAIL_FAST_S, took_s
    if "timm" in statement:
        assert str(hub_cluster.torch_home / "hub" / "checkpoints") in message


def test_a_pre_seeded_hub_cache_loads_offline(hub_cluster: HubCluster) -> None:
    """Hub ids found in the worker's cache load from it: no hub, no hang."""
    _seed_tiny_bert(hub_cluster.snapshot("shift-test/tiny-bert"))
    _seed_timm(hub_cluster.snapshot("timm/test_vit.r160_in1k"), "test_vit")
    bert, bert_s = hub_cluster.timed(
        'REGISTER MODEL "tiny-bert" (source, hub_id, modality) '
        "VALUES ('huggingface', 'shift-test/tiny-bert', 'text')"
    )
    vit, vit_s = hub_cluster.timed(
        "REGISTER MODEL \"test-vit\" (source, hub_id) VALUES ('timm', 'test_vit')"
    )
    print(f"\nfrom the cache: tiny-bert {bert_s:.2f} s, test_vit {vit_s:.2f} s")
    assert bert["status"] == "succeeded", bert["error"]
    assert vit["status"] == "succeeded", vit["error"]
    models = {m["name"]: m for m in hub_cluster.get("/v1/models")["models"]}
    assert models["tiny-bert"]["feature_dim"] == 32
    assert models["test-vit"]["status"] == "ready"
    assert models["test-vit"]["input_size"] == 160
    # shift's own warning about the pooler weights the checkpoint lacks still shows
    assert "weight(s) missing from shift-test/tiny-bert" in hub_cluster.worker_log()


def test_a_random_vit_at_96_px_is_searched_offline(hub_cluster: HubCluster) -> None:
    models = {m["name"]: m for m in hub_cluster.get("/v1/models")["models"]}
    vit = models["vit96-random"]
    assert (vit["status"], vit["input_size"], vit["feature_dim"]) == ("ready", 96, 192)
    _images(hub_cluster, "hub-train", 24, seed=0)
    _images(hub_cluster, "hub-test", 12, seed=1)
    (query,) = hub_cluster.query(
        'SELECT * FROM ["vit96-random"] ORDER BY err ASC TRAINED ON "hub-train" '
        'TESTED ON "hub-test" CLASSIFIED BY ["Cosine NN"]'
    )
    assert query["status"] == "succeeded", query["error"]
    (table, *_) = query["result"]["tables"]
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]
    assert [row["name"] for row in rows] == ["vit96-random"], rows
    assert 0.0 <= rows[0]["err"] <= 1.0
    embeds = hub_cluster.get("/v1/tasks?kind=embed&limit=100")["tasks"]
    assert embeds and all(t["state"] == "succeeded" for t in embeds), json.dumps(embeds)[:500]


def test_the_worker_log_has_no_load_reports_or_progress_bars(hub_cluster: HubCluster) -> None:
    """A zoo text model whose checkpoint has more layers than it keeps (transformers reports
    the unused ones) loaded in this worker, and the pre-seeded BERT lacking its pooler."""
    log = hub_cluster.worker_log()
    assert "minilm-l6-layer2" in json.dumps(hub_cluster.get("/v1/models"))
    assert "LOAD REPORT" not in log, log[-2000:]
    assert "Loading weights" not in log, log[-2000:]
    assert "it/s]" not in log, log[-2000:]
