"""The methods a query can name: classifiers (proxies), rankers and fine-tuning options.

Each method has a canonical name, the spellings users write, and a table of parameters with
types, defaults and bounds. The parser fills in defaults so that two spellings of the same
work produce the same query tree (and the same cache identity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type (``int``, ``float`` or ``str``), default and inclusive bounds.

    A ``str`` parameter with ``choices`` takes one of them only.
    """

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    def check(self, value: object) -> str:
        """Return an error message for ``value``, or an empty string when it is valid."""
        if self.kind is str:
            if not isinstance(value, str) or not value.strip():
                return f"{self.name} must be a non-empty string in quotes, got {value!r}"
            if self.choices and value not in self.choices:
                return f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
            return ""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{self.name} must be a number, got {value!r}"
        if self.kind is int and not float(value).is_integer():
            return f"{self.name} must be an integer, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"{self.name} must be at least {self.minimum:g}, got {value!r}"
        if self.maximum is not None and value > self.maximum:
            return f"{self.name} must be at most {self.maximum:g}, got {value!r}"
        return ""


CostModel = Callable[[int, int, int, int], float]
"""Estimated floating-point operations of a method from ``(rows, dim, classes, source_classes)``:
training rows ``n``, feature dimension ``d``, target classes ``C`` and source-head classes ``K``."""


@dataclass(frozen=True)
class MethodSpec:
    """A classifier or ranker: canonical name, display name, spellings and parameters.

    Rankers also state what they read (``needs``: a subset of :data:`RANKER_NEEDS`), a cost
    model for EXPLAIN (``cost``), its complexity in words (``complexity``) and whether
    ``RANK ... CHUNK/BUDGET`` may halve over training prefixes with it (``halvable``: a
    score whose cost grows with the rows and that is computed the same way on a prefix,
    so a prefix's score estimates the whole set's).
    """

    name: str
    display: str
    spellings: tuple[str, ...]
    params: tuple[ParamSpec, ...] = ()
    help: str = ""
    needs: tuple[str, ...] = ()
    cost: CostModel | None = None
    complexity: str = ""
    halvable: bool = False

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
                ParamSpec(
                    "learning_rate",
                    float,
                    0.01,
                    1e-8,
                    10.0,
                    "SGD step size (solver 'sgd' only)",
                    ("lr",),
                ),
                ParamSpec(
                    "num_epochs",
                    int,
                    100,
                    1,
                    100_000,
                    "SGD full-batch steps (solver 'sgd' only)",
                    ("epochs",),
                ),
                ParamSpec(
                    "solver",
                    str,
                    "auto",
                    help="'lbfgs' (fit to convergence), 'sgd' (upstream SHiFT's fixed SGD "
                    "budget) or 'auto' ('sgd' when learning_rate or num_epochs is set, "
                    "else 'lbfgs')",
                    choices=("auto", "lbfgs", "sgd"),
                ),
                ParamSpec(
                    "l2",
                    float,
                    1.0,
                    0.0,
                    1e6,
                    "L2 penalty on the weights added to the summed loss, scikit-learn's 1/C "
                    "(solver 'lbfgs' only)",
                ),
                ParamSpec(
                    "tol",
                    float,
                    1e-5,
                    1e-12,
                    1.0,
                    "stop when no gradient component of the mean objective exceeds this "
                    "(solver 'lbfgs' only)",
                ),
                ParamSpec(
                    "max_iter",
                    int,
                    1000,
                    1,
                    100_000,
                    "L-BFGS iteration cap (solver 'lbfgs' only)",
                    ("max_iterations",),
                ),
            ),
            help="Multinomial logistic regression on standardised frozen features, fitted to "
            "convergence by L-BFGS (or by upstream SHiFT's fixed-budget SGD).",
        ),
    )
}

LINEAR_SOLVERS: dict[str, tuple[str, ...]] = {
    "lbfgs": ("l2", "tol", "max_iter"),
    "sgd": ("learning_rate", "num_epochs"),
}
"""The Linear proxy's solvers and the parameters each one uses."""


def linear_solver(params: dict[str, Any]) -> str:
    """The solver a full Linear parameter set runs: ``solver``, with ``auto`` resolved.

    ``auto`` is ``sgd`` when ``learning_rate`` or ``num_epochs`` differs from its default
    (so upstream SHiFT's ``Linear(learning_rate=0.01, num_epochs=400)`` keeps its meaning),
    and ``lbfgs`` otherwise.
    """
    solver = str(params.get("solver", "auto"))
    if solver != "auto":
        return solver
    spec = CLASSIFIERS["linear"]
    changed = any(
        (p := spec.param(name)) is not None and params.get(name, p.default) != p.default
        for name in LINEAR_SOLVERS["sgd"]
    )
    return "sgd" if changed else "lbfgs"


def classifier_problem(name: str, params: dict[str, Any]) -> str:
    """What is wrong with a classifier's full parameter set as a whole, or an empty string.

    Each parameter on its own (an unknown solver too) is checked by :meth:`ParamSpec.check`;
    this checks how they combine: a parameter that the chosen Linear solver does not use must
    be left at its default rather than silently ignored.
    """
    if name != "linear":
        return ""
    solver = str(params.get("solver", "auto"))
    chosen = linear_solver(params)
    if chosen not in LINEAR_SOLVERS:
        return ""  # ParamSpec.check reports an unknown solver
    spec = CLASSIFIERS["linear"]
    unused = [
        f"{p.name}={params[p.name]!r}"
        for other, names in LINEAR_SOLVERS.items()
        if other != chosen
        for p in spec.params
        if p.name in names and p.name in params and params[p.name] != p.default
    ]
    if not unused:
        return ""
    other = next(s for s in LINEAR_SOLVERS if s != chosen)
    why = " (solver 'auto' picks 'sgd' when learning_rate or num_epochs is set)"
    return (
        f"{', '.join(unused)} {'have' if len(unused) > 1 else 'has'} no effect with solver "
        f"{chosen!r}"
        f"{why if solver == 'auto' else ''}, which uses only {', '.join(LINEAR_SOLVERS[chosen])}; "
        f"remove {'them' if len(unused) > 1 else 'it'}, or write solver={other!r} and leave out "
        f"{', '.join(LINEAR_SOLVERS[chosen])}"
    )


NN_CLASSIFIERS = frozenset({"euclidean_nn", "cosine_nn"})
"""Proxies whose results carry nearest-neighbour state (incremental over chunks)."""

RANKER_NEEDS = ("features", "labels", "logits", "model")
"""What a ranker can read: the frozen training features, their labels, the source head's logits
over the training rows, or only the model's name (``random``)."""


def _logme_cost(n: int, d: int, c: int, k: int) -> float:
    r = min(n, d)  # one eigendecomposition of the smaller Gram matrix, then O(r) per class step
    return 2.0 * n * d * r + 10.0 * r**3 + 2.0 * c * n * r + 100.0 * c * r


def _sfda_cost(n: int, d: int, c: int, k: int) -> float:
    # two fits (before and after ConfMix), each: scatter matrices, one generalised eigh, scores
    return 2.0 * (4.0 * n * d * d + 15.0 * d**3 + 2.0 * n * d * c)


def _hscore_cost(n: int, d: int, c: int, k: int) -> float:
    return 2.0 * n * d * d + 10.0 * d**3 + 2.0 * c * d * d


def _shrinkage_cost(n: int, d: int, c: int, k: int) -> float:
    return 4.0 * n * d * d + 10.0 * d**3 + 2.0 * c * d * d


def _transrate_cost(n: int, d: int, c: int, k: int) -> float:
    r = min(n, d)
    return 4.0 * n * d * r + (c + 1) * r**3 / 3.0


def _knn_cost(n: int, d: int, c: int, k: int) -> float:
    return 2.0 * n * n * d + 4.0 * n * n


def _nce_cost(n: int, d: int, c: int, k: int) -> float:
    return 2.0 * n * k + 4.0 * c * k


def _leep_cost(n: int, d: int, c: int, k: int) -> float:
    return 4.0 * n * k + 2.0 * n * k * c


def _random_cost(n: int, d: int, c: int, k: int) -> float:
    return 1.0


_FEATURES = ("features", "labels")
_LOGITS = ("logits", "labels")
_DIMS = ParamSpec(
    "dims",
    int,
    0,
    0,
    1_000_000,
    "principal components the covariances are fitted on; 0: floor((n - C) / 4), 4 rows per "
    "dimension (a value >= d keeps every dimension)",
)

RANKERS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "logme",
            "logme",
            ("logme", "log me"),
            help="LogME: mean log evidence per row of a Bayesian linear model per class.",
            needs=_FEATURES,
            cost=_logme_cost,
            complexity="O(n d min(n,d) + min(n,d)^3 + C n min(n,d))",
            halvable=True,
        ),
        MethodSpec(
            "sfda",
            "sfda",
            ("sfda", "self challenging fisher"),
            (
                ParamSpec("a", float, 5.0, 0.0, 1000.0, "shrinkage decay: exp(-a * top eig of Sw)"),
                ParamSpec(
                    "n_components", int, 0, 0, 1_000_000, "Fisher directions kept; 0 keeps all"
                ),
                _DIMS,
            ),
            help="SFDA: mean true-class probability of a regularised Fisher classifier, ConfMix.",
            needs=_FEATURES,
            cost=_sfda_cost,
            complexity="O(n d^2 + d^3), twice",
        ),
        MethodSpec(
            "hscore",
            "hscore",
            ("hscore", "h score", "h-score"),
            (_DIMS,),
            help="H-score: tr(cov(f)^+ cov(E[f|y])).",
            needs=_FEATURES,
            cost=_hscore_cost,
            complexity="O(n d^2 + d^3)",
        ),
        MethodSpec(
            "hscore_shrinkage",
            "hscore_shrinkage",
            ("hscore shrinkage", "shrinkage hscore", "regularized hscore", "hscore lw"),
            help="H-score with the Ledoit-Wolf shrunk feature covariance.",
            needs=_FEATURES,
            cost=_shrinkage_cost,
            complexity="O(n d^2 + d^3)",
        ),
        MethodSpec(
            "nce",
            "nce",
            ("nce", "negative conditional entropy"),
            help="NCE: -H(Y|Z) of target labels given the source head's top class.",
            needs=_LOGITS,
            cost=_nce_cost,
            complexity="O(n K)",
        ),
        MethodSpec(
            "leep",
            "leep",
            ("leep",),
            help="LEEP: mean log-likelihood of the source head's expected empirical predictor.",
            needs=_LOGITS,
            cost=_leep_cost,
            complexity="O(n K C)",
        ),
        MethodSpec(
            "transrate",
            "transrate",
            ("transrate", "trans rate"),
            (ParamSpec("eps", float, 1e-4, 1e-12, 1e6, "distortion of the coding rate"),),
            help="TransRate: coding rate of the features minus that given the labels.",
            needs=_FEATURES,
            cost=_transrate_cost,
            complexity="O(n d min(n,d) + C min(n,d)^3)",
        ),
        MethodSpec(
            "knn",
            "knn",
            ("knn", "k nn", "loo knn"),
            (
                ParamSpec("k", int, 20, 1, 10_000, "neighbours that vote"),
                ParamSpec(
                    "metric",
                    str,
                    "cosine",
                    help="distance between rows",
                    choices=("cosine", "euclidean"),
                ),
            ),
            help="Leave-one-out k-NN accuracy on the training rows.",
            needs=_FEATURES,
            cost=_knn_cost,
            complexity="O(n^2 d)",
            halvable=True,
        ),
        MethodSpec(
            "random",
            "random",
            ("random",),
            (ParamSpec("seed", int, 0, 0, 2**31 - 1, "random seed"),),
            help="A seeded random order: the baseline every ranker must beat.",
            needs=("model",),
            cost=_random_cost,
            complexity="O(1)",
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
