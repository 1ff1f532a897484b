"""The SHiFT-QL tokens: keywords, the lexical patterns, and a tokenizer that never fails.

This is the one lexical definition of the language. The grammar builds its terminals from
the patterns here; the parser's diagnostics name the token found at an error with
:func:`token_at`; the REPL's Enter rule, completer and highlighter read text being typed
with :func:`tokenize` and :func:`scan`. Half-typed text is fine: an unterminated string is
one ``open`` token running to the end, a malformed number (``10MB``) one ``bad_number``
token, and any other character a one-character ``punct`` token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

#: Keywords (case-insensitive). Those in RESERVED below cannot be used as names.
KEYWORDS: tuple[str, ...] = (
    "ALL", "AND", "AS", "ASC", "AUTO", "BENCHMARK", "BETWEEN", "BUDGET", "BY", "CHANGE",
    "CHUNK", "CLASSIFIED", "DATASET", "DECLARE", "DESC", "DISTINCT", "DROP", "EXISTS", "EXPLAIN",
    "FALSE", "FEATURES", "FINETUNE", "FINETUNED", "FROM", "IF", "IN", "IS", "JSON", "LIKE",
    "LIMIT", "MODEL", "NOT", "NULL", "ON", "OR", "ORDER", "OTHER", "PRINT", "PURGE", "RANK",
    "REGISTER", "RESULTS", "SELECT", "TASK", "TESTED", "THAN", "TO", "TRAINED", "TRUE", "UNION",
    "USE", "VALUES", "WAIT", "WHERE", "WITH",
)  # fmt: skip

#: Keywords that only appear where no name can stand, so they stay usable as names.
SOFT_KEYWORDS: frozenset[str] = frozenset(
    {"ALL", "AUTO", "DATASET", "DROP", "EXISTS", "FEATURES", "FINETUNED", "IF", "JSON", "MODEL"}
    | {"RESULTS", "VALUES"}
)
#: Keywords that can never be names.
RESERVED: tuple[str, ...] = tuple(kw for kw in KEYWORDS if kw not in SOFT_KEYWORDS)
KEYWORD_SET: frozenset[str] = frozenset(KEYWORDS)

# Lexical patterns (regular-expression source), shared with the grammar's terminals.
SPACE = r"\s+"
COMMENT = r"--[^\n]*|\#[^\n]*"
#: A number without its unit suffix: sign, decimals, exponent.
NUMBER_BODY = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
#: The unit suffixes K (10**3), M (10**6) and B (10**9).
NUMBER_SUFFIX = r"[kKmMbB]"
NUMBER = rf"{NUMBER_BODY}{NUMBER_SUFFIX}?(?![A-Za-z0-9_.])"
#: What a malformed number looks like (``10MB``, ``1.2.3``): a digit and what sticks to it.
BAD_NUMBER = r"[+-]?\.?\d[A-Za-z0-9_.]*"
SINGLE_QUOTED = r"'(?:[^']|'')*+'"
DOUBLE_QUOTED = r'"(?:[^"]|"")*+"'
NAME = r"[A-Za-z_][A-Za-z0-9_]*"
CMP_OP = r"==|!=|<>|<=|>=|=|<|>"
#: A broker address written bare after USE: ``localhost:8001``, ``[::1]:8001``.
HOSTPORT = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):\d+(?![A-Za-z0-9_.])"


class Kind(StrEnum):
    """What a token is."""

    SPACE = "space"
    COMMENT = "comment"
    STRING = "string"
    OPEN = "open"
    HOSTPORT = "hostport"
    NUMBER = "number"
    BAD_NUMBER = "bad_number"
    WORD = "word"
    OP = "op"
    PUNCT = "punct"


_TOKEN = re.compile(
    rf"""
    (?P<space>{SPACE})
  | (?P<comment>{COMMENT})
  | (?P<string>{SINGLE_QUOTED}|{DOUBLE_QUOTED})
  | (?P<open>['"].*)
  | (?P<hostport>{HOSTPORT})
  | (?P<number>{NUMBER})
  | (?P<bad_number>{BAD_NUMBER})
  | (?P<word>{NAME})
  | (?P<op>{CMP_OP})
  | (?P<punct>.)
    """,
    re.X | re.S,
)
_TRIVIA = (Kind.SPACE, Kind.COMMENT)


@dataclass(frozen=True)
class Token:
    """One token of SHiFT-QL text.

    Attributes:
        kind: What the token is (a :class:`Kind`; compares equal to its string value).
        text: The text as written.
        start: Offset of the first character in the text.
    """

    kind: Kind
    text: str
    start: int

    @property
    def end(self) -> int:
        """Offset just after the last character."""
        return self.start + len(self.text)

    @property
    def upper(self) -> str:
        """The text in upper case (keywords compare this way)."""
        return self.text.upper()

    @property
    def is_keyword(self) -> bool:
        """Whether the token is a keyword (in any letter case)."""
        return self.kind is Kind.WORD and self.upper in KEYWORD_SET

    @property
    def value(self) -> str:
        """A string token's content without quotes (doubled quotes undone)."""
        if self.kind not in (Kind.STRING, Kind.OPEN):
            return self.text
        quote = self.text[0]
        body = self.text[1:-1] if self.kind is Kind.STRING else self.text[1:]
        return body.replace(quote * 2, quote)


def scan(text: str, pos: int = 0) -> Iterator[Token]:
    """Every token of ``text`` from ``pos`` on, whitespace and comments included."""
    for match in _TOKEN.finditer(text, pos):
        yield Token(Kind(match.lastgroup or "punct"), match.group(), match.start())


def tokenize(text: str, pos: int = 0) -> list[Token]:
    """The tokens of ``text`` from ``pos`` on, without whitespace and comments; never raises."""
    return [t for t in scan(text, pos) if t.kind not in _TRIVIA]


def token_at(text: str, pos: int) -> Token | None:
    """The token starting at ``pos`` (``None`` at the end of the text)."""
    match = _TOKEN.match(text, pos) if 0 <= pos < len(text) else None
    if match is None:
        return None
    return Token(Kind(match.lastgroup or "punct"), match.group(), pos)


def skip_trivia(text: str, pos: int, semicolons: bool = False) -> int:
    """The first offset at or after ``pos`` that is not whitespace, a comment or (when
    ``semicolons``) a ``;``."""
    for token in scan(text, pos):
        if token.kind in _TRIVIA or (semicolons and token.text == ";"):
            continue
        return token.start
    return len(text)


def is_semicolon(token: Token) -> bool:
    """Whether ``token`` is the ``;`` that ends a statement."""
    return token.kind is Kind.PUNCT and token.text == ";"


def statement_start(text: str) -> int:
    """Offset where the last statement of ``text`` starts (after its last top-level ``;``)."""
    start = 0
    for token in scan(text):
        if is_semicolon(token):
            start = token.end
    return start
