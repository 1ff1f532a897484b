"""PNG plots of simulations (matplotlib, Agg backend, imported only when plotting).

The Gantt chart's legend sits below the axes, so it never hides a bar; the sweep plot's
device axis is logarithmic (base 2) and labelled with plain counts (1, 2, 4, 8), not 2^k.
:func:`gantt_figure` and :func:`sweep_figure` build the figures (a test inspects them);
:func:`gantt` and :func:`sweep_plot` write them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return out


def gantt_figure(result: SimResult, title: str = "") -> Any:
    """A Gantt chart of the devices (one row per device, a bar per segment), legend below."""
    plt = _pyplot()
    devices = len(result.devices)
    fig, ax = plt.subplots(figsize=(10, 1.6 + 0.4 * min(devices, 64)))
    for kind, colour in COLOURS.items():
        spans: dict[int, list[tuple[float, float]]] = {}
        for s in result.segments:
            if s.kind == kind:
                spans.setdefault(s.device, []).append((s.start_s, s.end_s - s.start_s))
        for device, bars in spans.items():
            ax.broken_barh(bars, (device - 0.4, 0.8), facecolors=colour, label=kind)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.set_xlabel("simulated seconds")
    ax.set_ylabel("device")
    ax.set_yticks(range(devices) if devices <= 32 else [])
    ax.axvline(result.makespan_s, color="black", linewidth=0.8)
    ax.set_title(
        title or f"makespan {result.makespan_s:,.1f} s, utilisation {result.utilisation:.0%}"
    )
    fig.tight_layout()
    # below the x-axis label, outside the axes: bars run to the right edge at the makespan
    fig.legend(
        unique.values(),
        unique.keys(),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=max(len(unique), 1),
        fontsize="small",
        frameon=False,
    )
    return fig


def gantt(result: SimResult, path: str | Path, title: str = "") -> Path:
    """Write :func:`gantt_figure` as a PNG."""
    return _save(gantt_figure(result, title), path)


def sweep_figure(studies: Sequence[Study]) -> Any:
    """Makespan against devices, one line per search setting (log-log, counts on the x-axis)."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

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
    devices = sorted({s.devices for s in studies})
    ax.xaxis.set_major_locator(FixedLocator(devices))
    ax.xaxis.set_minor_locator(NullLocator())
    plain = ScalarFormatter()
    plain.set_scientific(False)
    ax.xaxis.set_major_formatter(plain)
    ax.set_xlabel("devices")
    ax.set_ylabel("makespan (simulated s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def sweep_plot(studies: Sequence[Study], path: str | Path) -> Path:
    """Write :func:`sweep_figure` as a PNG."""
    return _save(sweep_figure(studies), path)
