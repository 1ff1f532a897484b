"""Judging rankings against fine-tuning ground truth, and combining rankings into strategies.

A *ranking* is ``{model: score}``, higher is better (a ranker's score, or a proxy's
accuracy). :func:`judge` compares one with the truth of a task (``shift.groundtruth.Truth``
per model): top-1 regret in accuracy points, where the models within one standard error of
the best count as tied with it (:func:`tied_with_best`), the weighted Kendall tau
(``scipy.stats.weightedtau``, which weighs the top of the order most) and Spearman's rho.

Strategies combine rankings of the same models: :func:`rank_average` (the mean of each
ranking's ranks) and :func:`zscore_average` (the mean of each ranking's z-scores).
:func:`read_scores` parses rankings from a CSV, so the maths runs without a broker.

Pure: no clock, no network, no model library.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from shift.groundtruth import GroundTruthError, Truth

Ranking = Mapping[str, float]
"""``{model: score}``, higher is better."""

SCORE_COLUMNS = ("task", "method", "model", "score")
"""Columns of a scores CSV (:func:`read_scores`); an optional ``seconds`` column too."""

STRATEGY_KINDS = ("rank", "z")
"""``rank``: :func:`rank_average`; ``z``: :func:`zscore_average`."""


@dataclass(frozen=True)
class Judgement:
    """How well one ranking picks and orders the models of one task.

    Attributes:
        models: Models both ranked and fine-tuned (the ones judged).
        pick: The ranking's first model (equal scores: the worse fine-tuned one).
        regret_pts: Best mean fine-tuned accuracy minus the pick's, in points (x100);
            0 when the pick is tied with the best.
        weighted_tau: ``scipy.stats.weightedtau`` of scores against mean accuracies
            (NaN with fewer than two models or a constant side).
        spearman: Spearman's rho of the same (NaN likewise).
        tied: The models tied with the best fine-tuned one.
    """

    models: int
    pick: str
    regret_pts: float
    weighted_tau: float
    spearman: float
    tied: frozenset[str]


def tied_with_best(truth: Mapping[str, Truth]) -> frozenset[str]:
    """The models whose mean fine-tuned accuracy is within one standard error of the best's.

    The standard error is that of the difference of the two means,
    ``sqrt(se_best^2 + se_model^2)``; with one seed per model (SE 0) only equal means tie.

    Raises:
        GroundTruthError: no models.
    """
    if not truth:
        raise GroundTruthError("no fine-tuned models to compare with")
    best = max(truth.values(), key=lambda t: t.mean)
    return frozenset(
        model
        for model, t in truth.items()
        if best.mean - t.mean <= math.hypot(best.se, t.se) + 1e-12
    )


def _common(truth: Mapping[str, Truth], ranking: Ranking) -> list[str]:
    return sorted(m for m in ranking if m in truth and math.isfinite(ranking[m]))


def _correlation(value: float) -> float:
    return float(value) if value is not None and math.isfinite(value) else math.nan


def judge(truth: Mapping[str, Truth], ranking: Ranking) -> Judgement:
    """Compare ``ranking`` with the fine-tuned accuracies of the same task.

    Only models in both are judged; the best fine-tuned model and the ties are taken among
    those.

    Raises:
        GroundTruthError: no model is both ranked and fine-tuned.
    """
    models = _common(truth, ranking)
    if not models:
        raise GroundTruthError(
            f"no ranked model is in the ground truth (ranked: {sorted(ranking)[:5]}, "
            f"fine-tuned: {sorted(truth)[:5]})"
        )
    judged = {m: truth[m] for m in models}
    tied = tied_with_best(judged)
    top = max(ranking[m] for m in models)
    pick = min((m for m in models if ranking[m] == top), key=lambda m: (judged[m].mean, m))
    best = max(t.mean for t in judged.values())
    regret = 0.0 if pick in tied else 100.0 * (best - judged[pick].mean)
    tau = rho = math.nan
    truths = np.array([judged[m].mean for m in models])
    scores = np.array([ranking[m] for m in models])
    if len(models) > 1 and np.ptp(truths) > 0 and np.ptp(scores) > 0:
        tau = _correlation(stats.weightedtau(truths, scores).statistic)
        rho = _correlation(stats.spearmanr(truths, scores).statistic)
    return Judgement(len(models), pick, regret, tau, rho, tied)


def _aligned(rankings: Sequence[Ranking]) -> list[str]:
    if not rankings:
        raise GroundTruthError("a strategy needs at least one ranking")
    common = set(rankings[0])
    for ranking in rankings[1:]:
        common &= set(ranking)
    return sorted(m for m in common if all(math.isfinite(r[m]) for r in rankings))


def rank_average(rankings: Sequence[Ranking]) -> dict[str, float]:
    """The mean over rankings of each model's rank (1 = lowest score; ties share the mean rank).

    Higher is better, like the inputs. Only models every ranking scores are combined.
    """
    models = _aligned(rankings)
    if not models:
        return {}
    ranks = [stats.rankdata([r[m] for m in models], method="average") for r in rankings]
    mean = np.mean(ranks, axis=0)
    return {m: float(v) for m, v in zip(models, mean, strict=True)}


def zscore_average(rankings: Sequence[Ranking]) -> dict[str, float]:
    """The mean over rankings of each model's z-score ``(s - mean) / std`` within the ranking.

    A ranking whose scores are all equal contributes 0 to every model (it cannot tell them
    apart). Only models every ranking scores are combined.
    """
    models = _aligned(rankings)
    if not models:
        return {}
    total = np.zeros(len(models))
    for ranking in rankings:
        values = np.array([ranking[m] for m in models], dtype=np.float64)
        spread = values.std()
        if spread > 0:
            total += (values - values.mean()) / spread
    mean = total / len(rankings)
    return {m: float(v) for m, v in zip(models, mean, strict=True)}


def combine(kind: str, rankings: Sequence[Ranking]) -> dict[str, float]:
    """:func:`rank_average` (``rank``) or :func:`zscore_average` (``z``).

    Raises:
        GroundTruthError: an unknown kind.
    """
    if kind == "rank":
        return rank_average(rankings)
    if kind == "z":
        return zscore_average(rankings)
    raise GroundTruthError(
        f"unknown strategy kind {kind!r}; use one of {', '.join(STRATEGY_KINDS)}"
    )


def parse_strategy(text: str) -> tuple[str, tuple[str, ...]]:
    """``"rank:logme+Cosine NN"`` -> ``("rank", ("logme", "Cosine NN"))``.

    Raises:
        GroundTruthError: no ``kind:`` prefix, an unknown kind, or fewer than two methods.
    """
    kind, sep, rest = text.partition(":")
    methods = tuple(m.strip() for m in rest.split("+") if m.strip())
    if not sep or kind.strip() not in STRATEGY_KINDS or len(methods) < 2:
        raise GroundTruthError(
            f"strategy {text!r}: write KIND:METHOD+METHOD[+...], KIND one of "
            f"{', '.join(STRATEGY_KINDS)} (e.g. 'rank:logme+Cosine NN')"
        )
    return kind.strip(), methods


def read_scores(text: str, source: str = "scores") -> dict[str, dict[str, dict[str, float]]]:
    """Parse a scores CSV into ``{task: {method: {model: score}}}`` (higher is better).

    Columns ``task, method, model, score`` (any order, more allowed); ``#`` lines are
    comments.

    Raises:
        GroundTruthError: no header, a missing column, a score that is not a finite number,
            or a (task, method, model) listed twice; the message names the line.
    """
    header: list[str] | None = None
    out: dict[str, dict[str, dict[str, float]]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        where = f"{source} line {number}"
        fields = [f.strip() for f in next(csv.reader([raw]))]
        if header is None:
            header = fields
            missing = [c for c in SCORE_COLUMNS if c not in header]
            if missing:
                raise GroundTruthError(
                    f"{where}: the header lacks {', '.join(missing)} "
                    f"(columns: {', '.join(SCORE_COLUMNS)})"
                )
            continue
        if len(fields) != len(header):
            raise GroundTruthError(
                f"{where}: {len(fields)} fields where the header has {len(header)}"
            )
        row = dict(zip(header, fields, strict=True))
        try:
            score = float(row["score"])
        except ValueError:
            raise GroundTruthError(f"{where}: score {row['score']!r} is not a number") from None
        if not math.isfinite(score):
            raise GroundTruthError(f"{where}: score {row['score']!r} is not finite")
        if not (row["task"] and row["method"] and row["model"]):
            raise GroundTruthError(f"{where}: task, method and model must not be empty")
        table = out.setdefault(row["task"], {}).setdefault(row["method"], {})
        if row["model"] in table:
            raise GroundTruthError(
                f"{where}: {row['method']!r} scores {row['model']!r} on {row['task']!r} twice"
            )
        table[row["model"]] = score
    if header is None:
        raise GroundTruthError(f"{source}: no header line (expected {','.join(SCORE_COLUMNS)})")
    return out
