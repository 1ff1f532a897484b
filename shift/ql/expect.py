"""What the grammar expects: the tokens a failed parse wanted, and what may follow a prefix.

parsimonious reports a failure by assigning ``expr`` then ``pos`` on an error object each
time a named expression fails at or beyond the furthest position seen so far.
:class:`Failures` stands in for that object and keeps every token expected at the furthest
position; the parser turns them into "Expected one of ..." messages. :func:`continuations`
asks the same grammar what may follow a statement prefix, and for each token also says
which rules were in progress (so a completer can tell a column from a dataset name).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from parsimonious.expressions import Expression, Sequence
from parsimonious.grammar import Grammar

from shift.ql.grammar import GRAMMAR_TEXT, TOKEN_WORDS
from shift.ql.tokens import KEYWORD_SET

#: Appended to a prefix so that optional and repeated rules are tried at its end too
#: (parsimonious tries no repetition at the end of the text); no token starts with it.
_SENTINEL = "\x00"


@dataclass(frozen=True)
class Frame:
    """A rule in progress: its name and the offset where it started."""

    rule: str
    start: int


class Failures:
    """Stand-in for parsimonious' ParseError recording every token expected furthest.

    Attributes:
        text: The text being parsed.
        pos: The furthest offset any named expression failed at (-1 before any).
        expected: Token rule names expected at ``pos``, in the order they were tried.
        paths: With tracing, each expected token with the rules in progress around it.
        stack: With tracing, the rules in progress now (outermost first).
        matched: With tracing, every named rule that matched: (name, start, end).
    """

    text: str
    pos: int
    expr: Any
    expected: dict[str, None]
    paths: list[tuple[str, tuple[Frame, ...]]]
    stack: list[Frame]
    matched: list[tuple[str, int, int]]

    def __init__(self, text: str):
        self.__dict__.update(
            text=text, pos=-1, expr=None, expected={}, paths=[], stack=[], matched=[]
        )

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "pos":
            if value > self.pos:
                self.expected.clear()
                self.paths.clear()
            name = getattr(self.expr, "name", "")
            if name in TOKEN_WORDS:
                self.expected[name] = None
                self.paths.append((name, tuple(self.stack)))
        self.__dict__[key] = value


@dataclass(frozen=True)
class Expected:
    """A token that may come next, and where in the grammar it would stand.

    Attributes:
        token: The token rule: a keyword (``ORDER``), ``name``, ``string``, ``number``,
            ``STAR``, ``LPAREN``...
        path: The rules in progress around it, outermost first.
        phrase: For a keyword that opens a rule, the keywords that must follow it
            (``ORDER BY``); for any other token, the token alone.
    """

    token: str
    path: tuple[Frame, ...]
    phrase: tuple[str, ...]

    @property
    def is_keyword(self) -> bool:
        """Whether the token is a keyword."""
        return self.token in KEYWORD_SET

    def frame(self, rule: str) -> Frame | None:
        """The innermost frame of ``rule`` around the token, or ``None``."""
        for frame in reversed(self.path):
            if frame.rule == rule:
                return frame
        return None

    def inner(self, rules: Iterable[str]) -> Frame | None:
        """The innermost frame whose rule is one of ``rules``, or ``None``."""
        wanted = set(rules)
        for frame in reversed(self.path):
            if frame.rule in wanted:
                return frame
        return None

    def below(self, rule: str) -> str:
        """The rule directly inside the innermost ``rule`` frame (the token if none)."""
        for i in range(len(self.path) - 1, -1, -1):
            if self.path[i].rule == rule:
                return self.path[i + 1].rule if i + 1 < len(self.path) else self.token
        return ""


@dataclass(frozen=True)
class Continuations:
    """What may follow a statement prefix.

    Attributes:
        text: The prefix.
        expected: The tokens that may come next, in the grammar's order; empty when the
            prefix already has a syntax error before its end.
        matched: Every named rule the prefix matched: (name, start, end).
    """

    text: str
    expected: tuple[Expected, ...]
    matched: tuple[tuple[str, int, int], ...]

    def matched_since(self, start: int, rules: Iterable[str]) -> list[tuple[str, int, int]]:
        """Matches of ``rules`` that start at or after ``start``."""
        wanted = set(rules)
        return [m for m in self.matched if m[0] in wanted and m[1] >= start]


def continuations(text: str) -> Continuations:
    """Ask the grammar what may follow ``text``, the start of one statement.

    Args:
        text: A statement prefix (no earlier statements; a partial word already removed).

    Returns:
        Every token the grammar would accept at the end of ``text``, with the rules in
        progress around it. Nothing is expected after a syntax error or when the text
        nests too deeply to parse.
    """
    grammar = _traced_grammar()
    failures = Failures(text + _SENTINEL)
    try:
        packrat: Any = defaultdict(dict)
        grammar["statement_text"].match_core(failures.text, 0, packrat, cast(Any, failures))
    except RecursionError:
        return Continuations(text, (), ())
    if failures.pos != len(text):
        return Continuations(text, (), tuple(failures.matched))
    expected = tuple(
        Expected(token, path, _phrase(grammar, token, path)) for token, path in failures.paths
    )
    return Continuations(text, expected, tuple(failures.matched))


def alternatives(rule: str) -> tuple[str, ...]:
    """The named alternatives of a grammar rule (``clause``: ``order_by``, ``limit``...)."""
    members = getattr(_traced_grammar()[rule], "members", ())
    return tuple(m.name for m in members if m.name)


def _phrase(grammar: Grammar, token: str, path: tuple[Frame, ...]) -> tuple[str, ...]:
    """``ORDER BY`` for ORDER opening ``order_by``: the keywords a rule starts with."""
    if token not in KEYWORD_SET or not path:
        return (token,)
    rule = grammar.get(path[-1].rule)
    if not isinstance(rule, Sequence) or getattr(rule.members[0], "name", "") != token:
        return (token,)
    words = []
    for member in rule.members:
        name = getattr(member, "name", "")
        if name not in KEYWORD_SET:
            break
        words.append(name)
    return tuple(words)


@cache
def _traced_grammar() -> Grammar:
    """A second copy of the grammar whose named rules keep a rule stack on the error object.

    The parser's own grammar stays untraced, so parsing pays nothing for completion.
    """
    grammar = Grammar(GRAMMAR_TEXT)
    for expr in grammar.values():
        if expr.name and expr.name != "_":
            _trace(expr)
    return grammar


def _trace(expr: Expression) -> None:
    target = cast(Any, expr)
    inner: Callable[..., Any] = target._uncached_match
    name = expr.name

    def traced(text: str, pos: int, cache_: Any, error: Failures) -> Any:
        error.stack.append(Frame(name, pos))
        try:
            node = inner(text, pos, cache_, error)
        finally:
            error.stack.pop()
        if node is not None:
            error.matched.append((name, pos, node.end))
        return node

    # parsimonious calls ``self._uncached_match`` on a cache miss; an instance attribute
    # wraps it for this grammar copy only.
    target._uncached_match = traced
