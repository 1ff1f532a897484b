"""Third-party rankers: the ``shift.rankers`` entry-point group.

A distribution adds a ranker by naming a function in its metadata::

    [project.entry-points."shift.rankers"]
    centroid = my_rankers:centroid

The entry point's name is the ranker's name in queries (``BY "centroid(scale=2)"``). The
function follows the built-in rankers' convention, ``fn(features, labels, *, logits=None,
**params) -> float`` (higher is better); its keyword-only parameters with an ``int``,
``float`` or ``str`` default become the ranker's parameters, and optional attributes state
the rest: ``needs`` (a subset of :data:`shift.methods.RANKER_NEEDS`, default features and
labels), ``params`` (a tuple of :class:`~shift.methods.ParamSpec` with bounds, replacing the
ones read from the signature) and ``cost`` (a :data:`~shift.methods.CostModel`).

Discovery is lazy: nothing is scanned or imported until :func:`load_plugins` is called (the
query validator and the workers call it when a ranker name is not built in). A plugin that
fails to load is recorded with its error and skipped, so one broken distribution never
breaks parsing; asking for that ranker by name reports the error.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from shift.methods import RANKER_NEEDS, RANKERS, MethodSpec, ParamSpec
from shift.registry import summary

ENTRY_POINT_GROUP = "shift.rankers"
"""The entry-point group third-party rankers register in."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED = frozenset({"features", "labels", "logits", "model"})


@dataclass(frozen=True)
class PluginRanker:
    """A ranker loaded from an entry point.

    Attributes:
        name: The ranker's name (the entry point's name).
        function: The scoring function.
        spec: Its parameters, needs and cost, as the query validator sees them.
        source: ``distribution version: module:attribute``, for messages.
    """

    name: str
    function: Callable[..., float]
    spec: MethodSpec
    source: str


@dataclass(frozen=True)
class PluginFailure:
    """An entry point that could not be used: its name, where it points and why."""

    name: str
    source: str
    error: str


@dataclass(frozen=True)
class Discovery:
    """What one scan of the entry-point group found."""

    rankers: dict[str, PluginRanker]
    failures: dict[str, PluginFailure]


def spec_from_function(name: str, function: Callable[..., Any]) -> MethodSpec:
    """The :class:`MethodSpec` of a plugin ranker, read from its signature and attributes.

    Raises:
        ValueError: the name, a parameter or ``needs`` is not usable (the message says which).
    """
    if not _NAME.match(name):
        raise ValueError(f"ranker name {name!r} must be lower-case letters, digits and '_'")
    params = getattr(function, "params", None)
    if params is None:
        params = tuple(_params_of(function))
    elif not all(isinstance(p, ParamSpec) for p in params):
        raise ValueError("the 'params' attribute must be a tuple of shift.methods.ParamSpec")
    needs = tuple(getattr(function, "needs", ("features", "labels")))
    unknown = [need for need in needs if need not in RANKER_NEEDS]
    if unknown or not needs:
        raise ValueError(f"needs {needs!r} must be a non-empty subset of {RANKER_NEEDS}")
    cost = getattr(function, "cost", None)
    if cost is not None and not callable(cost):
        raise ValueError("the 'cost' attribute must be a function of (rows, dim, classes, K)")
    return MethodSpec(
        name,
        name,
        (name,),
        tuple(params),
        help=summary(function),
        needs=needs,
        cost=cost,
    )


def _params_of(function: Callable[..., Any]) -> Iterable[ParamSpec]:
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY or parameter.name in _RESERVED:
            continue
        default = parameter.default
        if isinstance(default, bool) or not isinstance(default, int | float | str):
            raise ValueError(
                f"parameter {parameter.name!r} needs an int, float or str default, got {default!r}"
            )
        yield ParamSpec(parameter.name, type(default), default)


def discover(entry_points: Iterable[metadata.EntryPoint] | None = None) -> Discovery:
    """Load every ranker of the entry-point group and add its spec to ``RANKERS``.

    Args:
        entry_points: The entry points to load; by default those installed on ``sys.path``.

    Returns:
        The rankers loaded and the entry points that failed, each by name. A name that a
        built-in ranker (or an earlier entry point) already uses is a failure.
    """
    if entry_points is None:
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    rankers: dict[str, PluginRanker] = {}
    failures: dict[str, PluginFailure] = {}
    for point in entry_points:
        dist = point.dist
        source = f"{dist.name} {dist.version}: {point.value}" if dist else point.value
        known = RANKERS.get(point.name)
        if point.name in rankers or (known is not None and known is not _ADDED.get(point.name)):
            failures[point.name] = PluginFailure(
                point.name, source, "the name is already taken by another ranker"
            )
            continue
        try:
            function = point.load()
            if not callable(function):
                raise ValueError(f"{point.value} is not a function")
            spec = spec_from_function(point.name, function)
        except Exception as error:  # a plugin may raise anything on import; record it
            failures[point.name] = PluginFailure(
                point.name, source, f"{type(error).__name__}: {error}"
            )
            continue
        rankers[point.name] = PluginRanker(point.name, function, spec, source)
    for name, spec in list(_ADDED.items()):
        if name not in rankers and RANKERS.get(name) is spec:
            del RANKERS[name]
            del _ADDED[name]
    for name, plugin in rankers.items():
        RANKERS[name] = _ADDED[name] = plugin.spec
    return Discovery(rankers, failures)


_ADDED: dict[str, MethodSpec] = {}
_LOADED: list[Discovery] = []


def load_plugins(*, refresh: bool = False) -> Discovery:
    """The installed plugin rankers, scanned on the first call (or again with ``refresh``)."""
    if refresh or not _LOADED:
        _LOADED[:] = [discover()]
    return _LOADED[0]
