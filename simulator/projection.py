"""Halving against exhaustive search for pools larger than the one measured: pure maths.

A cost file (``scripts/bench_halving --write-costs FILE``) holds the measured device seconds
of one embed task (a block of ``block_rows`` rows) and one classify task per model, and the
task's sizes. A pool of ``M`` models reuses the measured models' costs in turn (model ``i``
costs what measured model ``i mod m`` did). Both searches are counted in device seconds
(every worker busy, so the wall ratio is this ratio at equal busy share):

* exhaustive: every model embeds every training and test block once and runs one classify;
* halving: the schedule of :func:`shift.halving.plan_schedule` (``CHUNK AUTO BUDGET AUTO``);
  an arm that plays rounds ``0..k`` embeds the blocks of round ``k``'s prefixes (earlier
  rounds' blocks are a subset) and runs one classify per round. Racing saves the test
  blocks beyond each early round's test prefix. The arms of a round are the planned ones:
  racing may keep arms within its margin, and drop arms confidently worse than the leader
  (even within the top), so its projection is racing's test-prefix saving alone, not a
  bound on its ratio either way; plain halving's is exact for these costs.

Which arms survive is not known before running, so an arm of round ``k`` costs the mean of
the pool's models (every model is equally likely to survive).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shift.errors import ShiftError
from shift.halving import plan_schedule

POOLS = (64, 256, 1000)
"""Pool sizes projected by default."""


class CostsError(ShiftError):
    """A cost file that cannot be used (names the file, the field and the fix)."""


@dataclass(frozen=True)
class ModelCost:
    """Measured device seconds of one model: one embed block and one classify task."""

    name: str
    embed_s: float
    classify_s: float


@dataclass(frozen=True)
class Costs:
    """What a bench run measured: per-model task costs and the task's sizes."""

    models: tuple[ModelCost, ...]
    train_rows: int
    test_rows: int
    block_rows: int = 256

    @classmethod
    def from_json(cls, data: Any, where: str = "costs") -> Costs:
        """Parse ``{"models": [{"name", "embed_s", "classify_s"}], "train_rows",
        "test_rows", "block_rows"}``.

        Raises:
            CostsError: a field is missing or not a non-negative number.
        """
        if not isinstance(data, dict):
            raise CostsError(f"{where}: expected a JSON object, got {type(data).__name__}")

        def number(value: Any, field: str, whole: bool = False) -> Any:
            kind = int if whole else (int, float)
            if (
                isinstance(value, bool)
                or not isinstance(value, kind)
                or value < (1 if whole else 0)
            ):
                need = "a whole number >= 1" if whole else "a number >= 0"
                raise CostsError(f"{where}: {field} must be {need}, got {value!r}")
            return value

        models = data.get("models")
        if not isinstance(models, list) or not models:
            raise CostsError(
                f"{where}: 'models' must be a non-empty list; write the file with "
                "scripts/bench_halving --write-costs FILE"
            )
        parsed = []
        for i, m in enumerate(models):
            if not isinstance(m, dict) or not isinstance(m.get("name"), str):
                raise CostsError(f"{where}: models[{i}] needs a 'name'")
            parsed.append(
                ModelCost(
                    m["name"],
                    float(number(m.get("embed_s"), f"models[{i}].embed_s")),
                    float(number(m.get("classify_s"), f"models[{i}].classify_s")),
                )
            )
        return cls(
            tuple(parsed),
            number(data.get("train_rows"), "train_rows", whole=True),
            number(data.get("test_rows"), "test_rows", whole=True),
            number(data.get("block_rows", 256), "block_rows", whole=True),
        )

    @classmethod
    def load(cls, path: Path) -> Costs:
        """Read a cost file.

        Raises:
            CostsError: unreadable, not JSON, or a bad field.
        """
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise CostsError(f"cannot read cost file {path}: {error}") from error
        return cls.from_json(data, str(path))

    def mean(self, pool: int) -> tuple[float, float]:
        """Mean embed-block and classify seconds of a pool that reuses the models in turn."""
        chosen = [self.models[i % len(self.models)] for i in range(pool)]
        return (
            sum(m.embed_s for m in chosen) / pool,
            sum(m.classify_s for m in chosen) / pool,
        )


def _blocks(rows: int, block_rows: int) -> int:
    return -(-rows // block_rows)


@dataclass(frozen=True)
class Projection:
    """One pool size: device seconds of both searches and their ratio (``ceiling``: racing's
    best case, :func:`ceiling`)."""

    models: int
    racing: bool
    rounds: int
    exhaustive_s: float
    halving_s: float
    ceiling: bool = False

    @property
    def ratio(self) -> float:
        """Exhaustive over halving device seconds."""
        return self.exhaustive_s / self.halving_s


def project(costs: Costs, models: int, racing: bool) -> Projection:
    """Project one pool size (see the module docstring)."""
    embed_s, classify_s = costs.mean(models)
    b = costs.block_rows
    per_model = (_blocks(costs.train_rows, b) + _blocks(costs.test_rows, b)) * embed_s + classify_s
    exhaustive = models * per_model
    schedule = plan_schedule(models, costs.train_rows, test_rows=costs.test_rows, racing=racing)
    halving = 0.0
    rounds = schedule.rounds
    for k, plan in enumerate(rounds):
        # Arms whose last round is k: those playing k minus those playing k + 1.
        leaving = plan.arms - (rounds[k + 1].arms if k + 1 < len(rounds) else 0)
        test = plan.test_rows if plan.test_rows is not None else costs.test_rows
        blocks = _blocks(plan.train_rows, b) + _blocks(test, b)
        halving += leaving * (blocks * embed_s + (k + 1) * classify_s)
    return Projection(models, racing, len(rounds), exhaustive, halving)


def ceiling(costs: Costs, models: int) -> Projection:
    """Racing's best case: every arm but the winner is confidently worse than the leader
    after round 0, and the lone winner goes straight to the last round (the whole training
    and test set). No rule that keeps the winner on its whole data can spend less with
    this schedule's round 0, so this ratio bounds racing's from above."""
    embed_s, classify_s = costs.mean(models)
    b = costs.block_rows
    whole = (_blocks(costs.train_rows, b) + _blocks(costs.test_rows, b)) * embed_s
    schedule = plan_schedule(models, costs.train_rows, test_rows=costs.test_rows, racing=True)
    first = schedule.rounds[0]
    test = first.test_rows if first.test_rows is not None else costs.test_rows
    round0 = (_blocks(first.train_rows, b) + _blocks(test, b)) * embed_s + classify_s
    rounds = len(schedule.rounds)
    winner = whole + (2 if rounds > 1 else 1) * classify_s
    halving = (models - 1) * round0 + winner if rounds > 1 else models * winner
    exhaustive = models * (whole + classify_s)
    return Projection(models, True, rounds, exhaustive, halving, ceiling=True)


def projections(costs: Costs, pools: Sequence[int] = POOLS) -> list[Projection]:
    """Plain halving, racing and racing's ceiling for every pool size."""
    return [
        p
        for m in pools
        for p in (project(costs, m, False), project(costs, m, True), ceiling(costs, m))
    ]


def markdown(rows: Sequence[Projection], measured: Mapping[str, Any] | None = None) -> str:
    """The projections as a Markdown table."""
    lines = [
        "| models | rule | rounds | exhaustive device s | halving device s | ratio |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for p in rows:
        rule = "racing ceiling" if p.ceiling else "racing" if p.racing else "plain"
        lines.append(
            f"| {p.models:,} | {rule} | {p.rounds} | {p.exhaustive_s:,.0f} | "
            f"{p.halving_s:,.0f} | {p.ratio:.2f}x |"
        )
    return "\n".join(lines)
