"""Model files as a hostile user would hand them over: planted pickles, corrupt checkpoints,
paths outside the data roots, archives that call more than operators.

A planted file is a pickle whose ``__reduce__`` creates a marker file when unpickled; every
test that plants one checks that the load is refused *and* that the marker does not exist.
The data roots are the session's temporary folder (``tests/workers/conftest.py``).
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
import torch
import transformers

from shift.errors import WorkerError
from shift.specs import Modality, ModelSpec
from workers.models import get_family
from workers.models.base import load_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


class Planted:
    """Unpickling this object creates ``marker`` (it stands for any code an attacker runs)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def plant(path: Path, marker: Path) -> Path:
    """Write a pickle that would create ``marker`` to ``path`` (through ``torch.save``)."""
    torch.save({"state_dict": Planted(marker)}, path)
    return path


def load(family: str, loader: dict, name: str = "m") -> object:
    spec = ModelSpec(name, family, Modality.VISION, loader, batch_size=2)
    return get_family(family).load(spec, "cpu")


def tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    ).eval()


def test_a_planted_timm_checkpoint_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = plant(tmp_path / "evil.pth", marker)
    with pytest.raises(WorkerError, match=r"evil\.pth is corrupt or not a PyTorch state-dict"):
        load("timm", {"arch": "resnet10t", "checkpoint": str(path)})
    assert not marker.exists()


def test_planted_fine_tuned_weights_are_refused_unrun(tmp_path: Path) -> None:
    folder = tmp_path / "vit"
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=24, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=48,
    )  # fmt: skip
    transformers.ViTModel(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    marker = tmp_path / "ran"
    weights = plant(tmp_path / "weights.pt", marker)
    spec = ModelSpec(
        "ft", "huggingface", Modality.VISION, {"model": str(folder), "weights": str(weights)}
    )
    with pytest.raises(WorkerError, match=r"weights\.pt is corrupt or not a PyTorch"):
        load_model(spec)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("torn.pth", b"PK\x03\x04 not really a zip", r"torn\.pth is corrupt or not a PyTorch"),
        ("w.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}", r"not a safetensors"),
    ],
)
def test_a_corrupt_checkpoint_is_named_corrupt(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(WorkerError, match=message) as caught:
        load("timm", {"arch": "resnet10t", "checkpoint": str(tmp_path / name)})
    assert "does not exist" not in str(caught.value)


def test_a_corrupt_torchscript_file_is_named_corrupt(tmp_path: Path) -> None:
    (tmp_path / "net.pt").write_bytes(b"garbage")
    with pytest.raises(WorkerError, match=r"net\.pt is corrupt or not a TorchScript file"):
        load("local", {"path": str(tmp_path / "net.pt")})


def test_a_corrupt_transformers_folder_is_named_corrupt(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(WorkerError, match="is corrupt or not a transformers model folder"):
        load("huggingface", {"model": str(tmp_path)})


def test_relative_checkpoints_resolve_against_the_data_roots(
    tmp_path: Path, worker_settings: Path
) -> None:
    import timm

    torch.save(timm.create_model("resnet10t").state_dict(), tmp_path / "r.pth")
    relative = str((tmp_path / "r.pth").relative_to(worker_settings))
    extractor = load("timm", {"arch": "resnet10t", "checkpoint": relative})
    assert extractor.feature_dim == 512
    with pytest.raises(WorkerError, match="does not exist under the data roots"):
        load("timm", {"arch": "resnet10t", "checkpoint": relative + ".missing"})
    with pytest.raises(WorkerError, match="may not climb"):
        load("timm", {"arch": "resnet10t", "checkpoint": f"{relative}/../../r.pth"})


@pytest.mark.parametrize(
    "loader",
    [
        {"arch": "resnet10t", "checkpoint": "/etc/hostname"},
        {"model": "/etc"},
        {"model": {"path": "/etc"}},
        {"path": "/etc/hostname"},
    ],
)
def test_model_paths_outside_the_data_roots_are_refused(loader: dict) -> None:
    family = "timm" if "arch" in loader else "local" if "path" in loader else "huggingface"
    with pytest.raises(WorkerError, match="outside the data roots"):
        load(family, loader)


def test_hub_ids_and_relative_folders_tell_apart(tmp_path: Path, worker_settings: Path) -> None:
    from workers.models.huggingface import model_source

    spec = ModelSpec("m", "huggingface", Modality.TEXT, {})
    (tmp_path / "folder").mkdir()
    relative = str((tmp_path / "folder").relative_to(worker_settings))
    assert model_source(spec, relative) == (str((tmp_path / "folder").resolve()), True)
    assert model_source(spec, "sentence-transformers/all-MiniLM-L6-v2") == (
        "sentence-transformers/all-MiniLM-L6-v2",
        False,
    )
    with pytest.raises(WorkerError, match="neither a folder under the data roots nor a hub id"):
        model_source(spec, "a/b/c")


def _exported(tmp_path: Path) -> Path:
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        tiny_net(), (torch.zeros(2, 3, 32, 32),), dynamic_shapes=({0: batch},)
    )
    path = tmp_path / "net.pt2"
    torch.export.save(program, path)
    return path


def _rewrite(path: Path, change: dict[str, bytes]) -> Path:
    """A copy of the archive at ``path`` with the members ending in a key replaced."""
    out = path.with_name("changed.pt2")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            for suffix, new in change.items():
                if item.filename.endswith(suffix):
                    data = new
            target.writestr(item, data)
    return out


def test_an_export_archive_with_pickled_sample_inputs_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save(Planted(marker), buffer)
    path = _rewrite(_exported(tmp_path), {"sample_inputs/model.pt": buffer.getvalue()})
    with pytest.raises(WorkerError, match="does not load weights-only"):
        load("local", {"path": str(path), "input_size": 32})
    assert not marker.exists()


def test_an_export_archive_calling_more_than_operators_is_refused(tmp_path: Path) -> None:
    path = _exported(tmp_path)
    with zipfile.ZipFile(path) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("models/model.json")]
        graph = json.loads(archive.read(name))
    graph["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"
    changed = _rewrite(path, {"models/model.json": json.dumps(graph).encode()})
    with pytest.raises(WorkerError, match=r"calls 'torch\.os\.system', not an operator"):
        load("local", {"path": str(changed), "input_size": 32})


def test_an_export_archive_with_a_pickled_weight_is_refused(tmp_path: Path) -> None:
    path = _exported(tmp_path)
    with zipfile.ZipFile(path) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("model_weights_config.json")]
        config = json.loads(archive.read(name))
    first = next(iter(config["config"].values()))
    first["use_pickle"] = True
    changed = _rewrite(path, {"model_weights_config.json": json.dumps(config).encode()})
    with pytest.raises(WorkerError, match="is stored as a pickle"):
        load("local", {"path": str(changed), "input_size": 32})
