"""Render a :class:`~simulator.replay.Replay` as text tables, CSV or JSON.

Tables show accuracies and regrets in percentage points and costs in GPU hours; CSV and JSON
keep the raw units (accuracy in [0, 1], cost in seconds) and every min/mean/max.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from simulator.records import Modality
from simulator.replay import Replay, Result, summarize

SECONDS_PER_HOUR = 3600.0

Renderer = Callable[[Replay], str]
RENDERERS: dict[str, Renderer] = {}
"""Format name -> renderer, filled by :func:`renderer`."""


def renderer(name: str) -> Callable[[Renderer], Renderer]:
    """Register a renderer for ``--format name``."""

    def register(render: Renderer) -> Renderer:
        RENDERERS[name] = render
        return render

    return register


def render(result: Replay, fmt: str) -> str:
    """Render ``result`` in ``fmt`` (one of :data:`RENDERERS`)."""
    return RENDERERS[fmt](result)


def text_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An aligned table: first column left-aligned, the others right-aligned."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return " | ".join(parts).rstrip()

    return "\n".join([line(columns), "-+-".join("-" * w for w in widths), *(line(r) for r in rows)])


def _points(value: float) -> str:
    return f"{value * 100:.2f}"


def _hours(seconds: float) -> str:
    return f"{seconds / SECONDS_PER_HOUR:.1f}"


def _regret_cell(result: Result | None) -> str:
    return "-" if result is None else _points(result.regret.mean)


@renderer("table")
def render_table(result: Replay) -> str:
    """Per-task tables (one per modality) and the summary, for a person to read."""
    others = [label for label in result.labels if label != "enumeration"]
    parts = []
    for modality in Modality:
        tasks = [t for t in result.tasks if t.modality == modality]
        if not tasks:
            continue
        columns = ["task", "models", "best acc %", "enum GPU h", *(f"{o} regret" for o in others)]
        rows = [
            [
                t.task,
                str(t.models),
                _points(t.enumeration.accuracy.mean),
                _hours(t.enumeration.cost_s.mean),
                *(_regret_cell(t.get(o)) for o in others),
            ]
            for t in tasks
        ]
        title = (
            f"{modality} tasks ({len(tasks)}): regret = enumeration's best test accuracy minus "
            f"the strategy's, in points; random: mean of {result.repeats} repeats"
        )
        parts.append(title + "\n" + text_table(columns, rows))
    parts.append(render_summary(result))
    return "\n\n".join(parts)


def render_summary(result: Replay) -> str:
    """The summary table: mean and worst regret, cost and cost ratio per strategy."""
    columns = ["strategy", "tasks", "mean regret", "max regret", "GPU h", "cost vs enum"]
    rows = [
        [
            f"{s.modality} {s.label}",
            str(s.tasks),
            _points(s.mean_regret),
            _points(s.max_regret),
            _hours(s.cost_s),
            f"{s.cost_ratio:.4f}",
        ]
        for s in summarize(result)
    ]
    title = "summary (regret in points, mean over tasks; GPU hours summed over tasks)"
    return title + "\n" + text_table(columns, rows)


CSV_COLUMNS = (
    "modality",
    "task",
    "models",
    "strategy",
    "k",
    "repeats",
    "accuracy_min",
    "accuracy_mean",
    "accuracy_max",
    "regret_min",
    "regret_mean",
    "regret_max",
    "cost_s_min",
    "cost_s_mean",
    "cost_s_max",
    "fine_tuned",
    "skipped",
)
"""Columns of ``--format csv``: one row per task and strategy result."""


@renderer("csv")
def render_csv(result: Replay) -> str:
    """One CSV row per task and strategy result, raw units."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for t in result.tasks:
        for r in t.results:
            writer.writerow(
                [
                    t.modality,
                    t.task,
                    t.models,
                    r.strategy,
                    "" if r.k is None else r.k,
                    r.repeats,
                    *(
                        repr(getattr(s, f))
                        for s in (r.accuracy, r.regret, r.cost_s)
                        for f in ("min", "mean", "max")
                    ),
                    " ".join(r.models),
                    " ".join(r.skipped),
                ]
            )
    return buffer.getvalue().rstrip("\n")


@renderer("json")
def render_json(result: Replay) -> str:
    """Everything, as one JSON document."""
    document: dict[str, Any] = {
        "source": result.source,
        "repeats": result.repeats,
        "seed": result.seed,
        "labels": list(result.labels),
        "warnings": list(result.warnings),
        "tasks": [
            {
                "task": t.task,
                "modality": str(t.modality),
                "models": t.models,
                "results": [{"label": r.label, **asdict(r)} for r in t.results],
            }
            for t in result.tasks
        ],
        "summary": [{**asdict(s), "modality": str(s.modality)} for s in summarize(result)],
    }
    return json.dumps(document, indent=2)
