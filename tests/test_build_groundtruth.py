"""scripts/build_groundtruth resumes: runs already in the CSV are skipped, other options refused.

Runs the real script with ``--dry-run`` (no broker is started) on a real CSV file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shift.groundtruth import COLUMNS, format_options

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "build_groundtruth"
OPTIONS = {"batch_size": None, "epochs": 1, "max_test_rows": 96, "max_train_rows": 64}
FLAGS = ["--tasks", "photos", "--image-models", "efficientnet-lite0,efficientnet-lite0-random",
         "--lrs", "1e-4,3e-4", "--seeds", "0", "--epochs", "1", "--max-train-rows", "64",
         "--max-test-rows", "96", "--dry-run"]  # fmt: skip


def build(csv: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--csv", str(csv), *flags],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_recorded_runs_are_skipped(tmp_path):
    csv = tmp_path / "gt.csv"
    csv.write_text(
        format_options(OPTIONS)
        + ",".join(COLUMNS)
        + "\nphotos,efficientnet-lite0,0.0001,0,0.8,0.86,1,58,45.0,0.1.0\n"
    )
    done = build(csv, *FLAGS)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"1 run(s) in {csv}, 3 to go"
    assert lines[1:] == [
        "  photos efficientnet-lite0 0.0003 0",
        "  photos efficientnet-lite0-random 0.0001 0",
        "  photos efficientnet-lite0-random 0.0003 0",
    ]


def test_other_options_and_bad_rows_are_refused(tmp_path):
    csv = tmp_path / "gt.csv"
    csv.write_text(format_options({**OPTIONS, "epochs": 3}) + ",".join(COLUMNS) + "\n")
    done = build(csv, *FLAGS)
    assert done.returncode != 0
    assert "was built with options" in done.stderr and "use the same options" in done.stderr
    csv.write_text(format_options(OPTIONS) + ",".join(COLUMNS) + "\nphotos,m,x,0,0.8,0.8,1,1,1,v\n")
    done = build(csv, *FLAGS)
    assert done.returncode != 0
    assert f"{csv} line 3: lr 'x' is not a number" in done.stderr


def test_bench_rankers_judges_scores_from_a_csv(tmp_path):
    truth = tmp_path / "gt.csv"
    truth.write_text(
        "task,model,seed,test_acc\nt,a,0,0.9\nt,a,1,0.8\nt,b,0,0.5\nt,b,1,0.6\nt,c,0,0.84\n"
    )
    scores = tmp_path / "scores.csv"
    scores.write_text(
        "task,method,model,score\n"
        + "".join(f"t,good,{m},{s}\n" for m, s in (("a", 3), ("b", 1), ("c", 2)))
        + "".join(f"t,bad,{m},{s}\n" for m, s in (("a", 1), ("b", 3), ("c", 2)))
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_rankers"), "--csv", str(truth),
         "--from-csv", str(scores), "--strategy", "rank:good+bad"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    task_table = done.stdout.split("== over")[0]
    rows = {line.split()[0]: line.split() for line in task_table.splitlines() if line.strip()}
    # a: mean 0.85 (SE 0.05); c: 0.84 (one seed) is tied with a; b: 0.55 is 30 points below
    assert rows["good"][1:4] == ["a", "0.00", "1.000"]
    assert rows["bad"][1:3] == ["b", "30.00"]
    # the two cancel out: every model ties at mean rank 2, resolved against the strategy
    assert rows["rank:good+bad"][1:3] == ["b", "30.00"]
