"""``probe = name`` in SELECT vec: a model, or a session variable holding one model (pure)."""

from __future__ import annotations

import pytest

from broker.sources import probe_name
from shift.errors import CatalogError

MODELS = {"resnet18", "effnet", "vit"}
VARIABLES = {
    "my_probe": ["resnet18"],
    "effnet": ["vit"],
    "pool": ["resnet18", "effnet"],
    "none": [],
    "readers": ["mnist-train"],
}


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("resnet18", "resnet18"),
        ("my_probe", "resnet18"),  # upstream: declare my_probe AS select * from image_models ...
        ("effnet", "effnet"),  # a model of that name wins over a variable of the same name
        ("gone", "gone"),  # neither: left for the catalog's unknown-model error
    ],
)
def test_a_probe_names_a_model_or_a_variable_of_one(name: str, model: str) -> None:
    assert probe_name(name, MODELS, VARIABLES) == model


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("pool", "the variable 'pool' holds 2 names ('resnet18', 'effnet') but a probe is one"),
        ("none", "the variable 'none' holds 0 names (none) but a probe is one model"),
        ("readers", "holds 'mnist-train', which is not a model; DECLARE it from image_models"),
    ],
)
def test_a_variable_that_is_not_one_model_is_refused(name: str, message: str) -> None:
    with pytest.raises(CatalogError, match="probe = " + name) as raised:
        probe_name(name, MODELS, VARIABLES)
    assert message in str(raised.value)
