"""The simulator's plots: the Gantt legend hides no bar; the sweep labels devices 1, 2, 4, 8."""

from __future__ import annotations

from pathlib import Path

from simulator.costs import ModelCost, Overheads, Workload
from simulator.engine import Cluster
from simulator.study import Setting, study, sweep

FREE = Overheads(broker_task_s=0.0)
W = Workload(tuple(ModelCost(f"m{i}", 1.0, 0.001, 0.1, 1e-7, 600.0) for i in range(8)), 2048, 256)


def test_gantt_legend_is_outside_the_bars(tmp_path: Path) -> None:
    from simulator.plots import gantt, gantt_figure

    result = study(W, Setting(), Cluster(4), FREE).result
    fig = gantt_figure(result)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    legend = fig.legends[0] if fig.legends else ax.get_legend()
    box = legend.get_window_extent(renderer)
    axes = ax.get_window_extent(renderer)
    assert box.y1 <= axes.y0, (box, axes)  # wholly below the plotting area
    assert {t.get_text() for t in legend.get_texts()} >= {"load", "embed", "classify"}
    assert gantt(result, tmp_path / "g.png").stat().st_size > 1000


def test_sweep_labels_devices_as_counts(tmp_path: Path) -> None:
    from simulator.plots import sweep_figure, sweep_plot

    rows = sweep(W, [Setting(), Setting("auto", "auto")], [1, 2, 4, 8], Cluster(1), FREE)
    fig = sweep_figure(rows)
    fig.canvas.draw()
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["1", "2", "4", "8"]
    assert sweep_plot(rows, tmp_path / "s.png").stat().st_size > 1000
