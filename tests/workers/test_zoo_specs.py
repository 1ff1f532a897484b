"""Specs and the zoo as data: stable keys, JSON round trips, packaged files present."""

from __future__ import annotations

import pytest

from shift import zoo
from shift.errors import CatalogError
from shift.specs import DatasetSpec, Modality, ModelSpec, resolve_file


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


def test_every_zoo_model_states_its_recipe_and_has_its_own_key():
    for spec in zoo.MODELS:
        recipe = spec.info.get("recipe")
        assert isinstance(recipe, str) and len(recipe) > 20, spec.name
    recipes = [m.info["recipe"] for m in zoo.MODELS]
    assert len(recipes) == len(set(recipes))
    keys = [m.key for m in zoo.MODELS]
    assert len(keys) == len(set(keys))


def test_pools_are_large_enough_for_halving():
    by_modality = {
        modality: [m for m in zoo.MODELS if m.modality is modality]
        for modality in (Modality.VISION, Modality.TEXT)
    }
    assert len(by_modality[Modality.VISION]) >= 24
    assert len(by_modality[Modality.TEXT]) >= 24
    names = {m.name for m in zoo.MODELS}
    stages = {f"efficientnet-lite{s}-stage{k}" for s in range(3) for k in range(zoo.LITE_STAGES)}
    layers = {f"minilm-l6-layer{k}" for k in range(6)} | {f"minilm-l3-layer{k}" for k in range(3)}
    assert stages | layers <= names
    for spec in zoo.MODELS:
        tags = spec.info["tags"]
        if "random" in tags:
            assert spec.loader.get("random_init") or spec.loader.get("pretrained") is False
            assert "checkpoint" not in spec.loader, spec.name
        if "truncated" in tags:
            assert ("stage" in spec.loader) != ("num_layers" in spec.loader), spec.name


def test_the_original_ten_keep_their_names_and_keys():
    """Caches and tests name these ten; the pools were added after them, never in their place."""
    keys = {
        "efficientnet-lite0": "62f2e0be2f277edb", "efficientnet-lite1": "3493eae6edfef68e",
        "efficientnet-lite2": "70b38a22faccb952", "efficientnet-lite0-stage2": "2695637197e21ee0",
        "efficientnet-lite0-random": "8a22501e71558f19",
        "efficientnet-lite1-random": "fae0018cd262e288", "minilm-l6": "2070a34a14ee2c8f",
        "minilm-l3": "f4fef4c3788ea04f", "minilm-l6-layer2": "3ba86403e47eecba",
        "bert-random": "77fb190695397927",
    }  # fmt: skip
    assert [m.name for m in zoo.MODELS[:10]] == list(keys)
    assert {m.name: m.key[:16] for m in zoo.MODELS[:10]} == keys
