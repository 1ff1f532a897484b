"""Proxy classifiers on frozen features: Euclidean and Cosine 1-NN, and a linear probe.

The linear probe (multinomial logistic regression fitted to convergence by L-BFGS, or
upstream SHiFT's fixed-budget SGD) lives in :mod:`workers.linear`; its result here also
says how the fit went (solver, iterations, converged, final gradient).

The 1-NN proxies are exact (float64 distances that depend on the two rows alone, ties
broken towards the lowest train index) and computed blockwise with torch, so memory stays
bounded by the block sizes. Besides the
error they return every test row's nearest train row and its distance, so that a later call
with more training rows only computes distances to the new rows (:func:`nearest_neighbours`
with ``prior``). Labels are ids into one shared class list; mapping arbitrary label values
to ids is the caller's job (see ``workers.classify``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shift.errors import WorkerError
from shift.methods import CLASSIFIERS, classifier_problem, linear_solver
from workers.linear import fit_lbfgs, fit_sgd

TEST_BLOCK_ROWS = 1024
TRAIN_BLOCK_ROWS = 4096


@dataclass(frozen=True)
class ProxyResult:
    """The outcome of one proxy fit and evaluation.

    Attributes:
        err: Share of test rows misclassified.
        acc: ``1 - err``.
        train_rows: Training rows used.
        test_rows: Test rows scored.
        nn_index: Nearest train row of each test row (1-NN proxies only).
        nn_distance: Its distance (1-NN proxies only).
        distance_pairs: (test row, train row) distances computed (1-NN proxies only): the
            cost a prior saves.
        solver: The Linear solver that ran, ``lbfgs`` or ``sgd`` (Linear only).
        iterations: L-BFGS iterations or SGD steps (Linear only).
        converged: L-BFGS met its stopping test; ``None`` for SGD, which has none.
        grad_norm: Largest absolute component of the final gradient of the solver's
            objective (Linear only).
    """

    err: float
    acc: float
    train_rows: int
    test_rows: int
    nn_index: np.ndarray | None = None
    nn_distance: np.ndarray | None = None
    distance_pairs: int = 0
    solver: str | None = None
    iterations: int | None = None
    converged: bool | None = None
    grad_norm: float | None = None


_NEAR_TIE = 1e-9
"""Relative width of the near-tie band re-checked exactly (far above float64 matmul noise)."""
_EXACT_PAIRS = 1 << 16
"""Pairs re-checked exactly per batch (bounds memory when many rows tie)."""


def _approximate(test: Any, train: Any, metric: str) -> Any:
    """Fast float64 distances (squared for Euclidean) through one matrix product.

    ``|a|^2 - 2ab + |b|^2`` carries rounding noise that depends on the shape of the block
    it is computed in, so it only shortlists candidates; :func:`_exact` decides.
    """
    if metric == "euclidean":
        return (test * test).sum(1, keepdim=True) - 2 * test @ train.T + (train * train).sum(1)
    return 1 - test @ train.T


def _exact(test: np.ndarray, train: np.ndarray, metric: str) -> np.ndarray:
    """The distance of each (test row, train row) pair, a function of the two rows alone.

    Row ``i`` of ``test`` is paired with row ``i`` of ``train``; the sum runs over one
    contiguous row, so the same two rows give the same bits in any block, any call.
    """
    if metric == "euclidean":
        diff = test - train
        return np.sqrt(np.sum(diff * diff, axis=1))
    return 1.0 - np.sum(test * train, axis=1)


def _unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, row by row (zero rows stay zero, as torch's normalize)."""
    norms = np.sqrt(np.sum(rows * rows, axis=1, keepdims=True))
    return rows / np.maximum(norms, 1e-12)


def _block_nearest(
    approx: Any, test: np.ndarray, train: np.ndarray, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Each test row's nearest row of one train block: exact distance, lowest index on ties.

    Every pair whose approximate distance is within the near-tie band of the row's
    approximate minimum is recomputed with :func:`_exact`; the true nearest row is always
    in the band (its approximation is off by far less than the band).
    """
    approx = approx.numpy()
    low = approx.min(axis=1, keepdims=True)
    if metric == "euclidean":
        scale = np.sum(test * test, axis=1, keepdims=True) + np.max(np.sum(train * train, axis=1))
    else:
        scale = np.full_like(low, 2.0)
    rows, cols = np.nonzero(approx <= low + _NEAR_TIE * (scale + 1.0))
    exact = np.empty(len(rows), dtype=np.float64)
    for start in range(0, len(rows), _EXACT_PAIRS):
        part = slice(start, start + _EXACT_PAIRS)
        exact[part] = _exact(test[rows[part]], train[cols[part]], metric)
    # Sort by test row, then exact distance, then train index: the first of each row wins.
    order = np.lexsort((cols, exact, rows))
    first = np.ones(len(order), dtype=bool)
    first[1:] = rows[order][1:] != rows[order][:-1]
    chosen = order[first]
    return cols[chosen].astype(np.int64), exact[chosen]


def nearest_neighbours(
    train: np.ndarray,
    test: np.ndarray,
    metric: str,
    prior: tuple[np.ndarray, np.ndarray] | None = None,
    offset: int = 0,
    positions: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Index and distance of each test row's nearest train row.

    Exact under ties: a distance is a function of the two rows alone (:func:`_exact`, the
    matrix-product distances only shortlist), and a tie goes to the lowest train index, so
    continuing from any prior gives the same answer as computing from scratch.

    Args:
        train: New train features (rows ``offset ...`` of the training set).
        test: Test features.
        metric: ``euclidean`` or ``cosine``.
        prior: ``(index, distance)`` over train rows before ``offset``; kept where no new
            row is closer, or as close with a lower index.
        offset: Train index of ``train``'s first row.
        positions: Train index of each row of ``train`` (instead of ``offset``), for rows
            that are not contiguous; increasing, so ties still go to the lowest index.

    Returns:
        ``(index, distance)``: int64 and float64 arrays of length ``len(test)``.
    """
    import torch

    if metric not in ("euclidean", "cosine"):
        raise WorkerError(f"1-NN metric must be euclidean or cosine, got {metric!r}")
    tr_np = np.ascontiguousarray(train, dtype=np.float64)
    te_np = np.ascontiguousarray(test, dtype=np.float64)
    if metric == "cosine":
        tr_np, te_np = _unit(tr_np), _unit(te_np)
    tr, te = torch.from_numpy(tr_np), torch.from_numpy(te_np)
    if prior is None:
        index = np.full(len(te_np), -1, dtype=np.int64)
        best = np.full(len(te_np), np.inf, dtype=np.float64)
    else:
        index = np.array(prior[0], dtype=np.int64)
        best = np.array(prior[1], dtype=np.float64)
    where = None if positions is None else np.asarray(positions, np.int64)
    with torch.inference_mode():
        for t0 in range(0, len(te_np), TEST_BLOCK_ROWS):
            window = slice(t0, t0 + TEST_BLOCK_ROWS)
            for r0 in range(0, len(tr_np), TRAIN_BLOCK_ROWS):
                part = slice(r0, r0 + TRAIN_BLOCK_ROWS)
                approx = _approximate(te[window], tr[part], metric)
                arg, dist = _block_nearest(approx, te_np[window], tr_np[part], metric)
                found = arg + r0 + offset if where is None else where[arg + r0]
                here, there = best[window], index[window]
                closer = (dist < here) | ((dist == here) & (found < there)) | (there < 0)
                best[window] = np.where(closer, dist, here)
                index[window] = np.where(closer, found, there)
    return index, best


def _nn(metric: str) -> Callable[..., ProxyResult]:
    def fit(
        train_x: np.ndarray,
        train_y: np.ndarray,
        test_x: np.ndarray,
        test_y: np.ndarray,
        prior: tuple[np.ndarray, np.ndarray] | None = None,
        prior_rows: int = 0,
        covered: np.ndarray | None = None,
        **params: Any,
    ) -> ProxyResult:
        if prior is not None and covered is not None:
            index, distance, pairs = _continue(train_x, test_x, metric, prior, covered)
        else:
            new_x = train_x[prior_rows:] if prior is not None else train_x
            offset = prior_rows if prior is not None else 0
            index, distance = nearest_neighbours(new_x, test_x, metric, prior, offset)
            pairs = len(new_x) * len(test_x)
        predicted = np.asarray(train_y)[index]
        err = float(np.mean(predicted != test_y)) if len(test_y) else 0.0
        return ProxyResult(err, 1 - err, len(train_x), len(test_x), index, distance, pairs)

    return fit


def _continue(
    train_x: np.ndarray,
    test_x: np.ndarray,
    metric: str,
    prior: tuple[np.ndarray, np.ndarray],
    covered: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """1-NN from a prior over another row set (growth, mutations, relabelling).

    ``prior`` holds each test row's nearest neighbour as an index into *this* train set, or
    -1 where that row is not in it any more; ``covered`` marks the train rows the prior
    already saw. A neighbour that is still there is still the nearest among the covered
    rows, so only test rows that lost theirs are compared with the covered rows again, and
    every test row is compared with the uncovered (new) rows.
    """
    index = np.array(prior[0], dtype=np.int64)
    distance = np.array(prior[1], dtype=np.float64)
    covered = np.asarray(covered, dtype=bool)
    lost = index < 0
    distance[lost] = np.inf
    old, new = np.flatnonzero(covered), np.flatnonzero(~covered)
    pairs = 0
    if lost.any() and len(old):
        found, dist = nearest_neighbours(train_x[old], test_x[lost], metric, positions=old)
        index[lost], distance[lost] = found, dist
        pairs += int(lost.sum()) * len(old)
    if len(new):
        index, distance = nearest_neighbours(
            train_x[new], test_x, metric, (index, distance), positions=new
        )
        pairs += len(new) * len(test_x)
    return index, distance, pairs


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    num_classes: int | None = None,
    batch_rows: int | None = None,
    seed: int = 0,
    **params: Any,
) -> ProxyResult:
    """Multinomial logistic regression on standardised features (see :mod:`workers.linear`).

    ``params`` are the Linear parameters of ``shift.methods.CLASSIFIERS`` (missing ones take
    their defaults): ``solver`` ``lbfgs`` fits to convergence with penalty ``l2`` (scikit-
    learn's ``1/C``), tolerance ``tol`` and cap ``max_iter``; ``sgd`` runs upstream SHiFT's
    fixed budget of ``num_epochs`` steps of size ``learning_rate`` (``batch_rows`` for
    minibatches shuffled with ``seed``); ``auto`` picks ``sgd`` when an SGD parameter is set.
    The result reports the solver, its iterations, whether it converged and the final
    gradient's largest component.

    Raises:
        WorkerError: the parameters are invalid or do not fit the solver.
    """
    filled = _linear_params(params)
    solver = linear_solver(filled)
    if solver == "sgd":
        k = int(num_classes or int(max(train_y.max(initial=0), test_y.max(initial=0))) + 1)
        fit = fit_sgd(
            train_x,
            train_y,
            test_x,
            k,
            filled["learning_rate"],
            filled["num_epochs"],
            batch_rows,
            seed,
        )
    else:
        fit = fit_lbfgs(train_x, train_y, test_x, filled["l2"], filled["tol"], filled["max_iter"])
    err = float(np.mean(fit.predicted != test_y)) if len(test_y) else 0.0
    return ProxyResult(
        err,
        1 - err,
        len(train_x),
        len(test_x),
        solver=fit.solver,
        iterations=fit.iterations,
        converged=fit.converged,
        grad_norm=fit.grad_norm,
    )


def _linear_params(params: dict[str, Any]) -> dict[str, Any]:
    """The Linear parameters with defaults filled in, checked one by one and together."""
    spec = CLASSIFIERS["linear"]
    filled = {p.name: params.get(p.name, p.default) for p in spec.params}
    for p in spec.params:
        if problem := p.check(filled[p.name]):
            raise WorkerError(f"classifier 'linear': {problem}")
    if problem := classifier_problem("linear", filled):
        raise WorkerError(f"classifier 'linear': {problem}")
    return filled


PROXIES: dict[str, Callable[..., ProxyResult]] = {
    "euclidean_nn": _nn("euclidean"),
    "cosine_nn": _nn("cosine"),
    "linear": linear_probe,
}
"""Proxy implementations by the canonical names of ``shift.methods.CLASSIFIERS``."""

if set(PROXIES) != set(CLASSIFIERS):  # pragma: no cover - a developer error, caught on import
    raise WorkerError(f"proxies {sorted(PROXIES)} differ from classifiers {sorted(CLASSIFIERS)}")


def get_proxy(
    name: str, params: dict[str, Any]
) -> tuple[Callable[..., ProxyResult], dict[str, Any]]:
    """The proxy called ``name`` and its parameters, defaults filled in and checked.

    Raises:
        WorkerError: unknown classifier or invalid parameter.
    """
    spec = CLASSIFIERS.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(CLASSIFIERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise WorkerError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}{hint}")
    unknown = sorted(set(params) - {p.name for p in spec.params})
    if unknown:
        raise WorkerError(f"classifier {name!r} takes no parameter(s) {', '.join(unknown)}")
    filled = {p.name: params.get(p.name, p.default) for p in spec.params}
    for p in spec.params:
        problem = p.check(filled[p.name])
        if problem:
            raise WorkerError(f"classifier {name!r}: {problem}")
    if problem := classifier_problem(name, filled):
        raise WorkerError(f"classifier {name!r}: {problem}")
    return PROXIES[name], filled
