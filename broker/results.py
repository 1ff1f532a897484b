"""What a statement answers: result tables, a message, and the one error body of a query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shift.errors import SchedulerError, ShiftError


class NotSupported(SchedulerError):
    """A statement form this broker does not run."""

    code = "not_supported"

    def __init__(self, what: str) -> None:
        super().__init__(f"not supported yet by this broker: {what}")


@dataclass(frozen=True)
class Table:
    """One result table."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    def to_json(self) -> dict[str, Any]:
        """The REST form ``{title, columns, rows}``."""
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
        }

    @classmethod
    def of(cls, title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Table:
        """A table from row dicts (missing columns are null)."""
        return cls(title, tuple(columns), tuple(tuple(r.get(c) for c in columns) for r in rows))


@dataclass(frozen=True)
class Result:
    """What a statement answers: tables, a message, and the names a DECLARE binds."""

    tables: tuple[Table, ...] = ()
    message: str = ""
    names: tuple[str, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        """The REST form ``{tables, message}``."""
        return {"tables": [t.to_json() for t in self.tables], "message": self.message}


def error_body(error: BaseException) -> dict[str, Any]:
    """The one error shape's inner object for a failed query."""
    if isinstance(error, ShiftError):
        return {"status": 400, **error.to_dict()}
    return {
        "status": 500,
        "code": "internal_error",
        "message": "internal error; see the broker log",
    }
