"""Limits on query text, checked before parsing so that no input exhausts memory or stack.

The parser is a recursive PEG: every level of nested parentheses costs about ten Python
frames, and the packrat cache grows with the text. Both are bounded here, with located
errors that say which limit was crossed, instead of a ``RecursionError`` or
``MemoryError`` surfacing from deep inside the parser. Number literals are bounded
where they are read (:data:`MAX_NUMBER_CHARS`, from :mod:`shift.ql.numbers`).
"""

from __future__ import annotations

from shift.errors import Diagnostic, QueryError
from shift.ql.diagnostics import Problem, diagnose, line_col
from shift.ql.numbers import MAX_NUMBER_CHARS
from shift.ql.tokens import Kind, scan

#: Longest query text accepted, in characters (a script of many statements included).
MAX_QUERY_CHARS = 1_000_000
#: Deepest nesting of parentheses and brackets accepted.
MAX_DEPTH = 64

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "MAX_QUERY_CHARS", "check_limits", "too_deep"]

_OPENING = frozenset("([")
_CLOSING = frozenset(")]")


def check_limits(text: str, source: str = "<query>") -> None:
    """Refuse text longer than :data:`MAX_QUERY_CHARS` or nested deeper than :data:`MAX_DEPTH`.

    Raises:
        QueryError: located where the limit is crossed, naming the limit.
    """
    if len(text) > MAX_QUERY_CHARS:
        line, column = line_col(text, MAX_QUERY_CHARS)
        raise QueryError(
            Diagnostic(
                f"the query text is {len(text):,} characters long; "
                f"the limit is {MAX_QUERY_CHARS:,}",
                line,
                column,
                hint="split it into smaller statements, or register long value lists as a dataset",
                source=source,
            )
        )
    depth = 0
    for token in scan(text):
        if token.kind is not Kind.PUNCT:
            continue
        if token.text in _OPENING:
            depth += 1
            if depth > MAX_DEPTH:
                raise QueryError(
                    diagnose(
                        text,
                        Problem(
                            f"parentheses and brackets nest more than {MAX_DEPTH} levels "
                            f"deep here; the limit is {MAX_DEPTH}",
                            (token.start, token.end),
                            "AND and OR chain without parentheses; "
                            "remove the ones that group nothing",
                        ),
                        source,
                    )
                )
        elif token.text in _CLOSING:
            depth = max(0, depth - 1)


def too_deep(text: str, pos: int) -> Problem:
    """The problem to report when a statement at ``pos`` exhausted the parser's stack."""
    return Problem(
        "this statement nests too deeply to parse",
        (pos, pos + 1),
        f"keep parentheses and brackets under {MAX_DEPTH} levels deep",
    )
