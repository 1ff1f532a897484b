"""Syntax highlighting of SHiFT-QL: a Pygments lexer and the REPL's colours.

The keyword list comes from the grammar (:data:`shift.ql.grammar.KEYWORDS`), so a new
keyword is highlighted without touching this module.
"""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text

from shift.ql.grammar import KEYWORDS
from shift.ql.vocabulary import TABLES


class ShiftQLLexer(RegexLexer):
    """Pygments lexer for SHiFT-QL (case-insensitive keywords, both quote styles)."""

    name = "SHiFT-QL"
    aliases: ClassVar[list[str]] = ["shiftql"]
    filenames: ClassVar[list[str]] = ["*.shiftql"]
    tokens: ClassVar[dict[str, list]] = {  # type: ignore[misc]
        "root": [
            (r"\s+", Text),
            (r"(--|#)[^\n]*", Comment.Single),
            (r"'(?:[^']|'')*'?", String.Single),
            (r'"(?:[^"]|"")*"?', String.Double),
            (r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[kKmMbB]?\b", Number),
            (words(KEYWORDS, prefix=r"(?i)\b", suffix=r"\b"), Keyword),
            (words(tuple(TABLES), prefix=r"(?i)\b", suffix=r"\b"), Name.Builtin),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"==|!=|<>|<=|>=|[=<>*]", Operator),
            (r"[()\[\],;]", Punctuation),
            (r".", Text),
        ]
    }


STYLE = {
    "pygments.keyword": "bold ansiblue",
    "pygments.string": "ansigreen",
    "pygments.number": "ansimagenta",
    "pygments.comment": "italic ansibrightblack",
    "pygments.name.builtin": "ansicyan",
    "pygments.operator": "ansiyellow",
    "bottom-toolbar": "noreverse bg:ansibrightblack ansiwhite",
}
"""prompt_toolkit style rules for the highlighted tokens and the toolbar."""
