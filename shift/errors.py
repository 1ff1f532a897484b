"""The error hierarchy: one root, one subclass per layer.

Every error that crosses a boundary (CLI exit, HTTP body, protocol frame) is a
:class:`ShiftError`, so callers can catch one type and show ``str(error)`` to a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ShiftError(Exception):
    """Root of every error shift raises on purpose."""

    code = "shift_error"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able body used by the REST error shape."""
        return {"code": self.code, "message": str(self)}


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a query text, located for a person to fix.

    Attributes:
        message: What is wrong, e.g. ``Expected ')' but found 'LIMIT'``.
        line: 1-based line of the problem.
        column: 1-based column of the problem.
        snippet: The offending source line with a caret line under it.
        hint: An optional suggestion (``did you mean 'ORDER'?``).
        source: Name of the text (a file name or ``<query>``).
    """

    message: str
    line: int
    column: int
    snippet: str = ""
    hint: str = ""
    source: str = "<query>"

    def render(self) -> str:
        """Format the diagnostic as ``source:line:col: message`` plus snippet and hint."""
        text = f"{self.source}:{self.line}:{self.column}: {self.message}"
        if self.snippet:
            text += "\n" + self.snippet
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form of the diagnostic."""
        return {
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "snippet": self.snippet,
            "hint": self.hint,
            "source": self.source,
        }


class QueryError(ShiftError):
    """A SHiFT-QL text or query tree is invalid.

    Carries one or more :class:`Diagnostic` s; ``str()`` renders all of them.
    """

    code = "query_error"

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic] | tuple[Diagnostic, ...]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = (diagnostics,)
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__("\n".join(d.render() for d in self.diagnostics))

    @property
    def first(self) -> Diagnostic:
        """The first (leftmost) diagnostic."""
        return self.diagnostics[0]

    def to_dict(self) -> dict[str, Any]:
        """Return the REST error body with every diagnostic."""
        body = super().to_dict()
        body["diagnostics"] = [d.to_dict() for d in self.diagnostics]
        return body


class ProtocolError(ShiftError):
    """A frame or message between broker and worker could not be decoded or is invalid."""

    code = "protocol_error"


class CatalogError(ShiftError):
    """A model or dataset is unknown, invalid or cannot be registered."""

    code = "catalog_error"


class SchedulerError(ShiftError):
    """The planner or a successive-halving machine was given an impossible configuration."""

    code = "scheduler_error"


class WorkerError(ShiftError):
    """A worker could not run a task (bad spec, model load failure, out of memory, ...)."""

    code = "worker_error"


class SettingsError(ShiftError):
    """A setting has an unknown name or a value of the wrong type."""

    code = "settings_error"
