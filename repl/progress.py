"""The live progress bar of a running query, fed by its event stream.

:func:`progress_line` is pure (numbers in, one line of text out); :class:`ProgressBar`
only writes that line over itself with a carriage return.
"""

from __future__ import annotations

from typing import Any, TextIO


def stage_text(stage: Any) -> str:
    """A search stage as people read it: ``round 2/4 - 3 arms - 1,024 rows``.

    ``stage`` is a progress event's ``stage`` (``round`` from 0, ``rounds``, ``arms``,
    ``train_rows``, ``test_rows``); anything else gives ``""``.
    """
    if not isinstance(stage, dict):
        return ""
    try:
        k, rounds, arms = int(stage["round"]), int(stage["rounds"]), int(stage["arms"])
        train, test = int(stage["train_rows"]), int(stage.get("test_rows") or 0)
    except (KeyError, TypeError, ValueError):
        return ""
    rows = f"{train:,} rows" + (f" ({test:,} test)" if test else "")
    return f"round {k + 1}/{rounds} - {arms} arm{'s' if arms != 1 else ''} - {rows}"


def progress_line(
    done: int,
    total: int,
    width: int,
    elapsed_s: float,
    round_: int | None = None,
    stage: str = "",
) -> str:
    """One line: a bar, tasks done of total, the halving round when known, seconds so far.

    Args:
        done: Tasks finished.
        total: Tasks planned (0 while the plan is being made).
        width: Terminal columns available; the bar shrinks to fit.
        elapsed_s: Seconds since the query started.
        round_: The current successive-halving round, when the query reports one.
        stage: The search stage (:func:`stage_text`), shown instead of ``round_``.

    Returns:
        The line, at most ``width`` characters.
    """
    done = max(0, min(done, total)) if total > 0 else max(0, done)
    tail = f" {done}/{total} tasks" if total > 0 else " planning"
    if stage:
        tail += f", {stage}"
    elif round_ is not None:
        tail += f", round {round_}"
    tail += f"  {elapsed_s:.1f} s"
    room = width - len(tail) - 2
    if room < 5:
        return tail.strip()[:width]
    bar_width = min(room, 40)
    filled = bar_width * done // total if total > 0 else 0
    return f"[{'#' * filled}{'.' * (bar_width - filled)}]{tail}"


class ProgressBar:
    """Draws :func:`progress_line` on a terminal stream, over and over on one line.

    Args:
        stream: Where to draw (the REPL's terminal).
        width: Columns available.
    """

    def __init__(self, stream: TextIO, width: int) -> None:
        self.stream = stream
        self.width = width
        self.drawn = 0

    def update(self, progress: dict[str, Any], elapsed_s: float) -> None:
        """Draw the bar for a ``progress`` event body (``done``, ``total``, maybe ``stage``)."""
        round_ = progress.get("round")
        line = progress_line(
            int(progress.get("done") or 0),
            int(progress.get("total") or 0),
            self.width - 1,
            elapsed_s,
            int(round_) if isinstance(round_, int | float) else None,
            stage_text(progress.get("stage")),
        )
        self.stream.write("\r" + line.ljust(self.drawn))
        self.stream.flush()
        self.drawn = len(line)

    def finish(self) -> None:
        """End the bar's line (the last state stays visible)."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = 0
