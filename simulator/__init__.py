"""Cost model and replay of search strategies on recorded fine-tuning results.

:mod:`simulator.records` loads and cleans the SHiFT paper's fine-tuning records,
:mod:`simulator.strategies` registers the search strategies, :mod:`simulator.replay`
evaluates them task by task and :mod:`simulator.report` prints the result; the command is
``shift simulate replay`` (:mod:`simulator.simulate_command`).

The public names below are re-exported lazily (the function ``replay`` is not: the name
belongs to the module :mod:`simulator.replay`), so that ``shift --help`` (which imports
:mod:`simulator.simulate_command`) does not pay for importing pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.ranking import RankedList, Ranking, load_ranking, parse_ranking
    from simulator.records import (
        DEFAULT_RECORDS,
        Modality,
        Outcome,
        Records,
        Task,
        load_records,
    )
    from simulator.replay import (
        Replay,
        Result,
        Stats,
        Summary,
        TaskReplay,
        Trial,
        summarize,
    )
    from simulator.simulator_errors import RankingError, RecordsError, SimulatorError, StrategyError
    from simulator.strategies import (
        STRATEGIES,
        Context,
        Selection,
        Strategy,
        get_strategy,
        strategy,
    )

_EXPORTS = {
    "simulator.simulator_errors": (
        "RankingError",
        "RecordsError",
        "SimulatorError",
        "StrategyError",
    ),
    "simulator.ranking": ("RankedList", "Ranking", "load_ranking", "parse_ranking"),
    "simulator.records": (
        "DEFAULT_RECORDS",
        "Modality",
        "Outcome",
        "Records",
        "Task",
        "load_records",
    ),
    "simulator.replay": (
        "Replay",
        "Result",
        "Stats",
        "Summary",
        "TaskReplay",
        "Trial",
        "summarize",
    ),
    "simulator.strategies": (
        "STRATEGIES",
        "Context",
        "Selection",
        "Strategy",
        "get_strategy",
        "strategy",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "DEFAULT_RECORDS",
    "STRATEGIES",
    "Context",
    "Modality",
    "Outcome",
    "RankedList",
    "Ranking",
    "RankingError",
    "Records",
    "RecordsError",
    "Replay",
    "Result",
    "Selection",
    "SimulatorError",
    "Stats",
    "Strategy",
    "StrategyError",
    "Summary",
    "Task",
    "TaskReplay",
    "Trial",
    "get_strategy",
    "load_ranking",
    "load_records",
    "parse_ranking",
    "strategy",
    "summarize",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use."""
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'simulator' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
