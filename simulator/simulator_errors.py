"""The simulator's errors: one subclass of :class:`shift.errors.ShiftError` per input.

Each names the file, the line or column, and what to fix, so the command line can print
``str(error)`` as is.
"""

from __future__ import annotations

from shift.errors import ShiftError


class SimulatorError(ShiftError):
    """Root of the simulator's errors."""

    code = "simulator_error"


class RecordsError(SimulatorError):
    """A fine-tuning records file is missing, unreadable, lacks a column or has a bad row."""

    code = "records_error"


class RankingError(SimulatorError):
    """A ranking JSON file is unreadable or not one of the accepted shapes."""

    code = "ranking_error"


class StrategyError(SimulatorError):
    """A strategy name is unknown, or a strategy returned models the task never ran."""

    code = "strategy_error"
