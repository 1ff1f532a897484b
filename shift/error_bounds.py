"""Confidence bounds on error rates measured on a random sample of a test set (docs/halving.md).

A model's error on the first ``n`` rows of a test set whose order is a seeded random
permutation estimates its error on the whole test set (sampling without replacement). The
bounds here are the Chernoff bounds in their Kullback-Leibler form: for a true error rate
``q`` and the observed rate ``p`` on ``n`` rows, ``P(p >= x) <= exp(-n KL(x || q))`` for
``x >= q`` (and the mirror bound below ``q``). They hold for sampling without replacement
too (Hoeffding 1963, theorem 4), and, unlike a normal approximation, stay valid at error
rates near 0 or 1 and on few rows. Pure functions; no randomness.
"""

from __future__ import annotations

import math

_STEPS = 64  # bisection steps: 2 ** -64 is below float resolution on [0, 1]


def kl_bernoulli(p: float, q: float) -> float:
    """``KL(p || q)`` between Bernoulli distributions (``0 ln 0 = 0``; ``inf`` off support)."""
    out = 0.0
    for a, b in ((p, q), (1.0 - p, 1.0 - q)):
        if a > 0.0:
            if b <= 0.0:
                return math.inf
            out += a * math.log(a / b)
    return out


def upper_bound(errors: int, rows: int, delta: float) -> float:
    """The largest error rate ``q`` the sample does not rule out at level ``delta``.

    ``P(true rate > upper_bound) <= delta``.

    Args:
        errors: Errors observed on the sample.
        rows: Sample size (at least 1).
        delta: Probability that the bound is wrong, in (0, 1).
    """
    p = errors / rows
    if p >= 1.0:
        return 1.0
    level = math.log(1.0 / delta) / rows
    low, high = p, 1.0
    for _ in range(_STEPS):
        mid = (low + high) / 2
        if kl_bernoulli(p, mid) > level:
            high = mid
        else:
            low = mid
    return high


def lower_bound(errors: int, rows: int, delta: float) -> float:
    """The smallest error rate the sample does not rule out: ``P(true < lower) <= delta``."""
    return 1.0 - upper_bound(rows - errors, rows, delta)


def confidently_worse(errors: int, other_errors: int, rows: int, delta: float) -> bool:
    """Whether a model with ``errors`` is worse than one with ``other_errors`` on the same rows.

    True when the first model's lower bound is above the second's upper bound, each at
    level ``delta``. If the first model's true error is at most the second's, this is true
    with probability at most ``2 * delta`` (whatever the dependence between the two, which
    are scored on the same rows): one of the two bounds must be wrong.
    """
    return lower_bound(errors, rows, delta) > upper_bound(other_errors, rows, delta)
