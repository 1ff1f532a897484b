"""Strategies: several rankers and proxies combined into one ranking, and their registry.

A strategy is a kind and two or more components. The kinds (:data:`KINDS`) are the
combinations of :mod:`shift.evaluation`: ``rank`` averages each component's ranks (ties
share the mean rank; scale-free), ``z`` averages each component's z-scores (the size of a
lead counts). A component is a ranker (:data:`shift.methods.RANKERS`, scored on the
training rows) or a proxy (:data:`shift.methods.CLASSIFIERS`, scored on the test rows, so
it needs ``TESTED ON``). In a query a strategy is written ``BY "rank:logme+knn"`` or by a
registered name (``BY "logme_knn"``); ``BY "default"``, and a RANK without ``BY``, use the
strategy the broker's ``rank_strategy`` setting names (:data:`DEFAULT_STRATEGY` unless set).

:func:`rank_strategy` orders the models best first with a stated confidence rule
(:data:`TIED_RULE`) and tie-break (:data:`TIE_RULE`). Pure: no clock, no network; numpy and
scipy are imported only to combine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shift.errors import SchedulerError

if TYPE_CHECKING:
    from shift.confidence import Scored

KINDS: dict[str, str] = {"rank": "rank average", "z": "z-score average"}
"""Strategy kinds and what each computes (:func:`shift.evaluation.combine`)."""

DEFAULT_NAME = "default"
"""``BY "default"``: the strategy the ``rank_strategy`` setting names."""


@dataclass(frozen=True)
class StrategySpec:
    """A registered strategy.

    Attributes:
        name: What a query writes after ``BY`` (and the ``rank_strategy`` setting names).
        kind: One of :data:`KINDS`.
        components: Components as a query writes them (``"knn(k=10)"``, ``"Cosine NN"``).
        rationale: One line: why this combination.
        without_test: The registered strategy used instead when this one has a proxy and
            the RANK has no ``TESTED ON`` (empty: such a RANK is refused).
    """

    name: str
    kind: str
    components: tuple[str, ...]
    rationale: str
    without_test: str = ""

    @property
    def text(self) -> str:
        """The inline form, ``kind:a+b``."""
        return f"{self.kind}:{'+'.join(self.components)}"


STRATEGIES: dict[str, StrategySpec] = {
    s.name: s
    for s in (
        StrategySpec(
            "linear_knn",
            "rank",
            ("Linear", "knn"),
            "the converged linear probe's test accuracy and leave-one-out k-NN on the training "
            "rows, averaged by rank: two plain views of how separable the classes are in the "
            "features, neither tied to a model family; needs TESTED ON (without it: "
            "logme_transrate_knn)",
            without_test="logme_transrate_knn",
        ),
        StrategySpec(
            "logme_transrate_knn",
            "rank",
            ("logme", "transrate", "knn"),
            "three estimators of different kinds on the training rows (Bayesian evidence, "
            "coding rate, neighbours), averaged by rank; needs no test set",
        ),
        StrategySpec(
            "logme_knn",
            "rank",
            ("logme", "knn"),
            "an evidence-based and a neighbour-based view of the training features; ranks, "
            "so neither score's scale dominates; needs no test set",
        ),
        StrategySpec(
            "logme_knn_z",
            "z",
            ("logme", "knn"),
            "as logme_knn, but a clear lead in one score counts for more than its rank",
        ),
        StrategySpec(
            "logme_cosine",
            "rank",
            ("logme", "Cosine NN"),
            "LogME on the training rows with 1-NN accuracy on the test rows (needs TESTED ON)",
        ),
        StrategySpec(
            "logme_cosine_z",
            "z",
            ("logme", "Cosine NN"),
            "as logme_cosine with z-scores (needs TESTED ON)",
        ),
        StrategySpec(
            "features4",
            "rank",
            ("logme", "sfda", "hscore_shrinkage", "knn"),
            "four estimators that read features, averaged by rank: no single one wins everywhere",
        ),
    )
}
"""Named strategies, by name."""

DEFAULT_STRATEGY = "linear_knn"
"""The ``rank_strategy`` setting's default: the strategy of a RANK without ``BY``.

Chosen by measurement against fine-tuning ground truth (docs/rankers.md, "The default
strategy"); changing the default is this one line."""

TIED_RULE = (
    "a model is tied with the first when, in every component, its interval overlaps the "
    "first model's interval (no component can tell the two apart)"
)
"""When a strategy row gets ``tied_with_first`` (docs and EXPLAIN)."""

TIE_RULE = (
    "equal combined scores: the better position in the first component, then in the next "
    "one, and so on; then the name"
)
"""How :func:`rank_strategy` orders models with equal combined scores."""


def split_text(text: str) -> tuple[str, list[str]] | None:
    """``"rank:logme+knn(k=5)"`` -> ``("rank", ["logme", "knn(k=5)"])``; ``None`` when the
    text has no ``kind:`` prefix (a ranker or a strategy's name).

    ``+`` separates components only outside parentheses and quotes, so a parameter value
    such as ``1e+3`` stays whole. The kind is returned as written (checked by the caller).
    """
    head, sep, rest = text.partition(":")
    if not sep or "(" in head or not head.strip().replace("_", "").isalnum():
        return None
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    quote = ""
    for char in rest:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "+" and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return head.strip().lower(), parts


def find_strategy(word: str) -> StrategySpec | None:
    """A registered strategy by name (case-insensitive; ``-`` and ``_`` alike)."""
    key = word.strip().lower().replace("-", "_")
    return STRATEGIES.get(key)


@dataclass(frozen=True)
class StrategyRow:
    """A row of a strategy's ranking.

    Attributes:
        name: The model.
        score: The combined score (higher is better).
        position: 1 for the best.
        tied_with_first: :data:`TIED_RULE`.
        components: Each component's score of this model, with its interval and rows.
        positions: The model's position in each component's own ranking (1 = best).
    """

    name: str
    score: float
    position: int
    tied_with_first: bool
    components: tuple[Scored, ...]
    positions: tuple[int, ...]


def _overlap(a: Scored, b: Scored) -> bool:
    return a.low <= b.high and b.low <= a.high


def rank_strategy(kind: str, components: Sequence[Mapping[str, Scored]]) -> tuple[StrategyRow, ...]:
    """Combine component rankings of the same models into one, best first.

    Args:
        kind: One of :data:`KINDS`.
        components: Per component, ``{model: Scored}`` (higher is better; a proxy's accuracy).

    Only models every component scores are ranked. The combined score is
    :func:`shift.evaluation.combine`; the order is by it, then :data:`TIE_RULE`; the mark
    is :data:`TIED_RULE`.

    Raises:
        SchedulerError: an unknown kind, fewer than two components, or a component whose
            scores are malformed (as :func:`~shift.confidence.rank_with_confidence`).
    """
    # numpy and scipy only here: the query parser imports this module for its registry
    from shift.confidence import rank_with_confidence
    from shift.evaluation import combine

    if kind not in KINDS:
        raise SchedulerError(f"unknown strategy kind {kind!r}; kinds: {', '.join(KINDS)}")
    if len(components) < 2:
        raise SchedulerError(f"a strategy combines at least two components, got {len(components)}")
    positions = []
    for scored in components:
        ranked = rank_with_confidence(list(scored.values()))
        positions.append({r.name: r.position for r in ranked})
    models = set(components[0])
    for scored in components[1:]:
        models &= set(scored)
    rankings = [{m: scored[m].score for m in models} for scored in components]
    combined = combine(kind, rankings)
    ordered = sorted(
        (m for m in combined if math.isfinite(combined[m])),
        key=lambda m: (-combined[m], *(p[m] for p in positions), m),
    )
    if not ordered:
        return ()
    first = ordered[0]
    return tuple(
        StrategyRow(
            m,
            combined[m],
            index,
            all(_overlap(c[m], c[first]) for c in components),
            tuple(c[m] for c in components),
            tuple(p[m] for p in positions),
        )
        for index, m in enumerate(ordered, 1)
    )
