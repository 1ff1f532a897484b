"""Reading text being typed: the Enter key's rule, on the SHiFT-QL tokenizer.

The tokens are :mod:`shift.ql.tokens`' (re-exported here): the same tokenizer the parser's
diagnostics, the completer and the highlighter use, and it never fails on half-typed text.
"""

from __future__ import annotations

from shift.ql.tokens import Token, is_semicolon, tokenize

__all__ = ["Token", "is_complete", "tokenize"]


def is_complete(text: str) -> bool:
    """Whether Enter should run ``text``: it ends with ``;`` (outside strings and comments),
    is a backslash command, or is blank."""
    stripped = text.strip()
    if not stripped or stripped.startswith("\\"):
        return True
    tokens = tokenize(text)
    return not tokens or is_semicolon(tokens[-1])
