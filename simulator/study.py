"""One simulated configuration with its baselines, a sweep over settings, and the figures.

:func:`study` runs a search and, for comparison, exhaustive evaluation on the same cluster
and the makespan of fine-tuning every model (longest first onto the devices). :func:`sweep`
runs the product of chunk/budget settings and device counts. :func:`render` prints a table.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.costs import Overheads, Workload
from simulator.engine import Cluster, Failure, SimResult, simulate
from simulator.searches import LossModel, make_search


@dataclass(frozen=True)
class Setting:
    """A search setting: exhaustive (``chunk`` and ``budget`` both ``None``) or halving."""

    chunk: int | str | None = None
    budget: int | str | None = None

    @property
    def search(self) -> str:
        """The registered search name."""
        return "exhaustive" if self.chunk is None and self.budget is None else "halving"

    @property
    def label(self) -> str:
        """``exhaustive`` or ``chunk C budget B``."""
        if self.search == "exhaustive":
            return "exhaustive"
        return f"chunk {self.chunk or 'auto'} budget {self.budget or 'auto'}"


@dataclass(frozen=True)
class Study:
    """A simulated search and its baselines.

    Attributes:
        setting: What was searched.
        devices: Devices used.
        result: The simulated search.
        exhaustive_s: Makespan of exhaustive evaluation on the same cluster.
        finetune_s: Makespan of fine-tuning every model on the same devices.
    """

    setting: Setting
    devices: int
    result: SimResult
    exhaustive_s: float
    finetune_s: float

    @property
    def speedup_exhaustive(self) -> float:
        """Exhaustive makespan over this search's."""
        return self.exhaustive_s / self.result.makespan_s

    @property
    def speedup_finetune(self) -> float:
        """Fine-tune-everything makespan over this search's."""
        return self.finetune_s / self.result.makespan_s

    def row(self) -> dict[str, object]:
        """The figures as one JSON-able row."""
        r = self.result
        return {
            "search": self.setting.label,
            "devices": self.devices,
            "makespan_s": round(r.makespan_s, 3),
            "utilisation": round(r.utilisation, 4),
            "tasks": r.tasks,
            "rows": r.rows,
            "loads": r.loads,
            "requeued": r.requeued,
            "exhaustive_s": round(self.exhaustive_s, 3),
            "speedup_vs_exhaustive": round(self.speedup_exhaustive, 3),
            "finetune_s": round(self.finetune_s, 1),
            "speedup_vs_finetune": round(self.speedup_finetune, 2),
            "dispatch_per_s": round(r.dispatch_rate, 2),
            "messages_per_s": round(r.message_rate, 2),
            "broker_utilisation": round(r.broker_utilisation, 5),
        }


def finetune_makespan(workload: Workload, devices: int) -> float:
    """Fine-tuning every model once, longest first onto the least loaded device."""
    loads = [0.0] * devices
    for cost in sorted((m.finetune_s for m in workload.models), reverse=True):
        heapq.heapreplace(loads, loads[0] + cost)
    return max(loads)


def run_setting(
    workload: Workload,
    setting: Setting,
    cluster: Cluster,
    overheads: Overheads,
    failures: tuple[Failure, ...] = (),
    seed: int = 0,
    keep_segments: bool = True,
) -> SimResult:
    """Simulate one setting."""
    if setting.search == "exhaustive":
        search = make_search("exhaustive", workload)
    else:
        search = make_search(
            "halving",
            workload,
            chunk=setting.chunk or "auto",
            budget=setting.budget or "auto",
            losses=LossModel(seed),
        )
    return simulate(workload, search, cluster, overheads, failures, keep_segments)


def study(
    workload: Workload,
    setting: Setting,
    cluster: Cluster,
    overheads: Overheads,
    failures: tuple[Failure, ...] = (),
    seed: int = 0,
    keep_segments: bool = True,
) -> Study:
    """Simulate a setting and its baselines (exhaustive without failures, fine-tuning)."""
    result = run_setting(workload, setting, cluster, overheads, failures, seed, keep_segments)
    if setting.search == "exhaustive" and not failures:
        exhaustive = result.makespan_s
    else:
        exhaustive = run_setting(
            workload, Setting(), cluster, overheads, keep_segments=False
        ).makespan_s
    return Study(
        setting, cluster.devices, result, exhaustive, finetune_makespan(workload, cluster.devices)
    )


def sweep(
    workload: Workload,
    settings: Sequence[Setting],
    devices: Sequence[int],
    cluster: Cluster,
    overheads: Overheads,
    seed: int = 0,
) -> list[Study]:
    """Every setting on every device count (the cluster's other settings kept)."""
    out = []
    for setting, count in itertools.product(settings, devices):
        sized = Cluster(
            count,
            cluster.prefetch,
            cluster.lru_models,
            cluster.detect_s,
            cluster.heartbeat_s,
            cluster.max_attempts,
        )
        out.append(study(workload, setting, sized, overheads, seed=seed, keep_segments=False))
    return out


COLUMNS = (
    ("search", "search", "{}"),
    ("devices", "devices", "{}"),
    ("makespan_s", "makespan s", "{:,.1f}"),
    ("utilisation", "util %", "{:.1%}"),
    ("tasks", "tasks", "{:,}"),
    ("rows", "rows", "{:,}"),
    ("loads", "loads", "{:,}"),
    ("requeued", "requeued", "{}"),
    ("speedup_vs_exhaustive", "x exhaustive", "{:.2f}"),
    ("speedup_vs_finetune", "x fine-tune", "{:,.1f}"),
    ("dispatch_per_s", "dispatch/s", "{:,.1f}"),
)


def render(studies: Sequence[Study], fmt: str = "table") -> str:
    """The studies as an aligned table, CSV-free JSON lines, or JSON."""
    rows = [s.row() for s in studies]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    head = [title for _, title, _ in COLUMNS]
    body = [
        [
            f.format(r[key]).replace("%", "") if key == "utilisation" else f.format(r[key])
            for key, _, f in COLUMNS
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    for b in body:
        lines.append(
            " | ".join(
                (c.ljust(w) if i == 0 else c.rjust(w))
                for i, (c, w) in enumerate(zip(b, widths, strict=True))
            )
        )
    return "\n".join(lines)
