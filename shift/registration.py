"""Catalog rows and registrations: specs in, rows for :mod:`shift.evaluate` out.

Pure functions shared by the broker (REST, ``REGISTER``) and tests:

- :func:`model_row` / :func:`dataset_row` turn a spec plus its *measured* figures (the
  worker's ``describe`` result) into a dict with exactly the columns of
  :data:`shift.ql.vocabulary.MODEL_COLUMNS` / ``DATASET_COLUMNS``.
- :func:`model_spec_from_fields` / :func:`dataset_spec_from_fields` map the ``REGISTER``
  columns (:data:`shift.ql.vocabulary.REGISTER_COLUMNS`) onto specs.
- :func:`model_spec_from_body` / :func:`dataset_spec_from_body` accept a REST body that is
  either a spec's JSON or a ``name`` plus ``REGISTER`` columns; every error names the bad
  field and the closest valid one.
- :func:`local_paths` / :func:`source_values` find the local paths of a spec for the
  data-roots confinement; :func:`dataset_problem` refuses empty and one-class datasets.

Upstream accuracy is a fraction in rows (``0.751``); specs written in percent (``75.1``)
are converted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shift.errors import CatalogError
from shift.ql.vocabulary import (
    DATASET_COLUMNS,
    MEASURED_COLUMNS,
    MODEL_COLUMNS,
    REGISTER_COLUMNS,
    canonical_register_column,
    closest,
)
from shift.specs import DatasetSpec, Modality, ModelSpec

Row = dict[str, Any]

MODEL_SPEC_FIELDS = ("name", "family", "modality", "loader", "batch_size", "info")
DATASET_SPEC_FIELDS = ("name", "reader", "params", "modality", "info")


def _fraction(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 1:
        return round(value / 100, 6)
    return value


def _tags(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def model_row(spec: ModelSpec, measured: Mapping[str, Any] | None, date_added: str) -> Row:
    """The catalog row of a model (``MODEL_COLUMNS``; measured columns ``None`` until known)."""
    info, loader, got = spec.info, spec.loader, dict(measured or {})
    row: Row = {
        "name": spec.name,
        "source": info.get("source", spec.family),
        "modality": spec.modality.value,
        "num_params": got.get("num_params"),
        "feature_dim": got.get("feature_dim"),
        "input_size": info.get("input_size", got.get("input_size"))
        if spec.modality is Modality.VISION
        else None,
        "max_tokens": info.get("max_tokens", loader.get("max_tokens"))
        if spec.modality is Modality.TEXT
        else None,
        "up_acc": _fraction(info.get("upstream_accuracy", info.get("up_acc"))),
        "gflops": info.get("gflops"),
        "batch_size": spec.batch_size,
        "license": info.get("license"),
        "finetuned": bool(info.get("finetuned", False)),
        "tags": _tags(info.get("tags")),
        "date_added": date_added,
        "base_model": info.get("base_model"),
        "hub_id": info.get("hub_id") or _hub_name(spec),
        "torchvision_name": info.get("torchvision_name")
        or (loader.get("arch") if spec.family == "torchvision" else None),
        "tf_image_model_url": info.get("tf_image_model_url")
        or (loader.get("url") if spec.family == "tensorflow_hub" else None),
    }
    return {column: row[column] for column in MODEL_COLUMNS}


def _hub_name(spec: ModelSpec) -> str | None:
    """A Hugging Face model's hub id (``hf_name`` upstream): its ``model`` when that is not a
    local folder."""
    named = spec.loader.get("model") if spec.family == "huggingface" else None
    if not isinstance(named, str) or named.startswith(("/", ".")) or named.count("/") > 1:
        return None
    return named


def dataset_row(spec: DatasetSpec, measured: Mapping[str, Any] | None, date_added: str) -> Row:
    """The catalog row of a dataset (``DATASET_COLUMNS``; ``size`` counts ``max_rows``).

    A ``date_added`` in the spec's info (given at REGISTER) is the row's date.
    """
    got = dict(measured or {})
    modality = spec.modality.value if spec.modality is not None else got.get("modality")
    size, cap = got.get("size"), spec.params.get("max_rows")
    if isinstance(size, int) and isinstance(cap, int) and not isinstance(cap, bool):
        size = min(size, max(cap, 0))
    row: Row = {
        "name": spec.name,
        "reader": spec.reader,
        "size": size,
        "num_classes": got.get("num_classes"),
        "modality": modality,
        "date_added": spec.info.get("date_added", date_added),
    }
    return {column: row[column] for column in DATASET_COLUMNS}


def _unknown(what: str, word: str, valid: Iterable[str]) -> CatalogError:
    valid = list(valid)
    match = closest(word, valid)
    hint = f"; did you mean {match!r}?" if match else ""
    return CatalogError(f"unknown {what} {word!r}{hint} (valid: {', '.join(valid)})")


def _fields(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw, value in fields.items():
        column = canonical_register_column(kind, raw)
        if column in MEASURED_COLUMNS[kind]:
            raise CatalogError(f"{column} of a {kind} is measured by shift; leave it out")
        if column not in REGISTER_COLUMNS[kind]:
            raise _unknown(f"{kind} column", raw, REGISTER_COLUMNS[kind])
        out[column] = value
    return out


def _string(fields: Mapping[str, Any], column: str) -> str | None:
    value = fields.get(column)
    if value is not None and not isinstance(value, str):
        raise CatalogError(f"{column} must be a string, got {value!r}")
    return value


ModelBuilder = Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], Modality | None]]
MODEL_SOURCES: dict[str, tuple[str, ModelBuilder]] = {}
"""REGISTER ``source`` value -> (model family, builder of its loader and default modality)."""


def model_source(*names: str, family: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register a builder turning REGISTER columns into a family's loader parameters."""

    def register(builder: ModelBuilder) -> ModelBuilder:
        for name in names:
            MODEL_SOURCES[name] = (family, builder)
        return builder

    return register


def _need(fields: Mapping[str, Any], source: str, *columns: str) -> str:
    for column in columns:
        value = _string(fields, column)
        if value:
            return value
    raise CatalogError(f"source {source!r} needs {' or '.join(columns)}")


def _pretrained(fields: Mapping[str, Any]) -> bool | None:
    value = fields.get("pretrained")
    if value is not None and not isinstance(value, bool):
        raise CatalogError(f"pretrained must be true or false, got {value!r}")
    return value


@model_source("timm", family="timm")
def _timm(fields: dict[str, Any], loader: dict[str, Any]) -> tuple[dict[str, Any], Modality | None]:
    loader["arch"] = _need(fields, "timm", "architecture", "hub_id")
    pretrained = _pretrained(fields)
    if fields.get("checkpoint") is not None:
        if pretrained is False:
            raise CatalogError("pretrained = false means random weights; leave out checkpoint")
        loader["checkpoint"] = {"path": _string(fields, "checkpoint")}
    if pretrained is not None:
        loader["pretrained"] = pretrained
    if fields.get("input_size") is not None:
        loader["input_size"] = fields["input_size"]
    if fields.get("feature_layer") is not None:
        loader["stage"] = fields["feature_layer"]
    return loader, Modality.VISION


@model_source("huggingface", "hf", "transformers", family="huggingface")
def _hf(fields: dict[str, Any], loader: dict[str, Any]) -> tuple[dict[str, Any], Modality | None]:
    loader["model"] = _need(fields, "huggingface", "hub_id", "hf_name", "path")
    if _pretrained(fields) is False:
        loader["random_init"] = True
    if fields.get("input_size") is not None:
        raise CatalogError(
            "input_size is for timm and local models; a huggingface model's image processor "
            "sets its input size"
        )
    for column, key in (("pooling", "pooling"), ("max_tokens", "max_tokens")):
        if fields.get(column) is not None:
            loader[key] = fields[column]
    if fields.get("feature_layer") is not None:
        loader["num_layers"] = fields["feature_layer"]
    return loader, None


@model_source("torchvision", family="torchvision")
def _torchvision(
    fields: dict[str, Any], loader: dict[str, Any]
) -> tuple[dict[str, Any], Modality | None]:
    loader["arch"] = _need(fields, "torchvision", "torchvision_name", "architecture")
    if fields.get("pretrained") is not None:
        loader["pretrained"] = _flag(fields["pretrained"], "pretrained")
    return loader, Modality.VISION


@model_source("tensorflow", "tensorflow_hub", "keras_layer", family="tensorflow_hub")
def _tf_hub(
    fields: dict[str, Any], loader: dict[str, Any]
) -> tuple[dict[str, Any], Modality | None]:
    loader["url"] = _need(fields, "tensorflow", "tf_image_model_url", "hub_id")
    return loader, Modality.VISION


def _flag(value: Any, column: str) -> bool:
    spelled = {"true": True, "false": False, "1": True, "0": False}.get(str(value).lower())
    if spelled is None:
        raise CatalogError(f"{column} must be true or false, got {value!r}")
    return spelled


@model_source("onnx_bert", "onnx", family="onnx_bert")
def _onnx(fields: dict[str, Any], loader: dict[str, Any]) -> tuple[dict[str, Any], Modality | None]:
    loader["onnx"] = {"path": _need(fields, "onnx_bert", "path", "checkpoint")}
    loader["tokenizer"] = _need(fields, "onnx_bert", "tokenizer")
    for column in ("pooling", "max_tokens"):
        if fields.get(column) is not None:
            loader[column] = fields[column]
    return loader, Modality.TEXT


@model_source("local", "torchscript", family="local")
def _local(
    fields: dict[str, Any], loader: dict[str, Any]
) -> tuple[dict[str, Any], Modality | None]:
    loader["path"] = {"path": _need(fields, "local", "path", "checkpoint")}
    if fields.get("input_size") is not None:
        loader["input_size"] = fields["input_size"]
    return loader, Modality.VISION


def model_spec_from_fields(name: str, fields: Mapping[str, Any]) -> ModelSpec:
    """A model spec from ``REGISTER MODEL`` columns.

    Raises:
        CatalogError: an unknown column or source (with the closest valid one), a missing
            column the source needs, or a measured column given.
    """
    got = _fields("model", fields)
    source = _string(got, "source")
    if source is None:
        raise CatalogError(f"model {name!r} needs a source ({', '.join(MODEL_SOURCES)})")
    if source not in MODEL_SOURCES:
        raise _unknown("model source", source, MODEL_SOURCES)
    family, build = MODEL_SOURCES[source]
    if got.get("pretrained") is not None and family not in ("timm", "huggingface", "torchvision"):
        raise CatalogError(
            f"pretrained is for timm, huggingface and torchvision models, not {source!r}"
        )
    loader, modality = build(got, {})
    if got.get("modality") is not None:
        modality = Modality(_modality(got["modality"]))
    if modality is None:
        raise CatalogError(f"model {name!r} from {source!r} needs a modality (vision or text)")
    info = {"source": source}
    for column in ("hub_id", "input_size", "max_tokens", "gflops", "license", "tags"):
        if got.get(column) is not None:
            info[column] = got[column]
    if family == "huggingface" and "hub_id" not in info and got.get("hf_name") is not None:
        info["hub_id"] = got["hf_name"]
    if got.get("up_acc") is not None:
        info["upstream_accuracy"] = got["up_acc"]
    batch_size = got.get("batch_size", 32)
    return ModelSpec(name, family, modality, loader, batch_size, info)


def _modality(value: Any) -> str:
    spelled = {"vision": "vision", "image": "vision", "text": "text"}.get(str(value).lower())
    if spelled is None:
        raise CatalogError(f"modality must be 'vision' or 'text', got {value!r}")
    return spelled


DATASET_PARAMS = {
    "path": "path",
    "text_column": "text_column",
    "image_column": "image_column",
    "label_column": "label_column",
    "x_key": "x_key",
    "y_key": "y_key",
    "split": "split",
    "seed": "seed",
    "max_rows": "max_rows",
    "delimiter": "delimiter",
    "bundle": "set",
    "dataset": "dataset",
    "root": "root",
    "data_dir": "data_dir",
    "tfds_name": "name",
    "vtab_task": "task",
    "version": "version",
}
"""REGISTER DATASET column -> reader parameter."""


UPSTREAM_READERS = {"vtab_name": ("vtab", "task"), "tf_dataset_name": ("tfds", "name")}
"""Upstream SHiFT's REGISTER DATASET columns that pick a reader: column -> (reader kind,
the reader parameter the column's value goes to). Both readers also take ``split``."""

FEATURE_PATHS = {"embed_feature_path": "image_key", "label_feature_path": "label_key"}
"""Upstream SHiFT's feature-path columns -> the ``tfds`` reader's feature keys (a list of
keys is a nested feature, which TFDS stores under the keys joined by ``/``)."""


def _upstream_reader(name: str, got: dict[str, Any], params: dict[str, Any]) -> str | None:
    """The reader an upstream-style REGISTER names (``vtab_name``/``tf_dataset_name``)."""
    named = [c for c in UPSTREAM_READERS if got.get(c) is not None]
    if len(named) > 1:
        raise CatalogError(f"dataset {name!r}: give one of {' and '.join(named)}, not both")
    if not named:
        return None
    column = named[0]
    kind, key = UPSTREAM_READERS[column]
    reader = _string(got, "reader")
    if reader is not None and reader != kind:
        raise CatalogError(f"dataset {name!r}: {column} reads with reader {kind!r}, not {reader!r}")
    params[key] = _string(got, column)
    if not _string(got, "split"):
        raise CatalogError(
            f"dataset {name!r}: {column} needs a split (train800, val200, test, ...)"
        )
    return kind


def _size(name: str, got: dict[str, Any], params: dict[str, Any]) -> None:
    """A user-given ``size`` caps the rows used, exactly like ``max_rows``."""
    size = got.get("size")
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise CatalogError(f"dataset {name!r}: size must be a positive whole number, got {size!r}")
    if got.get("max_rows") is not None:
        raise CatalogError(f"dataset {name!r}: size and max_rows both cap the rows; give one")
    params["max_rows"] = size


def _key_path(name: str, column: str, value: Any) -> list[str]:
    keys = [value] if isinstance(value, str) else value
    if (
        not isinstance(keys, list | tuple)
        or not keys
        or not all(isinstance(k, str) and k for k in keys)
    ):
        raise CatalogError(
            f'dataset {name!r}: {column} is a key or a list of keys, e.g. ["sentence"]; '
            f"got {value!r}"
        )
    return list(keys)


def dataset_spec_from_fields(name: str, fields: Mapping[str, Any]) -> DatasetSpec:
    """A dataset spec from ``REGISTER DATASET`` columns.

    Upstream SHiFT's vocabulary maps on: ``vtab_name`` + ``split`` read with the ``vtab``
    reader (``task``, ``split``), ``tf_dataset_name`` + ``split`` with ``tfds`` (``name``,
    ``split``); ``embed_feature_path``/``label_feature_path`` become its ``image_key`` /
    ``label_key``; ``size`` caps the rows like ``max_rows``; ``date_added`` goes to the
    spec's info.

    Raises:
        CatalogError: an unknown column (with the closest valid one), no reader, or
            upstream columns that contradict each other.
    """
    got = _fields("dataset", fields)
    params = {DATASET_PARAMS[c]: v for c, v in got.items() if c in DATASET_PARAMS}
    reader = _upstream_reader(name, got, params) or _string(got, "reader")
    if not reader:
        raise CatalogError(
            f"dataset {name!r} needs a reader (csv, image_folder, npz, ...) or vtab_name"
        )
    _size(name, got, params)
    for column, key in FEATURE_PATHS.items():
        if got.get(column) is not None:
            params[key] = "/".join(_key_path(name, column, got[column]))
    info: dict[str, Any] = {}
    if got.get("date_added") is not None:
        info["date_added"] = str(got["date_added"])
    modality = _modality(got["modality"]) if got.get("modality") is not None else None
    return DatasetSpec(name, reader, params, None if modality is None else Modality(modality), info)


def _body(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CatalogError(f"a {what} must be a JSON object, got {type(value).__name__}")
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"a {what} needs a non-empty 'name'")
    return value


def model_spec_from_body(value: Any) -> ModelSpec:
    """A model spec from a REST body: spec JSON (has ``family``) or ``name`` + REGISTER columns.

    Raises:
        CatalogError: naming the bad field and the closest valid one.
    """
    body = _body(value, "model")
    if "family" in body or "loader" in body:
        for key in body:
            if key not in MODEL_SPEC_FIELDS:
                raise _unknown("model spec field", key, MODEL_SPEC_FIELDS)
        return ModelSpec.from_json(body)
    return model_spec_from_fields(body["name"], {k: v for k, v in body.items() if k != "name"})


def dataset_spec_from_body(value: Any) -> DatasetSpec:
    """A dataset spec from a REST body: spec JSON (has ``params``) or ``name`` + columns.

    Raises:
        CatalogError: naming the bad field and the closest valid one.
    """
    body = _body(value, "dataset")
    if "params" in body:
        for key in body:
            if key not in DATASET_SPEC_FIELDS:
                raise _unknown("dataset spec field", key, DATASET_SPEC_FIELDS)
        return DatasetSpec.from_json(body)
    return dataset_spec_from_fields(body["name"], {k: v for k, v in body.items() if k != "name"})


FILE_KEYS = ("path", "checkpoint", "weights", "onnx", "root", "data_dir")
"""Loader and reader keys whose value is a local file or folder: a plain string or a ``{"path": P}``
reference (a ``{"distribution": D, "path": P}`` reference names a packaged file instead)."""

SOURCE_KEYS = ("model", "tokenizer")
"""Loader keys whose plain string value is a hub id or a local folder
(:func:`shift.paths.hub_or_path` tells which)."""


def local_paths(value: Any) -> list[str]:
    """Plain file paths inside a loader or reader's parameters (packaged files excluded).

    A path is the string value of a :data:`FILE_KEYS` key, or the ``path`` of a reference
    dict that does not name a ``distribution``, at any depth; these are what the data-roots
    confinement checks. Hub-or-folder values are :func:`source_values`.
    """
    found: list[str] = []
    if isinstance(value, dict):
        if "distribution" in value:
            return found
        for key, item in value.items():
            if key in FILE_KEYS and isinstance(item, str):
                found.append(item)
            else:
                found.extend(local_paths(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(local_paths(item))
    return found


def source_values(loader: Mapping[str, Any]) -> list[str]:
    """The plain strings of a loader's :data:`SOURCE_KEYS`: each a hub id or a local folder."""
    return [v for k, v in loader.items() if k in SOURCE_KEYS and isinstance(v, str)]


MIN_CLASSES = 2
"""Classes a dataset needs: every proxy, ranker and fine-tune tells classes apart."""


def dataset_problem(name: str, size: Any, num_classes: Any) -> str | None:
    """Why a dataset with the measured ``size`` and ``num_classes`` cannot be used, if it cannot.

    An empty dataset and a dataset of one class register as failed with this message
    instead of failing every query that reads them.
    """
    if not isinstance(size, int) or size < 1:
        return (
            f"dataset {name!r} has no rows; check its path, split and row filters "
            "(a dataset needs rows of at least 2 classes)"
        )
    if not isinstance(num_classes, int) or num_classes < MIN_CLASSES:
        return (
            f"dataset {name!r} has {num_classes} class(es) in its {size} row(s); a dataset "
            f"needs at least {MIN_CLASSES} classes (check its label column)"
        )
    return None


def unknown_name(what: str, name: str, known: Iterable[str]) -> CatalogError:
    """The error for an unknown model, dataset or variable, with the closest known name."""
    known = sorted(known)
    match = closest(name, known)
    hint = f"; did you mean {match!r}?" if match else ""
    listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
    return CatalogError(f"unknown {what} {name!r}{hint} (known: {listed or 'none'})")
