"""``shift up``'s device list: one worker per visible GPU, else CPU workers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from broker_helpers import ROOT

from broker.devices import needs_cuda_count, plan_devices, visible_cuda_count
from shift.errors import SettingsError

PLANS = [
    # (flags, visible CUDA devices, workers' devices)
    (None, 0, ["cpu"]),
    ([], 0, ["cpu"]),
    (None, 1, ["cuda:0"]),
    (None, 4, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]),
    (["auto"], 2, ["cuda:0", "cuda:1"]),
    (["auto"], 0, ["cpu"]),
    (["cpu"], 8, ["cpu"]),
    (["cpu", "auto"], 2, ["cpu", "cuda:0", "cuda:1"]),
    (["cuda"], 2, ["cuda:0"]),
    (["cuda:1"], 2, ["cuda:1"]),
    (["CUDA:1", " cuda:0 "], 2, ["cuda:1", "cuda:0"]),
    (["auto", "cuda:0", "cpu", "cpu"], 1, ["cuda:0", "cpu"]),
]


@pytest.mark.parametrize(("flags", "count", "expected"), PLANS)
def test_plan_devices(flags, count, expected):
    assert plan_devices(flags, count) == expected


BAD = [
    (["cuda:2"], 2, "only cuda:0 to cuda:1 are visible"),
    (["cuda:0"], 0, "no CUDA device is visible"),
    (["cuda"], 0, "no CUDA device is visible"),
    (["cuda:x"], 2, "the CUDA index must be a whole number"),
    (["cuda:-1"], 2, "the CUDA index must be a whole number"),
    (["tpu"], 2, "is not a device; use auto, cpu, cuda or cuda:N"),
    ([""], 2, "is not a device"),
]


@pytest.mark.parametrize(("flags", "count", "message"), BAD)
def test_bad_devices_say_what_to_use(flags, count, message):
    with pytest.raises(SettingsError, match=message):
        plan_devices(flags, count)


def test_cpu_only_flags_need_no_count():
    assert not needs_cuda_count(["cpu"])
    assert not needs_cuda_count(["cpu", " CPU"])
    assert needs_cuda_count(None)
    assert needs_cuda_count(["cpu", "cuda:0"])
    assert needs_cuda_count(["auto"])


def test_hidden_devices_count_zero_without_asking_torch():
    assert visible_cuda_count({"CUDA_VISIBLE_DEVICES": ""}) == 0
    assert visible_cuda_count({"CUDA_VISIBLE_DEVICES": "-1"}) == 0


def test_count_matches_torch_on_this_machine():
    """The count is torch's own (``CUDA_VISIBLE_DEVICES`` honoured), 0 without a GPU."""
    probe = "import torch; print(torch.cuda.device_count())"
    torch_says = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()[-1]
    assert visible_cuda_count() == int(torch_says)


def test_up_refuses_an_invisible_gpu(tmp_path):
    command = [
        sys.executable, "-m", "shift", "up", "--state-dir", str(tmp_path),
        "--device", "cuda:99", "--http-port", "0", "--zmq-port", "0",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 2
    assert "--device cuda:99" in done.stderr
    assert "use --device auto or --device cpu" in done.stderr
