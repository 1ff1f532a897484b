"""PNG plots of simulations (matplotlib, Agg backend, imported only when plotting)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.engine import SimResult
    from simulator.study import Study

COLOURS = {"load": "#d62728", "embed": "#1f77b4", "classify": "#2ca02c", "lost": "#7f7f7f"}
"""Segment kind -> bar colour."""


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def gantt(result: SimResult, path: str | Path, title: str = "") -> Path:
    """Write a Gantt chart of the devices (one row per device, a bar per segment)."""
    plt = _pyplot()
    devices = len(result.devices)
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.4 * min(devices, 64)))
    for kind, colour in COLOURS.items():
        spans: dict[int, list[tuple[float, float]]] = {}
        for s in result.segments:
            if s.kind == kind:
                spans.setdefault(s.device, []).append((s.start_s, s.end_s - s.start_s))
        for device, bars in spans.items():
            ax.broken_barh(bars, (device - 0.4, 0.8), facecolors=colour, label=kind)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="upper right", fontsize="small")
    ax.set_xlabel("simulated seconds")
    ax.set_ylabel("device")
    ax.set_yticks(range(devices) if devices <= 32 else [])
    ax.axvline(result.makespan_s, color="black", linewidth=0.8)
    ax.set_title(
        title or f"makespan {result.makespan_s:,.1f} s, utilisation {result.utilisation:.0%}"
    )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def sweep_plot(studies: Sequence[Study], path: str | Path) -> Path:
    """Makespan against devices, one line per search setting (log-log)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    lines: dict[str, list[tuple[int, float]]] = {}
    for s in studies:
        lines.setdefault(s.setting.label, []).append((s.devices, s.result.makespan_s))
    for label, points in lines.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("devices")
    ax.set_ylabel("makespan (simulated s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
