"""The Linear proxy on real features: L-BFGS reaches scikit-learn's LogisticRegression optimum
and accuracy, reports its convergence, does not care how classes are numbered; upstream
SHiFT's SGD form still runs; a parameter the chosen solver would ignore is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from shift import zoo
from shift.errors import QueryError, WorkerError
from shift.methods import linear_solver
from shift.payloads import FEATURES_DIR
from shift.ql.parser import parse
from shift.specs import DatasetSpec
from workers import classify  # noqa: F401  (registers the kind)
from workers.classify import load_rows
from workers.features import FeatureStore
from workers.kinds import TaskContext, get_kind
from workers.linear import fit_lbfgs, loss_and_grad, standardise
from workers.proxies import get_proxy
from workers.readers import open_dataset


def pixels(split):
    """scikit-learn's digits through the zoo reader, 8x8 grey pixels as 64 features."""
    data = open_dataset(zoo.dataset(f"digits-{split}"))
    rows = data.rows(0, len(data))
    x = np.stack([np.asarray(r.convert("L"), dtype=np.float32).ravel() for r in rows])
    return x, data.labels


@pytest.fixture(scope="module")
def digits():
    return (*pixels("train"), *pixels("test"))


def photos(split):
    """The photo-crop task with 8 train and 4 test crops per photo (as test_zoo_tasks)."""
    spec = zoo.dataset(f"photos-{split}")
    params = {**spec.params, "crops_per_photo": {"train": 8, "test": 4}}
    return DatasetSpec(spec.name, spec.reader, params, spec.modality)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory):
    """This module's own worker state (the session store's first embeds are other tests')."""
    return str(tmp_path_factory.mktemp("linear-state"))


@pytest.fixture(scope="module")
def lite0_photos(models, state_dir):
    """EfficientNet-Lite0 features of the small photo-crop task."""
    store = FeatureStore(Path(state_dir) / FEATURES_DIR)
    out = []
    for split in ("train", "test"):
        lite0 = zoo.model("efficientnet-lite0")
        x, labels, _ = load_rows(lite0, photos(split), None, store, True, "cpu", None)
        classes = sorted(set(labels))
        out += [x, np.array([classes.index(v) for v in labels])]
    return tuple(out)


def sklearn_fit(x, y, t, l2):
    xs, ts = standardise(x, t)
    model = LogisticRegression(C=1 / l2, tol=1e-10, max_iter=10_000).fit(xs, y)
    onehot = np.eye(len(model.classes_))[np.searchsorted(model.classes_, y)]
    theta = np.concatenate([model.coef_.ravel(), model.intercept_])
    return model.predict(ts), loss_and_grad(theta, xs, onehot, l2)[0]


@pytest.mark.parametrize("l2", [1.0, 30.0])
def test_lbfgs_reaches_sklearns_optimum_on_digit_pixels(digits, l2):
    x, y, t, ty = digits
    fit, params = get_proxy("linear", {"l2": l2})
    result = fit(x, y, t, ty, num_classes=10, **params)
    predicted, sk_objective = sklearn_fit(x, y, t, l2)
    assert abs(result.acc - np.mean(predicted == ty)) <= 0.01
    assert result.solver == "lbfgs" and result.converged and 0 < result.iterations < 1000
    assert result.grad_norm <= params["tol"] == 1e-5
    ours = fit_lbfgs(x, y, t, l2, tol=1e-8)
    assert ours.objective == pytest.approx(sk_objective, rel=1e-7)
    assert ours.objective <= sk_objective + 1e-12  # never worse than the reference


def test_lbfgs_matches_sklearn_on_lite0_features(lite0_photos):
    x, y, t, ty = lite0_photos
    assert x.shape == (128, 1280) and t.shape == (64, 1280)
    fit, params = get_proxy("linear", {})
    result = fit(x, y, t, ty, num_classes=16, **params)
    predicted, sk_objective = sklearn_fit(x, y, t, 1.0)
    assert abs(result.acc - np.mean(predicted == ty)) <= 0.01 and result.acc > 0.7
    assert result.converged and result.grad_norm <= 1e-5
    assert fit_lbfgs(x, y, t, 1.0, tol=1e-8).objective == pytest.approx(sk_objective, rel=1e-6)


def test_a_classify_task_runs_the_converged_probe(lite0_photos, state_dir, monkeypatch):
    """The worker's classify kind, with the parameters a plain ``Linear`` plans, gives the
    same error as the probe called directly on the same stored features."""
    monkeypatch.setenv("SHIFT_STATE_DIR", state_dir)
    x, y, t, ty = lite0_photos
    fit, params = get_proxy("linear", {})
    direct = fit(x, y, t, ty, num_classes=16, **params)
    payload = {
        "model": zoo.model("efficientnet-lite0").to_json(),
        "train": [photos("train").to_json()],
        "test": photos("test").to_json(),
        "classifier": "linear",
        "params": linear_params("Linear"),
    }
    context = TaskContext("t", 1, None, lambda done, total, message: None)
    result = get_kind("classify").run(payload, context)
    assert result["params"] == params and result["embedded_blocks"] == 0
    assert (result["err"], result["test_rows"]) == (direct.err, 64)


def test_label_numbering_does_not_change_the_error(digits):
    x, y, t, ty = digits
    fit, params = get_proxy("linear", {})
    base = fit(x, y, t, ty, num_classes=10, **params)
    perm = np.random.default_rng(0).permutation(10)
    permuted = fit(x, perm[y], t, perm[ty], num_classes=10, **params)
    assert permuted.err == pytest.approx(base.err, abs=1 / len(ty))
    gapped = fit(x, 3 * y, t, 3 * ty, num_classes=28, **params)  # ids with unused classes
    assert gapped.err == pytest.approx(base.err, abs=1 / len(ty))


def test_iteration_cap_reports_no_convergence(digits):
    x, y, t, ty = digits
    fit, params = get_proxy("linear", {"max_iter": 3})
    result = fit(x, y, t, ty, num_classes=10, **params)
    assert (result.iterations, result.converged) == (3, False) and result.grad_norm > 1e-5


def test_one_training_class_predicts_it(digits):
    x, y, t, ty = digits
    fit, params = get_proxy("linear", {})
    result = fit(x[y == 4], y[y == 4], t, ty, num_classes=10, **params)
    assert result.err == pytest.approx(np.mean(ty != 4)) and result.converged


def test_sgd_runs_upstream_shifts_budget(digits):
    x, y, t, ty = digits
    fit, auto = get_proxy("linear", {"num_epochs": 30, "learning_rate": 0.1})
    assert linear_solver(auto) == "sgd"
    implicit = fit(x, y, t, ty, num_classes=10, **auto)
    explicit = fit(x, y, t, ty, num_classes=10, **get_proxy("linear", {**auto, "solver": "sgd"})[1])
    assert implicit == explicit
    assert (implicit.solver, implicit.iterations, implicit.converged) == ("sgd", 30, None)
    assert implicit.acc > 0.8 and implicit.grad_norm > 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"solver": "lbfgs", "num_epochs": 400},
            "num_epochs=400 has no effect with solver 'lbfgs'",
        ),
        ({"num_epochs": 400, "l2": 0.5}, r"l2=0.5 has no effect with solver 'sgd' \(solver 'auto'"),
        (
            {"solver": "sgd", "max_iter": 50, "tol": 0.1},
            "tol=0.1, max_iter=50 have no effect with solver 'sgd', which",
        ),
        ({"solver": "newton"}, "solver must be one of auto, lbfgs, sgd, got 'newton'"),
        ({"solver": ""}, "non-empty string"),
        ({"l2": -1.0}, "l2 must be at least 0"),
        ({"max_iter": 0}, "max_iter must be at least 1"),
    ],
)
def test_parameters_the_solver_would_ignore_are_refused(params, message):
    with pytest.raises(WorkerError, match=message):
        get_proxy("linear", params)


QUERY = 'SELECT * FROM models TRAINED ON "a" TESTED ON "b" CLASSIFIED BY '


def linear_params(text):
    (method,) = parse(QUERY + text).classifiers
    return {p.name: p.value.value for p in method.params}


@pytest.mark.parametrize(
    ("text", "solver"),
    [
        ("Linear", "lbfgs"),
        ("Linear(l2=0.1, max_iter=50)", "lbfgs"),
        ("Linear(learning_rate=0.01, num_epochs=400)", "sgd"),
        ("Linear(lr=0.1)", "sgd"),
        ('Linear(solver="sgd")', "sgd"),
        ("\"Linear(solver='lbfgs', tol=1e-6)\"", "lbfgs"),
    ],
)
def test_the_query_names_the_solver(text, solver):
    assert linear_solver(linear_params(text)) == solver


def test_a_query_with_an_ignored_parameter_fails_before_any_task():
    with pytest.raises(QueryError, match="num_epochs=400 has no effect with solver 'lbfgs'"):
        parse(QUERY + 'Linear(solver="lbfgs", num_epochs=400)')
    with pytest.raises(QueryError, match="solver must be one of auto, lbfgs, sgd, got 'adam'"):
        parse(QUERY + 'Linear(solver="adam")')
