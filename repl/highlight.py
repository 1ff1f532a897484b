"""Syntax highlighting of SHiFT-QL: a Pygments lexer and the REPL's colours.

The lexer is the SHiFT-QL tokenizer (:func:`shift.ql.tokens.scan`) with a colour per token
kind, so the highlighter sees exactly the tokens the parser does: a new keyword, or a
change to what a number or string is, needs nothing here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pygments.lexer import Lexer
from pygments.token import (
    Comment,
    Error,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    _TokenType,
)

from shift.ql.tokens import Kind, Token, scan
from shift.ql.vocabulary import canonical_table

_COLOURS: dict[Kind, _TokenType] = {
    Kind.SPACE: Text,
    Kind.COMMENT: Comment.Single,
    Kind.NUMBER: Number,
    Kind.BAD_NUMBER: Error,
    Kind.OP: Operator,
    Kind.HOSTPORT: String.Other,
}
_PUNCTUATION = frozenset("()[],;")


def colour(token: Token) -> _TokenType:
    """The Pygments token type a SHiFT-QL token is drawn as."""
    if token.kind in (Kind.STRING, Kind.OPEN):
        return String.Single if token.text[0] == "'" else String.Double
    if token.kind is Kind.WORD:
        if token.is_keyword:
            return Keyword
        return Name.Builtin if canonical_table(token.text) else Name
    if token.kind is Kind.PUNCT:
        if token.text == "*":
            return Operator
        return Punctuation if token.text in _PUNCTUATION else Text
    return _COLOURS[token.kind]


class ShiftQLLexer(Lexer):
    """Pygments lexer for SHiFT-QL (case-insensitive keywords, both quote styles)."""

    name = "SHiFT-QL"
    aliases: ClassVar[list[str]] = ["shiftql"]
    filenames: ClassVar[list[str]] = ["*.shiftql"]

    def get_tokens_unprocessed(self, text: str) -> Iterator[tuple[int, _TokenType, str]]:
        """(offset, token type, text) for every token of ``text``, whitespace included."""
        for token in scan(text):
            yield token.start, colour(token), token.text


STYLE = {
    "pygments.keyword": "bold ansiblue",
    "pygments.string": "ansigreen",
    "pygments.number": "ansimagenta",
    "pygments.comment": "italic ansibrightblack",
    "pygments.name.builtin": "ansicyan",
    "pygments.operator": "ansiyellow",
    "pygments.error": "ansired",
    "bottom-toolbar": "noreverse bg:ansibrightblack ansiwhite",
}
"""prompt_toolkit style rules for the highlighted tokens and the toolbar."""
