"""Confidence in a ranking: intervals for scores and the models that cannot be told apart.

A ranker's score gets a seeded bootstrap percentile interval (:func:`bootstrap_interval`,
or :func:`bootstrap_mean_interval` for a score that is a mean over rows); a proxy's error
rate gets its binomial standard error (:func:`binomial_se`) and a Wilson score interval
(:func:`binomial_interval`). :func:`rank_with_confidence` orders scored models best first
and marks those whose interval overlaps the first's: the data cannot tell them apart.

Randomness is an input (a seeded ``numpy.random.Generator``); nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from shift.errors import SchedulerError


@dataclass(frozen=True)
class Interval:
    """A confidence interval.

    Attributes:
        low: Lower end.
        high: Upper end.
        level: Its nominal coverage (``0.95``).
        method: How it was made: ``bootstrap percentile``, ``wilson`` or ``constant``.
    """

    low: float
    high: float
    level: float
    method: str

    @property
    def width(self) -> float:
        """``high - low``."""
        return self.high - self.low


def _check_level(level: float, resamples: int) -> None:
    if not 0.0 < level < 1.0:
        raise SchedulerError(f"a confidence level must lie strictly between 0 and 1, got {level}")
    if resamples < 1:
        raise SchedulerError(f"a bootstrap needs at least one resample, got {resamples}")


def _resample(rows: int, strata: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    if strata is None:
        return rng.integers(0, rows, size=rows)
    parts = []
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        parts.append(members[rng.integers(0, len(members), size=len(members))])
    return np.sort(np.concatenate(parts))


def _percentiles(values: np.ndarray, level: float, method: str) -> Interval:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return Interval(float(low), float(high), level, method)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    rows: int,
    *,
    resamples: int,
    level: float,
    rng: np.random.Generator,
    strata: np.ndarray | None = None,
) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over ``rows`` rows.

    Each of ``resamples`` draws ``rows`` row indices with replacement (within each stratum
    when ``strata`` gives one value per row, so every class keeps its count) and evaluates
    ``statistic(indices)``; the interval is the ``(1 - level)/2`` and ``(1 + level)/2``
    quantiles of those values (numpy's linear interpolation).

    Raises:
        SchedulerError: ``level`` outside (0, 1), no resamples, or no rows.
    """
    _check_level(level, resamples)
    if rows < 1:
        raise SchedulerError("a bootstrap needs at least one row")
    if strata is not None and len(strata) != rows:
        raise SchedulerError(f"strata give {len(strata)} values for {rows} rows")
    values = np.array([statistic(_resample(rows, strata, rng)) for _ in range(resamples)])
    return _percentiles(values, level, "bootstrap percentile")


def bootstrap_mean_interval(
    values: np.ndarray,
    *,
    resamples: int,
    level: float,
    rng: np.random.Generator,
    strata: np.ndarray | None = None,
) -> Interval:
    """:func:`bootstrap_interval` of the mean of per-row ``values`` (vectorised)."""
    values = np.asarray(values, dtype=np.float64)
    return bootstrap_interval(
        lambda index: float(values[index].mean()),
        len(values),
        resamples=resamples,
        level=level,
        rng=rng,
        strata=strata,
    )


def binomial_se(error: float, rows: int) -> float:
    """Standard error ``sqrt(p (1 - p) / n)`` of an error rate ``p`` measured on ``n`` rows.

    Raises:
        SchedulerError: ``rows`` below 1 or ``error`` outside [0, 1].
    """
    _check_rate(error, rows)
    return math.sqrt(error * (1.0 - error) / rows)


def binomial_interval(error: float, rows: int, level: float = 0.95) -> Interval:
    """Wilson score interval of an error rate; unlike ``p +- z se`` it is not empty at 0 or 1.

    Raises:
        SchedulerError: as :func:`binomial_se`, or ``level`` outside (0, 1).
    """
    _check_rate(error, rows)
    _check_level(level, 1)
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    centre = (error + z * z / (2 * rows)) / (1 + z * z / rows)
    half = z / (1 + z * z / rows) * math.sqrt(error * (1 - error) / rows + z * z / (4 * rows**2))
    low = 0.0 if error == 0.0 else max(0.0, centre - half)  # exact ends, not rounding noise
    high = 1.0 if error == 1.0 else min(1.0, centre + half)
    return Interval(low, high, level, "wilson")


def _check_rate(error: float, rows: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise SchedulerError(f"an error rate needs at least one row, got rows={rows!r}")
    if not 0.0 <= error <= 1.0:
        raise SchedulerError(f"an error rate must lie in [0, 1], got {error!r}")


@dataclass(frozen=True)
class Scored:
    """One model's score with its interval and the rows it is based on."""

    name: str
    score: float
    low: float
    high: float
    rows: int


@dataclass(frozen=True)
class Ranked:
    """A row of a ranking.

    Attributes:
        position: 1 for the best.
        tied_with_first: True for the first and for every model whose interval overlaps the
            first's: the measurement cannot tell it apart from the first.
    """

    name: str
    score: float
    low: float
    high: float
    rows: int
    position: int
    tied_with_first: bool


TIE_RULE = (
    "equal scores: the narrower interval first, then the one measured on more rows, "
    "then the name in alphabetical order"
)
"""How :func:`rank_with_confidence` orders models with equal scores (for docs and EXPLAIN)."""


def rank_with_confidence(
    entries: Sequence[Scored], *, higher_is_better: bool = True
) -> tuple[Ranked, ...]:
    """Order models best first and mark the ones that cannot be told apart from the first.

    The order is by score (descending when ``higher_is_better``, so pass ``False`` for an
    error rate), then :data:`TIE_RULE`. A model is tied with the first when the two
    intervals overlap (``low <= first.high`` and ``first.low <= high``).

    Raises:
        SchedulerError: a name given twice, a non-finite score or bound, ``low > high``, or
            a row count below 1.
    """
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise SchedulerError(f"model {entry.name!r} is scored twice")
        seen.add(entry.name)
        if not all(math.isfinite(v) for v in (entry.score, entry.low, entry.high)):
            raise SchedulerError(f"model {entry.name!r} has a non-finite score or interval")
        if entry.low > entry.high:
            raise SchedulerError(
                f"model {entry.name!r} has an empty interval [{entry.low}, {entry.high}]"
            )
        if entry.rows < 1:
            raise SchedulerError(f"model {entry.name!r} is scored on {entry.rows} rows")
    sign = -1.0 if higher_is_better else 1.0
    ordered = sorted(entries, key=lambda e: (sign * e.score, e.high - e.low, -e.rows, e.name))
    if not ordered:
        return ()
    first = ordered[0]
    return tuple(
        Ranked(
            e.name,
            e.score,
            e.low,
            e.high,
            e.rows,
            position,
            e.low <= first.high and first.low <= e.high,
        )
        for position, e in enumerate(ordered, 1)
    )
