"""Model registries (timm, the Hugging Face Hub): their rows, filtering, and catalog specs.

A registry offers rows with the columns of
:data:`shift.ql.vocabulary.REGISTRY_COLUMNS`. ``SELECT ... FROM timm_registry`` lists them;
``REGISTER MODELS FROM timm WHERE ...`` turns the matching rows into catalog entries. The
rows come from a worker (only workers import timm or huggingface_hub): a ``model_registry``
task (:class:`RegistryPayload`) carries the statement, the worker lists the registry with the
pure helpers here and measures ``num_params``/``feature_dim`` of the rows it answers by
building each architecture without weights.

Everything here is pure: :func:`timm_rows` takes timm's registry as plain values,
:func:`answer` takes a ``measure`` callback, :func:`plan_import` takes the catalog's specs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from shift import evaluate
from shift.errors import CatalogError, QueryError
from shift.payloads import PayloadError
from shift.ql import codec
from shift.ql import nodes as n
from shift.ql.vocabulary import REGISTRY_COLUMNS, REGISTRY_TABLES
from shift.specs import Modality, ModelSpec
from shift.tasks import TaskSpec

Row = dict[str, Any]
Measure = Callable[[Sequence[Row]], Mapping[str, Mapping[str, Any]]]
"""Rows -> ``{row name: {"num_params", "feature_dim"}}`` (rows it could not measure left out)."""

MEASURED: tuple[str, ...] = ("num_params", "feature_dim")
"""Columns a worker measures (the rest of a row is known from the registry itself)."""

IMPORT_BATCH_SIZE = 32
"""Batch size of an imported model's catalog entry (as for ``REGISTER MODEL``)."""

Query = n.Select | n.RegisterModels


def registry_of(statement: Query) -> str:
    """The registry a browse or import statement reads.

    Raises:
        CatalogError: the statement's table is not a registry's browse table.
    """
    if isinstance(statement, n.RegisterModels):
        return statement.registry
    if isinstance(statement.source, n.Table):
        for registry, table in REGISTRY_TABLES.items():
            if statement.source.name == table:
                return registry
    raise CatalogError("this statement reads no model registry")


def is_browse(statement: n.Node) -> bool:
    """True for a ``SELECT`` over a registry's browse table (``timm_registry``, ...)."""
    return (
        isinstance(statement, n.Select)
        and isinstance(statement.source, n.Table)
        and statement.source.name in REGISTRY_TABLES.values()
    )


# ---- the task ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RegistryPayload:
    """List a registry for one browse or import statement.

    ``request`` makes every listing its own task: a registry changes with the worker's timm
    version or the Hub's contents, so a listing is never answered from the task cache.
    RESULT: ``{"rows": [...], "listed": int, "measured": int, "measured_rows": int}``.
    """

    KIND: ClassVar[str] = "model_registry"
    statement: Query
    request: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form (the statement as a query tree)."""
        return {"statement": codec.to_json(self.statement), "request": self.request}

    @classmethod
    def from_json(cls, value: Any) -> RegistryPayload:
        """Parse a payload.

        Raises:
            PayloadError: not an object, unknown keys, or a statement that is not a valid
                browse or import.
        """
        if not isinstance(value, dict) or set(value) != {"statement", "request"}:
            raise PayloadError("a model_registry payload is {'statement': tree, 'request': id}")
        if not isinstance(value["request"], str) or not value["request"]:
            raise PayloadError("'request' must be a non-empty string")
        try:
            statement = codec.from_json(value["statement"])
        except QueryError as error:
            raise PayloadError(f"the registry statement does not decode: {error}") from None
        if not (isinstance(statement, n.RegisterModels) or is_browse(statement)):
            raise PayloadError("the statement must be REGISTER MODELS or a registry SELECT")
        return cls(statement, value["request"])  # type: ignore[arg-type]

    def task(self) -> TaskSpec:
        """The task (no model)."""
        return TaskSpec(self.KIND, self.to_json())


# ---- timm ---------------------------------------------------------------------------------


def _license(cfg: Mapping[str, Any]) -> str | None:
    value = cfg.get("license")
    return str(value) if value else None


def timm_row(name: str, cfg: Mapping[str, Any], pretrained: bool) -> Row:
    """One registry row from a timm pretrained config (``get_pretrained_cfg(...).to_dict()``).

    Args:
        name: ``arch.tag`` for pretrained weights, the bare architecture for random init.
        cfg: The config (its input size, normalisation, licence, ...).
        pretrained: Whether the row stands for published weights.
    """
    architecture = name.split(".", 1)[0]
    size = cfg.get("input_size") or (3, 224, 224)
    return {
        "name": name,
        "architecture": architecture,
        "tag": name.split(".", 1)[1] if "." in name else None,
        "pretrained": pretrained,
        "input_size": int(size[-1]),
        "mean": [float(v) for v in cfg.get("mean") or ()] or None,
        "std": [float(v) for v in cfg.get("std") or ()] or None,
        "interpolation": cfg.get("interpolation"),
        "crop_pct": cfg.get("crop_pct"),
        "num_classes": cfg.get("num_classes"),
        "license": _license(cfg) if pretrained else None,
        "hub_id": (cfg.get("hf_hub_id") or None) if pretrained else None,
        "num_params": None,
        "feature_dim": None,
    }


def timm_rows(
    pretrained: Iterable[str],
    architectures: Iterable[str],
    config: Callable[[str], Mapping[str, Any] | None],
) -> list[Row]:
    """Every row of the timm registry: one per pretrained tag and one per architecture.

    A pretrained row (``convnext_atto.d2_in1k``) loads published weights; an architecture
    row (``convnext_atto``, ``pretrained`` false) is the random-initialised model, a negative
    control. ``config(name)`` is the pretrained config of a tagged name or of an
    architecture's default tag (``None`` when timm has none).
    """
    rows = [timm_row(name, config(name) or {}, True) for name in pretrained]
    rows += [timm_row(arch, config(arch) or {}, False) for arch in architectures]
    return sorted(rows, key=lambda r: (r["architecture"], r["pretrained"], r["name"]))


def measure_key(row: Mapping[str, Any], fixed_input_size: bool) -> str:
    """What a measurement of ``row`` depends on: the architecture, and the input size when
    the architecture's parameters depend on it (a ViT's position embedding)."""
    arch = str(row["architecture"])
    return f"{arch}@{row['input_size']}" if fixed_input_size else arch


# ---- answering a statement ---------------------------------------------------------------


def _columns_in(cond: n.Condition | None) -> set[str]:
    if cond is None or isinstance(cond, n.Finetuned):
        return set()
    if isinstance(cond, n.And | n.Or):
        return set().union(*(_columns_in(c) for c in cond.operands))
    if isinstance(cond, n.Not):
        return _columns_in(cond.operand)
    return {cond.column.value}


def might_match(cond: n.Condition | None, row: Row, unknown: Iterable[str]) -> bool | None:
    """Kleene truth of ``cond`` with the ``unknown`` columns not yet known.

    ``False`` means no value of the unknown columns can make the row match, so it need not
    be measured; ``True`` and ``None`` (unknown) keep it.
    """
    missing = frozenset(unknown)
    if cond is None:
        return True
    if isinstance(cond, n.And):
        values = [might_match(c, row, missing) for c in cond.operands]
        return False if False in values else None if None in values else True
    if isinstance(cond, n.Or):
        values = [might_match(c, row, missing) for c in cond.operands]
        return True if True in values else None if None in values else False
    if isinstance(cond, n.Not):
        value = might_match(cond.operand, row, missing)
        return None if value is None else not value
    if not isinstance(cond, n.Finetuned) and cond.column.value in missing:
        return None
    return evaluate.truth(cond, row, {})


def _selected(statement: Query) -> tuple[str, ...]:
    if isinstance(statement, n.Select) and statement.columns:
        return tuple(c.value for c in statement.columns)
    return REGISTRY_COLUMNS[registry_of(statement)]


def answer(statement: Query, rows: Sequence[Row], measure: Measure) -> tuple[list[Row], int]:
    """The rows a browse or import statement answers, measured, and how many were measured.

    Rows are measured only when they must be: when the WHERE or ORDER BY reads a measured
    column, every row the rest of the condition keeps; otherwise only the rows left after
    WHERE, ORDER BY and LIMIT (and none when no measured column is selected).

    Raises:
        QueryError: values that cannot be compared.
    """
    cond = statement.where
    order = statement.order_by if isinstance(statement, n.Select) else ()
    needs = (_columns_in(cond) | {k.column.value for k in order}) & set(MEASURED)
    measured = 0
    if needs:
        keep = [dict(r) for r in rows if might_match(cond, r, MEASURED) is not False]
        _merge(keep, measure(keep))
        out = [dict(r) for r in evaluate.order(evaluate.where(keep, cond, {}), order)]
        measured = len(keep)
    else:
        out = [dict(r) for r in evaluate.order(evaluate.where(rows, cond, {}), order)]
    if statement.limit is not None:
        out = out[: statement.limit]
    if not needs and set(_selected(statement)) & set(MEASURED):
        _merge(out, measure(out))
        measured = len(out)
    return out, measured


def _merge(rows: list[Row], measured: Mapping[str, Mapping[str, Any]]) -> None:
    for row in rows:
        got = measured.get(row["name"])
        if got is not None:
            row.update({k: got.get(k) for k in MEASURED})


def project(statement: n.Select, rows: Sequence[Row]) -> tuple[list[str], list[Row]]:
    """The columns a browse shows and its rows restricted to them."""
    columns = list(_selected(statement))
    return columns, [{c: row.get(c) for c in columns} for row in rows]


# ---- rows to catalog entries ---------------------------------------------------------------

VISION_TASKS = ("image-", "object-detection", "zero-shot-image", "depth-estimation")


def _hf_modality(row: Mapping[str, Any]) -> Modality:
    task = str(row.get("pipeline_tag") or "")
    if task.startswith(VISION_TASKS) or row.get("library") == "timm":
        return Modality.VISION
    if task in ("feature-extraction", "sentence-similarity", "fill-mask") or task.startswith(
        "text"
    ):
        return Modality.TEXT
    raise CatalogError(
        f"model {row.get('name')!r} has pipeline tag {task or 'none'!r}, which is neither a "
        "vision nor a text task; narrow the import, e.g. WHERE pipeline_tag = "
        "'image-classification'"
    )


def spec_of(registry: str, row: Mapping[str, Any]) -> ModelSpec:
    """The catalog spec of a registry row; its weights are fetched when it is first embedded.

    Raises:
        CatalogError: a Hub row whose modality cannot be told from its pipeline tag.
    """
    name = str(row["name"])
    info: dict[str, Any] = {"source": registry, "tags": f"{registry}-registry"}
    for column in ("license", "hub_id", "input_size"):
        if row.get(column) is not None:
            info[column] = row[column]
    if registry == "timm":
        loader: dict[str, Any] = {"arch": name, "pretrained": bool(row["pretrained"])}
        if not row["pretrained"]:
            loader["seed"] = 0
        return ModelSpec(name, "timm", Modality.VISION, loader, IMPORT_BATCH_SIZE, info)
    info["hub_id"] = name
    if row.get("library") == "timm":
        loader = {"arch": f"hf-hub:{name}", "pretrained": True}
        return ModelSpec(name, "timm", Modality.VISION, loader, IMPORT_BATCH_SIZE, info)
    return ModelSpec(name, "huggingface", _hf_modality(row), {"model": name}, 32, info)


def measured_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The catalog entry's measured figures from a registry row (as ``describe`` reports)."""
    out = {k: row.get(k) for k in MEASURED}
    out["batch_size"] = IMPORT_BATCH_SIZE
    for column in ("input_size", "mean", "std", "interpolation"):
        if row.get(column) is not None:
            out[column] = row[column]
    return out


@dataclass(frozen=True)
class ImportPlan:
    """What an import registers: new specs, names already registered with the same spec."""

    new: tuple[tuple[ModelSpec, dict[str, Any]], ...]
    same: tuple[str, ...]


def plan_import(
    registry: str, rows: Sequence[Row], registered: Mapping[str, Mapping[str, Any]]
) -> ImportPlan:
    """Specs for the rows, checked against the catalog before anything is registered.

    Args:
        registry: The registry the rows came from.
        rows: The measured rows the import matched.
        registered: Catalog model name -> spec JSON of every entry that is not failed.

    Raises:
        CatalogError: nothing matched, or a row's name is registered with another spec
            (every clash is named; nothing is registered).
    """
    if not rows:
        raise CatalogError(
            f"the import matched no model of the {registry} registry; browse it with "
            f"SELECT name FROM {REGISTRY_TABLES[registry]} WHERE ... to see what it offers"
        )
    new: list[tuple[ModelSpec, dict[str, Any]]] = []
    same: list[str] = []
    clashes: list[str] = []
    for row in rows:
        spec = spec_of(registry, row)
        old = registered.get(spec.name)
        if old is None:
            new.append((spec, measured_of(row)))
        elif ModelSpec.from_json(old) == spec:
            same.append(spec.name)
        else:
            clashes.append(spec.name)
    if clashes:
        listed = ", ".join(repr(c) for c in clashes[:10]) + (", ..." if len(clashes) > 10 else "")
        raise CatalogError(
            f"{len(clashes)} model name(s) of this import are registered with another spec: "
            f"{listed}; nothing was registered. Drop or rename those models, or narrow the "
            f"import with AND name NOT IN (...)"
        )
    return ImportPlan(tuple(new), tuple(same))
