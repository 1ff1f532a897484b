"""Judging rankings against fine-tuning truth (regret with ties, weighted tau, Spearman) and
combining rankings (rank average, z-score average), and the scores CSV."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from shift.evaluation import (
    combine,
    judge,
    parse_strategy,
    rank_average,
    read_scores,
    tied_with_best,
    zscore_average,
)
from shift.groundtruth import GroundTruthError, Truth


def truth(**means: float | tuple[float, float]) -> dict[str, Truth]:
    out = {}
    for model, value in means.items():
        mean, se = value if isinstance(value, tuple) else (value, 0.0)
        out[model] = Truth(mean, se, 3, ())
    return out


def test_models_within_one_standard_error_of_the_best_are_tied():
    # gap to a: 0.02; SE of the difference sqrt(0.015^2 + 0.015^2) = 0.0212 -> tied
    t = truth(a=(0.90, 0.015), b=(0.88, 0.015), c=(0.80, 0.015))
    assert tied_with_best(t) == {"a", "b"}
    # same gap, smaller spread: not tied
    assert tied_with_best(truth(a=(0.90, 0.005), b=(0.88, 0.005))) == {"a"}
    # one seed (SE 0): only equal means tie
    assert tied_with_best(truth(a=0.9, b=0.9, c=0.89)) == {"a", "b"}
    with pytest.raises(GroundTruthError, match="no fine-tuned models"):
        tied_with_best({})


def test_regret_is_zero_for_a_tied_pick_and_the_gap_in_points_otherwise():
    t = truth(a=(0.90, 0.015), b=(0.88, 0.015), c=(0.80, 0.015))
    tied_pick = judge(t, {"a": 0.1, "b": 0.5, "c": 0.3})
    assert (tied_pick.pick, tied_pick.regret_pts) == ("b", 0.0)
    wrong = judge(t, {"a": 0.1, "b": 0.2, "c": 0.3})
    assert wrong.pick == "c"
    assert wrong.regret_pts == pytest.approx(10.0)


def test_equal_top_scores_pick_the_worse_fine_tuned_model():
    j = judge(truth(a=0.9, b=0.7, c=0.5), {"a": 1.0, "b": 1.0, "c": 0.0})
    assert (j.pick, j.regret_pts) == ("b", pytest.approx(20.0))


def test_perfect_and_reversed_orders():
    t = truth(a=0.9, b=0.8, c=0.7, d=0.6)
    perfect = judge(t, {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0})
    assert perfect.weighted_tau == pytest.approx(1.0)
    assert perfect.spearman == pytest.approx(1.0)
    assert perfect.regret_pts == 0.0
    # any monotone map of the scores is the same order
    assert judge(t, {"a": 1e9, "b": 3.0, "c": -2.0, "d": -1e9}).weighted_tau == pytest.approx(1.0)
    reversed_ = judge(t, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    assert reversed_.weighted_tau == pytest.approx(-1.0)
    assert reversed_.spearman == pytest.approx(-1.0)
    assert reversed_.regret_pts == pytest.approx(30.0)


def test_weighted_tau_weighs_the_top_of_the_order_most():
    t = truth(a=0.9, b=0.8, c=0.7, d=0.6, e=0.5)
    top_swapped = judge(t, {"a": 4.0, "b": 5.0, "c": 3.0, "d": 2.0, "e": 1.0})
    bottom_swapped = judge(t, {"a": 5.0, "b": 4.0, "c": 3.0, "d": 1.0, "e": 2.0})
    assert top_swapped.spearman == pytest.approx(bottom_swapped.spearman)
    assert 0 < top_swapped.weighted_tau < bottom_swapped.weighted_tau < 1
    expected = stats.weightedtau([0.9, 0.8, 0.7, 0.6, 0.5], [4, 5, 3, 2, 1]).statistic
    assert top_swapped.weighted_tau == pytest.approx(expected)


def test_only_models_both_ranked_and_fine_tuned_are_judged():
    t = truth(a=0.9, b=0.8, c=0.7)
    j = judge(t, {"b": 2.0, "c": 1.0, "unknown": 9.0})
    assert (j.models, j.pick, j.regret_pts) == (2, "b", 0.0)
    with pytest.raises(GroundTruthError, match="no ranked model is in the ground truth"):
        judge(t, {"x": 1.0})


def test_constant_or_single_rankings_have_no_correlation():
    t = truth(a=0.9, b=0.8)
    flat = judge(t, {"a": 1.0, "b": 1.0})
    assert math.isnan(flat.weighted_tau) and math.isnan(flat.spearman)
    assert flat.pick == "b"
    single = judge(t, {"a": 1.0})
    assert single.models == 1 and math.isnan(single.spearman)


def test_rank_average_with_ties_shares_ranks():
    first = {"a": 3.0, "b": 2.0, "c": 1.0}
    second = {"a": 1.0, "b": 1.0, "c": 5.0}
    # ranks: first a3 b2 c1; second a1.5 b1.5 c3
    assert rank_average([first, second]) == {"a": 2.25, "b": 1.75, "c": 2.0}


def test_rank_average_ignores_scale_and_keeps_only_common_models():
    first = {"a": 1e6, "b": 0.0, "c": -1e6, "d": 7.0}
    second = {"a": 0.3, "b": 0.2, "c": 0.1}
    assert rank_average([first, second]) == {"a": 3.0, "b": 2.0, "c": 1.0}
    assert rank_average([{"a": 1.0}, {"b": 1.0}]) == {}


def test_zscore_average_by_hand():
    first = {"a": 3.0, "b": 2.0, "c": 1.0}  # mean 2, std sqrt(2/3): z = +-1.2247, 0
    second = {"a": 0.0, "b": 0.0, "c": 30.0}  # mean 10, std 14.142: z = -0.7071, -0.7071, 1.4142
    z = zscore_average([first, second])
    s = math.sqrt(2 / 3)
    assert z["a"] == pytest.approx((1 / s - 1 / math.sqrt(2)) / 2)
    assert z["b"] == pytest.approx((0 - 1 / math.sqrt(2)) / 2)
    assert z["c"] == pytest.approx((-1 / s + math.sqrt(2)) / 2)
    # unlike rank averaging, the size of a lead counts
    assert rank_average([first, second])["c"] == pytest.approx(2.0)


def test_zscore_of_a_constant_ranking_contributes_nothing():
    z = zscore_average([{"a": 5.0, "b": 5.0}, {"a": 2.0, "b": 1.0}])
    assert z == {"a": pytest.approx(0.5), "b": pytest.approx(-0.5)}


def test_zscore_is_invariant_to_affine_maps_of_a_ranking():
    base = {"a": 0.2, "b": 0.9, "c": 0.5}
    other = {"a": 3.0, "b": 1.0, "c": 2.0}
    mapped = {m: 100 * v - 7 for m, v in base.items()}
    assert zscore_average([base, other]) == pytest.approx(zscore_average([mapped, other]))


def test_combine_and_parse_strategy():
    assert parse_strategy("rank:logme+Cosine NN") == ("rank", ("logme", "Cosine NN"))
    assert combine("z", [{"a": 1.0, "b": 0.0}]) == {"a": 1.0, "b": -1.0}
    for bad in ("logme+knn", "mean:logme+knn", "rank:logme"):
        with pytest.raises(GroundTruthError, match="KIND:METHOD"):
            parse_strategy(bad)
    with pytest.raises(GroundTruthError, match="unknown strategy kind 'mean'"):
        combine("mean", [])


def test_read_scores():
    text = "# from a broker\ntask,method,model,score\nphotos,logme,a,1.5\nphotos,Cosine NN,a,0.9\n"
    assert read_scores(text) == {"photos": {"logme": {"a": 1.5}, "Cosine NN": {"a": 0.9}}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header line"),
        ("task,model,score\n", "line 1: the header lacks method"),
        ("task,method,model,score\nt,logme,a,high\n", "line 2: score 'high' is not a number"),
        ("task,method,model,score\nt,logme,a,inf\n", "line 2: score 'inf' is not finite"),
        ("task,method,model,score\nt,logme,a\n", "line 2: 3 fields where the header has 4"),
        ("task,method,model,score\nt,,a,1\n", "line 2: task, method and model must not be empty"),
        ("task,method,model,score\nt,k,a,1\nt,k,a,2\n", "line 3: 'k' scores 'a' on 't' twice"),
    ],
)
def test_bad_score_rows_name_their_line(text, message):
    with pytest.raises(GroundTruthError) as caught:
        read_scores(text, "scores.csv")
    assert message in str(caught.value)
