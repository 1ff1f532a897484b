"""Specs and the zoo as data: stable keys, JSON round trips, packaged files present."""

from __future__ import annotations

import pytest

from shift import zoo
from shift.errors import CatalogError
from shift.specs import DatasetSpec, ModelSpec, resolve_file


def test_keys_are_stable_and_ignore_names_and_extras():
    spec = zoo.model("efficientnet-lite0")
    renamed = ModelSpec("other", spec.family, spec.modality, dict(spec.loader), 7, {"x": 1})
    assert renamed.key == spec.key
    assert ModelSpec.from_json(spec.to_json()) == spec
    data = zoo.dataset("photos-train")
    assert DatasetSpec.from_json(data.to_json()).key == data.key
    assert zoo.dataset("photos-test").key != data.key


def test_every_zoo_name_is_unique_and_files_are_installed():
    names = [m.name for m in zoo.MODELS] + [d.name for d in zoo.DATASETS]
    assert len(names) == len(set(names))
    for spec in zoo.MODELS:
        for field in ("checkpoint", "model", "onnx", "tokenizer"):
            if field in spec.loader:
                assert resolve_file(spec.loader[field]).exists()


def test_bad_specs_and_unknown_names():
    with pytest.raises(CatalogError, match="did you mean 'efficientnet-lite"):
        zoo.model("efficientnet-lite")
    with pytest.raises(CatalogError, match="modality"):
        ModelSpec("m", "timm", "audio", {})
    with pytest.raises(CatalogError, match="lacks field"):
        DatasetSpec.from_json({"name": "x"})
    with pytest.raises(CatalogError, match="pip install nope-pkg"):
        resolve_file({"distribution": "nope-pkg", "path": "x"})
