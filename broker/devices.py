"""Which local workers ``shift up`` starts: one per visible GPU, else CPU workers.

:func:`plan_devices` is the pure decision (the ``--device`` flags and the number of visible
CUDA devices in, the device list out); :func:`visible_cuda_count` is the shell that counts
the devices. It asks torch in a child process (the broker never imports torch), so the
count is ``torch.cuda.device_count()`` and honours ``CUDA_VISIBLE_DEVICES``; on a machine
without NVIDIA device nodes, or with ``CUDA_VISIBLE_DEVICES`` empty, it answers 0 at once.
"""

from __future__ import annotations

import glob
import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from shift.errors import SettingsError

AUTO = "auto"
"""The ``--device`` value meaning every visible GPU, else ``cpu``."""

PROBE_TIMEOUT_S = 120.0
"""Longest wait for the child process that counts the CUDA devices."""

log = logging.getLogger(__name__)


def plan_devices(requested: Sequence[str] | None, cuda_count: int) -> list[str]:
    """The device of each local worker group, in order, without repeats.

    Args:
        requested: The ``--device`` flags (``None`` or empty: ``auto``). Each is ``auto``
            (``cuda:0`` to ``cuda:N-1`` for ``N`` visible devices, else ``cpu``), ``cpu``,
            ``cuda`` (``cuda:0``) or ``cuda:I``.
        cuda_count: How many CUDA devices this process sees.

    Raises:
        SettingsError: a device is unknown, or names a CUDA device that is not visible.
    """
    out: list[str] = []
    for value in requested or [AUTO]:
        device = value.strip().lower()
        if device == AUTO:
            chosen = [f"cuda:{i}" for i in range(cuda_count)] or ["cpu"]
        elif device == "cpu":
            chosen = ["cpu"]
        elif device == "cuda" or device.startswith("cuda:"):
            chosen = [_cuda(device, cuda_count)]
        else:
            raise SettingsError(
                f"--device {value!r} is not a device; use auto, cpu, cuda or cuda:N"
            )
        out += [d for d in chosen if d not in out]
    return out


def _cuda(device: str, cuda_count: int) -> str:
    index_text = device.partition(":")[2] or "0"
    if not index_text.isdigit():
        raise SettingsError(f"--device {device!r}: the CUDA index must be a whole number")
    index = int(index_text)
    if index >= cuda_count:
        seen = f"only cuda:0 to cuda:{cuda_count - 1} are visible"
        if cuda_count == 0:
            seen = "no CUDA device is visible"
        raise SettingsError(
            f"--device {device}: {seen} (CUDA_VISIBLE_DEVICES and the installed torch decide); "
            "use --device auto or --device cpu"
        )
    return f"cuda:{index}"


def needs_cuda_count(requested: Sequence[str] | None) -> bool:
    """Whether the flags need the CUDA device count (``auto`` or a CUDA device)."""
    return any(d.strip().lower() != "cpu" for d in requested or [AUTO])


def visible_cuda_count(env: Mapping[str, str] | None = None) -> int:
    """How many CUDA devices a worker started with ``env`` would see (0 when unsure)."""
    env = os.environ if env is None else env
    if env.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    if not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/dxg"):
        return 0
    probe = "import torch; print(torch.cuda.device_count())"
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env=dict(env),
            check=False,
        )
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            log.warning("could not count the CUDA devices (%s); starting CPU workers", why)
            return 0
        return int(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as error:
        log.warning("could not count the CUDA devices (%s); starting CPU workers", error)
        return 0
