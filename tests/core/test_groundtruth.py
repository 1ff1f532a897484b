"""Ground-truth CSV: parsing with line-numbered errors, resumption, validation picks, summary."""

from __future__ import annotations

import math

import pytest

from shift.groundtruth import (
    COLUMNS,
    GroundTruthError,
    Run,
    format_options,
    format_run,
    pending,
    pick_by_validation,
    read_options,
    read_runs,
    summarize,
)

HEADER = ",".join(COLUMNS)


def csv_of(*lines: str) -> str:
    return "\n".join(["# a comment", HEADER, *lines]) + "\n"


def test_written_runs_read_back_exactly():
    runs = [
        Run("photos", "lite0", 0.8645833333333334, 1e-4, 0, 0.83, 1, 58, 45.4, "0.1.0"),
        Run("my task, v2", "m", 0.5, None, None, None, None, None, None, ""),
    ]
    text = HEADER + "\n" + "".join(format_run(r) for r in runs)
    back = read_runs(text)
    assert [r.key for r in back] == [r.key for r in runs]
    assert back[0].test_acc == 0.8645833333333334 and back[0].lr == 1e-4
    assert back[1].task == "my task, v2" and back[1].val_acc is None
    assert [r.line for r in back] == [2, 3]


def test_a_team_csv_needs_only_task_model_test_acc():
    (run,) = read_runs("model,task,test_acc,notes\nresnet,cats,0.9,first try\n")
    assert (run.task, run.model, run.test_acc, run.lr, run.seed) == (
        "cats",
        "resnet",
        0.9,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no header line"),
        ("# only a comment\n", "no header line"),
        ("task,model\nphotos,m\n", "line 1: the header lacks test_acc"),
        (
            csv_of("photos,m,1e-4,0,0.9,abc,1,10,1.0,0.1.0"),
            "line 3: test_acc 'abc' is not a number",
        ),
        (
            csv_of("photos,m,1e-4,0,0.9,91,1,10,1.0,0.1.0"),
            "line 3: test_acc 91.0 is not an accuracy",
        ),
        (csv_of("photos,m,1e-4,0,0.9,nan,1,10,1.0,0.1.0"), "line 3: test_acc 'nan' is not finite"),
        (
            csv_of("photos,m,1e-4,zero,0.9,0.9,1,10,1.0,0.1.0"),
            "line 3: seed 'zero' is not an integer",
        ),
        (
            csv_of("photos,m,1e-4,0,1.5,0.9,1,10,1.0,0.1.0"),
            "line 3: val_acc 1.5 is not an accuracy",
        ),
        (csv_of("photos,m,1e-4,0,0.9,,1,10,1.0,0.1.0"), "line 3: 'test_acc' is empty"),
        (
            csv_of(",m,1e-4,0,0.9,0.9,1,10,1.0,0.1.0"),
            "line 3: 'task' and 'model' must not be empty",
        ),
        (csv_of("photos,m,1e-4,0,0.9"), "line 3: 5 fields where the header has 10"),
        (
            csv_of("photos,m,1e-4,0,0.9,0.9,1,10,1.0,a", "photos,m,0.0001,0,0.8,0.8,1,10,1.0,a"),
            "line 4: the run ('photos', 'm', 0.0001, 0) is already on line 3",
        ),
    ],
)
def test_bad_rows_name_their_line(text, message):
    with pytest.raises(GroundTruthError) as caught:
        read_runs(text, "gt.csv")
    assert message in str(caught.value)
    assert str(caught.value).startswith("gt.csv")


def test_options_comment_round_trips_and_rejects_non_objects():
    line = format_options({"epochs": 1, "max_train_rows": 64})
    assert read_options("# built by: x\n" + line + HEADER + "\n") == {
        "epochs": 1,
        "max_train_rows": 64,
    }
    assert read_options(HEADER + "\n") is None
    with pytest.raises(GroundTruthError, match="line 1: options must be a JSON object"):
        read_options("# options: [1]\n")
    with pytest.raises(GroundTruthError, match="line 1: options are not JSON"):
        read_options("# options: {oops\n")


def test_pending_skips_runs_already_recorded_and_keeps_grid_order():
    done = read_runs(
        csv_of("photos,a,0.0001,0,0.9,0.9,1,10,1.0,v", "photos,b,0.0003,1,0.9,0.9,1,10,1.0,v")
    )
    grid = [
        ("photos", "a", 1e-4, 0),
        ("photos", "a", 1e-4, 1),
        ("photos", "b", 3e-4, 1),
        ("photos", "b", 1e-4, 1),
        ("photos", "a", 0.0001, 1),
    ]
    assert pending(grid, done) == [("photos", "a", 1e-4, 1), ("photos", "b", 1e-4, 1)]
    assert pending(grid, []) == [grid[0], grid[1], grid[2], grid[3]]
    assert pending(grid[:1] + grid[2:3], done) == []


def run(model, lr, seed, val, test, task="t"):
    return Run(task, model, test, lr, seed, val)


def test_validation_picks_the_learning_rate_and_ties_go_to_the_smaller():
    runs = [
        run("a", 1e-4, 0, 0.80, 0.70),
        run("a", 3e-4, 0, 0.90, 0.60),
        run("a", 3e-5, 1, 0.85, 0.75),
        run("a", 1e-4, 1, 0.85, 0.99),
    ]
    picked = pick_by_validation(runs)
    assert picked[("t", "a", 0)].lr == 3e-4
    assert picked[("t", "a", 1)].lr == 3e-5


def test_several_learning_rates_without_validation_accuracy_are_refused():
    runs = [Run("t", "a", 0.7, 1e-4, 0, None, line=5), Run("t", "a", 0.8, 3e-4, 0, 0.9, line=6)]
    with pytest.raises(GroundTruthError, match=r"line 5: 'a' on 't' .* no val_acc"):
        pick_by_validation(runs)


def test_summary_is_the_mean_and_standard_error_over_seeds():
    runs = [
        run("a", 1e-4, 0, 0.9, 0.80),
        run("a", 1e-4, 1, 0.9, 0.90),
        run("a", 1e-4, 2, 0.9, 0.70),
        run("a", 3e-4, 2, 0.95, 0.60),
        run("b", 1e-4, 0, 0.9, 0.50),
    ]
    truth = summarize(runs)["t"]
    # seed 2 picks lr 3e-4 (val 0.95): accuracies 0.80, 0.90, 0.60
    assert truth["a"].mean == pytest.approx(0.7666666666666667)
    sd = math.sqrt(((0.8 - 0.76667) ** 2 + (0.9 - 0.76667) ** 2 + (0.6 - 0.76667) ** 2) / 2)
    assert truth["a"].se == pytest.approx(sd / math.sqrt(3), rel=1e-4)
    assert truth["a"].seeds == 3 and truth["a"].lrs == (1e-4, 1e-4, 3e-4)
    assert (truth["b"].mean, truth["b"].se, truth["b"].seeds) == (0.5, 0.0, 1)
