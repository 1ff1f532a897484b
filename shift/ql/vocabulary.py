"""The names SHiFT-QL knows: tables, columns with their aliases, and value spellings.

Aliases are matched case-insensitively and ignoring underscores, so ``NumParams``,
``numparams`` and ``num_params`` all mean ``num_params``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: Catalog tables and the kind of rows they hold.
TABLES: dict[str, str] = {
    "models": "model",
    "image_models": "model",
    "text_models": "model",
    "readers": "dataset",
    "timm_registry": "registry",
    "huggingface_registry": "registry",
}
TABLE_ALIASES: dict[str, str] = {"datasets": "readers", "imagemodels": "image_models",
                                 "textmodels": "text_models", "hf_registry": "huggingface_registry",
                                 "timmregistry": "timm_registry"}  # fmt: skip

#: Model registries ``REGISTER MODELS FROM`` imports from, and the table that browses each.
REGISTRY_TABLES: dict[str, str] = {"timm": "timm_registry", "huggingface": "huggingface_registry"}
REGISTRY_ALIASES: dict[str, str] = {"hf": "huggingface", "hub": "huggingface"}

#: Columns of a registry's rows (what its browse table shows and its WHERE may test).
REGISTRY_COLUMNS: dict[str, tuple[str, ...]] = {
    "timm": (
        "name",
        "architecture",
        "tag",
        "pretrained",
        "input_size",
        "mean",
        "std",
        "interpolation",
        "crop_pct",
        "num_classes",
        "license",
        "hub_id",
        "num_params",
        "feature_dim",
    ),
    "huggingface": (
        "name",
        "architecture",
        "library",
        "pipeline_tag",
        "pretrained",
        "license",
        "downloads",
        "likes",
        "author",
        "num_params",
        "feature_dim",
    ),
}

#: Columns of a model row (docs/shiftql.md, the catalog columns). The last three are
#: identifiers upstream SHiFT's catalog filtered on: the hub id (``hf_name`` there), the
#: ``torchvision.models`` name and the TF-Hub address; empty where they do not apply.
MODEL_COLUMNS: tuple[str, ...] = (
    "name", "source", "modality", "num_params", "feature_dim", "input_size", "max_tokens",
    "up_acc", "gflops", "batch_size", "license", "finetuned", "tags", "date_added",
    "base_model", "hub_id", "torchvision_name", "tf_image_model_url",
)  # fmt: skip

#: Columns of a dataset row.
DATASET_COLUMNS: tuple[str, ...] = (
    "name", "reader", "size", "num_classes", "modality", "date_added",
)  # fmt: skip

#: Columns every catalog row (model or dataset) has besides its own: where its registration
#: stands (``status``, one of :data:`STATUSES`) and, when it failed, why (``error``).
STATE_COLUMNS: tuple[str, ...] = ("status", "error")

#: The values of ``status``: ``pending`` while the row is measured (a ``describe`` task),
#: ``ready`` once measured, ``failed`` when it could not be loaded or read (see ``error``).
STATUSES: tuple[str, ...] = ("pending", "ready", "failed")

#: Columns a task-aware query adds to each model: its proxy error and accuracy.
RESULT_COLUMNS: tuple[str, ...] = ("err", "acc", "train_rows", "test_rows", "classifier")

#: Columns a RANK query adds to each model: the ranker's score.
RANK_COLUMNS: tuple[str, ...] = ("score", "ci_low", "ci_high", "train_rows", "tied_with_first")

#: Columns ``REGISTER MODEL`` and ``REGISTER DATASET`` accept (the rest is measured).
REGISTER_COLUMNS: dict[str, tuple[str, ...]] = {
    "model": (
        "source", "modality", "hub_id", "path", "checkpoint", "architecture", "tokenizer",
        "feature_layer", "pooling", "input_size", "max_tokens", "up_acc", "gflops",
        "batch_size", "license", "tags", "torchvision_name", "hf_name", "tf_image_model_url",
        "pretrained",
    ),
    "dataset": (
        "reader", "path", "modality", "text_column", "image_column", "label_column",
        "x_key", "y_key", "split", "seed", "max_rows", "delimiter", "bundle",
        "vtab_name", "tf_dataset_name", "embed_feature_path", "label_feature_path", "size",
        "date_added", "dataset", "root", "data_dir", "tfds_name", "vtab_task", "version",
    ),
}  # fmt: skip

#: REGISTER columns that take a list of keys (``["sentence"]``) as well as one string.
LIST_COLUMNS: frozenset[str] = frozenset({"embed_feature_path", "label_feature_path"})

#: Boolean columns that stand alone as a condition (``WHERE pretrained``); ``finetuned`` has
#: its keyword, ``FINETUNED``.
BOOLEAN_COLUMNS: tuple[str, ...] = ("pretrained",)

#: Columns shift measures itself when it registers a model or dataset. (A dataset's
#: ``size`` may be given: it caps the rows used, like ``max_rows``.)
MEASURED_COLUMNS: dict[str, tuple[str, ...]] = {
    "model": ("num_params", "feature_dim"),
    "dataset": ("num_classes",),
}

#: Metrics a task-aware query can order by.
METRICS: tuple[str, ...] = ("err", "acc")

COLUMN_ALIASES: dict[str, str] = {
    "numparams": "num_params",
    "arch": "architecture",
    "pipeline": "pipeline_tag",
    "pipelinetag": "pipeline_tag",
    "params": "num_params",
    "parameters": "num_params",
    "upstreamaccuracy": "up_acc",
    "upacc": "up_acc",
    "input": "modality",
    "featuredim": "feature_dim",
    "featuresize": "feature_dim",
    "inputsize": "input_size",
    "maxtokens": "max_tokens",
    "batchsize": "batch_size",
    "dateadded": "date_added",
    "basemodel": "base_model",
    "numclasses": "num_classes",
    "classes": "num_classes",
    "error": "err",
    "accuracy": "acc",
    "trainrows": "train_rows",
    "testrows": "test_rows",
    "hfname": "hub_id",
    "hubid": "hub_id",
    "torchvisionname": "torchvision_name",
    "tfimagemodelurl": "tf_image_model_url",
}

#: Canonical spellings of column values (``Input == 'Vision'`` means modality 'vision').
VALUE_SPELLINGS: dict[str, dict[str, str]] = {
    "modality": {"vision": "vision", "image": "vision", "text": "text"},
    "status": {status: status for status in STATUSES},
}


def _key(word: str) -> str:
    return word.replace("_", "").lower()


_ALL_COLUMNS = (
    *MODEL_COLUMNS, *DATASET_COLUMNS, *STATE_COLUMNS, *RESULT_COLUMNS, *REGISTRY_COLUMNS["timm"],
    *REGISTRY_COLUMNS["huggingface"],
)  # fmt: skip
_COLUMN_KEYS: dict[str, str] = {_key(c): c for c in _ALL_COLUMNS} | COLUMN_ALIASES
#: Where a column names a catalog row (a catalog query, any WHERE), ``error`` is the
#: row's registration error; elsewhere it stays an alias of the proxy error ``err``.
_CATALOG_KEYS: dict[str, str] = _COLUMN_KEYS | {"error": "error"}


def canonical_column(word: str, catalog: bool = False) -> str | None:
    """Return the canonical column for a spelling or alias, or ``None`` if unknown.

    Args:
        word: The column as written.
        catalog: The column names a catalog row's field (a catalog query's columns and
            ORDER BY, or any WHERE), where ``error`` is the registration error.
    """
    return (_CATALOG_KEYS if catalog else _COLUMN_KEYS).get(_key(word))


def canonical_register_column(kind: str, word: str) -> str:
    """The canonical spelling of a REGISTER column (aliases resolved; unknown kept)."""
    key = _key(word)
    for column in (*REGISTER_COLUMNS[kind], *MEASURED_COLUMNS[kind]):
        if _key(column) == key:
            return column
    alias = COLUMN_ALIASES.get(key)
    return alias if alias else word.lower()


def column_hint(word: str, columns: Iterable[str]) -> str:
    """A ``did you mean`` hint for a misspelled column, aliases included, or ``""``."""
    allowed = set(columns)
    keys = {_key(c): c for c in allowed}
    keys.update({a: c for a, c in COLUMN_ALIASES.items() if c in allowed})
    match = closest(_key(word), keys)
    if match is None:
        return ""
    return f"did you mean {keys[match]!r}?"


def canonical_table(word: str) -> str | None:
    """Return the canonical table for a spelling, or ``None`` if it is not a table."""
    key = _key(word)
    for table in TABLES:
        if _key(table) == key:
            return table
    return TABLE_ALIASES.get(key)


def canonical_registry(word: str) -> str | None:
    """The canonical model registry for a spelling (``hf`` is ``huggingface``), or ``None``."""
    key = word.lower()
    if key in REGISTRY_TABLES:
        return key
    return REGISTRY_ALIASES.get(key)


def columns_for(table: str | None) -> tuple[str, ...]:
    """Columns a catalog query over ``table`` may use (a variable: model columns), the
    registration state columns included."""
    if table is not None and TABLES.get(table) == "dataset":
        return DATASET_COLUMNS + STATE_COLUMNS
    for registry, browse in REGISTRY_TABLES.items():
        if table == browse:
            return REGISTRY_COLUMNS[registry]
    return MODEL_COLUMNS + STATE_COLUMNS


def canonical_value(column: str, value: str) -> str:
    """Return the canonical spelling of a string compared with ``column``."""
    spellings = VALUE_SPELLINGS.get(column)
    if spellings is None:
        return value
    return spellings.get(value.lower(), value)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word`` (case-insensitive), or ``None`` when none is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``did you mean 'x'?`` hint, or an empty string."""
    match = closest(word, choices)
    return f"did you mean {match!r}?" if match else ""
