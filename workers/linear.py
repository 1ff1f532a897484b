"""The Linear proxy's fits: multinomial logistic regression on standardised frozen features.

Two solvers fit the same model, a softmax layer ``p(c | x) = softmax(z W + b)_c`` on the
features ``z`` standardised with the mean and standard deviation of the training rows (the
test rows get the same transform):

- ``lbfgs`` (the default) minimises, in float64,

  ``f(W, b) = (1/n) * (sum_i -log p(y_i | x_i) + (l2 / 2) * ||W||_F^2)``,

  the summed cross-entropy plus an L2 penalty on the weights (not the bias), divided by
  the ``n`` training rows so that the tolerance does not depend on ``n``. ``l2`` is
  scikit-learn's ``1 / C``: ``l2=1`` is ``LogisticRegression(C=1)``, its default. The
  objective is strictly convex for ``l2 > 0``, so the fit has one optimum and the result
  does not depend on the start or on how the classes are numbered. scipy's L-BFGS-B runs on
  the exact gradient until the largest gradient component is at most ``tol`` (or ``f``
  stops decreasing at machine precision), or ``max_iter`` iterations have run.
- ``sgd`` is the probe of upstream SHiFT: full-batch SGD from zero weights for
  ``num_epochs`` steps of size ``learning_rate`` on the unpenalised mean cross-entropy, in
  float32 with torch. It stops on its step budget, not on convergence.

Both report the iterations run and the largest component of the final gradient of their
objective; L-BFGS also reports whether it met its stopping test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LinearFit:
    """Test predictions of one fit and how the fit went.

    Attributes:
        predicted: The predicted class id of each test row.
        solver: ``lbfgs`` or ``sgd``.
        iterations: L-BFGS iterations, or SGD steps.
        converged: L-BFGS met its stopping test (``None`` for SGD, which has none).
        grad_norm: Largest absolute component of the objective's gradient at the end.
        objective: The objective at the end (mean loss, plus the penalty for L-BFGS).
    """

    predicted: np.ndarray
    solver: str
    iterations: int
    converged: bool | None
    grad_norm: float
    objective: float


def standardise(train_x: np.ndarray, test_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train and test features in float64, centred and scaled by the training rows' statistics.

    A column that is constant over the training rows (its standard deviation within rounding
    of zero) is only centred, as scikit-learn's ``StandardScaler`` does.
    """
    x = np.asarray(train_x, dtype=np.float64)
    t = np.asarray(test_x, dtype=np.float64)
    mean = x.mean(0)
    std = x.std(0)
    constant = std <= len(x) * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    std[constant] = 1.0
    return (x - mean) / std, (t - mean) / std


def loss_and_grad(
    theta: np.ndarray, x: np.ndarray, onehot: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    """The L-BFGS objective and its exact gradient.

    Args:
        theta: ``W`` (classes x features, row-major, as scikit-learn's ``coef_``) then ``b``,
            flattened.
        x: Standardised training features (rows x features), float64.
        onehot: One-hot training labels (rows x classes).
        l2: Penalty on the summed loss (scikit-learn's ``1 / C``).

    Returns:
        ``(f, grad)``: the objective (mean over rows) and its gradient, shaped like ``theta``.
    """
    n, d = x.shape
    k = onehot.shape[1]
    w = theta[: k * d].reshape(k, d)
    b = theta[k * d :]
    z = x @ w.T + b
    z -= z.max(1, keepdims=True)
    ez = np.exp(z)
    total = ez.sum(1, keepdims=True)
    loss = float(np.log(total).sum() - (z * onehot).sum())
    p = ez / total - onehot
    grad_w = p.T @ x + l2 * w  # (classes x rows) @ (rows x features): the fast BLAS layout
    grad_b = p.sum(0)
    value = (loss + 0.5 * l2 * float((w * w).sum())) / n
    return value, np.concatenate([grad_w.ravel(), grad_b]) / n


def fit_lbfgs(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    l2: float = 1.0,
    tol: float = 1e-5,
    max_iter: int = 1000,
) -> LinearFit:
    """Multinomial logistic regression by L-BFGS-B to ``tol`` (see the module docstring).

    Only classes that occur in ``train_y`` get a column (a class with no training row could
    only have its bias pushed to minus infinity); a single class predicts itself.
    """
    from scipy.optimize import minimize

    x, t = standardise(train_x, test_x)
    classes, y = np.unique(np.asarray(train_y, dtype=np.int64), return_inverse=True)
    k, d = len(classes), x.shape[1]
    if k == 1:
        return LinearFit(np.full(len(t), classes[0]), "lbfgs", 0, True, 0.0, 0.0)
    onehot = np.zeros((len(x), k))
    onehot[np.arange(len(x)), y] = 1.0
    result = minimize(
        loss_and_grad,
        np.zeros(k * d + k),
        args=(x, onehot, float(l2)),
        jac=True,
        method="L-BFGS-B",
        options={
            "maxiter": int(max_iter),
            "gtol": float(tol),
            "ftol": 64 * np.finfo(np.float64).eps,
            "maxls": 50,
        },
    )
    w = result.x[: k * d].reshape(k, d)
    b = result.x[k * d :]
    predicted = classes[(t @ w.T + b).argmax(1)]
    grad_norm = float(np.abs(result.jac).max())
    return LinearFit(
        predicted, "lbfgs", int(result.nit), bool(result.status == 0), grad_norm, float(result.fun)
    )


def fit_sgd(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    num_classes: int,
    learning_rate: float = 0.01,
    num_epochs: int = 100,
    batch_rows: int | None = None,
    seed: int = 0,
) -> LinearFit:
    """Upstream SHiFT's probe: SGD on the mean cross-entropy from zero weights, in float32.

    Full-batch by default (``batch_rows`` for minibatches, shuffled with ``seed``); weights
    start at zero, so the result is deterministic.
    """
    import torch

    x = torch.from_numpy(np.asarray(train_x, dtype=np.float32))
    mean, std = x.mean(0), x.std(0, unbiased=False).clamp_min(1e-6)
    x = (x - mean) / std
    y = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    layer = torch.nn.Linear(x.shape[1], num_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.SGD(layer.parameters(), lr=float(learning_rate))
    generator = torch.Generator().manual_seed(int(seed))
    rows = batch_rows or len(x)
    steps = 0
    for _epoch in range(int(num_epochs)):
        order = torch.randperm(len(x), generator=generator) if rows < len(x) else None
        for start in range(0, len(x), rows):
            pick: Any = order[start : start + rows] if order is not None else slice(None)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(layer(x[pick]), y[pick])
            loss.backward()
            optimizer.step()
            steps += 1
    optimizer.zero_grad()
    final = torch.nn.functional.cross_entropy(layer(x), y)
    final.backward()
    grads = [p.grad.abs().max() for p in layer.parameters() if p.grad is not None]
    with torch.no_grad():
        t = (torch.from_numpy(np.asarray(test_x, dtype=np.float32)) - mean) / std
        predicted = layer(t).argmax(1).numpy()
    return LinearFit(
        predicted, "sgd", steps, None, float(max(grads)) if grads else 0.0, float(final.detach())
    )
