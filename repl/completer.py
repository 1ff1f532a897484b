"""Context-aware completion of SHiFT-QL as a pure function.

:func:`complete` takes the text before the cursor and a :class:`Names` snapshot (what the
broker knows: models, datasets, the session's variables) and returns what may come next.
It keeps no keyword lists of its own: the grammar says which tokens may follow the text
(:func:`shift.ql.expect.continuations`, the same expected-token set a syntax error lists)
and which rule each would stand in. Keywords come from that set as they are; a name or
string slot is filled by the rule around it: tables and variables in a source, the
table's columns in ``WHERE`` and ``ORDER BY``, datasets in ``TRAINED ON``/``TESTED ON``
(inside quotes too), classifiers, rankers, parameters, models. No I/O: the prompt_toolkit
adapter lives in :mod:`repl.prompt`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from shift.methods import CLASSIFIERS, FINETUNE_PARAMS, RANKERS, MethodSpec, find_method
from shift.ql import nodes as n
from shift.ql.expect import Continuations, Expected, Frame, alternatives, continuations
from shift.ql.tokens import Kind, statement_start, token_at, tokenize
from shift.ql.vocabulary import (
    DATASET_COLUMNS,
    METRICS,
    MODEL_COLUMNS,
    REGISTER_COLUMNS,
    RESULT_COLUMNS,
    STATE_COLUMNS,
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

_ALL_COLUMNS = tuple(
    dict.fromkeys((*MODEL_COLUMNS, *DATASET_COLUMNS, *STATE_COLUMNS, *RESULT_COLUMNS))
)


def complete(text: str, names: Names) -> Completions:
    """Suggest what may follow ``text`` (the text before the cursor).

    Args:
        text: Everything before the cursor (earlier statements included; only the one
            being typed matters).
        names: The broker's names at the last refresh.

    Returns:
        The prefix to replace and the suggestions matching it, best first.
    """
    statement = text[statement_start(text) :]
    tokens = tokenize(statement)
    last = tokens[-1] if tokens else None
    if last is not None and last.kind is Kind.OPEN:
        quote = last.text[0]
        found = continuations(statement[: last.start])
        items = []
        for kind, choices in _groups(found, names, in_string=True):
            items.extend(Suggestion(c + quote, kind) for c in _matching(choices, last.value))
        return Completions(last.value, tuple(_unique(items)))
    prefix = ""
    if last is not None and last.kind is Kind.WORD and last.end == len(statement):
        prefix = last.text
        statement = statement[: last.start]
    items = []
    for kind, choices in _groups(continuations(statement), names, in_string=False):
        for choice in _matching(choices, prefix, keyword=kind == "keyword"):
            shown = _case_like(choice, prefix) if kind == "keyword" else choice
            items.append(Suggestion(shown, kind))
    return Completions(prefix, tuple(_unique(items)))


def _groups(found: Continuations, names: Names, in_string: bool) -> Groups:
    """What the grammar's expected tokens offer, in the grammar's order."""
    groups: Groups = []
    for expected in found.expected:
        if expected.is_keyword:
            if not in_string and _offers_keyword(expected, found):
                groups.append(("keyword", [" ".join(expected.phrase)]))
        elif expected.token in ("name", "string", "STAR"):
            groups.extend(_slot(expected, found, names, in_string))
    return groups


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


def _unique(items: list[Suggestion]) -> list[Suggestion]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.text not in seen:
            seen.add(item.text)
            out.append(item)
    return out


def _case_like(keyword: str, prefix: str) -> str:
    return keyword.lower() if prefix and prefix.islower() else keyword


# ---- keywords --------------------------------------------------------------------------------

#: Clauses the grammar lets every query term carry but only one statement kind takes
#: (the builder rejects the others); completion offers them only there.
_CLAUSE_OWNERS = {"ranked_by": "rank"}


def _offers_keyword(expected: Expected, found: Continuations) -> bool:
    """Whether to offer a keyword the grammar accepts here."""
    if expected.path and expected.path[-1].rule == "literal":
        return False  # TRUE, FALSE and NULL as values: a value is the user's to type
    opening = expected.frame("clause")
    term = expected.inner(("select", "rank"))
    if opening is None or term is None or opening.start != len(found.text):
        return True  # not a clause's opening word
    clause = expected.below("clause")
    if _CLAUSE_OWNERS.get(clause, term.rule) != term.rule:
        return False
    used = {m[0] for m in found.matched_since(term.start, alternatives("clause"))}
    return clause not in used


# ---- name and string slots -------------------------------------------------------------------

Slot = Callable[[Expected, Frame, Continuations, Names, bool], Groups]
"""Fills a name or string slot: (expected token, its rule's frame, continuations, names,
inside an open string) -> groups."""


def _slot(expected: Expected, found: Continuations, names: Names, in_string: bool) -> Groups:
    """What may fill the name, string or ``*`` the grammar expects, by the rule around it."""
    for frame in reversed(expected.path):
        slot = _SLOTS.get(frame.rule)
        if slot is not None:
            return slot(expected, frame, found, names, in_string)
    return []


def _quoted(names: Iterable[str], in_string: bool) -> list[str]:
    return list(names) if in_string else [f'"{name}"' for name in names]


def _columns(e: Expected, _f: Frame, _c: Continuations, _n: Names, in_string: bool) -> Groups:
    if e.token == "STAR":
        return [("column", ["*"])]
    return [("column", list(_ALL_COLUMNS))] if e.token == "name" else []


def _print(e: Expected, _f: Frame, _c: Continuations, names: Names, _s: bool) -> Groups:
    if e.token == "STAR":
        return [("variable", ["*"])]
    return [("variable", list(names.variables))] if e.token == "name" else []


def _source(e: Expected, _f: Frame, _c: Continuations, names: Names, _s: bool) -> Groups:
    if e.token != "name":
        return []
    return [("table", list(TABLES)), ("variable", list(names.variables))]


def _models(e: Expected, _f: Frame, _c: Continuations, names: Names, in_string: bool) -> Groups:
    return [("model", _quoted(names.models, in_string))] if e.token == "string" else []


def _variables(e: Expected, _f: Frame, _c: Continuations, names: Names, _s: bool) -> Groups:
    return [("variable", list(names.variables))] if e.token == "name" else []


def _model_ref(e: Expected, f: Frame, c: Continuations, names: Names, in_string: bool) -> Groups:
    if e.token == "name":
        return _variables(e, f, c, names, in_string)
    return _models(e, f, c, names, in_string)


def _datasets(e: Expected, _f: Frame, _c: Continuations, names: Names, in_string: bool) -> Groups:
    if e.token not in ("name", "string") or (in_string and e.token != "string"):
        return []
    return [("dataset", _quoted(names.datasets, in_string))]


def _literal(e: Expected, frame: Frame, c: Continuations, names: Names, in_string: bool) -> Groups:
    """A value: only the probe of ``SELECT vec`` (a model) is offered."""
    operand = e.frame("operand")
    comparison = e.frame("comparison")
    if operand is None or comparison is None or operand.start == comparison.start:
        return []
    left = token_at(c.text, comparison.start)
    if left is None or left.text.lower() != "probe":
        return []
    return _models(e, frame, c, names, in_string)


def _operand(e: Expected, frame: Frame, c: Continuations, names: Names, in_string: bool) -> Groups:
    predicate = e.frame("predicate")
    if e.token != "name" or predicate is None or predicate.start != frame.start:
        return []
    return [("column", list(columns_for(_table(e, c))))]


def _order_key(e: Expected, _f: Frame, c: Continuations, _n: Names, _s: bool) -> Groups:
    if e.token != "name":
        return []
    return [("column", [*METRICS, *columns_for(_table(e, c))])]


def _aggregate(e: Expected, frame: Frame, c: Continuations, _n: Names, _s: bool) -> Groups:
    if e.token != "name":
        return []
    if frame.start == len(c.text):
        return [("function", [a.value for a in n.Aggregate])]
    return [("column", list(METRICS))]


def _classifier(e: Expected, _f: Frame, _c: Continuations, _n: Names, in_string: bool) -> Groups:
    specs = list(CLASSIFIERS.values())
    if in_string:
        return [("classifier", [s.display for s in specs])] if e.token == "string" else []
    if e.token == "string":
        return [("classifier", [f'"{s.display}"' for s in specs if not s.params])]
    return [("classifier", [_call(s) for s in specs if s.params])] if e.token == "name" else []


def _ranker(e: Expected, _f: Frame, _c: Continuations, _n: Names, in_string: bool) -> Groups:
    if e.token != "string":
        return []
    spelled = [_call(s) if s.params else s.name for s in RANKERS.values()]
    return [("ranker", _quoted(spelled, in_string))]


def _param(e: Expected, _f: Frame, c: Continuations, _n: Names, _s: bool) -> Groups:
    if e.token != "name":
        return []
    if e.frame("finetune") is not None:
        return [("param", list(FINETUNE_PARAMS))]
    classifier = e.frame("classifier")
    word = token_at(c.text, classifier.start) if classifier is not None else None
    spec = find_method(CLASSIFIERS, word.value) if word is not None else None
    return [("param", [p.name for p in spec.params])] if spec is not None else []


def _register(e: Expected, frame: Frame, c: Continuations, _n: Names, _s: bool) -> Groups:
    register = e.frame("register")
    if e.token != "name" or register is None:
        return []
    kinds = c.matched_since(register.start, ("DATASET", "MODEL"))
    kind = kinds[0][0].lower() if kinds else "model"
    # a column named once is not offered again (the broker refuses a repeated column)
    used = {t.value.lower() for t in tokenize(c.text[frame.start :]) if t.kind is Kind.WORD}
    return [("column", [col for col in REGISTER_COLUMNS[kind] if col not in used])]


def _drop(e: Expected, _f: Frame, c: Continuations, names: Names, in_string: bool) -> Groups:
    """``DROP MODEL`` offers the registered models, ``DROP DATASET`` the datasets (quoted:
    a name with any character can be dropped)."""
    drop = e.frame("drop")
    if e.token != "string" or drop is None:
        return []
    kinds = c.matched_since(drop.start, ("DATASET", "MODEL"))
    if kinds and kinds[0][0] == "DATASET":
        return [("dataset", _quoted(names.datasets, in_string))]
    return [("model", _quoted(names.models, in_string))]


def _call(spec: MethodSpec) -> str:
    # single quotes: valid in a bare call and inside a double-quoted method string
    args = ", ".join(
        f"{p.name}='{p.default}'" if isinstance(p.default, str) else f"{p.name}={p.default}"
        for p in spec.params
    )
    return f"{spec.display if spec.display != spec.name else spec.name}({args})"


def _table(e: Expected, c: Continuations) -> str | None:
    """The catalog table the query term around ``e`` reads, if it names one."""
    term = e.inner(("select", "rank"))
    if term is None:
        return None
    sources = c.matched_since(term.start, ("source",))
    if not sources:
        return None
    _, start, end = sources[0]
    return canonical_table(c.text[start:end].strip())


#: The rules whose name, string or ``*`` slots the completer fills, innermost first wins.
_SLOTS: dict[str, Slot] = {
    "literal": _literal,
    "columns": _columns,
    "print": _print,
    "source": _source,
    "name_list_literal": _models,
    "other_than": _variables,
    "in_pred": _variables,
    "model_ref": _model_ref,
    "operand": _operand,
    "aggregate": _aggregate,
    "order_key": _order_key,
    "dataset_item": _datasets,
    "mutation": _datasets,
    "classifier": _classifier,
    "ranked_by": _ranker,
    "param": _param,
    "name_list": _register,
    "drop": _drop,
}

#: The keywords a statement may start with, as the grammar lists them.
STATEMENT_STARTS: tuple[str, ...] = tuple(complete("", Names()).texts)
