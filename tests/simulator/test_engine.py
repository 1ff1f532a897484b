"""Pure tests of the discrete-event simulation: event loop, failures, LRU, halving, sweep."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from shift.halving import plan_schedule
from simulator.costs import BLOCK_ROWS, ModelCost, Overheads, Workload, uniform_models
from simulator.engine import Cluster, EngineError, Failure, simulate
from simulator.scale import bottleneck_devices, markdown, scale
from simulator.searches import Exhaustive, Halving, SearchError, make_search
from simulator.study import Setting, render, study, sweep

FREE = Overheads(broker_task_s=0.0)


def _workload(models: int = 2, load_s: float = 0.0, train: int = 256, test: int = 256) -> Workload:
    return Workload(uniform_models(models, load_s, 0.01, 1.0, 0.0), train, test)


def test_block_rows_match_the_workers() -> None:
    from workers.features import BLOCK_ROWS as WORKER_BLOCK_ROWS

    assert BLOCK_ROWS == WORKER_BLOCK_ROWS


def test_one_device_runs_everything_back_to_back() -> None:
    # 2 models x (1 train + 1 test block of 256 rows at 0.01 s/row) + 2 classifies of 1 s.
    w = _workload()
    result = simulate(w, Exhaustive(w), Cluster(1), FREE)
    assert result.makespan_s == pytest.approx(4 * 2.56 + 2 * 1.0)
    assert result.tasks == 6 and result.rows == 4 * 256 + 2 * 512
    assert result.utilisation == pytest.approx(1.0)


def test_two_devices_halve_it_and_overheads_add_up() -> None:
    w = _workload()
    two = simulate(w, Exhaustive(w), Cluster(2), FREE)
    assert two.makespan_s == pytest.approx(2 * 2.56 + 1.0)
    shell = Overheads(start_s=1.0, phase_s=0.5, end_s=0.25, task_s=0.1, broker_task_s=0.0)
    slow = simulate(w, Exhaustive(w), Cluster(2), shell)
    assert slow.makespan_s == pytest.approx(two.makespan_s + 1.0 + 0.5 + 0.25 + 3 * 0.1)


def test_lru_reloads_an_evicted_model() -> None:
    # One device holding one model: a, b, a again -> three loads; holding two -> two loads.
    w = Workload(uniform_models(3, 5.0, 0.01, 1.0), 256, 256)
    tight = simulate(w, Exhaustive(w), Cluster(1, lru_models=1), FREE)
    roomy = simulate(w, Exhaustive(w), Cluster(1, lru_models=3), FREE)
    assert roomy.loads == 3
    assert tight.loads == 5
    assert tight.makespan_s - roomy.makespan_s == pytest.approx(2 * 5.0)


def test_broker_prefers_the_worker_holding_the_model() -> None:
    w = Workload(uniform_models(2, 5.0, 0.01, 1.0), 256, 256)
    names = w.names
    held = ((names[0],), (names[1],))
    result = simulate(w, Exhaustive(w), Cluster(2, held=held), FREE)
    assert result.loads == 0


def test_a_dead_device_requeues_its_tasks_and_the_search_finishes() -> None:
    w = _workload(models=4)
    clean = simulate(w, Exhaustive(w), Cluster(2), FREE)
    hurt = simulate(w, Exhaustive(w), Cluster(2, detect_s=3.0), FREE, (Failure(0, 1.0),))
    assert hurt.requeued == 2  # prefetch 2: the running task and the one waiting
    assert hurt.tasks == clean.tasks
    assert hurt.makespan_s > clean.makespan_s
    assert any(s.kind == "lost" for s in hurt.segments)
    back = simulate(w, Exhaustive(w), Cluster(2), FREE, (Failure(0, 1.0, 5.0),))
    assert hurt.makespan_s > back.makespan_s > clean.makespan_s


def test_no_live_device_is_an_error() -> None:
    w = _workload()
    with pytest.raises(EngineError, match="no live device"):
        simulate(w, Exhaustive(w), Cluster(1), FREE, (Failure(0, 1.0),))
    with pytest.raises(EngineError, match="device must be"):
        simulate(w, Exhaustive(w), Cluster(1), FREE, (Failure(3, 1.0),))


def test_halving_drives_the_real_machine_and_does_less_work() -> None:
    w = Workload(uniform_models(8, 1.0, 0.001, 0.1, 1e-7), 4096, 512)
    search = Halving(w, 64, "auto")
    result = simulate(w, search, Cluster(2), FREE)
    assert search.done and len(search.machine.ranking()) == 8
    exhaustive = simulate(w, Exhaustive(w), Cluster(2), FREE)
    assert result.rows < exhaustive.rows
    schedule = plan_schedule(8, 4096, 64, "auto")
    classify = [s for s in result.segments if s.kind == "classify"]
    assert len(classify) == sum(r.arms for r in schedule.rounds)


def test_unknown_search_names_the_valid_ones() -> None:
    with pytest.raises(SearchError, match="did you mean 'halving'"):
        make_search("halvin", _workload())


def test_study_sweep_and_table() -> None:
    w = Workload(tuple(ModelCost(f"m{i}", 1.0, 0.001, 0.1, 1e-7, 600.0) for i in range(8)),
                 2048, 256)  # fmt: skip
    one = study(w, Setting(), Cluster(2), FREE)
    assert one.speedup_exhaustive == 1.0
    assert one.finetune_s == 8 * 600.0 / 2
    rows = sweep(w, [Setting(), Setting("auto", "auto")], [1, 2, 4], Cluster(1), FREE)
    assert [(s.setting.search, s.devices) for s in rows] == [
        ("exhaustive", 1), ("exhaustive", 2), ("exhaustive", 4),
        ("halving", 1), ("halving", 2), ("halving", 4),
    ]  # fmt: skip
    by = {(s.setting.search, s.devices): s.result.makespan_s for s in rows}
    assert by["exhaustive", 1] > by["exhaustive", 2] > by["exhaustive", 4]
    table = render(rows)
    assert table.splitlines()[0].startswith("search") and len(table.splitlines()) == 8


def test_plots_are_written(tmp_path: Path) -> None:
    from simulator.plots import gantt, sweep_plot

    w = _workload(models=3)
    result = study(w, Setting(), Cluster(2), FREE)
    assert gantt(result.result, tmp_path / "g.png").stat().st_size > 1000
    rows = sweep(w, [Setting()], [1, 2], Cluster(1), FREE)
    assert sweep_plot(rows, tmp_path / "s.png").stat().st_size > 1000


def test_scale_table_and_bottleneck() -> None:
    def make(n: int) -> Workload:
        return Workload(uniform_models(n, 1.0, 0.001, 0.01), 512, 256)

    cells = scale(make, [10, 100], [1, 8], Overheads(), clock=lambda: 0.0)
    assert [(c.models, c.devices) for c in cells] == [(10, 1), (10, 8), (100, 1), (100, 8)]
    assert cells[3].result.makespan_s < cells[2].result.makespan_s
    assert markdown(cells).count("\n") == 5
    # mean task: (3 blocks x 0.256 s + 0.01 s + 1 s load) / 4 tasks
    assert bottleneck_devices(make(1), 14_000) == pytest.approx(14_000 * (0.768 + 1.01) / 4)


def test_a_saturated_broker_stretches_the_makespan() -> None:
    w = Workload(uniform_models(50, 0.0, 0.0001, 0.0), 256, 256)
    fast = simulate(w, Exhaustive(w), Cluster(16), Overheads(broker_task_s=0.0))
    slow = simulate(w, Exhaustive(w), Cluster(16), Overheads(broker_task_s=0.01))
    assert slow.broker_utilisation > 0.9
    assert slow.makespan_s > 3 * fast.makespan_s


def test_run_command_prints_a_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from simulator import simulate_command as command

    parser = argparse.ArgumentParser()
    command.configure(parser)
    args = parser.parse_args(
        ["run", "--models", "4", "--finetune-s", "60", "--chunk", "auto", "--budget", "auto",
         "--fail", "0@5:20", "--gantt", str(tmp_path / "g.png")]
    )  # fmt: skip
    assert command.run(args) == 0
    out = capsys.readouterr().out
    assert "chunk auto budget auto" in out and (tmp_path / "g.png").exists()
    bad = parser.parse_args(["run", "--models", "4", "--finetune-s", "60", "--fail", "9@1"])
    assert command.run(bad) == 1
