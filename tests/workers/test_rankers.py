"""Rankers against values derived by hand or from their definitions, plus their invariances."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

from shift.errors import WorkerError
from shift.methods import RANKERS
from workers import rankers as R
from workers.rankers import rank_score, score_with_interval


def blobs(n=60, d=5, classes=3, seed=0, spread=1.0):
    """Gaussian classes around random centres; every class present."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    centres = rng.normal(size=(classes, d)) * 2.0
    return centres[labels] + spread * rng.normal(size=(n, d)), labels


def log_normal(y, cov):
    """log N(y | 0, cov), computed directly."""
    sign, logdet = np.linalg.slogdet(cov)
    assert sign > 0
    return -0.5 * (len(y) * math.log(2 * math.pi) + logdet + y @ np.linalg.solve(cov, y))


# ------------------------------------------------------------------------------ LogME


def _class_evidence(f, labels, c):
    sigma, u = R._gram_spectrum(f)
    y = (labels == c).astype(float)
    x2 = (u.T @ y) ** 2
    alpha, beta = R.logme_fit(sigma, x2, float(y @ y), len(y))
    return y, sigma, x2, alpha, beta


@pytest.mark.parametrize(
    "shape", [(40, 6), (8, 12), (30, 6, "rank 5")], ids=["n>d", "n<d", "rank-deficient"]
)
def test_logme_evidence_is_the_closed_form_marginal_likelihood(shape):
    n, d = shape[:2]
    f, labels = blobs(n, d, classes=3, seed=1)
    if len(shape) == 3:
        f[:, -1] = f[:, 0] + f[:, 1]  # rank d - 1: the missing eigenvalues must count
    total = 0.0
    for c in range(3):
        y, sigma, x2, alpha, beta = _class_evidence(f, labels, c)
        mine = R.logme_evidence(sigma, x2, float(y @ y), n, d, alpha, beta)

        def closed(a, b, y=y):
            return log_normal(y, np.eye(n) / b + f @ f.T / a)

        assert mine == pytest.approx(closed(alpha, beta), rel=1e-10, abs=1e-9)
        # converged: no nearby (alpha, beta) has a higher evidence; beta may sit at its
        # bound (n <= d: the features interpolate the target and the evidence rises with beta)
        at_bound = alpha / beta <= sigma.max() / R.T_RANGE * (1 + 1e-9)
        nearby = [(alpha * 1.01, beta), (alpha / 1.01, beta), (alpha, beta / 1.01)]
        for a, b in nearby + ([] if at_bound else [(alpha, beta * 1.01)]):
            assert closed(a, b) < closed(alpha, beta)
        total += closed(alpha, beta) / n
    assert R.logme(f, labels) == pytest.approx(total / 3, rel=1e-10)


def test_logme_of_interpolating_features_is_the_noise_free_limit():
    # n <= d and full rank: as beta -> inf the evidence tends to log N(y | 0, F F^T / alpha),
    # maximised at alpha = n / y^T (F F^T)^-1 y
    f, labels = blobs(8, 12, classes=3, seed=1)
    y = (labels == 2).astype(float)
    gram = f @ f.T
    alpha = 8 / (y @ np.linalg.solve(gram, y))
    limit = log_normal(y, gram / alpha)
    _, sigma, x2, a, b = _class_evidence(f, labels, 2)
    assert a / b == pytest.approx(sigma.max() / R.T_RANGE)
    assert R.logme_evidence(sigma, x2, float(y @ y), 8, 12, a, b) == pytest.approx(limit, rel=1e-9)


def test_logme_of_a_target_outside_the_feature_span_is_the_noise_only_evidence():
    f = np.zeros((6, 3))
    labels = np.array([0, 0, 1, 1, 1, 2])
    expected = np.mean(
        [
            log_normal((labels == c).astype(float), np.eye(6) * np.mean(labels == c)) / 6
            for c in range(3)
        ]
    )
    assert R.logme(f, labels) == pytest.approx(expected, rel=1e-12)


def test_logme_prefers_features_that_separate_the_classes():
    good, labels = blobs(80, 6, spread=0.3)
    noise = np.random.default_rng(5).normal(size=good.shape)
    assert rank_score("logme", good, labels) > rank_score("logme", noise, labels)


# ------------------------------------------------------------------------------ SFDA


def lda_log_probs(x, labels, shrinkage):
    """Shrunk-covariance LDA posteriors, written out independently of the ranker."""
    n, d = x.shape
    classes = labels.max() + 1
    means = np.stack([x[labels == c].mean(0) for c in range(classes)])
    priors = np.bincount(labels) / n
    sw = sum(priors[c] * np.cov(x[labels == c].T, bias=True).reshape(d, d) for c in range(classes))
    sw_l = (1 - shrinkage) * sw + shrinkage * np.trace(sw) / d * np.eye(d)
    solved = np.linalg.solve(sw_l, means.T)  # (d, C)
    scores = x @ solved - 0.5 * np.sum(means.T * solved, axis=0) + np.log(priors)
    scores -= scores.max(1, keepdims=True)
    return scores - np.log(np.exp(scores).sum(1, keepdims=True))


def test_sfda_with_every_direction_is_shrunk_lda_before_and_after_confmix():
    x, labels = blobs(50, 4, classes=3, seed=2, spread=2.0)
    sw = sum(np.mean(labels == c) * np.cov(x[labels == c].T, bias=True) for c in range(3))
    shrinkage = max(math.exp(-5.0 * np.linalg.eigvalsh(sw)[-1]), 1e-10)
    log_p, lam = R.sfda_classifier(x, labels, 3, a=5.0, n_components=0)
    assert lam == pytest.approx(shrinkage)
    assert np.allclose(log_p, lda_log_probs(x, labels, shrinkage), atol=1e-9)
    # ConfMix by hand: softened confidence, mean of the other classes' means
    p = np.exp(log_p)
    soft = np.exp(p) / np.exp(p).sum(1, keepdims=True)
    conf = soft[np.arange(50), labels][:, None]
    means = np.stack([x[labels == c].mean(0) for c in range(3)])
    others = np.stack([(means.sum(0) - means[c]) / 2 for c in range(3)])
    mixed = conf * x + (1 - conf) * others[labels]
    # the score: the mean probability (not log-probability) of the true class
    expected = np.exp(lda_log_probs(mixed, labels, shrinkage))[np.arange(50), labels].mean()
    assert R.sfda(x, labels) == pytest.approx(expected, rel=1e-9)


def sigmoid(t):
    return 1.0 / (1.0 + math.exp(-t))


def test_sfda_by_hand_in_one_dimension():
    # one feature: shrinking towards tr(S)/d I changes nothing, so SFDA is 1-D LDA twice.
    # x = 0, 1 (class 0) and 3, 4 (class 1): means 0.5 and 3.5, Sw = 1/4, equal priors, so
    # log p(1|x)/p(0|x) = ((3.5 - 0.5) x - (3.5^2 - 0.5^2) / 2) / (1/4) = 12 x - 24
    x = np.array([[0.0], [1.0], [3.0], [4.0]])
    labels = np.array([0, 0, 1, 1])
    p_outer, p_inner = sigmoid(24.0), sigmoid(12.0)  # true-class probability at 0, 4 and 1, 3
    # second softmax over (p, 1 - p): the true class's entry is sigmoid(2 p - 1)
    s_outer, s_inner = sigmoid(2 * p_outer - 1), sigmoid(2 * p_inner - 1)
    # ConfMix towards the other class's mean (3.5 for class 0); class 1 mirrors about x = 2
    a = (1 - s_outer) * 3.5  # from x = 0
    b = s_inner * 1.0 + (1 - s_inner) * 3.5  # from x = 1
    m0, m1 = (a + b) / 2, 4 - (a + b) / 2
    sw = ((b - a) / 2) ** 2
    # refitted log-odds of class 1 at x': (m1 - m0) (x' - 2) / Sw; score: mean p(true)
    expected = (sigmoid((m1 - m0) * (2 - a) / sw) + sigmoid((m1 - m0) * (2 - b) / sw)) / 2
    assert R.sfda(x, labels) == pytest.approx(expected, rel=1e-12)
    assert 0.5 < expected < 1.0


def test_sfda_and_hscore_saturate_with_fewer_rows_than_dimensions():
    # n <= d: every class is linearly separable from the rest, so with SFDA's tiny adaptive
    # shrinkage every row gets its true class with probability 1, and cov(f) spans the class
    # means' directions, so the H-score is C - 1 whatever the features
    # (the paper's estimators on every dimension: dims >= d)
    f, labels = blobs(24, 40, classes=4, seed=21)
    noise = np.random.default_rng(22).normal(size=f.shape)
    for features in (f, noise):
        assert R.sfda(features, labels, dims=40) == pytest.approx(1.0, abs=1e-9)
        assert R.hscore(features, labels, dims=40) == pytest.approx(3.0, rel=1e-9)
    # the shrinkage variant still tells them apart
    assert R.hscore_shrinkage(f, labels) > R.hscore_shrinkage(noise, labels) + 0.1
    # and so do both by default, on floor((24 - 4) / 4) = 5 principal components
    assert R.principal_components(f, 4, 0).shape == (24, 5)
    assert R.sfda(f, labels) > R.sfda(noise, labels) + 0.1
    assert R.hscore(f, labels) > R.hscore(noise, labels) + 0.5


def test_the_principal_components_by_hand():
    # rows along (1, 1) with a small spread along (1, -1): one component keeps the first
    t = np.array([-3.0, -1.0, 1.0, 3.0])
    e = np.array([0.1, -0.1, -0.1, 0.1])  # orthogonal to t
    x = np.stack([t + e, t - e], axis=1) + 5.0
    z = R.principal_components(x, 2, 1)
    assert np.allclose(np.abs(z[:, 0]), np.abs(t) * math.sqrt(2.0))
    # as many components as dimensions, or more: the features as they are
    assert R.principal_components(x, 2, 2) is x
    assert R.principal_components(x, 2, 0).shape == (4, 1)  # floor((4 - 2) / 4) -> at least 1
    labels = np.array([0, 0, 1, 1])
    assert rank_score("hscore", x, labels, params={"dims": 1}) == pytest.approx(
        rank_score("hscore", z, labels, params={"dims": 1})
    )


def test_sfda_adaptive_shrinkage_follows_a():
    x, labels = blobs(50, 4, classes=3, seed=2, spread=0.05)
    top = np.linalg.eigvalsh(
        sum(np.mean(labels == c) * np.cov(x[labels == c].T, bias=True) for c in range(3))
    )[-1]
    for a in (0.0, 1.0, 5.0):
        _, lam = R.sfda_classifier(x, labels, 3, a=a, n_components=0)
        assert lam == pytest.approx(max(math.exp(-a * top), 1e-10))


def test_sfda_components_truncate_the_fisher_space():
    x, labels = blobs(60, 6, classes=3, seed=3, spread=2.0)
    full = rank_score("sfda", x, labels)
    assert rank_score("sfda", x, labels, params={"n_components": 6}) == pytest.approx(full)
    assert rank_score("sfda", x, labels, params={"n_components": 50}) == pytest.approx(full)
    # beyond C - 1 = 2 directions the Fisher space adds only class-independent shifts
    assert rank_score("sfda", x, labels, params={"n_components": 2}) == pytest.approx(full)
    assert rank_score("sfda", x, labels, params={"n_components": 1}) < full - 0.01


def test_sfda_is_scale_invariant_at_a_fixed_shrinkage_only():
    x, labels = blobs(50, 4, classes=3, seed=4, spread=1.5)
    a, _ = R.sfda_classifier(x, labels, 3, a=5.0, n_components=2, shrinkage=0.1)
    b, _ = R.sfda_classifier(x * 40.0, labels, 3, a=5.0, n_components=2, shrinkage=0.1)
    assert np.allclose(a, b, atol=1e-9)
    # the adaptive shrinkage exp(-a * top eigenvalue) depends on the scale
    assert R.sfda(x * 0.01, labels) != pytest.approx(R.sfda(x, labels), rel=1e-3)


# ------------------------------------------------------------------------------ H-score


@pytest.mark.parametrize(
    "values, labels, expected",
    [
        ([0.0, 0.0, 2.0, 2.0], [0, 0, 1, 1], 1.0),  # var 1, class means +-1: between var 1
        ([0.0, 1.0, 3.0, 4.0], [0, 0, 1, 1], 0.9),  # var 2.5, class means +-1.5: 2.25 / 2.5
        ([0.0, 1.0, 2.0, 3.0], [0, 1, 0, 1], 0.2),  # var 1.25, class means 1 and 2: 0.25 / 1.25
    ],
)
def test_hscore_by_hand_in_one_dimension(values, labels, expected):
    f = np.array(values)[:, None]
    assert rank_score("hscore", f, np.array(labels)) == pytest.approx(expected, rel=1e-12)
    # one feature: Ledoit-Wolf has nothing to shrink towards, so both agree
    assert rank_score("hscore_shrinkage", f, np.array(labels)) == pytest.approx(expected)


def test_hscore_two_dimensions_by_hand():
    # class 0 at (0,0),(2,0); class 1 at (0,2),(2,2): cov(f) = I, between-class cov diag(0, 1)
    f = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    assert rank_score("hscore", f, np.array([0, 0, 1, 1]), params={"dims": 2}) == pytest.approx(1.0)


def test_hscore_is_invariant_to_invertible_linear_maps():
    f, labels = blobs(80, 5, seed=6)
    a = np.random.default_rng(7).normal(size=(5, 5)) + 3 * np.eye(5)
    assert R.hscore(f @ a, labels) == pytest.approx(R.hscore(f, labels), rel=1e-8)


def test_ledoit_wolf_matches_scikit_learn():
    from sklearn.covariance import ledoit_wolf

    f, _ = blobs(30, 8, seed=8)
    f -= f.mean(0)
    cov, shrinkage = R.ledoit_wolf(f)
    expected_cov, expected_shrinkage = ledoit_wolf(f, assume_centered=True)
    assert shrinkage == pytest.approx(expected_shrinkage, rel=1e-10)
    assert np.allclose(cov, expected_cov, rtol=1e-10)


def test_hscore_shrinkage_from_its_definition():
    from sklearn.covariance import ledoit_wolf

    f, labels = blobs(20, 30, seed=9)  # fewer rows than dimensions: cov(f) is singular
    centred = f - f.mean(0)
    cov, alpha = ledoit_wolf(centred, assume_centered=True)
    g = np.stack([centred[labels == c].mean(0) for c in labels])
    expected = np.trace(np.linalg.solve(cov, (1 - alpha) * g.T @ g / 20))
    assert R.hscore_shrinkage(f, labels) == pytest.approx(expected, rel=1e-8)


def test_hscore_shrinkage_is_invariant_to_the_feature_scale():
    f, labels = blobs(40, 10, seed=10)
    assert R.hscore_shrinkage(f * 250.0, labels) == pytest.approx(
        R.hscore_shrinkage(f, labels), rel=1e-9
    )


# ------------------------------------------------------------------------------ NCE, LEEP


def test_nce_from_a_hand_computed_joint():
    # source top classes z = 0,0,0,1,1,1; targets y = 0,0,1,1,1,1
    # P(z=0) = 1/2 with P(y|z=0) = (2/3, 1/3); P(y=1|z=1) = 1  =>  -H(Y|Z) below
    logits = np.array([[2.0, 1.0, 0.0]] * 3 + [[0.0, 3.0, 3.0]] * 3)  # ties -> lowest index
    labels = np.array([0, 0, 1, 1, 1, 1])
    expected = 0.5 * (2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert rank_score("nce", None, labels, logits=logits) == pytest.approx(expected, rel=1e-12)


def test_leep_from_a_hand_computed_joint():
    theta = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    labels = np.array([0, 0, 1, 1])
    # P(y, z) = [[.375, .125], [.125, .375]], P(z) = (.5, .5), P(y|z) = [[.75, .25], [.25, .75]]
    # sum_z P(y_i|z) theta_iz = .7, .55, .65, .6
    expected = np.mean(np.log([0.7, 0.55, 0.65, 0.6]))
    score = rank_score("leep", None, labels, logits=np.log(theta) + 4.0)  # softmax drops +4
    assert score == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", ["nce", "leep"])
def test_source_head_rankers_refuse_a_headless_model_by_name(name):
    f, labels = blobs(10, 3)
    with pytest.raises(WorkerError, match=r"'tf_efficientnet_lite0_headless'.*no classifier head"):
        rank_score(name, f, labels, logits=None, model="tf_efficientnet_lite0_headless")


# ------------------------------------------------------------------------------ TransRate


def test_transrate_by_hand():
    eps = 1.0
    # classes on the same line: the labels reduce no coding rate
    f = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert rank_score("transrate", f, np.array([0, 1, 0, 1]), params={"eps": eps}) == (
        pytest.approx(0.0, abs=1e-12)
    )
    # class 0 on the x axis, class 1 on the y axis: Z^T Z = 2 I over 4 rows, each class
    # diag(2, 0) over 2 rows: R(Z) = log(1 + 1/2), R(Z_c) = log(2)/2
    f = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    expected = math.log(1.5) - 0.5 * math.log(2.0)
    assert rank_score("transrate", f, np.array([0, 0, 1, 1]), params={"eps": eps}) == (
        pytest.approx(expected, rel=1e-12)
    )


@pytest.mark.parametrize("n, d", [(12, 4), (5, 9)])
def test_coding_rate_is_the_log_determinant(n, d):
    z = np.random.default_rng(11).normal(size=(n, d))
    _, logdet = np.linalg.slogdet(np.eye(d) + z.T @ z / (n * 1e-2))
    assert R.coding_rate(z, 1e-2) == pytest.approx(0.5 * logdet, rel=1e-10)


def test_transrate_weights_classes_by_their_rows():
    f, labels = blobs(30, 3, classes=3, seed=12)
    labels = np.array([0] * 20 + [1] * 7 + [2] * 3)
    z = f - f.mean(0)
    expected = R.coding_rate(z, 1e-4) - sum(
        np.mean(labels == c) * R.coding_rate(z[labels == c], 1e-4) for c in range(3)
    )
    assert R.transrate(f, labels) == pytest.approx(expected)


# ------------------------------------------------------------------------------ k-NN


POINTS = np.array([0.0, 1.0, 2.0, 10.0, 11.0, 12.5])[:, None]
POINT_LABELS = np.array([0, 0, 1, 1, 1, 0])


@pytest.mark.parametrize(
    "k, hits",
    [
        # row 1 has rows 0 and 2 at distance 1: the lower index (row 0) comes first
        (1, [1, 1, 0, 1, 1, 0]),
        # a 1-1 vote goes to the class of the nearest neighbour
        (2, [1, 1, 0, 1, 1, 0]),
        (3, [0, 0, 0, 1, 1, 0]),
    ],
)
def test_knn_leave_one_out_by_hand(k, hits):
    got = R.knn_hits(POINTS, POINT_LABELS, k=k, metric="euclidean")
    assert got.tolist() == [bool(h) for h in hits]
    params = {"k": k, "metric": "euclidean"}
    assert rank_score("knn", POINTS, POINT_LABELS, params=params) == pytest.approx(np.mean(hits))


def test_knn_cosine_ignores_row_length():
    angles = np.array([0.0, 0.1, 0.2, 1.5, 1.6, 1.7])
    x = np.stack([np.cos(angles), np.sin(angles)], 1) * np.array([1, 5, 0.2, 3, 1, 7])[:, None]
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert R.knn_hits(x, labels, k=2, metric="cosine").all()
    assert not R.knn_hits(x, labels, k=2, metric="euclidean").all()


def brute_knn(x, labels, k, metric):
    n = len(x)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        dist = 1 - x @ x.T
    else:
        dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    out = []
    for i in range(n):
        order = [j for j in sorted(range(n), key=lambda j: (dist[i, j], j)) if j != i][:k]
        votes = [labels[j] for j in order]
        best = max(votes.count(c) for c in set(votes))
        out.append(next(v for v in votes if votes.count(v) == best) == labels[i])
    return np.array(out)


def tie_prone_rows(metric, rng):
    """Rows whose distances are exact in float64, so equal distances are exactly equal."""
    if metric == "euclidean":
        return rng.integers(0, 3, size=(45, 3)).astype(float) + 0.5
    axes = np.eye(3)[rng.integers(0, 3, size=45)]  # cosine distances 0 or 1, exactly
    return axes * rng.choice([1.0, 2.0, 4.0], size=(45, 1)) * rng.choice([-1.0, 1.0], (45, 1))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_matches_brute_force_in_small_blocks(monkeypatch, metric):
    rng = np.random.default_rng(13)
    x = tie_prone_rows(metric, rng)
    labels = rng.integers(0, 3, size=45)
    monkeypatch.setattr(R, "KNN_BLOCK_BYTES", 8 * 45 * 4)  # four query rows per block
    for k in (1, 4, 7):
        assert R.knn_hits(x, labels, k=k, metric=metric).tolist() == (
            brute_knn(x, labels, k, metric).tolist()
        )


def test_knn_with_fewer_rows_than_k_uses_every_other_row():
    # k = 20 becomes 2: rows 0 and 1 keep their label by the nearer neighbour; row 2 loses
    x = np.array([[0.0], [0.1], [5.0]])
    score = rank_score("knn", x, np.array([0, 0, 1]), params={"metric": "euclidean"})
    assert score == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------ random


def test_random_is_seeded_per_model_and_reads_no_rows():
    f, labels = blobs(10, 3)
    a = rank_score("random", f, labels, model="m1", params={"seed": 1})
    assert 0.0 <= a < 1.0
    assert rank_score("random", None, labels, model="m1", params={"seed": 1}) == a
    assert rank_score("random", f * 9 + 1, labels[::-1].copy(), model="m1", params={"seed": 1}) == a
    assert rank_score("random", f, labels, model="m2", params={"seed": 1}) != a
    assert rank_score("random", f, labels, model="m1", params={"seed": 2}) != a
    scores = [rank_score("random", None, labels, model=f"m{i}") for i in range(200)]
    assert 0.4 < np.mean(scores) < 0.6


# ------------------------------------------------------------------------------ invariances

LOGITS = np.random.default_rng(14).normal(size=(60, 7))


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_every_ranker_is_invariant_to_permuting_label_ids(name):
    f, labels = blobs(60, 5, classes=3, seed=15)
    permuted = np.array([2, 0, 1])[labels]
    assert rank_score(name, f, permuted, logits=LOGITS, model="m") == pytest.approx(
        rank_score(name, f, labels, logits=LOGITS, model="m"), rel=1e-9, abs=1e-12
    )
    # label ids need not be contiguous: 7, 30, 100 are three classes
    sparse = np.array([7, 30, 100])[labels]
    assert rank_score(name, f, sparse, logits=LOGITS, model="m") == pytest.approx(
        rank_score(name, f, labels, logits=LOGITS, model="m"), rel=1e-9, abs=1e-12
    )


SCALE_INVARIANT = ["logme", "hscore", "hscore_shrinkage", "knn", "nce", "leep", "random"]


@pytest.mark.parametrize("name", SCALE_INVARIANT)
def test_scale_invariant_rankers(name):
    f, labels = blobs(60, 5, classes=3, seed=16)
    for scale in (1e-3, 37.0):
        assert rank_score(name, f * scale, labels, logits=LOGITS, model="m") == pytest.approx(
            rank_score(name, f, labels, logits=LOGITS, model="m"), rel=1e-7
        )


@pytest.mark.parametrize("name", ["transrate", "sfda"])
def test_rankers_that_depend_on_the_feature_scale(name):
    f, labels = blobs(60, 5, classes=3, seed=16, spread=2.0)
    assert rank_score(name, f * 1e-2, labels) != pytest.approx(rank_score(name, f, labels))


# ------------------------------------------------------------------------------ inputs


def test_one_class_is_refused():
    f, _ = blobs(10, 3)
    with pytest.raises(WorkerError, match="1 class; a ranker needs at least two"):
        rank_score("logme", f, np.zeros(10, dtype=int), model="m")


@pytest.mark.parametrize(
    "features, labels, message",
    [
        (np.ones((5, 2)), np.array([0, 1, 0, 1]), r"shape \(4, d>0\)"),
        (np.ones(4), np.array([0, 1, 0, 1]), r"shape \(4, d>0\)"),
        (np.array([[1.0], [np.nan], [0.0], [2.0]]), np.array([0, 1, 0, 1]), "NaN"),
        (np.ones((4, 2)), np.array([0.0, 1.0, 0.0, 1.0]), "integer class ids"),
        (np.ones((4, 2)), np.array([], dtype=int), "non-empty"),
        (None, np.array([0, 1, 0, 1]), "needs features"),
    ],
)
def test_bad_inputs_are_refused_with_the_model_name(features, labels, message):
    with pytest.raises(WorkerError, match=message) as caught:
        rank_score("hscore", features, labels, model="vit")
    assert "'hscore' on model 'vit'" in str(caught.value)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"k": "five"}, "k must be a number"),
        ({"k": 0}, "k must be at least 1"),
        ({"metric": "manhattan"}, "metric must be one of cosine, euclidean"),
        ({"kk": 3}, r"no parameter 'kk' \(it takes k, metric\)"),
    ],
)
def test_bad_parameters_are_refused(params, message):
    f, labels = blobs(10, 3)
    with pytest.raises(WorkerError, match=message):
        rank_score("knn", f, labels, params=params)


def test_unknown_ranker_lists_the_known_and_the_closest():
    with pytest.raises(
        WorkerError, match=r"unknown ranker 'logmee'; known: .*did you mean 'logme'"
    ):
        rank_score("logmee", np.ones((4, 2)), np.array([0, 1, 0, 1]))


# ------------------------------------------------------------------------------ registry


def test_every_spec_has_a_function_with_matching_parameters():
    assert set(R.RANKER_FUNCTIONS) == set(RANKERS)
    for name, spec in RANKERS.items():
        signature = inspect.signature(R.RANKER_FUNCTIONS[name].run).parameters
        declared = {p.name: p.default for p in spec.params}
        found = {
            k: v.default
            for k, v in signature.items()
            if v.kind is inspect.Parameter.KEYWORD_ONLY and k not in ("logits", "model")
        }
        assert found == declared, name
        assert set(spec.needs) <= {"features", "labels", "logits", "model"}
        assert spec.cost is not None and spec.complexity


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_cost_models_grow_with_rows(name):
    cost = RANKERS[name].cost
    small, large = cost(100, 64, 10, 1000), cost(10_000, 64, 10, 1000)
    assert 0 < small <= large


def test_a_ranker_registered_twice_is_refused():
    with pytest.raises(WorkerError, match="registered twice"):
        R.ranker("logme")(lambda features, labels, *, logits=None: 0.0)


# ------------------------------------------------------------------------------ intervals


def test_score_with_interval_is_seeded_and_brackets_the_spread():
    f, labels = blobs(60, 4, seed=17)
    a = score_with_interval("hscore", f, labels, resamples=30, seed=3)
    b = score_with_interval("hscore", f, labels, resamples=30, seed=3)
    assert a == b and a.rows == 60
    assert a.interval.low < a.interval.high and a.interval.method == "bootstrap percentile"
    assert a.score == rank_score("hscore", f, labels)


def test_knn_interval_resamples_the_leave_one_out_hits():
    hits = R.knn_hits(POINTS, POINT_LABELS, k=1, metric="euclidean")
    result = score_with_interval(
        "knn", POINTS, POINT_LABELS, params={"k": 1, "metric": "euclidean"}
    )
    assert result.score == pytest.approx(hits.mean())
    assert 0.0 <= result.interval.low <= result.score <= result.interval.high <= 1.0


def test_random_interval_has_zero_width():
    result = score_with_interval("random", None, np.array([0, 1]), model="m")
    assert result.interval.low == result.interval.high == result.score


def test_the_top_eigenvalue_of_a_large_scatter_matrix_is_exact():
    x = np.random.default_rng(18).normal(size=(400, 300)) * np.linspace(0.1, 3.0, 300)
    s = x.T @ x / 400
    assert R._top_eigenvalue(s) == pytest.approx(np.linalg.eigvalsh(s)[-1], rel=1e-10)
