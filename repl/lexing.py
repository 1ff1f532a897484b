"""A forgiving tokenizer for text being typed: the completer and the Enter key use it.

The real parser (:mod:`shift.ql`) rejects incomplete text; the REPL has to understand
half-typed statements, so this tokenizer never fails: an unterminated string is a token
flagged ``open``, and anything it does not know is a one-character ``punct`` token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>(?:--|\#)[^\n]*)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<open>['"].*)
  | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[kKmMbB]?(?![A-Za-z0-9_]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<>|<=|>=|[=<>])
  | (?P<punct>.)
    """,
    re.X | re.S,
)


@dataclass(frozen=True)
class Token:
    """One token of typed text.

    Attributes:
        kind: ``string``, ``open`` (a string still being typed), ``number``, ``word``,
            ``op`` or ``punct``.
        text: The text as typed.
        start: Offset of the first character in the text.
    """

    kind: str
    text: str
    start: int

    @property
    def upper(self) -> str:
        """The text in upper case (keywords compare this way)."""
        return self.text.upper()

    @property
    def value(self) -> str:
        """A string token's content without quotes (doubled quotes undone)."""
        if self.kind not in ("string", "open"):
            return self.text
        quote = self.text[0]
        body = self.text[1:-1] if self.kind == "string" else self.text[1:]
        return body.replace(quote * 2, quote)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, dropping whitespace and comments; never raises."""
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "punct"
        if kind in ("space", "comment"):
            continue
        tokens.append(Token(kind, match.group(), match.start()))
    return tokens


def current_statement(tokens: list[Token]) -> list[Token]:
    """The tokens after the last top-level ``;`` (the statement being typed)."""
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i].kind == "punct" and tokens[i].text == ";":
            return tokens[i + 1 :]
    return tokens


def is_complete(text: str) -> bool:
    """Whether Enter should run ``text``: it ends with ``;`` (outside strings and comments),
    is a backslash command, or is blank."""
    stripped = text.strip()
    if not stripped or stripped.startswith("\\"):
        return True
    tokens = tokenize(text)
    if not tokens:
        return True
    last = tokens[-1]
    return last.kind == "punct" and last.text == ";"
