"""``shift simulate sweep``: makespan over chunk/budget settings and device counts."""

from __future__ import annotations

from simulator.run_command import SWEEP_HELP as HELP
from simulator.run_command import configure_sweep as configure
from simulator.run_command import run_sweep as run

__all__ = ["HELP", "configure", "run"]
