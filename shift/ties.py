"""Ties in a task-aware ranking: the stated rule that orders them and the ``tied`` mark.

Two models are tied when their metric (``err`` or ``acc``) is equal and it was measured on
the same training rows in the same halving round (``eliminated_in``): nothing measured
tells them apart. Within such a run the order is :data:`TIE_RULE`, the rule
:func:`shift.confidence.rank_with_confidence` applies to a RANK: the narrower interval
first (at an equal error rate the binomial interval narrows with more test rows), then the
cheaper model (fewer parameters), then the name. Every tied row gets ``tied = true``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

TIE_RULE = "more test rows (a narrower interval), then fewer parameters, then the name"
"""How models with an equal score on the same rows are ordered (docs/search.md)."""

_DIGITS = 12
"""Scores equal to this many decimals are equal (an average over test sets is a float sum)."""


def _group(row: Mapping[str, Any], metric: str) -> tuple[Any, ...]:
    value = row.get(metric)
    score = round(float(value), _DIGITS) if isinstance(value, int | float) else value
    return (score, row.get("eliminated_in"), row.get("train_rows"))


def _cost(value: Any) -> float:
    return (
        float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.inf
    )


def break_ties(
    rows: Sequence[Mapping[str, Any]], metric: str, num_params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Order each run of tied rows by :data:`TIE_RULE` and mark them ``tied``.

    Args:
        rows: One ranking's rows, already ordered by the metric (and, for halving, with
            eliminated models below survivors); tied rows are next to each other.
        metric: The column the ranking orders by (``err`` or ``acc``).
        num_params: Each model's parameter count (missing or null: the most expensive).

    Returns:
        The same rows, runs of ties reordered, each with a ``tied`` flag.
    """
    out: list[dict[str, Any]] = []
    for _, run in groupby(rows, key=lambda r: _group(r, metric)):
        group = [dict(r) for r in run]
        group.sort(
            key=lambda r: (
                -int(r.get("test_rows") or 0),
                _cost(num_params.get(str(r.get("name")))),
                str(r.get("name")),
            )
        )
        for row in group:
            row["tied"] = len(group) > 1
        out.extend(group)
    return out
