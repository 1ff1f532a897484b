"""Fine-tuning ground truth: the CSV of fine-tuning runs, its resumption and its summary.

One row per fine-tuning run ``(task, model, lr, seed)``: the validation and test accuracy
``FINETUNE`` reported. :func:`read_runs` parses such a CSV (``#`` lines are comments; a
``# options: {...}`` comment records how the runs were made), :func:`pending` lists the runs
of a grid that the CSV does not hold yet (so a build resumes after a kill), and
:func:`summarize` turns runs into the truth a ranking is judged against: per
``(task, model, seed)`` the learning rate with the best validation accuracy, then per
``(task, model)`` the mean test accuracy over seeds and its standard error.

Pure: no clock, no network, no model library.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shift.errors import ShiftError

COLUMNS = (
    "task",
    "model",
    "lr",
    "seed",
    "val_acc",
    "test_acc",
    "epochs",
    "train_rows",
    "seconds",
    "shift_version",
)
"""Columns :func:`format_run` writes, in order."""

REQUIRED = ("task", "model", "test_acc")
"""Columns a ground-truth CSV must have (a team's own history may have no more)."""

OPTIONS_PREFIX = "# options: "
"""The comment line that records a build's options as JSON."""


class GroundTruthError(ShiftError):
    """A ground-truth CSV or grid that cannot be used (the message names the line)."""


@dataclass(frozen=True)
class Run:
    """One fine-tuning run.

    Attributes:
        task: The task (a zoo task stem such as ``photos``, or a team's own name).
        model: The model that was fine-tuned.
        lr: Its learning rate (``None``: not recorded).
        seed: Its seed (``None``: not recorded).
        val_acc: Validation accuracy of the chosen epoch (``None``: not recorded).
        test_acc: Test accuracy, in ``[0, 1]``.
        epochs: Epochs trained (``None``: not recorded).
        train_rows: Rows trained on (``None``: not recorded).
        seconds: Wall seconds of the run (``None``: not recorded).
        shift_version: The shift version that ran it (empty: not recorded).
        line: The CSV line it was read from (0: not read from a file).
    """

    task: str
    model: str
    test_acc: float
    lr: float | None = None
    seed: int | None = None
    val_acc: float | None = None
    epochs: int | None = None
    train_rows: int | None = None
    seconds: float | None = None
    shift_version: str = ""
    line: int = 0

    @property
    def key(self) -> tuple[str, str, float | None, int | None]:
        """``(task, model, lr, seed)``: what makes a run unique."""
        return (self.task, self.model, self.lr, self.seed)


@dataclass(frozen=True)
class Truth:
    """The fine-tuned accuracy of one model on one task, over seeds.

    Attributes:
        mean: Mean test accuracy of the validation-picked runs.
        se: Its standard error (sample standard deviation over ``sqrt(seeds)``; 0 with one seed).
        seeds: Seeds behind the mean.
        lrs: The picked learning rate of each seed, in seed order.
    """

    mean: float
    se: float
    seeds: int
    lrs: tuple[float | None, ...]


def _number(raw: str, column: str, where: str, kind: type) -> Any:
    try:
        value = kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise GroundTruthError(f"{where}: {column} {raw!r} is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise GroundTruthError(f"{where}: {column} {raw!r} is not finite")
    return value


def _optional(row: Mapping[str, str], column: str, where: str, kind: type) -> Any:
    raw = (row.get(column) or "").strip()
    return None if raw == "" else _number(raw, column, where, kind)


def _accuracy(value: float | None, column: str, where: str) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise GroundTruthError(
            f"{where}: {column} {value!r} is not an accuracy in [0, 1] "
            "(write 0.91, not 91 or a percentage)"
        )
    return value


def _run(row: Mapping[str, str], where: str, line: int) -> Run:
    task, model = (row.get("task") or "").strip(), (row.get("model") or "").strip()
    if not task or not model:
        raise GroundTruthError(f"{where}: 'task' and 'model' must not be empty")
    raw_test = (row.get("test_acc") or "").strip()
    if not raw_test:
        raise GroundTruthError(f"{where}: 'test_acc' is empty (every run needs its accuracy)")
    test_acc = _accuracy(_number(raw_test, "test_acc", where, float), "test_acc", where)
    return Run(
        task=task,
        model=model,
        test_acc=float(test_acc),  # type: ignore[arg-type]
        lr=_optional(row, "lr", where, float),
        seed=_optional(row, "seed", where, int),
        val_acc=_accuracy(_optional(row, "val_acc", where, float), "val_acc", where),
        epochs=_optional(row, "epochs", where, int),
        train_rows=_optional(row, "train_rows", where, int),
        seconds=_optional(row, "seconds", where, float),
        shift_version=(row.get("shift_version") or "").strip(),
        line=line,
    )


def read_runs(text: str, source: str = "ground truth") -> list[Run]:
    """Parse a ground-truth CSV: a header, then one run a line; ``#`` lines are comments.

    Args:
        text: The file's text.
        source: How to name the file in errors (its path).

    Raises:
        GroundTruthError: no header, a required column missing, a field that is not a
            number or not an accuracy, a row with too many or too few fields, or a run
            listed twice; the message names the line.
    """
    header: list[str] | None = None
    runs: list[Run] = []
    seen: dict[tuple[str, str, float | None, int | None], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        where = f"{source} line {number}"
        fields = next(csv.reader([raw]))
        if header is None:
            header = [f.strip() for f in fields]
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise GroundTruthError(
                    f"{where}: the header lacks {', '.join(missing)}; it must name at least "
                    f"{', '.join(REQUIRED)} (all columns: {', '.join(COLUMNS)})"
                )
            continue
        if len(fields) != len(header):
            raise GroundTruthError(
                f"{where}: {len(fields)} fields where the header has {len(header)}"
            )
        run = _run(dict(zip(header, fields, strict=True)), where, number)
        if run.key in seen:
            raise GroundTruthError(
                f"{where}: the run {run.key!r} is already on line {seen[run.key]}; "
                "delete one of the two lines"
            )
        seen[run.key] = number
        runs.append(run)
    if header is None:
        raise GroundTruthError(f"{source}: no header line (expected {','.join(COLUMNS)})")
    return runs


def read_options(text: str) -> dict[str, Any] | None:
    """The build options recorded in a ``# options: {...}`` comment (``None``: none).

    Raises:
        GroundTruthError: the comment is not a JSON object.
    """
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith(OPTIONS_PREFIX):
            try:
                value = json.loads(raw[len(OPTIONS_PREFIX) :])
            except ValueError as error:
                raise GroundTruthError(f"line {number}: options are not JSON: {error}") from None
            if not isinstance(value, dict):
                raise GroundTruthError(f"line {number}: options must be a JSON object")
            return value
    return None


def format_options(options: Mapping[str, Any]) -> str:
    """The ``# options: {...}`` comment line (with its newline)."""
    return OPTIONS_PREFIX + json.dumps(dict(options), sort_keys=True) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_run(run: Run) -> str:
    """One CSV line (with its newline) in :data:`COLUMNS` order; floats round-trip."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([_cell(getattr(run, c)) for c in COLUMNS])
    return out.getvalue()


def pending(
    grid: Iterable[tuple[str, str, float, int]], runs: Sequence[Run]
) -> list[tuple[str, str, float, int]]:
    """The ``(task, model, lr, seed)`` runs of ``grid`` that ``runs`` does not hold, in order.

    Learning rates compare as floats (``1e-4`` and ``0.0001`` are the same run).
    """
    done = {r.key for r in runs}
    out = []
    for task, model, lr, seed in grid:
        key = (task, model, float(lr), int(seed))
        if key not in done and key not in out:
            out.append(key)
    return out


def pick_by_validation(runs: Sequence[Run]) -> dict[tuple[str, str, int | None], Run]:
    """Per ``(task, model, seed)``, the run whose learning rate validation picks.

    The highest ``val_acc`` wins; equal accuracies go to the smaller learning rate. With one
    run per seed no validation accuracy is needed.

    Raises:
        GroundTruthError: several learning rates for one seed and a run without ``val_acc``.
    """
    groups: dict[tuple[str, str, int | None], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.task, run.model, run.seed), []).append(run)
    picked = {}
    for key, group in groups.items():
        if len(group) > 1:
            blank = [r for r in group if r.val_acc is None]
            if blank:
                raise GroundTruthError(
                    f"line {blank[0].line}: {key[1]!r} on {key[0]!r} (seed {key[2]}) has "
                    f"{len(group)} learning rates but no val_acc to choose between them"
                )
        lrs = [r.lr for r in group]
        if len(group) > 1 and len(set(lrs)) != len(lrs):
            raise GroundTruthError(
                f"line {group[-1].line}: {key[1]!r} on {key[0]!r} (seed {key[2]}) lists one "
                "learning rate twice; give each run its seed"
            )
        picked[key] = min(
            group, key=lambda r: (-(r.val_acc or 0.0), math.inf if r.lr is None else r.lr)
        )
    return picked


def summarize(runs: Sequence[Run]) -> dict[str, dict[str, Truth]]:
    """``{task: {model: Truth}}``: validation-picked runs, then mean and SE over seeds."""
    picked = pick_by_validation(runs)
    groups: dict[tuple[str, str], list[tuple[int | None, Run]]] = {}
    for (task, model, seed), run in picked.items():
        groups.setdefault((task, model), []).append((seed, run))
    out: dict[str, dict[str, Truth]] = {}
    for (task, model), seeded in sorted(groups.items()):
        seeded.sort(key=lambda s: (s[0] is None, s[0] or 0))
        accs = [r.test_acc for _, r in seeded]
        se = statistics.stdev(accs) / math.sqrt(len(accs)) if len(accs) > 1 else 0.0
        out.setdefault(task, {})[model] = Truth(
            statistics.fmean(accs), se, len(accs), tuple(r.lr for _, r in seeded)
        )
    return out
