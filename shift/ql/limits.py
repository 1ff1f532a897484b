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
from shift.ql.tokens import Kind, Token, scan

#: Longest query text accepted, in characters (a script of many statements included). The
#: parser reads about 120,000 characters a second, so this bounds one parse to ~2 s; real
#: statements, long model lists included, are a few kilobytes.
MAX_QUERY_CHARS = 256 * 1024
#: Deepest nesting of parentheses and brackets accepted.
MAX_DEPTH = 64

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "MAX_QUERY_CHARS", "check_limits", "too_deep"]

_OPENING = frozenset("([")
_CLOSING = frozenset(")]")
_TRIVIA = (Kind.SPACE, Kind.COMMENT)


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
    crossed = _deepest(text)
    if crossed is not None:
        raise QueryError(
            diagnose(
                text,
                Problem(
                    f"the query nests more than {MAX_DEPTH} levels deep here "
                    f"(parentheses, brackets and NOTs); the limit is {MAX_DEPTH}",
                    (crossed.start, crossed.end),
                    "AND and OR chain without parentheses; remove the ones that group nothing",
                ),
                source,
            )
        )


def _deepest(text: str) -> Token | None:
    """The token at which nesting first exceeds :data:`MAX_DEPTH`, or ``None``.

    Each open parenthesis or bracket is a level, and so is each NOT of a run (``NOT NOT
    x`` nests like ``NOT (NOT x)``); a run of NOTs ends at the next other token, and the
    NOTs before a parenthesis stay counted until it closes.
    """
    opened: list[int] = []  # NOTs in the run before each open parenthesis or bracket
    held = 0  # sum of opened
    run = 0  # NOTs in the current run
    for token in scan(text):
        if token.kind in _TRIVIA:
            continue
        if token.kind is Kind.WORD and token.upper == "NOT":
            run += 1
        elif token.kind is Kind.PUNCT and token.text in _OPENING:
            opened.append(run)
            held += run + 1
            run = 0
        elif token.kind is Kind.PUNCT and token.text in _CLOSING:
            held -= opened.pop() + 1 if opened else 0
            run = 0
            continue
        else:
            run = 0
            continue
        if held + run > MAX_DEPTH:
            return token
    return None


def too_deep(text: str, pos: int) -> Problem:
    """The problem to report when a statement at ``pos`` exhausted the parser's stack."""
    return Problem(
        "this statement nests too deeply to parse",
        (pos, pos + 1),
        f"keep parentheses and brackets under {MAX_DEPTH} levels deep",
    )
