"""Halving projections from hand-made costs (simulator.projection), computed by hand."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.projection import Costs, CostsError, ModelCost, ceiling, project, projections

ROOT = Path(__file__).resolve().parents[2]


def _costs(test_rows: int) -> Costs:
    return Costs((ModelCost("m", 1.0, 0.5),), 1024, test_rows, 256)


def test_plain_halving_by_hand() -> None:
    # 4 models, 1,024 training rows, 256 test rows: L = 2, BUDGET 8, CHUNK ceil(1024/3) = 342.
    # Exhaustive: 4 x ((4 + 1) blocks x 1 s + 0.5 s) = 22 s. Halving: 2 arms stop after
    # round 0 (2 + 1 blocks, 1 classify) = 2 x 3.5 = 7 s; 2 finalists (4 + 1 blocks,
    # 2 classifies) = 2 x 6 = 12 s; 19 s in all.
    p = project(_costs(256), 4, racing=False)
    assert (p.exhaustive_s, p.halving_s, p.rounds) == (22.0, 19.0, 2)
    assert p.ratio == pytest.approx(22 / 19)


def test_racing_saves_the_test_blocks_past_the_prefix() -> None:
    # 1,024 test rows: exhaustive 4 x (8 + 0.5) = 34 s. Plain: 2 x (2 + 4 + 0.5) + 2 x (4 +
    # 4 + 1) = 31 s. Racing scores round 0 on 512 test rows (342 rounded up to blocks):
    # 2 x (2 + 2 + 0.5) + 18 = 27 s.
    plain = project(_costs(1024), 4, racing=False)
    racing = project(_costs(1024), 4, racing=True)
    assert (plain.exhaustive_s, plain.halving_s) == (34.0, 31.0)
    assert (racing.exhaustive_s, racing.halving_s) == (34.0, 27.0)


def test_racing_ceiling_by_hand() -> None:
    # 4 models, 1,024 test rows: round 0 fits 342 training rows (2 blocks) and scores 512 test
    # rows (2 blocks): 3 arms stop there, 3 x (4 + 0.5) = 13.5 s; the winner embeds all
    # 4 + 4 blocks and runs 2 classifies, 9 s; 22.5 s against the exhaustive 34 s.
    best = ceiling(_costs(1024), 4)
    assert (best.exhaustive_s, best.halving_s, best.ceiling) == (34.0, 22.5, True)
    assert best.ratio > project(_costs(1024), 4, racing=True).ratio


def test_a_pool_reuses_the_measured_models_in_turn() -> None:
    costs = Costs((ModelCost("a", 1.0, 0.0), ModelCost("b", 3.0, 0.0)), 256, 256, 256)
    assert costs.mean(3) == (5 / 3, 0.0)
    rows = projections(costs, [64, 256, 1000])
    assert [(p.models, p.racing, p.ceiling) for p in rows] == [
        (m, racing, best)
        for m in (64, 256, 1000)
        for racing, best in ((False, False), (True, False), (True, True))
    ]


def test_ratio_grows_with_the_pool() -> None:
    costs = Costs((ModelCost("m", 1.0, 0.1),), 50_000, 1000, 256)
    ratios = [project(costs, m, racing=False).ratio for m in (64, 256, 1000)]
    assert ratios == sorted(ratios) and ratios[0] > 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object"),
        ({"models": [], "train_rows": 1, "test_rows": 1}, "non-empty list"),
        ({"models": [{"name": "a", "embed_s": -1, "classify_s": 0}], "train_rows": 1,
          "test_rows": 1}, "models[0].embed_s must be a number >= 0"),
        ({"models": [{"name": "a", "embed_s": 1, "classify_s": 0}], "train_rows": 0,
          "test_rows": 1}, "train_rows must be a whole number >= 1"),
        ({"models": [{"embed_s": 1}], "train_rows": 1, "test_rows": 1}, "needs a 'name'"),
    ],
)  # fmt: skip
def test_bad_cost_files_are_refused(data: object, message: str) -> None:
    with pytest.raises(CostsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Costs.from_json(data)


def test_the_command_prints_the_table(tmp_path: Path) -> None:
    path = tmp_path / "costs.json"
    path.write_text(
        json.dumps(
            {
                "models": [{"name": "m", "embed_s": 1.0, "classify_s": 0.5}],
                "train_rows": 1024,
                "test_rows": 256,
                "block_rows": 256,
            }
        )
    )
    out = subprocess.run(
        [sys.executable, "-m", "shift", "simulate", "halving", "--costs", str(path),
         "--models", "4"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "| 4 | plain | 2 | 22 | 19 | 1.16x |" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "shift", "simulate", "halving", "--costs", str(tmp_path / "no")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 1 and "cannot read cost file" in bad.stderr
