"""Transferability estimators ("rankers"): score a model's frozen features for a target task.

Every ranker is a function ``fn(features, labels, *, logits=None, **params) -> float``,
higher is better, registered with :func:`ranker` under a name that ``shift.methods.RANKERS``
describes (parameters with defaults and bounds, what it reads, its cost). ``features`` is
``(n, d)``, ``labels`` holds ids ``0 .. C-1`` with every id present, ``logits`` is the
source head's ``(n, K)`` output over the same rows. :func:`rank_score` is the one entry
point a task uses: it checks the inputs once, fills in and checks the parameters and turns
every failure into a :class:`WorkerError` that names the ranker and the model.
:func:`score_with_interval` adds a seeded bootstrap interval (``shift.confidence``).

All arithmetic is float64. The formulas, their sources and where they differ from the
authors' code are in ``docs/rankers.md``. Third-party rankers come from the ``shift.rankers``
entry-point group (``shift.plugins``) the first time an unknown name is asked for.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shift.confidence import Interval, bootstrap_interval, bootstrap_mean_interval
from shift.errors import WorkerError
from shift.methods import RANKERS, MethodSpec
from shift.plugins import load_plugins
from shift.registry import lookup, register_once, summary

RankerFunction = Callable[..., float]

_EPS = float(np.finfo(np.float64).eps)
_TINY = float(np.finfo(np.float64).tiny)
KNN_BLOCK_BYTES = 32 * 2**20
"""Memory of one block of the k-NN distance matrix (query rows x all rows, float64)."""


@dataclass(frozen=True)
class Ranker:
    """A registered ranker.

    Attributes:
        name: Its name in queries.
        run: The scoring function.
        needs: What it reads (``features``, ``labels``, ``logits``, ``model``).
        help: One line for the docs and ``--help``.
        source: ``builtin`` or the entry point it came from.
    """

    name: str
    run: RankerFunction
    needs: tuple[str, ...]
    help: str
    source: str = "builtin"


RANKER_FUNCTIONS: dict[str, Ranker] = {}
"""Every registered ranker by name (built-ins at import, plugins once discovered)."""


def ranker(name: str) -> Callable[[RankerFunction], RankerFunction]:
    """Register a function as the ranker ``name``, which ``shift.methods.RANKERS`` describes.

    Raises:
        WorkerError: ``name`` is registered twice or has no spec.
    """

    def register(function: RankerFunction) -> RankerFunction:
        spec = RANKERS.get(name)
        if spec is None:
            raise WorkerError(f"ranker {name!r} has no entry in shift.methods.RANKERS")
        entry = Ranker(name, function, spec.needs, summary(function))
        register_once(RANKER_FUNCTIONS, name, entry, "ranker", WorkerError)
        return function

    return register


def get_ranker(name: str) -> Ranker:
    """Look up a ranker, loading the ``shift.rankers`` entry points for a name not built in.

    Raises:
        WorkerError: the name is unknown (the message lists the known ones and the closest),
            or its entry point failed to load (the message says why).
    """
    if name not in RANKER_FUNCTIONS:
        found = load_plugins()
        failure = found.failures.get(name)
        if failure is not None:
            raise WorkerError(
                f"ranker {name!r} from {failure.source} could not be loaded: {failure.error}"
            )
        for plugin in found.rankers.values():
            if plugin.name not in RANKER_FUNCTIONS:
                RANKER_FUNCTIONS[plugin.name] = Ranker(
                    plugin.name,
                    plugin.function,
                    plugin.spec.needs,
                    plugin.spec.help,
                    plugin.source,
                )
    return lookup(RANKER_FUNCTIONS, name, "ranker", WorkerError)


# ------------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class RankInputs:
    """Checked inputs of one ranker call: float64 features and logits, labels ``0 .. C-1``."""

    features: np.ndarray | None
    labels: np.ndarray
    logits: np.ndarray | None
    classes: int


def check_inputs(
    needs: tuple[str, ...],
    features: np.ndarray | None,
    labels: np.ndarray,
    logits: np.ndarray | None,
    where: str,
) -> RankInputs:
    """Check shapes and values once and map label ids onto ``0 .. C-1`` in increasing order.

    Raises:
        WorkerError: a missing input, a shape mismatch, non-finite values, non-integer
            labels or fewer than two classes (``where`` starts the message).
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise WorkerError(f"{where}: labels must be a non-empty 1-d array, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise WorkerError(f"{where}: labels must be integer class ids, got dtype {y.dtype}")
    ids, y = np.unique(y, return_inverse=True)
    if "labels" in needs and len(ids) < 2:
        raise WorkerError(
            f"{where}: the training rows hold {len(ids)} class; a ranker needs at least two"
        )
    x = None
    if "features" in needs:
        x = _matrix(features, "features", len(y), where)
    z = None
    if "logits" in needs:
        if logits is None:
            raise WorkerError(
                f"{where} needs the source head's predictions (logits), and this model has "
                "no classifier head; rank it with a ranker that reads features "
                "(logme, sfda, hscore, transrate, knn)"
            )
        z = _matrix(logits, "logits", len(y), where)
    return RankInputs(x, y.astype(np.int64), z, len(ids))


def _matrix(value: np.ndarray | None, what: str, rows: int, where: str) -> np.ndarray:
    if value is None:
        raise WorkerError(f"{where} needs {what}, got none")
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != rows or array.shape[1] == 0:
        raise WorkerError(
            f"{where}: {what} must have shape ({rows}, d>0) to match the labels, got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise WorkerError(f"{where}: {what} hold NaN or infinite values")
    return array


def fill_params(spec: MethodSpec, params: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    """The ranker's parameters with defaults filled in, each checked against its spec.

    Raises:
        WorkerError: an unknown parameter or a value of the wrong type or out of bounds.
    """
    given = dict(params or {})
    unknown = sorted(set(given) - {p.name for p in spec.params})
    if unknown:
        takes = ", ".join(p.name for p in spec.params) or "no parameters"
        raise WorkerError(f"{where} has no parameter {unknown[0]!r} (it takes {takes})")
    filled: dict[str, Any] = {}
    for p in spec.params:
        value = given.get(p.name, p.default)
        problem = p.check(value)
        if problem:
            raise WorkerError(f"{where}: {problem}")
        filled[p.name] = int(value) if p.kind is int else float(value) if p.kind is float else value
    return filled


def rank_score(
    name: str,
    features: np.ndarray | None,
    labels: np.ndarray,
    *,
    logits: np.ndarray | None = None,
    model: str = "",
    params: Mapping[str, Any] | None = None,
) -> float:
    """The score of ranker ``name`` for one model (higher is better).

    Args:
        name: A registered ranker.
        features: ``(n, d)`` frozen features of the training rows (unless not needed).
        labels: ``(n,)`` integer class ids.
        logits: ``(n, K)`` source-head logits, for rankers that need them.
        model: The model's name, for messages (and the seed of ``random``).
        params: Ranker parameters; missing ones take their defaults.

    Raises:
        WorkerError: unknown ranker or parameter, bad inputs, or a non-finite score; the
            message names the ranker and the model.
    """
    entry = get_ranker(name)
    where = f"ranker {name!r} on model {model!r}" if model else f"ranker {name!r}"
    filled = fill_params(RANKERS[name], params, where)
    inputs = check_inputs(entry.needs, features, labels, logits, where)
    return _call(entry, inputs, model, filled, where)


def _call(
    entry: Ranker, inputs: RankInputs, model: str, params: dict[str, Any], where: str
) -> float:
    extra = {"model": model} if "model" in entry.needs else {}
    try:
        value = float(
            entry.run(inputs.features, inputs.labels, logits=inputs.logits, **extra, **params)
        )
    except WorkerError:
        raise
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as error:
        raise WorkerError(f"{where} failed: {type(error).__name__}: {error}") from error
    if not math.isfinite(value):
        raise WorkerError(f"{where} gave a non-finite score ({value})")
    return value


@dataclass(frozen=True)
class RankerScore:
    """A ranker's score with its bootstrap interval.

    Attributes:
        score: The score on all rows.
        interval: The percentile interval over resamples (zero width for ``random``).
        rows: Training rows the score is based on.
    """

    score: float
    interval: Interval
    rows: int


def score_with_interval(
    name: str,
    features: np.ndarray | None,
    labels: np.ndarray,
    *,
    logits: np.ndarray | None = None,
    model: str = "",
    params: Mapping[str, Any] | None = None,
    resamples: int = 100,
    level: float = 0.95,
    seed: int = 0,
) -> RankerScore:
    """:func:`rank_score` plus a bootstrap interval over the training rows.

    Rows are resampled with replacement within each class (class counts stay fixed, so no
    resample loses a class). For ``knn`` the per-row leave-one-out hits are resampled
    instead of refitting: a duplicated row would be its own nearest neighbour. ``random``
    has a zero-width interval: it does not read the rows.

    Raises:
        WorkerError: as :func:`rank_score`.
    """
    entry = get_ranker(name)
    where = f"ranker {name!r} on model {model!r}" if model else f"ranker {name!r}"
    filled = fill_params(RANKERS[name], params, where)
    inputs = check_inputs(entry.needs, features, labels, logits, where)
    rows = len(inputs.labels)
    rng = np.random.default_rng(seed)
    if name == "knn" and entry.source == "builtin" and inputs.features is not None:
        hits = knn_hits(inputs.features, inputs.labels, **filled)
        interval = bootstrap_mean_interval(
            hits.astype(np.float64), resamples=resamples, level=level, rng=rng, strata=inputs.labels
        )
        return RankerScore(float(hits.mean()), interval, rows)
    value = _call(entry, inputs, model, filled, where)
    if entry.needs == ("model",):
        return RankerScore(value, Interval(value, value, level, "constant"), rows)

    def statistic(index: np.ndarray) -> float:
        sample = RankInputs(
            None if inputs.features is None else inputs.features[index],
            inputs.labels[index],
            None if inputs.logits is None else inputs.logits[index],
            inputs.classes,
        )
        return _call(entry, sample, model, filled, where)

    interval = bootstrap_interval(
        statistic, rows, resamples=resamples, level=level, rng=rng, strata=inputs.labels
    )
    return RankerScore(value, interval, rows)


# ------------------------------------------------------------------------------ helpers


def _onehot(labels: np.ndarray, classes: int) -> np.ndarray:
    out = np.zeros((len(labels), classes))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _class_means(x: np.ndarray, labels: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    sums = np.zeros((classes, x.shape[1]))
    np.add.at(sums, labels, x)
    return sums / counts[:, None], counts


def _classes(labels: np.ndarray) -> int:
    return int(labels.max()) + 1


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def ledoit_wolf_shrinkage(x: np.ndarray, eigenvalues: np.ndarray) -> tuple[float, float]:
    """Ledoit-Wolf (2004) shrinkage of ``S = x^T x / n`` (rows ``x`` centred) and ``tr(S)/d``.

    ``S`` shrinks towards ``mu I`` (``mu = tr(S)/d``) with intensity ``min(b2, d2) / d2``,
    ``d2 = ||S - mu I||_F^2 / d`` and ``b2 = (sum_k ||x_k||^4 / n - ||S||_F^2) / (n d)``;
    ``eigenvalues`` are the nonzero eigenvalues of ``S``, so no ``d x d`` matrix is formed.
    """
    n, d = x.shape
    trace = float(eigenvalues.sum())
    frobenius2 = float(np.sum(eigenvalues**2))
    mu = trace / d
    d2 = (frobenius2 - 2.0 * mu * trace + d * mu * mu) / d
    norms = np.sum(x * x, axis=1)
    b2 = (float(np.sum(norms * norms)) / n - frobenius2) / (n * d)
    return (0.0 if d2 <= 0.0 else min(max(b2, 0.0), d2) / d2), mu


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """The Ledoit-Wolf shrunk covariance of centred rows ``x`` and its shrinkage."""
    n, d = x.shape
    s = x.T @ x / n
    shrinkage, mu = ledoit_wolf_shrinkage(x, np.linalg.eigvalsh(s))
    shrunk = (1.0 - shrinkage) * s
    shrunk.flat[:: d + 1] += shrinkage * mu
    return shrunk, shrinkage


# ------------------------------------------------------------------------------ LogME


def _gram_spectrum(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nonzero eigenvalues ``sigma`` of ``f^T f`` and the matching left singular vectors."""
    n, d = f.shape
    if n > d:
        sigma, v = np.linalg.eigh(f.T @ f)
    else:
        sigma, u = np.linalg.eigh(f @ f.T)
    top = float(sigma.max())
    keep = sigma > max(n, d) * _EPS * top if top > 0.0 else np.zeros(len(sigma), bool)
    sigma = sigma[keep]
    u = (f @ v[:, keep]) / np.sqrt(sigma) if n > d else u[:, keep]
    return sigma, u


def logme_evidence(
    sigma: np.ndarray, x2: np.ndarray, y2: float, n: int, d: int, alpha: float, beta: float
) -> float:
    """Log marginal likelihood of one target at ``alpha``, ``beta`` (not divided by ``n``).

    The model is ``y = F w + noise``, ``w ~ N(0, I/alpha)``, noise ``N(0, I/beta)``;
    ``sigma`` are the nonzero eigenvalues of ``F^T F``, ``x2`` the squared projections of
    ``y`` on the matching left singular vectors and ``y2 = ||y||^2``.
    """
    t = alpha / beta
    m2 = float(np.sum(sigma * x2 / (sigma + t) ** 2))
    res2 = float(np.sum(x2 * (t / (sigma + t)) ** 2)) + max(y2 - float(x2.sum()), 0.0)
    logdet = float(np.sum(np.log(alpha + beta * sigma))) + (d - len(sigma)) * math.log(alpha)
    return (
        d / 2 * math.log(alpha)
        + n / 2 * math.log(beta)
        - n / 2 * math.log(2 * math.pi)
        - beta / 2 * res2
        - alpha / 2 * m2
        - logdet / 2
    )


T_RANGE = 1e12
"""``alpha / beta`` stays within ``max(sigma) / T_RANGE .. max(sigma) * T_RANGE``."""


def logme_fit(
    sigma: np.ndarray,
    x2: np.ndarray,
    y2: float,
    n: int,
    *,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> tuple[float, float]:
    """``(alpha, beta)`` maximising the evidence, by MacKay's fixed point.

    ``alpha = gamma / ||m||^2``, ``beta = (n - gamma) / ||y - F m||^2``, ``gamma = sum
    beta sigma / (alpha + beta sigma)``, from ``alpha = beta = 1`` until both change by less
    than ``tol`` relatively. The evidence can grow without bound towards ``beta -> inf``
    (``n <= d``: the features interpolate the target) or ``alpha -> inf`` (the target is
    noise to them); the ratio ``t = alpha / beta`` is therefore kept within ``T_RANGE`` of
    the largest eigenvalue, which scales with the features, so the result stays
    scale-invariant. ``alpha`` is ``inf`` when ``y`` has no component in the span of the
    features (the evidence then no longer depends on it).
    """
    if len(sigma) == 0 or float(x2.sum()) <= _TINY * max(y2, 1.0):
        return math.inf, n / max(y2, _TINY)
    alpha, beta = 1.0, 1.0
    top = float(sigma.max())
    t_low, t_high = top / T_RANGE, top * T_RANGE
    residual_outside = max(y2 - float(x2.sum()), 0.0)
    for _ in range(max_iter):
        t = min(max(alpha / beta, t_low), t_high)
        gamma = float(np.sum(sigma / (sigma + t)))
        m2 = float(np.sum(sigma * x2 / (sigma + t) ** 2))
        res2 = float(np.sum(x2 * (t / (sigma + t)) ** 2)) + residual_outside
        new_alpha = gamma / max(m2, _TINY)
        new_beta = (n - gamma) / max(res2, _TINY)
        ratio = new_alpha / new_beta
        if ratio < t_low:
            new_beta = new_alpha / t_low
        elif ratio > t_high:
            new_alpha = new_beta * t_high
        done = abs(new_alpha - alpha) <= tol * alpha and abs(new_beta - beta) <= tol * beta
        alpha, beta = new_alpha, new_beta
        if done:
            break
    return alpha, beta


@ranker("logme")
def logme(features: np.ndarray, labels: np.ndarray, *, logits: np.ndarray | None = None) -> float:
    """LogME: mean over classes of the maximum log evidence per row of a linear model."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    classes = _classes(labels)
    sigma, u = _gram_spectrum(f)
    projections = u.T @ _onehot(labels, classes)  # (k, C): U^T y for every class's 0/1 target
    counts = np.bincount(labels, minlength=classes)
    total = 0.0
    for c in range(classes):
        x2 = projections[:, c] ** 2
        y2 = float(counts[c])
        alpha, beta = logme_fit(sigma, x2, y2, n)
        if math.isinf(alpha):
            evidence = n / 2 * math.log(beta) - n / 2 * math.log(2 * math.pi) - beta / 2 * y2
        else:
            evidence = logme_evidence(sigma, x2, y2, n, d, alpha, beta)
        total += evidence / n
    return total / classes


# ------------------------------------------------------------------------------ SFDA


def _shrink(s: np.ndarray, amount: float, fallback: float) -> np.ndarray:
    d = s.shape[0]
    mu = float(np.trace(s)) / d
    out = (1.0 - amount) * s
    out.flat[:: d + 1] += amount * (mu if mu > 0.0 else fallback)
    return out


def sfda_classifier(
    x: np.ndarray,
    labels: np.ndarray,
    classes: int,
    *,
    a: float,
    n_components: int,
    shrinkage: float | None = None,
) -> tuple[np.ndarray, float]:
    """Log-probabilities ``(n, C)`` of the regularised Fisher classifier, and its shrinkage.

    ``Sw = sum_c pi_c cov_c`` and ``St = cov(x)`` (both ``1/n``) shrink towards a multiple
    of the identity by ``lambda = max(exp(-a * top eigenvalue of Sw), 1e-10)`` unless
    ``shrinkage`` is given; the Fisher directions solve ``Sb v = e Sw v`` with ``Sb = St -
    Sw`` (shrunk), ``V^T Sw V = I``; class ``c`` scores ``x V V^T mu_c - mu_c V V^T mu_c / 2
    + log pi_c`` over the leading ``n_components`` directions (all when 0).
    """
    n, d = x.shape
    means, counts = _class_means(x, labels, classes)
    within = x - means[labels]
    sw = within.T @ within / n
    centred = x - x.mean(axis=0)
    st = centred.T @ centred / n
    if shrinkage is None:
        shrinkage = max(math.exp(-a * _top_eigenvalue(sw)), 1e-10)
    scale = float(np.trace(st)) / d or 1.0  # the ridge when every class is a single point
    sw_l = _shrink(sw, shrinkage, scale)
    if n_components == 0 or n_components >= d:
        # every direction: V V^T = Sw^-1, so the classifier is LDA with the shrunk Sw
        solved = np.linalg.solve(sw_l, means.T)  # (d, C)
        scores = x @ solved - 0.5 * np.sum(means.T * solved, axis=0)
    else:
        sb = _shrink(st, shrinkage, scale) - sw_l
        w, q = np.linalg.eigh(sw_l)
        w = np.maximum(w, float(w.max()) * d * _EPS)
        whiten = (q / np.sqrt(w)) @ q.T  # symmetric sw_l^(-1/2)
        e, p = np.linalg.eigh(whiten @ sb @ whiten)
        v = whiten @ p[:, np.argsort(e)[::-1][:n_components]]
        projected_means = means @ v
        scores = (x @ v) @ projected_means.T - 0.5 * np.sum(projected_means**2, axis=1)
    return _log_softmax(scores + np.log(counts / n)), shrinkage


def _top_eigenvalue(s: np.ndarray) -> float:
    """The largest eigenvalue of a symmetric matrix (Lanczos from a fixed start when large)."""
    d = s.shape[0]
    if d <= 256:
        return float(np.linalg.eigvalsh(s)[-1])
    from scipy.sparse.linalg import eigsh

    top = eigsh(s, k=1, which="LA", v0=np.ones(d), tol=1e-12, return_eigenvectors=False)
    return float(top[0])


def principal_components(x: np.ndarray, classes: int, dims: int) -> np.ndarray:
    """``x`` centred and projected onto its leading principal components.

    ``dims = 0`` keeps ``floor((n - C) / 4)`` (at least 1): a covariance fitted with fewer
    than a few within-class rows per dimension is singular, and with ``n <= d`` the Fisher
    classifier separates every training row and the H-score is exactly ``C - 1``, whatever
    the features (docs/rankers.md). When the kept count is at least ``d``, ``x`` is
    returned as it is: the paper's estimator on every dimension (``dims >= d`` always
    gives it).
    """
    n, d = x.shape
    keep = dims if dims > 0 else max(1, (n - classes) // 4)
    if keep >= d:
        return x
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return np.asarray(centred @ vt[:keep].T)


@ranker("sfda")
def sfda(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    logits: np.ndarray | None = None,
    a: float = 5.0,
    n_components: int = 0,
    dims: int = 0,
) -> float:
    """SFDA (Shao et al., ECCV 2022): mean probability of the true class under a regularised
    Fisher classifier refitted after ConfMix.

    ``p(y|x)`` is :func:`sfda_classifier`'s; ConfMix moves each row towards the mean of the
    other classes' means, ``x' = s x + (1 - s) mean_{c != y} mu_c`` with ``s`` the true
    class's entry of ``softmax(p(.|x))`` (a second softmax, over the probabilities), and the
    classifier is refitted on ``x'`` with the first fit's shrinkage. The score is
    ``(1/n) sum_i p(y_i | x'_i)``, in ``(0, 1]``, as in the authors' code (which drops the
    log of LEEP-style scores for stability). Not scale-invariant: the shrinkage
    ``exp(-a sigma_max(Sw))`` depends on the feature scale.
    """
    classes = _classes(labels)
    x = principal_components(np.asarray(features, dtype=np.float64), classes, dims)
    log_p, shrinkage = sfda_classifier(x, labels, classes, a=a, n_components=n_components)
    # ConfMix: pull each row towards the mean of the other classes' means, the more the less
    # confidently it is classified (confidence softened by a second softmax)
    soft = np.exp(_log_softmax(np.exp(log_p)))
    confidence = soft[np.arange(len(labels)), labels][:, None]
    means, _ = _class_means(x, labels, classes)
    others = (means.sum(axis=0) - means) / (classes - 1)
    mixed = confidence * x + (1.0 - confidence) * others[labels]
    log_p, _ = sfda_classifier(
        mixed, labels, classes, a=a, n_components=n_components, shrinkage=shrinkage
    )
    return float(np.exp(log_p[np.arange(len(labels)), labels]).mean())


# ------------------------------------------------------------------------------ H-score


def _between_projections(f: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues ``sigma`` of ``F^T F`` (``F`` centred) and ``q_i = u_i^T P u_i``, ``P`` the
    projection onto class-constant vectors: ``cov(E[f|y])`` in ``F``'s eigenbasis."""
    classes = _classes(labels)
    sigma, u = _gram_spectrum(f)
    sums = u.T @ _onehot(labels, classes)  # (k, C): sum of u over each class's rows
    counts = np.bincount(labels, minlength=classes)
    return sigma, np.sum(sums**2 / counts, axis=1)


@ranker("hscore")
def hscore(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    logits: np.ndarray | None = None,
    dims: int = 0,
) -> float:
    """H-score (Bao et al., ICIP 2019): ``tr(cov(f)^+ cov(E[f|y]))``.

    Both covariances divide by ``n`` (the ratio is the same with ``n - 1``). At most
    ``C - 1``; with ``n <= d`` rows in general position it is exactly ``C - 1`` for every
    model, since ``cov(f)`` then spans the class means' directions. So it is computed on
    :func:`principal_components` (``dims``): every dimension when the rows allow it.
    """
    f = np.asarray(features, dtype=np.float64)
    f = principal_components(f, _classes(labels), dims)
    f = f - f.mean(axis=0)
    # with F = U S V^T: tr(pinv(F^T F) F^T P F) = tr(U^T P U) over the kept directions
    _, q = _between_projections(f, labels)
    return float(q.sum())


@ranker("hscore_shrinkage")
def hscore_shrinkage(
    features: np.ndarray, labels: np.ndarray, *, logits: np.ndarray | None = None
) -> float:
    """H-score with the Ledoit-Wolf covariance: ``tr(cov_a(f)^+ (1 - a) cov(E[f|y]))``."""
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0)
    n = len(f)
    sigma, q = _between_projections(f, labels)
    shrinkage, mu = ledoit_wolf_shrinkage(f, sigma / n)
    # cov(E[f|y]) lies in the span of F's right singular vectors, where the shrunk
    # covariance has eigenvalues (1 - a) sigma_i / n + a mu
    shrunk = (1.0 - shrinkage) * sigma / n + shrinkage * mu
    return float((1.0 - shrinkage) * np.sum(sigma / n / shrunk * q))


# ------------------------------------------------------------------------------ NCE, LEEP


def _source_probabilities(logits: np.ndarray) -> np.ndarray:
    return np.exp(_log_softmax(np.asarray(logits, dtype=np.float64)))


@ranker("nce")
def nce(features: np.ndarray | None, labels: np.ndarray, *, logits: np.ndarray) -> float:
    """NCE: ``-H(Y|Z)``, ``Z`` the source head's top class (ties to the lowest index)."""
    z = np.argmax(np.asarray(logits, dtype=np.float64), axis=1)
    classes, sources = _classes(labels), logits.shape[1]
    joint = np.zeros((classes, sources))
    np.add.at(joint, (labels, z), 1.0)
    joint /= len(labels)
    marginal = joint.sum(axis=0, keepdims=True)
    seen = joint > 0
    return float(np.sum(joint[seen] * np.log((joint / np.where(marginal > 0, marginal, 1))[seen])))


@ranker("leep")
def leep(features: np.ndarray | None, labels: np.ndarray, *, logits: np.ndarray) -> float:
    """LEEP: ``mean_i log sum_z P(y_i|z) theta_z(x_i)`` with the empirical ``P(y|z)``."""
    theta = _source_probabilities(logits)
    classes = _classes(labels)
    joint = np.zeros((classes, theta.shape[1]))
    np.add.at(joint, labels, theta)
    joint /= len(labels)
    marginal = joint.sum(axis=0)
    conditional = joint / np.where(marginal > 0, marginal, 1.0)  # P(y|z), (C, K)
    expected = np.sum(theta * conditional[labels], axis=1)
    return float(np.mean(np.log(np.maximum(expected, _TINY))))


# ------------------------------------------------------------------------------ TransRate


def coding_rate(z: np.ndarray, eps: float) -> float:
    """``R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps))`` over the rows of ``z``."""
    n, d = z.shape
    if n == 0:
        return 0.0
    gram = z @ z.T if n < d else z.T @ z
    w = np.maximum(np.linalg.eigvalsh(gram), 0.0)
    return 0.5 * float(np.sum(np.log1p(w / (n * eps))))


@ranker("transrate")
def transrate(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    logits: np.ndarray | None = None,
    eps: float = 1e-4,
) -> float:
    """TransRate: ``R(Z, eps) - sum_c n_c/n R(Z_c, eps)`` on features centred once."""
    z = np.asarray(features, dtype=np.float64)
    z = z - z.mean(axis=0)
    n = len(z)
    conditional = 0.0
    for c in range(_classes(labels)):
        rows = z[labels == c]
        conditional += len(rows) / n * coding_rate(rows, eps)
    return coding_rate(z, eps) - conditional


# ------------------------------------------------------------------------------ k-NN


def _neighbours(distance: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` nearest columns of each row, nearest first, equal distances by index."""
    part = np.argpartition(distance, k - 1, axis=1)[:, :k]
    chosen = np.take_along_axis(distance, part, axis=1)
    kth = chosen.max(axis=1)
    crowded = np.flatnonzero((distance <= kth[:, None]).sum(axis=1) > k)
    for row in crowded:  # a tie straddles the k-th place: take the lowest indices
        part[row] = np.argsort(distance[row], kind="stable")[:k]
        chosen[row] = distance[row, part[row]]
    order = np.lexsort((part, chosen), axis=1)
    return np.take_along_axis(part, order, axis=1)


def knn_hits(features: np.ndarray, labels: np.ndarray, *, k: int, metric: str) -> np.ndarray:
    """Whether each row's leave-one-out k-NN vote gives its own label.

    The ``min(k, n - 1)`` nearest other rows vote (cosine: ``1 - cos``; euclidean:
    squared distance); equal distances go to the lower row index, and a tied vote to the
    tied class whose member comes first among the neighbours. Exact and blockwise: one
    block of query rows against all rows at a time.
    """
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    elif metric != "euclidean":
        raise WorkerError(f"knn metric must be 'cosine' or 'euclidean', got {metric!r}")
    k = min(k, n - 1)
    if k < 1:
        raise WorkerError("knn needs at least two rows")
    classes = _classes(labels)
    squares = np.sum(x * x, axis=1)
    block = max(1, KNN_BLOCK_BYTES // (8 * n))
    hits = np.zeros(n, dtype=bool)
    for start in range(0, n, block):
        stop = min(start + block, n)
        dot = x[start:stop] @ x.T
        if metric == "cosine":
            distance = 1.0 - dot
        else:
            distance = np.maximum(squares[start:stop, None] - 2.0 * dot + squares[None, :], 0.0)
        distance[np.arange(stop - start), np.arange(start, stop)] = np.inf
        votes = labels[_neighbours(distance, k)]
        counts = np.zeros((stop - start, classes))
        np.add.at(counts, (np.repeat(np.arange(stop - start), k), votes.ravel()), 1.0)
        best = counts.max(axis=1, keepdims=True)
        leading = np.take_along_axis(counts, votes, axis=1) == best
        predicted = votes[np.arange(stop - start), np.argmax(leading, axis=1)]
        hits[start:stop] = predicted == labels[start:stop]
    return hits


@ranker("knn")
def knn(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    logits: np.ndarray | None = None,
    k: int = 20,
    metric: str = "cosine",
) -> float:
    """k-NN: leave-one-out accuracy of a ``k``-nearest-neighbour vote on the training rows."""
    return float(knn_hits(features, labels, k=k, metric=metric).mean())


# ------------------------------------------------------------------------------ random


@ranker("random")
def random(
    features: np.ndarray | None,
    labels: np.ndarray,
    *,
    logits: np.ndarray | None = None,
    model: str = "",
    seed: int = 0,
) -> float:
    """random: a uniform number in [0, 1) from ``(seed, model name)``; reads no rows."""
    digest = hashlib.sha256(f"{seed}\0{model}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64
