"""docs/halving.md tells the truth: its tables are what the code computes."""

from __future__ import annotations

from pathlib import Path

import pytest

from shift.halving import HalvingConfig, SuccessiveHalving, plan_schedule
from tests.halving.test_machine import ARMS, LOSSES, run

DOC = (Path(__file__).resolve().parents[2] / "docs" / "halving.md").read_text(encoding="utf-8")


def tables(header: str) -> list[list[list[str]]]:
    """Return the body rows (cells) of every Markdown table whose header starts with ``header``."""
    found: list[list[list[str]]] = []
    lines = DOC.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header):
            body = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                body.append([cell.strip() for cell in row.strip("|").split("|")])
            found.append(body)
    return found


def number(cell: str) -> int:
    return int(cell.split("=")[-1].replace(",", "").strip())


def test_schedule_tables_match_the_code() -> None:
    documented = tables("| round | arms |")
    schedules = [plan_schedule(8, 1000, 10, 24), plan_schedule(64, 50_000, "auto", "auto")]
    assert len(documented) == len(schedules)
    for body, schedule in zip(documented, schedules, strict=True):
        got = [
            [plan.index, plan.arms, plan.pulls, plan.total_pulls, plan.train_rows, plan.advancing]
            for plan in schedule.rounds
        ]
        shown = [
            [number(c) for c in row[:5]] + [0 if row[5] == "finalists" else number(row[5])]
            for row in body
        ]
        assert shown == got


def test_ranking_table_matches_the_code() -> None:
    (body,) = tables("| model |")
    machine = SuccessiveHalving(HalvingConfig(ARMS, 1000, 10, 24))
    run(machine, LOSSES)
    shown = [(row[0], int(row[4]), int(row[5]), row[6]) for row in body]
    got = [
        (r.arm, rank, r.train_rows, "finalist" if r.eliminated_in is None else str(r.eliminated_in))
        for rank, r in enumerate(machine.ranking(), 1)
    ]
    assert shown == got
    for row in body:
        for rows, cell in zip((10, 30, 70), row[1:4], strict=True):
            assert (float(cell) if cell else None) == LOSSES[rows].get(row[0])


def test_usage_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    start = DOC.index("```python\n") + len("```python\n")
    code = DOC[start : DOC.index("```", start)]
    exec(compile(code, "docs/halving.md", "exec"), {})
    assert "RankedArm(arm='a'" in capsys.readouterr().out


def test_racing_table_matches_the_code() -> None:
    (body,) = tables("| round | arms playing | train rows | test rows |")
    schedule = plan_schedule(6, 4000, "auto", "auto", test_rows=1000)
    got = [
        [plan.index, plan.arms, plan.train_rows, plan.test_rows, plan.advancing]
        for plan in schedule.rounds
    ]
    shown = [
        [number(c) for c in row[:4]] + [0 if row[4] == "finalists" else number(row[4])]
        for row in body
    ]
    assert shown == got
