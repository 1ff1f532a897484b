"""Declared parameters of registry entries (reader kinds, model families) for the reference.

A registry entry declares each parameter it reads as a :class:`Parameter`: name, type,
default and meaning. ``shift sources`` and docs/sources.md are generated from these, and a
test checks that every parameter a reader or family reads is declared and vice versa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED = "(required)"
"""The default column of a parameter that must be given."""


@dataclass(frozen=True)
class Parameter:
    """One parameter of a reader kind or model family.

    Attributes:
        name: The key in the spec's ``params`` or ``loader``.
        type: What it takes, in words (``str``, ``int``, ``path``, ...).
        default: Its default, shown as written; :data:`REQUIRED` when it must be given.
        help: What it means, one sentence.
    """

    name: str
    type: str
    default: Any
    help: str

    @property
    def shown_default(self) -> str:
        """The default as the reference shows it."""
        if self.default is None:
            return "none"
        if isinstance(self.default, str) and self.default == REQUIRED:
            return REQUIRED
        return repr(self.default) if isinstance(self.default, str) else str(self.default)
