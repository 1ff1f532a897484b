"""Name registries: task kinds, reader kinds and model families are all looked up by name.

:func:`register_once` adds an entry and refuses a name given twice; :func:`lookup` finds
one or raises the caller's error type listing the known names and the closest;
:func:`summary` is the first line of a function's docstring (what ``--help`` and the docs
show for an entry).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

from shift.errors import ShiftError

T = TypeVar("T")


def summary(function: Callable[..., Any]) -> str:
    """The first line of ``function``'s docstring, or an empty string."""
    lines = (function.__doc__ or "").strip().splitlines()
    return lines[0] if lines else ""


def register_once(
    table: MutableMapping[str, T], name: str, entry: T, what: str, error: type[ShiftError]
) -> None:
    """Add ``entry`` under ``name``.

    Raises:
        error: ``name`` is already registered (``"<what> 'name' is registered twice"``).
    """
    if name in table:
        raise error(f"{what} {name!r} is registered twice")
    table[name] = entry


def lookup(table: MutableMapping[str, T], name: str, what: str, error: type[ShiftError]) -> T:
    """The entry called ``name``.

    Raises:
        error: unknown name; the message lists the known ones and the closest.
    """
    entry = table.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise error(f"unknown {what} {name!r}; known: {', '.join(sorted(table))}{hint}")
    return entry
