"""The methods a query can name: classifiers (proxies), rankers and fine-tuning options.

Each method has a canonical name, the spellings users write, and a table of parameters with
types, defaults and bounds. The parser fills in defaults so that two spellings of the same
work produce the same query tree (and the same cache identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type (``int``, ``float`` or ``str``), default and inclusive bounds."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""
    aliases: tuple[str, ...] = ()

    def check(self, value: object) -> str:
        """Return an error message for ``value``, or an empty string when it is valid."""
        if self.kind is str:
            if isinstance(value, str) and value.strip():
                return ""
            return f"{self.name} must be a non-empty string in quotes, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.name} must be a number, got {value!r}"
        if self.kind is int and not float(value).is_integer():
            return f"{self.name} must be an integer, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name} must be at least {self.minimum:g}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name} must be at most {self.maximum:g}, got {value!r}"
        return ""


@dataclass(frozen=True)
class MethodSpec:
    """A classifier or ranker: canonical name, display name, spellings and parameters."""

    name: str
    display: str
    spellings: tuple[str, ...]
    params: tuple[ParamSpec, ...] = ()
    help: str = ""

    def param(self, name: str) -> ParamSpec | None:
        """The parameter called ``name``, if any."""
        return next((p for p in self.params if p.name == name), None)


CLASSIFIERS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "euclidean_nn",
            "Euclidean NN",
            ("euclidean nn", "euclideannn", "euclidean", "1nn", "knn", "nn"),
            help="1-nearest-neighbour error with Euclidean distance on frozen features.",
        ),
        MethodSpec(
            "cosine_nn",
            "Cosine NN",
            ("cosine nn", "cosinenn", "cosine"),
            help="1-nearest-neighbour error with cosine distance on frozen features.",
        ),
        MethodSpec(
            "linear",
            "Linear",
            ("linear", "logistic", "linear probe", "linearprobe"),
            (
                ParamSpec("learning_rate", float, 0.01, 1e-8, 10.0, "SGD learning rate", ("lr",)),
                ParamSpec(
                    "num_epochs", int, 100, 1, 100_000, "full passes over the data", ("epochs",)
                ),
            ),
            help="A linear (softmax) classifier trained on frozen features.",
        ),
    )
}

NN_CLASSIFIERS = frozenset({"euclidean_nn", "cosine_nn"})
"""Proxies whose results carry nearest-neighbour state (incremental over chunks)."""

RANKERS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("logme", "logme", ("logme",), help="LogME evidence of a linear model."),
        MethodSpec(
            "random",
            "random",
            ("random",),
            (ParamSpec("seed", int, 0, 0, 2**31 - 1, "random seed"),),
            help="A seeded random order: the baseline every ranker must beat.",
        ),
    )
}

#: Options of ``FINETUNE ... WITH ... (params)``; ``None`` means "the model family's default".
FINETUNE_PARAMS: dict[str, ParamSpec] = {
    p.name: p
    for p in (
        ParamSpec("learning_rate", float, None, 1e-8, 10.0, "optimizer learning rate", ("lr",)),
        ParamSpec("epochs", int, None, 1, 10_000, "passes over the training data", ("num_epochs",)),
        ParamSpec("batch_size", int, None, 1, 65_536, "rows per step", ("bs",)),
        ParamSpec("val_fraction", float, None, 0.0, 0.9, "share of train rows held out"),
        ParamSpec("weight_decay", float, None, 0.0, 1.0, "decoupled weight decay"),
        ParamSpec("seed", int, None, 0, 2**31 - 1, "random seed"),
        ParamSpec("test", str, None, help="dataset to report test accuracy on"),
    )
}


def _key(word: str) -> str:
    return " ".join(word.replace("_", " ").replace("-", "").lower().split())


def find_method(table: dict[str, MethodSpec], word: str) -> MethodSpec | None:
    """Look up a method by canonical name or any spelling (case and ``_``/space-insensitive)."""
    key = _key(word)
    for spec in table.values():
        if key == _key(spec.name) or key in {_key(s) for s in spec.spellings}:
            return spec
    compact = key.replace(" ", "")
    for spec in table.values():
        if compact in {_key(s).replace(" ", "") for s in (spec.name, *spec.spellings)}:
            return spec
    return None
