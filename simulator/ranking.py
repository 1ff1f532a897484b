"""Rankings of model ids read from JSON, for the ``ranking`` strategy.

Accepted shapes (a ranking is best first):

- a list of model ids, used for every task: ``["google/vit-base-patch16-224", ...]``;
- a list of rows with a ``model``, ``name`` or ``model_identifier`` key (shift's JSON rows);
- ``{"models": [...], "search_time_s": 12.5}``: the list plus the search time it cost;
- ``{"tables": [{"columns": [...], "rows": [...]}]}``: ``shift query --format json`` output
  of a RANK or task-aware SELECT; the first table with a ``model`` or ``name`` column;
- ``{"tasks": {"cifar100": <any shape above>, ...}}``: one ranking per task (tasks without
  one are left out of the ranking columns), optionally with a top-level ``"default"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from simulator.simulator_errors import RankingError

ID_KEYS = ("model", "name", "model_identifier")
"""Keys naming the model id in a ranking row, tried in this order."""


@dataclass(frozen=True)
class RankedList:
    """Model ids best first, and the search time spent producing them.

    Attributes:
        models: Model ids, best first, without repeats.
        search_time_s: Seconds the search took (0 when the file does not say).
    """

    models: tuple[str, ...]
    search_time_s: float = 0.0


@dataclass(frozen=True)
class Ranking:
    """A ranking for every task, or one per task.

    Attributes:
        source: The file it was read from.
        default: The list for tasks without their own, if any.
        per_task: Task name -> its list.
    """

    source: str
    default: RankedList | None = None
    per_task: Mapping[str, RankedList] = field(default_factory=lambda: MappingProxyType({}))

    def for_task(self, task: str) -> RankedList | None:
        """The list for ``task`` (its own, else the default), or ``None``."""
        return self.per_task.get(task, self.default)

    @property
    def model_ids(self) -> frozenset[str]:
        """Every model id the ranking names."""
        lists = [*self.per_task.values(), *([self.default] if self.default else [])]
        return frozenset(m for ranked in lists for m in ranked.models)


def load_ranking(path: str | Path) -> Ranking:
    """Read a ranking JSON file (see the module docstring for the shapes).

    Raises:
        RankingError: The file cannot be read, is not JSON, or has another shape.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise RankingError(f"{path}: no such ranking file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise RankingError(f"{path}: cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise RankingError(f"{path}: not JSON: {error}") from error
    return parse_ranking(data, str(path))


def parse_ranking(data: Any, source: str = "<ranking>") -> Ranking:
    """Build a :class:`Ranking` from decoded JSON (see the module docstring for the shapes)."""
    if isinstance(data, dict) and "tasks" in data:
        tasks = data["tasks"]
        if not isinstance(tasks, dict) or not tasks:
            raise RankingError(f"{source}: 'tasks' must be a non-empty object task -> ranking")
        per_task = {str(k): _ranked(v, f"{source}: task {k!r}") for k, v in tasks.items()}
        default = _ranked(data["default"], source) if "default" in data else None
        return Ranking(source, default, MappingProxyType(per_task))
    return Ranking(source, _ranked(data, source))


def _ranked(data: Any, where: str) -> RankedList:
    search_time_s = 0.0
    if isinstance(data, dict) and "tables" in data:
        data = _table_rows(data["tables"], where)
    elif isinstance(data, dict) and "models" in data:
        search_time_s = _seconds(data.get("search_time_s", 0.0), where)
        data = data["models"]
    if not isinstance(data, list):
        raise RankingError(
            f"{where}: expected a list of model ids, {{'models': [...]}}, "
            f"{{'tables': [...]}} or {{'tasks': {{...}}}}, got {type(data).__name__}"
        )
    models = [_model_id(item, i, where) for i, item in enumerate(data)]
    if not models:
        raise RankingError(f"{where}: the ranking is empty")
    return RankedList(tuple(dict.fromkeys(models)), search_time_s)


def _table_rows(tables: Any, where: str) -> list[str]:
    for table in tables if isinstance(tables, list) else []:
        columns = table.get("columns", []) if isinstance(table, dict) else []
        for key in ID_KEYS:
            if key in columns:
                position = columns.index(key)
                return [row[position] for row in table.get("rows", [])]
    raise RankingError(f"{where}: no table with a column named {' or '.join(ID_KEYS)}")


def _model_id(item: Any, index: int, where: str) -> str:
    if isinstance(item, dict):
        item = next((item[k] for k in ID_KEYS if k in item), None)
    if not isinstance(item, str) or not item.strip():
        raise RankingError(
            f"{where}: entry {index} is not a model id (a string, or a row with "
            f"{', '.join(ID_KEYS)})"
        )
    return item.strip()


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise RankingError(f"{where}: 'search_time_s' must be a number >= 0, got {value!r}")
    return float(value)


def unknown_ids(ranking: Ranking, known: Sequence[str] | frozenset[str]) -> tuple[str, ...]:
    """Model ids the ranking names that have no run at all in the records, sorted."""
    return tuple(sorted(ranking.model_ids - frozenset(known)))
