"""Locating problems in query text: line/column, caret snippets, token descriptions.

What counts as one token (to name it in a message and size its caret) is the tokenizer's
decision (:mod:`shift.ql.tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass

from shift.errors import Diagnostic
from shift.ql.tokens import token_at

#: A snippet shows at most this many characters of a long line, around the column.
SNIPPET_WIDTH = 120


@dataclass(frozen=True)
class Problem:
    """A problem found in a tree, located by a source span when it has one."""

    message: str
    span: tuple[int, int] | None = None
    hint: str = ""


def line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of offset ``pos`` in ``text``."""
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, column


def snippet(text: str, start: int, end: int | None = None) -> str:
    """The source line holding ``start`` with carets under ``start:end`` (same line only)."""
    start = max(0, min(start, len(text)))
    line_no, column = line_col(text, start)
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line_end = len(text) if line_end == -1 else line_end
    width = 1 if end is None else max(1, min(end, line_end) - start)
    lead, tail = "", ""
    if line_end - line_start > SNIPPET_WIDTH:
        # a long line (a minified or hostile query): show a window around the column
        first = max(line_start, start - SNIPPET_WIDTH // 3)
        last = min(line_end, first + SNIPPET_WIDTH)
        lead = "..." if first > line_start else ""
        tail = "..." if last < line_end else ""
        column = start - first + 1 + len(lead)
        width = max(1, min(width, last - start))
        line_start, line_end = first, last
    line = lead + text[line_start:line_end].expandtabs(1) + tail
    gutter = f"{line_no:>4} | "
    return f"{gutter}{line}\n{' ' * (len(gutter) - 2)}| {' ' * (column - 1)}{'^' * width}"


def found_token(text: str, pos: int) -> str:
    """Describe what stands at ``pos``: ``'LIMT'``, ``end of input``..."""
    token = token_text(text, pos)
    if not token:
        return "end of input"
    if len(token) > 24:
        token = token[:21] + "..."
    return repr(token)


def token_text(text: str, pos: int) -> str:
    """The raw token at ``pos`` (empty at end of input)."""
    token = token_at(text, pos)
    return token.text if token is not None else ""


def diagnose(text: str, problem: Problem, source: str = "<query>") -> Diagnostic:
    """Turn a :class:`Problem` into a located :class:`Diagnostic` (line 0 if unlocated)."""
    if problem.span is None:
        return Diagnostic(problem.message, 0, 0, "", problem.hint, source)
    start, end = problem.span
    line, column = line_col(text, start)
    return Diagnostic(
        problem.message, line, column, snippet(text, start, end), problem.hint, source
    )
