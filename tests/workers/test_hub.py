"""Hub reachability, the REGISTER columns ``pretrained`` and ``input_size``, and what a timm
model built for an input size runs at (in process, no network: loopback endpoints only)."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from shift.errors import CatalogError
from shift.registration import model_spec_from_fields
from workers.models import hub
from workers.models.hub import HubStatus, _answers


@pytest.fixture
def answering() -> Iterator[str]:
    """A loopback HTTP server that answers every HEAD with 404."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for connection in held:
        connection.close()


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_an_answer_of_any_status_means_reachable(answering: str) -> None:
    assert _answers(answering, 1.0)


@pytest.mark.parametrize("hang", [True, False])
def test_a_silent_or_closed_endpoint_is_unreachable_within_the_timeout(
    silent: str, hang: bool
) -> None:
    started = time.monotonic()
    assert not _answers(silent if hang else _closed_port(), 0.5)
    assert time.monotonic() - started < 1.5


def test_the_verdict_is_reused_for_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub, "_endpoint", lambda: "http://hub.invalid")
    probes: list[str] = []
    answer = [False]
    now = [100.0]

    def probe(url: str, timeout_s: float) -> bool:
        probes.append(url)
        return answer[0]

    status = HubStatus(probe, lambda: now[0])
    assert status.offline_reason() == "http://hub.invalid did not answer within 1 s"
    answer[0] = True
    now[0] += hub.VERDICT_TTL_S - 1
    assert status.offline_reason() is not None and len(probes) == 1
    now[0] += 2
    assert status.offline_reason() is None and len(probes) == 2


def test_hf_hub_offline_needs_no_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    status = HubStatus(lambda url, timeout_s: pytest.fail("probed"), time.monotonic)
    assert status.offline_reason() == "HF_HUB_OFFLINE is set"


@pytest.mark.parametrize(
    ("fields", "loader"),
    [
        (
            {"source": "timm", "architecture": "vit_tiny_patch16_224", "pretrained": False},
            {"arch": "vit_tiny_patch16_224", "pretrained": False},
        ),
        (
            {"source": "timm", "hub_id": "resnet18", "pretrained": True, "input_size": 160},
            {"arch": "resnet18", "pretrained": True, "input_size": 160},
        ),
        (
            {
                "source": "huggingface",
                "hub_id": "org/bert",
                "modality": "text",
                "pretrained": False,
            },
            {"model": "org/bert", "random_init": True},
        ),
        (
            {"source": "huggingface", "hub_id": "org/bert", "modality": "text", "pretrained": True},
            {"model": "org/bert"},
        ),
    ],
)
def test_pretrained_and_input_size_columns(fields: dict, loader: dict) -> None:
    assert model_spec_from_fields("m", fields).loader == loader


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source": "timm", "architecture": "resnet18", "pretrained": "no"}, "true or false"),
        (
            {"source": "timm", "architecture": "resnet18", "pretrained": False, "checkpoint": "r"},
            "leave out checkpoint",
        ),
        (
            {"source": "local", "path": "m.pt2", "pretrained": False},
            "pretrained is for timm, huggingface and torchvision models, not 'local'",
        ),
        (
            {"source": "huggingface", "hub_id": "o/v", "modality": "vision", "input_size": 96},
            "image processor sets its input size",
        ),
    ],
)
def test_bad_pretrained_and_input_size_columns(fields: dict, message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        model_spec_from_fields("m", fields)


@pytest.mark.parametrize(
    ("arch", "size", "grid"),
    [("test_vit", 96, (96, 96)), ("resnet10t", 64, None), ("resnet10t", None, None)],
)
def test_a_timm_model_runs_at_its_input_size(arch: str, size: int | None, grid: object) -> None:
    """A ViT is built for the size (its patch grid); every model's preprocessing resizes to
    it; without one the architecture's own size holds."""
    from PIL import Image

    from shift.specs import Modality, ModelSpec
    from workers.models.base import load_model

    loader: dict = {"arch": arch, "pretrained": False}
    if size is not None:
        loader["input_size"] = size
    model = load_model(ModelSpec(f"{arch}-{size}", "timm", Modality.VISION, loader))
    want = size or {"test_vit": 160, "resnet10t": 176}[arch]
    assert model.describe()["input_size"] == want
    batch = model.preprocess([Image.new("RGB", (300, 200)), Image.new("RGB", (50, 80))])
    assert tuple(batch.shape) == (2, 3, want, want)
    if grid is not None:
        assert tuple(model.module.patch_embed.img_size) == grid
    assert model.embed([Image.new("RGB", (40, 40))]).shape == (1, model.feature_dim)


def test_a_bad_input_size_is_refused() -> None:
    from shift.errors import WorkerError
    from shift.specs import Modality, ModelSpec
    from workers.models.base import load_model

    loader = {"arch": "resnet10t", "pretrained": False, "input_size": 8}
    with pytest.raises(WorkerError, match="from 16 to 4096, got 8"):
        load_model(ModelSpec("tiny", "timm", Modality.VISION, loader))
