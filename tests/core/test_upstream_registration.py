"""Upstream SHiFT's REGISTER DATASET vocabulary mapped onto shift's dataset specs and rows."""

from __future__ import annotations

from typing import Any

import pytest

from shift.errors import CatalogError
from shift.ql import nodes as n
from shift.ql import parse
from shift.registration import dataset_row, dataset_spec_from_fields, model_row
from shift.specs import Modality, ModelSpec


def _fields(text: str) -> dict[str, Any]:
    statement = parse(text)
    assert isinstance(statement, n.Register)
    return {f.name: f.value.value for f in statement.fields}


def test_vtab_columns_pick_the_vtab_reader_and_size_caps_rows() -> None:
    fields = _fields(
        'REGISTER dataset "c10" ("vtab_name", "split", "size", "date_added") '
        'VALUES ("CIFAR-10", "train800", 800, "2021-03-04")'
    )
    spec = dataset_spec_from_fields("c10", fields)
    assert (spec.reader, spec.params) == (
        "vtab",
        {"task": "CIFAR-10", "split": "train800", "max_rows": 800},
    )
    assert spec.info == {"date_added": "2021-03-04"}
    row = dataset_row(spec, {"size": 1000, "num_classes": 10}, "2030-01-01")
    assert (row["size"], row["date_added"], row["reader"]) == (800, "2021-03-04", "vtab")
    # a dataset smaller than the cap keeps its own size
    assert dataset_row(spec, {"size": 300}, "2030-01-01")["size"] == 300


def test_tfds_columns_and_feature_paths() -> None:
    fields = _fields(
        'REGISTER dataset "imdb" ("tf_dataset_name", "split", "embed_feature_path", '
        '"label_feature_path") VALUES ("imdb_reviews/plain_text:1.0.0", "test", ["text"], '
        '["meta", "label"])'
    )
    spec = dataset_spec_from_fields("imdb", fields)
    assert spec.reader == "tfds"
    assert spec.params == {
        "name": "imdb_reviews/plain_text:1.0.0",
        "split": "test",
        "image_key": "text",
        # a nested feature: TFDS stores it under the keys joined by "/"
        "label_key": "meta/label",
    }
    assert spec.info == {}
    # one key written as a string is a path of one key
    one = dataset_spec_from_fields(
        "i2", {"tf_dataset_name": "x:1.0.0", "split": "train", "embed_feature_path": "text"}
    )
    assert one.params["image_key"] == "text"


def test_shift_vocabulary_is_unchanged() -> None:
    spec = dataset_spec_from_fields("d", {"reader": "csv", "path": "a.csv", "max_rows": 5})
    assert (spec.reader, spec.params, spec.info) == ("csv", {"path": "a.csv", "max_rows": 5}, {})
    assert dataset_row(spec, None, "2030-01-01")["date_added"] == "2030-01-01"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vtab_name": "SVHN"}, "vtab_name needs a split"),
        ({"tf_dataset_name": "x:1.0.0", "split": ""}, "tf_dataset_name needs a split"),
        (
            {"vtab_name": "SVHN", "tf_dataset_name": "x", "split": "test"},
            "give one of vtab_name and tf_dataset_name",
        ),
        ({"vtab_name": "SVHN", "split": "test", "reader": "csv"}, "reads with reader 'vtab'"),
        ({"vtab_name": "SVHN", "split": "test", "size": 0}, "size must be a positive whole"),
        ({"vtab_name": "SVHN", "split": "test", "size": 2.5}, "size must be a positive whole"),
        ({"vtab_name": "SVHN", "split": "test", "size": True}, "size must be a positive whole"),
        (
            {"reader": "csv", "path": "a.csv", "size": 3, "max_rows": 4},
            "size and max_rows both cap",
        ),
        (
            {"tf_dataset_name": "x", "split": "t", "label_feature_path": []},
            "label_feature_path is a key or a list of keys",
        ),
        (
            {"tf_dataset_name": "x", "split": "t", "embed_feature_path": ["a", 3]},
            "embed_feature_path is a key or a list of keys",
        ),
        ({"vtab_name": None, "split": "test"}, "needs a reader"),
        ({"hf_dataset_name": "rotten_tomatoes", "split": "train"}, "unknown dataset column"),
        ({"num_classes": 3, "reader": "csv"}, "num_classes of a dataset is measured"),
    ],
)
def test_upstream_columns_that_contradict_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        dataset_spec_from_fields("d", fields)


def test_model_rows_carry_the_upstream_identifier_columns() -> None:
    spec = ModelSpec(
        "resnet18",
        "timm",
        Modality.VISION,
        {"arch": "resnet18"},
        info={"source": "torchvision", "torchvision_name": "ResNet18", "hub_id": "x/y"},
    )
    row = model_row(spec, None, "2030-01-01")
    assert (row["torchvision_name"], row["hub_id"], row["tf_image_model_url"]) == (
        "ResNet18",
        "x/y",
        None,
    )
