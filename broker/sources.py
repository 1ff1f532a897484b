"""What a FROM reads: a catalog table, a list of names or a session variable."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from broker.context import Context
from shift.errors import CatalogError
from shift.ql import nodes as n
from shift.registration import unknown_name

MODALITY_OF_TABLE = {"image_models": "vision", "text_models": "text"}
"""The modality each model table holds (``models`` holds every model)."""


def variable(ctx: Context, name: str) -> list[str]:
    """The names bound to a session variable.

    Raises:
        CatalogError: unknown variable, naming the closest declared one.
    """
    return ctx.session.get(name)


def probe_name(name: str, models: Collection[str], variables: Mapping[str, list[str]]) -> str:
    """The model ``probe = name`` means: the model of that name, else the one model a session
    variable holds (upstream SHiFT DECLAREs its probe: ``declare my_probe AS select * from
    image_models where torchvision_name = "ResNet18"``).

    A name that is neither is returned as it is, so the catalog lookup names the closest model.

    Raises:
        CatalogError: the variable holds no model, several, or a name that is not a model.
    """
    if name in models or name not in variables:
        return name
    held = variables[name]
    if len(held) != 1:
        shown = ", ".join(repr(h) for h in held[:5]) + (", ..." if len(held) > 5 else "")
        raise CatalogError(
            f"probe = {name}: the variable {name!r} holds {len(held)} names ({shown or 'none'}) "
            "but a probe is one model; DECLARE it with a WHERE (or LIMIT 1) that keeps one"
        )
    if held[0] not in models:
        raise CatalogError(
            f"probe = {name}: the variable {name!r} holds {held[0]!r}, which is not a model; "
            "DECLARE it from image_models, text_models or models"
        )
    return held[0]


def source_rows(
    source: n.Source, ctx: Context, expect: str | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The catalog kind and rows a FROM reads (names checked, closest match on error).

    A table decides the kind; a list or variable is read as datasets when every name is one,
    else as models, unless ``expect`` (``"model"`` or ``"dataset"``) says which it must be.

    Raises:
        CatalogError: an unknown name (with the closest of the kind), a name of the other
            kind than ``expect``, or a table of the other kind.
    """
    if isinstance(source, n.Table):
        if source.name == "readers":
            kind, rows = "dataset", ctx.catalog.rows("dataset")
        else:
            modality = MODALITY_OF_TABLE.get(source.name)
            rows = [
                r
                for r in ctx.catalog.rows("model")
                if modality is None or r["modality"] == modality
            ]
            kind = "model"
        if expect is not None and kind != expect:
            raise CatalogError(f"FROM {source.name} holds {kind}s; this statement needs {expect}s")
        return kind, rows
    names = (
        variable(ctx, source.name)
        if isinstance(source, n.Variable)
        else [str(v.value) for v in source.names]
    )
    models = {r["name"] for r in ctx.catalog.rows("model")}
    datasets = {r["name"] for r in ctx.catalog.rows("dataset")}
    guess = "dataset" if names and not set(names) & models and set(names) <= datasets else "model"
    kind = expect or guess
    known, other = (models, datasets) if kind == "model" else (datasets, models)
    for name in names:
        if name in known:
            continue
        if expect is not None and name in other:
            other_kind = "dataset" if kind == "model" else "model"
            raise CatalogError(f"{name!r} is a {other_kind}; this statement needs {kind}s")
        raise unknown_name(kind, name, known)
    return kind, ctx.catalog.rows(kind)


def check_other_than(statement: Any, ctx: Context) -> None:
    """An ``OTHER THAN var`` names a declared variable.

    Raises:
        CatalogError: it does not (with the closest declared name).
    """
    if isinstance(statement.other_than, n.Variable):
        variable(ctx, statement.other_than.name)
