"""Context-aware completion of SHiFT-QL as a pure function.

:func:`complete` takes the text before the cursor and a :class:`Names` snapshot (what the
broker knows: models, datasets, the session's variables) and returns what may come next:
the keywords valid there, tables after ``FROM``, the table's columns in ``WHERE`` and
``ORDER BY``, dataset names after ``TRAINED ON``/``TESTED ON`` (inside quotes too),
classifiers after ``CLASSIFIED BY``, rankers after ``BY``, variables where a variable may
stand. No I/O: the prompt_toolkit adapter lives in :mod:`repl.app`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from repl.lexing import Token, current_statement, tokenize
from shift.proxies import CLASSIFIERS, FINETUNE_PARAMS, RANKERS, MethodSpec
from shift.ql.vocabulary import (
    DATASET_COLUMNS,
    MODEL_COLUMNS,
    REGISTER_COLUMNS,
    RESULT_COLUMNS,
    TABLES,
    canonical_table,
    columns_for,
)


@dataclass(frozen=True)
class Names:
    """The names the broker knows, as of the last refresh.

    Attributes:
        models: Registered model names.
        datasets: Registered dataset names.
        variables: Variables ``DECLARE``d in the session.
    """

    models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    variables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suggestion:
    """One completion: the text that replaces the prefix, and what kind of thing it is."""

    text: str
    kind: str


@dataclass(frozen=True)
class Completions:
    """What :func:`complete` returns.

    Attributes:
        prefix: The text before the cursor that a suggestion replaces (a partial word, or
            the part of a string typed after its opening quote).
        items: Suggestions, best first.
    """

    prefix: str
    items: tuple[Suggestion, ...]

    @property
    def texts(self) -> list[str]:
        """The suggestion texts, in order."""
        return [s.text for s in self.items]


Groups = list[tuple[str, list[str]]]
"""Suggestions before filtering: (kind, choices) pairs in the order they are shown."""

Handler = Callable[[Sequence[Token], list[Token], Names], Groups]
"""Suggests what may follow a clause: (all tokens, tokens after the clause word, names)."""

STATEMENT_STARTS = (
    "SELECT", "RANK", "EXPLAIN", "DECLARE", "PRINT", "USE", "REGISTER", "FINETUNE", "PURGE",
)  # fmt: skip

# Words that open a clause (``BY`` alone is RANK's ranker clause).
_CLAUSE_WORDS = frozenset(
    {
        "SELECT", "RANK", "FROM", "WHERE", "ORDER", "TRAINED", "TESTED", "CLASSIFIED", "BY",
        "LIMIT", "OTHER", "CHUNK", "BUDGET", "WAIT", "DECLARE", "AS", "PRINT", "USE",
        "REGISTER", "VALUES", "FINETUNE", "WITH", "PURGE", "EXPLAIN", "UNION",
    }
)  # fmt: skip

# The clause phrases that may follow a query's source, by the word that marks them used.
_QUERY_CLAUSES: tuple[tuple[str, str], ...] = (
    ("WHERE", "WHERE"),
    ("ORDER", "ORDER BY"),
    ("TRAINED", "TRAINED ON"),
    ("TESTED", "TESTED ON"),
    ("CLASSIFIED", "CLASSIFIED BY"),
    ("BY", "BY"),
    ("LIMIT", "LIMIT"),
    ("OTHER", "OTHER THAN"),
    ("CHUNK", "CHUNK"),
    ("BUDGET", "BUDGET"),
    ("WAIT", "WAIT"),
    ("UNION", "UNION"),
)
_ALL_COLUMNS = tuple(dict.fromkeys((*MODEL_COLUMNS, *DATASET_COLUMNS, *RESULT_COLUMNS)))
_AGGREGATES = ("avg", "sum", "min", "max")


def complete(text: str, names: Names) -> Completions:
    """Suggest what may follow ``text`` (the text before the cursor).

    Args:
        text: Everything before the cursor (earlier statements included; only the one
            being typed matters).
        names: The broker's names at the last refresh.

    Returns:
        The prefix to replace and the suggestions matching it, best first.
    """
    tokens = current_statement(tokenize(text))
    last = tokens[-1] if tokens else None
    if last is not None and last.kind == "open":
        quote = last.text[0]
        kind, choices = _in_string(tokens[:-1], names)
        items = [Suggestion(c + quote, kind) for c in _matching(choices, last.value)]
        return Completions(last.value, tuple(items))
    prefix = ""
    if last is not None and last.kind == "word" and last.start + len(last.text) == len(text):
        prefix = last.text
        tokens = tokens[:-1]
    groups = _after(tokens, names)
    items = []
    seen = set()
    for kind, choices in groups:
        for choice in _matching(choices, prefix.strip("\"'"), keyword=kind == "keyword"):
            shown = _case_like(choice, prefix) if kind == "keyword" else choice
            if shown not in seen:
                seen.add(shown)
                items.append(Suggestion(shown, kind))
    return Completions(prefix, tuple(items))


# ---- matching --------------------------------------------------------------------------------


def _matching(choices: Iterable[str], prefix: str, keyword: bool = False) -> list[str]:
    """Choices starting with ``prefix`` (ignoring case and quotes), then ones containing it."""
    choices = list(dict.fromkeys(choices))
    want = prefix.lower()
    bare = [c.strip('"').lower() for c in choices]
    first = [c for c, b in zip(choices, bare, strict=True) if b.startswith(want)]
    if keyword or not want:
        return first
    inner = [c for c, b in zip(choices, bare, strict=True) if want in b and c not in first]
    return first + inner


def _case_like(keyword: str, prefix: str) -> str:
    return keyword.lower() if prefix and prefix.islower() else keyword


def _quoted(names: Iterable[str]) -> list[str]:
    return [f'"{name}"' for name in names]


def _classifiers() -> list[str]:
    return [_call(spec) if spec.params else f'"{spec.display}"' for spec in CLASSIFIERS.values()]


def _rankers() -> list[str]:
    return [f'"{_call(spec)}"' if spec.params else f'"{spec.name}"' for spec in RANKERS.values()]


def _call(spec: MethodSpec) -> str:
    # single quotes: valid in a bare call and inside a double-quoted method string
    args = ", ".join(
        f"{p.name}='{p.default}'" if isinstance(p.default, str) else f"{p.name}={p.default}"
        for p in spec.params
    )
    return f"{spec.display if spec.display != spec.name else spec.name}({args})"


# ---- inside a string -------------------------------------------------------------------------


def _in_string(tokens: Sequence[Token], names: Names) -> tuple[str, list[str]]:
    """What a string opened after ``tokens`` names: (kind, bare choices)."""
    i = len(tokens) - 1
    while i >= 0 and (tokens[i].text in ("[", ",", "(") or tokens[i].kind == "string"):
        i -= 1
    words = [t.upper for t in tokens[max(0, i - 1) : i + 1]]
    head = words[-1] if words else ""
    if head in ("TASK", "BENCHMARK", "WITH", "CHANGE", "TO") or words[-2:] in (
        ["TRAINED", "ON"],
        ["TESTED", "ON"],
    ):
        return "dataset", list(names.datasets)
    if head == "BY" and words[:1] == ["CLASSIFIED"]:
        return "classifier", [s.display for s in CLASSIFIERS.values()]
    if head == "BY" and words[:1] != ["ORDER"]:
        return "ranker", [_call(s) if s.params else s.name for s in RANKERS.values()]
    if head in ("FROM", "THAN", "FINETUNE", "IN") or (head == "=" and _probe(tokens, i)):
        return "model", list(names.models)
    return "name", []


def _probe(tokens: Sequence[Token], i: int) -> bool:
    return i >= 1 and tokens[i - 1].text.lower() == "probe"


# ---- after complete tokens -------------------------------------------------------------------


def _after(tokens: Sequence[Token], names: Names) -> Groups:
    """Groups of (kind, choices) that may follow ``tokens``."""
    if not tokens:
        return [("keyword", list(STATEMENT_STARTS))]
    at, clause = _clause(tokens)
    if clause is None:
        return []
    after = list(tokens[at + 1 :])
    handler = _HANDLERS.get(clause)
    return handler(tokens, after, names) if handler else []


def _clause(tokens: Sequence[Token]) -> tuple[int, str | None]:
    """Index and word of the clause the end of ``tokens`` is in (parenthesized lists skipped
    only where a clause word cannot appear inside them)."""
    for i in range(len(tokens) - 1, -1, -1):
        token = tokens[i]
        if token.kind != "word" or token.upper not in _CLAUSE_WORDS:
            continue
        word = token.upper
        if word == "BY" and i > 0 and tokens[i - 1].upper in ("ORDER", "CLASSIFIED"):
            return i - 1, tokens[i - 1].upper
        return i, word
    return -1, None


def _words(tokens: Sequence[Token]) -> list[str]:
    return [t.upper for t in tokens]


def _term(tokens: Sequence[Token]) -> list[Token]:
    """The tokens of the query term being typed (from its SELECT or RANK on)."""
    for i in range(len(tokens) - 1, -1, -1):
        if tokens[i].upper in ("SELECT", "RANK") and tokens[i].kind == "word":
            return list(tokens[i:])
    return list(tokens)


def _next_clauses(tokens: Sequence[Token]) -> Groups:
    """Clause keywords not used yet in the query term being typed."""
    term = _term(tokens)
    words = [t.upper for t in term if t.kind == "word"]
    is_rank = bool(words) and words[0] == "RANK"
    used = set(words)
    if "BY" in used and not is_rank:
        used.discard("BY")
    after_source = set(words) & {w for w, _ in _QUERY_CLAUSES if w != "WHERE"}
    phrases = []
    for word, phrase in _QUERY_CLAUSES:
        if word in used:
            continue
        if word == "WHERE" and after_source:
            continue
        if (word == "BY" and not is_rank) or (word == "CLASSIFIED" and is_rank):
            continue
        phrases.append(phrase)
    return [("keyword", phrases)]


def _table(tokens: Sequence[Token]) -> str | None:
    term = _term(tokens)
    for i, token in enumerate(term[:-1]):
        if token.upper == "FROM" and term[i + 1].kind == "word":
            return canonical_table(term[i + 1].text)
    return None


def _ends_list_item(after: Sequence[Token]) -> bool:
    return not after or after[-1].text in ("[", ",", "(")


def _depth(after: Sequence[Token], open_: str, close: str) -> int:
    return sum(1 for t in after if t.text == open_) - sum(1 for t in after if t.text == close)


# Handlers: (all tokens, tokens after the clause word, names) -> groups.


def _explain(_t: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    if not after:
        return [("keyword", ["JSON", "SELECT", "RANK", "FINETUNE"])]
    if _words(after) == ["JSON"]:
        return [("keyword", ["SELECT", "RANK", "FINETUNE"])]
    return []


def _declare(_t: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    return [("keyword", ["AS"])] if len(after) == 1 else []


def _as(_t: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    return [("keyword", ["SELECT", "RANK"])] if not after else []


def _print(_t: Sequence[Token], after: list[Token], names: Names) -> Groups:
    return [("variable", [*names.variables, "*"])] if not after else []


def _register(_t: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    if not after:
        return [("keyword", ["DATASET", "MODEL"])]
    kind = "dataset" if after[0].upper == "DATASET" else "model"
    depth = _depth(after, "(", ")")
    if depth > 0 and after[-1].text in ("(", ","):
        return [("column", list(REGISTER_COLUMNS[kind]))]
    if depth == 0 and after[-1].text == ")":
        return [("keyword", ["VALUES"])]
    return []


def _purge(_t: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    return [("keyword", ["RESULTS", "FEATURES", "ALL"])] if not after else []


def _finetune(_t: Sequence[Token], after: list[Token], names: Names) -> Groups:
    if _ends_list_item(after):
        return [("variable", list(names.variables)), ("model", _quoted(names.models))]
    if _depth(after, "[", "]") == 0:
        return [("keyword", ["WITH"])]
    return []


def _with(_t: Sequence[Token], after: list[Token], names: Names) -> Groups:
    if not after:
        return [("dataset", _quoted(names.datasets))]
    if _depth(after, "(", ")") > 0:
        return [("param", list(FINETUNE_PARAMS))] if after[-1].text in ("(", ",") else []
    return [("keyword", ["WAIT"])]


def _select(_t: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    if not after or after[-1].text == ",":
        return [("column", ["*", *_ALL_COLUMNS] if not after else list(_ALL_COLUMNS))]
    return [("keyword", ["FROM"])]


def _from(tokens: Sequence[Token], after: list[Token], names: Names) -> Groups:
    if not after:
        return [("table", list(TABLES)), ("variable", list(names.variables))]
    if _depth(after, "[", "]") > 0:
        return [("model", _quoted(names.models))] if after[-1].text in ("[", ",") else []
    return _next_clauses(tokens)


def _where(tokens: Sequence[Token], after: list[Token], names: Names) -> Groups:
    columns = list(columns_for(_table(tokens)))
    words = _words(after)
    last = words[-1] if words else ""
    if words[-2:] == ["IS", "NOT"]:
        return [("keyword", ["NULL"])]
    if not after or (last in ("AND", "OR", "NOT", "(") and not _between_and(words)):
        if last == "NOT" and len(words) >= 2 and _is_column(after[-2]):
            return [("keyword", ["BETWEEN", "IN", "LIKE"])]
        return [("column", columns), ("keyword", ["NOT", "FINETUNED"])]
    if last == "IN":
        return [("variable", list(names.variables))]
    if len(words) >= 2 and words[-2] == "IN" and after[-1].kind == "word":
        return [("keyword", ["AND", "OR"]), *_next_clauses(tokens)]
    if last == "IS":
        return [("keyword", ["NOT", "NULL"])]
    if after[-1].kind == "word" and _is_column(after[-1]):
        return [("keyword", ["BETWEEN", "IN", "LIKE", "IS", "NOT"])]
    if after[-1].kind == "op" or last in ("BETWEEN", "LIKE") or _between_and(words):
        return []
    if _depth(after, "(", ")") > 0 and after[-1].text in ("(", ","):
        return []
    return [("keyword", ["AND", "OR"]), *_next_clauses(tokens)]


def _is_column(token: Token) -> bool:
    return token.kind == "word" and token.upper not in _CLAUSE_WORDS | {
        "AND", "OR", "NOT", "NULL", "TRUE", "FALSE", "FINETUNED", "IN", "IS", "LIKE", "BETWEEN",
    }  # fmt: skip


def _between_and(words: list[str]) -> bool:
    """``x BETWEEN 1 AND`` (the AND of a range, not a conjunction)."""
    return len(words) >= 3 and words[-1] == "AND" and words[-3] == "BETWEEN"


def _order(tokens: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    if not after:
        return [("keyword", ["BY"])]
    after = after[1:] if after[0].upper == "BY" else after
    if not after or after[-1].text == ",":
        columns = list(columns_for(_table(tokens)))
        return [("column", ["err", "acc", *columns]), ("function", list(_AGGREGATES))]
    if after[-1].text == "(":
        return [("column", ["err", "acc"])]
    if after[-1].upper in ("ASC", "DESC"):
        return _next_clauses(tokens)
    if after[-1].kind == "word" or after[-1].text == ")":
        return [("keyword", ["ASC", "DESC"]), *_next_clauses(tokens)]
    return []


def _datasets_clause(first: tuple[str, ...]) -> Handler:
    def handler(tokens: Sequence[Token], after: list[Token], names: Names) -> Groups:
        if not after:
            return [("keyword", ["ON"])]
        after = after[1:] if after[0].upper == "ON" else after
        if not after:
            return [("keyword", list(first)), ("dataset", _quoted(names.datasets))]
        if after[-1].upper in ("TASK", "BENCHMARK") or after[-1].text in ("[", ","):
            return [("dataset", _quoted(names.datasets))]
        if after[-1].text == "(":
            return [("dataset", _quoted(names.datasets))]
        if _depth(after, "[", "]") > 0 or _depth(after, "(", ")") > 0:
            return []
        return _next_clauses(tokens)

    return handler


def _classified(tokens: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    if not after:
        return [("keyword", ["BY"])]
    after = after[1:] if after[0].upper == "BY" else after
    if not after or after[-1].text in ("[", ","):
        if after and _depth(after, "(", ")") > 0:
            return [("param", [p.name for p in CLASSIFIERS["linear"].params])]
        return [("classifier", _classifiers())]
    if after[-1].text == "(":
        return [("param", [p.name for p in CLASSIFIERS["linear"].params])]
    if _depth(after, "[", "]") > 0 or _depth(after, "(", ")") > 0:
        return []
    return _next_clauses(tokens)


def _by(tokens: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    if not after:
        return [("ranker", _rankers())]
    return _next_clauses(tokens)


def _value_clause(values: tuple[str, ...]) -> Handler:
    def handler(tokens: Sequence[Token], after: list[Token], _n: Names) -> Groups:
        if not after:
            return [("keyword", list(values))] if values else []
        return _next_clauses(tokens)

    return handler


def _other(tokens: Sequence[Token], after: list[Token], names: Names) -> Groups:
    if not after:
        return [("keyword", ["THAN"])]
    after = after[1:] if after[0].upper == "THAN" else after
    if not after:
        return [("variable", list(names.variables))]
    if _depth(after, "[", "]") > 0:
        return [("model", _quoted(names.models))] if after[-1].text in ("[", ",") else []
    return _next_clauses(tokens)


def _wait(tokens: Sequence[Token], _a: list[Token], _n: Names) -> Groups:
    return _next_clauses(tokens)


def _union(_t: Sequence[Token], after: list[Token], _n: Names) -> Groups:
    if not after:
        return [("keyword", ["ALL", "SELECT", "RANK"])]
    if _words(after) == ["ALL"]:
        return [("keyword", ["SELECT", "RANK"])]
    return []


def _nothing(_t: Sequence[Token], _a: list[Token], _n: Names) -> Groups:
    return []


_HANDLERS: dict[str, Handler] = {
    "EXPLAIN": _explain,
    "DECLARE": _declare,
    "AS": _as,
    "PRINT": _print,
    "USE": _nothing,
    "REGISTER": _register,
    "VALUES": _nothing,
    "PURGE": _purge,
    "FINETUNE": _finetune,
    "WITH": _with,
    "SELECT": _select,
    "RANK": _select,
    "FROM": _from,
    "WHERE": _where,
    "ORDER": _order,
    "TRAINED": _datasets_clause(()),
    "TESTED": _datasets_clause(("TASK", "BENCHMARK")),
    "CLASSIFIED": _classified,
    "BY": _by,
    "LIMIT": _value_clause(()),
    "CHUNK": _value_clause(("AUTO",)),
    "BUDGET": _value_clause(("AUTO",)),
    "OTHER": _other,
    "WAIT": _wait,
    "UNION": _union,
}
