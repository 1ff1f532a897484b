"""The search stage in progress lines: the REPL's bar and ``shift query``'s status lines."""

from __future__ import annotations

import io

import pytest

from repl.progress import ProgressBar, progress_line, stage_text

STAGE = {"round": 1, "rounds": 4, "arms": 3, "train_rows": 1024, "test_rows": 512}


@pytest.mark.parametrize(
    ("stage", "text"),
    [
        (STAGE, "round 2/4 - 3 arms - 1,024 rows (512 test)"),
        ({**STAGE, "arms": 1, "test_rows": 0}, "round 2/4 - 1 arm - 1,024 rows"),
        (None, ""),
        ({"round": "x"}, ""),
        ({"round": 0, "rounds": 2}, ""),
    ],
)
def test_stage_text(stage: object, text: str) -> None:
    assert stage_text(stage) == text


def test_the_bar_shows_the_stage() -> None:
    line = progress_line(3, 10, 120, 1.5, stage=stage_text(STAGE))
    assert line.endswith(" 3/10 tasks, round 2/4 - 3 arms - 1,024 rows (512 test)  1.5 s")
    out = io.StringIO()
    ProgressBar(out, 120).update({"done": 3, "total": 10, "stage": STAGE}, 1.5)
    assert "round 2/4 - 3 arms" in out.getvalue()
