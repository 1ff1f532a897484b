"""SHiFT-QL text to query tree.

:func:`parse_script` parses one statement at a time with the parsimonious grammar,
recording the furthest position any token failed at and every token expected there, so a
failure says in words what was expected. After a bad statement it resumes at the next
top-level semicolon, so every error in a script is reported at once. The tree builder
resolves aliases and fills in defaults; :mod:`shift.ql.validate` then checks meaning.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NoReturn, cast

from parsimonious.nodes import Node as PNode

from shift.errors import Diagnostic, QueryError
from shift.methods import (
    CLASSIFIERS,
    FINETUNE_PARAMS,
    RANKERS,
    MethodSpec,
    ParamSpec,
    find_method,
)
from shift.ql import nodes as n
from shift.ql import tokens as tk
from shift.ql.diagnostics import Problem, diagnose, found_token
from shift.ql.expect import Failures
from shift.ql.grammar import TOKEN_WORDS, grammar
from shift.ql.limits import check_limits, too_deep
from shift.ql.numbers import parse_number
from shift.ql.validate import validate
from shift.ql.vocabulary import (
    METRICS,
    canonical_column,
    canonical_register_column,
    canonical_registry,
    canonical_table,
    canonical_value,
    closest,
)
from shift.strategies import DEFAULT_NAME, find_strategy, split_text

_KEYWORD_SET = tk.KEYWORD_SET
_RESERVED = frozenset(tk.RESERVED)


class _BuildError(Exception):
    """Raised inside the builder; carries the problem to report."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


# --------------------------------------------------------------------------- entry points


def parse_script(text: str, source: str = "<query>") -> n.Script:
    """Parse a script of ``;``-separated statements.

    Raises:
        QueryError: with one diagnostic per bad statement; nothing else escapes.
    """
    if not isinstance(text, str):
        raise QueryError(Diagnostic(f"a query must be text, got {type(text).__name__}", 0, 0))
    check_limits(text, source)
    statements: list[n.Statement] = []
    diagnostics: list[Diagnostic] = []
    notices: list[Diagnostic] = []
    rule = grammar()["statement_text"]
    pos = tk.skip_trivia(text, 0, semicolons=True)
    while pos < len(text):
        failures = Failures(text)
        try:
            packrat: Any = defaultdict(dict)
            tree = rule.match_core(text, pos, packrat, cast(Any, failures))
        except RecursionError:
            # the limits keep nesting well below Python's stack; a caller already deep in
            # its own stack can still run out, and is told so at the statement
            diagnostics.append(diagnose(text, too_deep(text, pos), source))
            pos = tk.skip_trivia(text, _resume_after(text, pos, pos), semicolons=True)
            continue
        end = tree.end if tree is not None else pos
        if tree is not None and (end == len(text) or text[end] == ";"):
            builder = _Builder(text)
            try:
                statement = builder.statement(tree)
                problems = validate(statement)
            except _BuildError as error:
                problems = [error.problem]
            if problems:
                diagnostics.extend(diagnose(text, p, source) for p in problems)
            else:
                statements.append(statement)
                notices.extend(diagnose(text, p, source) for p in builder.notices)
            pos = tk.skip_trivia(text, end, semicolons=True)
            continue
        at = max(failures.pos, end)
        expected = set(failures.expected) if failures.pos == at else set()
        if tree is not None and at == end:
            expected.add(";")
        diagnostics.append(diagnose(text, _syntax_problem(text, at, expected), source))
        pos = tk.skip_trivia(text, _resume_after(text, pos, at), semicolons=True)
    if diagnostics:
        raise QueryError(diagnostics)
    return n.Script(tuple(statements), span=(0, len(text)), notices=tuple(notices))


def parse(text: str, source: str = "<query>") -> n.Statement:
    """Parse exactly one statement (a trailing ``;`` is allowed)."""
    script = parse_script(text, source)
    if len(script.statements) != 1:
        count = len(script.statements)
        raise QueryError(
            Diagnostic(f"expected exactly one statement, found {count}", 1, 1, source=source)
        )
    return script.statements[0]


# --------------------------------------------------------------------------- syntax errors


def _describe(expected: set[str]) -> list[str]:
    words = sorted({TOKEN_WORDS.get(e, repr(e)) for e in expected})
    keywords = [w for w in words if w in _KEYWORD_SET]
    others = [w for w in words if w not in _KEYWORD_SET]
    return others + keywords


def _syntax_problem(text: str, pos: int, expected: set[str]) -> Problem:
    found = found_token(text, pos)
    at = tk.token_at(text, pos)
    token = at.text if at is not None else ""
    span = (pos, pos + max(1, len(token)))
    if at is not None and at.kind is tk.Kind.OPEN:
        quote = token[0]
        return Problem(
            f"Unterminated string starting at {found}",
            (pos, pos + 1),
            f"close it with {quote}; write {quote}{quote} for a quote inside it",
        )
    if at is not None and at.kind in (tk.Kind.NUMBER, tk.Kind.BAD_NUMBER):
        try:
            parse_number(token)
        except ValueError:
            return Problem(
                f"{found} is not a number",
                span,
                "numbers look like 42, -1.5, 2e-3, 10M, 1.5K or 3B; "
                "leave a space between a number and the next word",
            )
    words = _describe(expected)
    if not words:
        message = f"Unexpected {found}"
    elif len(words) <= 6:
        message = f"Expected {_join(words)} but found {found}"
    else:
        message = f"Expected one of {', '.join(words)} but found {found}"
    return Problem(message, span, _syntax_hint(text, pos, token, expected))


def _syntax_hint(text: str, pos: int, token: str, expected: set[str]) -> str:
    upper = token.upper()
    before = text[:pos].rstrip()
    if upper in _KEYWORD_SET and before.endswith(","):
        return "remove the ',' before " + upper
    drop = _drop_hint(text, before, expected)
    if drop:
        return drop
    if upper in _RESERVED and "name" in expected and expected <= _NAME_SLOTS | {"IF"}:
        if "string" in expected:
            return f'{upper} is a reserved word; write the name in quotes: "{token}"'
        return f"{upper} is a reserved word and cannot be used as a name; choose another"
    if upper in _CLAUSE_PLACES and upper not in expected:
        return _CLAUSE_PLACES[upper]
    if upper in _KEYWORD_SET:
        return ""
    candidates = [e for e in expected if e in _KEYWORD_SET]
    if token[:1].isalpha() and candidates:
        match = closest(token, candidates)
        if match and match != upper:
            return f"did you mean {match}?"
    if token == "=" and "BETWEEN" in expected:
        return "write != or <> for 'not equal'"
    return ""


def _drop_hint(text: str, before: str, expected: set[str]) -> str:
    """``DROP MODEL my-model``: a name with other characters than letters, digits and ``_``
    must be quoted; the hint shows the statement with the whole name quoted."""
    start = tk.statement_start(before)
    head = before[start:].split()
    if len(head) != 3 or head[0].upper() != "DROP" or expected != {";"}:
        return ""
    name_at = start + before[start:].rindex(head[2])
    end = name_at
    while end < len(text) and not text[end].isspace() and text[end] != ";":
        end += 1
    name = text[name_at:end].replace('"', '""')
    return f'quote a name with other characters: {head[0]} {head[1]} "{name}"'


#: Where a misplaced clause keyword belongs, said when it is found out of place.
_CLAUSE_PLACES = {
    "WHERE": "WHERE comes right after FROM <source>, before the other clauses",
    "FROM": "FROM comes right after the column list",
}
_NAME_SLOTS = frozenset({"name", "string", "STAR", "LBRACKET", "LPAREN"})


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _resume_after(text: str, start: int, failed_at: int) -> int:
    """Offset just after the first top-level ``;`` at or after ``failed_at`` (or the end)."""
    for token in tk.scan(text, start):
        if tk.is_semicolon(token) and token.start >= failed_at:
            return token.end
    return len(text)


# ---------------------------------------------------------------------------- the builder


def _kids(node: PNode) -> list[PNode]:
    """Nearest descendants that are named rules (skipping whitespace ``_``)."""
    out: list[PNode] = []
    for child in node.children:
        if child.expr_name == "_":
            continue
        if child.expr_name:
            out.append(child)
        else:
            out.extend(_kids(child))
    return out


def _end(node: PNode) -> int:
    """End offset of the last real token under ``node`` (trailing whitespace excluded)."""
    for child in reversed(node.children):
        if child.expr_name == "_" or child.start == child.end:
            continue
        return _end(child)
    return node.end


def _span(node: PNode, last: PNode | None = None) -> tuple[int, int]:
    return (node.start, _end(last if last is not None else node))


class _Builder:
    """Turns a parsimonious parse tree of one statement into :mod:`shift.ql.nodes`."""

    def __init__(self, text: str):
        self.text = text
        #: What to tell the user about an accepted statement (ignored clauses and such).
        self.notices: list[Problem] = []
        # whether the columns being built name catalog fields (see canonical_column)
        self.catalog = True

    def notice(self, message: str, node: PNode | tuple[int, int], hint: str = "") -> None:
        span = node if isinstance(node, tuple) else _span(node)
        self.notices.append(Problem(message, span, hint))

    def fail(self, message: str, node: PNode | tuple[int, int], hint: str = "") -> NoReturn:
        span = node if isinstance(node, tuple) else _span(node)
        raise _BuildError(Problem(message, span, hint))

    # ---- statements

    def statement(self, tree: PNode) -> n.Statement:
        (statement,) = _kids(tree)
        (inner,) = _kids(statement)
        build = getattr(self, "stmt_" + inner.expr_name)
        return cast(n.Statement, build(inner))

    def stmt_query(self, node: PNode) -> n.Select | n.TaskSelect | n.Rank | n.VecSelect | n.Union:
        kids = _kids(node)
        terms = [k for k in kids if k.expr_name == "query_term"]
        parts = [self.query_term(t) for t in terms]
        if len(parts) == 1:
            return parts[0]
        unions = [i for i in range(len(kids)) if kids[i].expr_name == "UNION"]
        alls = [self._union_all(kids, i) for i in unions]
        for i, all_ in zip(unions, alls, strict=True):
            if all_ != alls[0]:
                self.fail(
                    "a query mixes UNION and UNION ALL; use one of them throughout",
                    _span(kids[i], kids[i + 1] if all_ else kids[i]),
                )
        flat: list[n.Query] = []
        for part, term in zip(parts, terms, strict=True):
            if isinstance(part, n.VecSelect):
                self.fail("SELECT vec cannot be combined with UNION", term)
            if isinstance(part, n.Union):
                if part.all != alls[0]:
                    self.fail("a query mixes UNION and UNION ALL; use one of them", term)
                flat.extend(part.parts)
            else:
                flat.append(part)
        return n.Union(tuple(flat), all=alls[0], span=_span(node))

    @staticmethod
    def _union_all(kids: list[PNode], i: int) -> bool:
        return i + 1 < len(kids) and kids[i + 1].expr_name == "ALL"

    def query_term(self, node: PNode) -> n.Select | n.TaskSelect | n.Rank | n.VecSelect | n.Union:
        kids = _kids(node)
        if kids[0].expr_name == "LPAREN":
            return self.stmt_query(kids[1])
        return self.select(kids[0])

    def stmt_explain(self, node: PNode) -> n.Explain:
        kids = _kids(node)
        (inner,) = _kids(kids[-1])
        target: n.Select | n.TaskSelect | n.Rank | n.VecSelect | n.Union | n.Finetune
        if inner.expr_name == "finetune":
            target = self.stmt_finetune(inner)
        else:
            target = self.stmt_query(inner)
        return n.Explain(target, json=kids[1].expr_name == "JSON", span=_span(node))

    def stmt_declare(self, node: PNode) -> n.Declare:
        kids = _kids(node)
        name = self.name(kids[1])
        query = self.stmt_query(kids[3])
        if isinstance(query, n.VecSelect):
            self.fail("DECLARE binds models; SELECT vec returns distances", kids[3])
        if canonical_table(name.value):
            self.fail(f"{name.value!r} is a catalog table; pick another variable name", kids[1])
        return n.Declare(name.value, query, span=_span(node))

    def stmt_print(self, node: PNode) -> n.Print:
        target = _kids(node)[1]
        name = None if target.expr_name == "STAR" else self.name(target).value
        return n.Print(name, span=_span(node))

    def stmt_use(self, node: PNode) -> n.Use:
        target = _kids(node)[1]
        if target.expr_name == "hostport":
            url = "http://" + target.children[0].text
        else:
            url = self.string(target).strip()
            if not url:
                self.fail("the broker address is empty", target, 'write USE "http://host:port"')
            if "://" not in url:
                url = "http://" + url
        return n.Use(url.rstrip("/"), span=_span(node))

    def stmt_register(self, node: PNode) -> n.Register:
        kids = _kids(node)
        kind = n.RegisterKind(kids[1].expr_name.lower())
        name = self.string(kids[2])
        columns = [
            self.register_column(k) for k in _kids(kids[4]) if k.expr_name == "register_column"
        ]
        values = [self.register_value(k) for k in _kids(kids[8]) if k.expr_name == "register_value"]
        if len(columns) != len(values):
            self.fail(
                f"REGISTER lists {len(columns)} column(s) but {len(values)} value(s)",
                _span(kids[3], kids[9]),
                "give one value per column, in the same order",
            )
        fields = tuple(
            n.Param(
                canonical_register_column(kind.value, c.value),
                v,
                span=c.span,
            )
            for c, v in zip(columns, values, strict=True)
        )
        return n.Register(kind, name, fields, span=_span(node))

    def register_column(self, node: PNode) -> n.Name:
        """A REGISTER column, bare or quoted as upstream SHiFT writes them (``"split"``)."""
        (inner,) = _kids(node)
        if inner.expr_name == "string":
            return n.Name(self.string(inner).strip(), span=_span(inner))
        return self.name(inner)

    def register_value(self, node: PNode) -> n.Value | n.ValueList:
        """A REGISTER value: a literal or a list of literals (``["sentence"]``)."""
        (inner,) = _kids(node)
        if inner.expr_name == "value_list":
            items = tuple(self.literal(k) for k in _kids(inner) if k.expr_name == "literal")
            return n.ValueList(items, span=_span(inner))
        return self.literal(inner)

    def stmt_register_models(self, node: PNode) -> n.RegisterModels:
        kids = _kids(node)
        registry = self.name(kids[3])
        where, limit = None, None
        for k in kids[4:]:
            if k.expr_name == "where":
                where = self.condition(_kids(k)[1])
            elif k.expr_name == "limit":
                limit = self.clause_limit(k)
        canonical = canonical_registry(registry.value) or registry.value
        return n.RegisterModels(canonical, where, limit, span=_span(node))

    def stmt_finetune(self, node: PNode) -> n.Finetune:
        kids = _kids(node)
        models = self.model_ref(kids[1])
        datasets = self.dataset_ref(kids[3])
        params: tuple[n.Param, ...] = ()
        wait = False
        for k in kids[4:]:
            if k.expr_name == "params":
                params = self.finetune_params(k)
            elif k.expr_name == "WAIT":
                wait = True
        return n.Finetune(models, datasets, params, wait, span=_span(node))

    def stmt_purge(self, node: PNode) -> n.Purge:
        kids = _kids(node)
        target = n.PurgeTarget(kids[1].expr_name.lower()) if len(kids) > 1 else None
        return n.Purge(target or n.PurgeTarget.RESULTS, span=_span(node))

    def stmt_drop(self, node: PNode) -> n.Drop:
        kids = _kids(node)
        kind = n.RegisterKind(kids[1].expr_name.lower())
        if_exists = kids[2].expr_name == "IF"
        return n.Drop(kind, self.word(kids[-1]), if_exists, span=_span(node))

    # ---- SELECT / RANK

    def select(self, node: PNode) -> n.Select | n.TaskSelect | n.Rank | n.VecSelect:
        kids = _kids(node)
        is_rank = kids[0].expr_name == "RANK"
        distinct = kids[1] if kids[1].expr_name == "DISTINCT" else None
        if distinct is not None:
            kids = [kids[0], *kids[2:]]
        written = {_kids(k)[0].expr_name for k in kids[4:] if k.expr_name != "where"}
        self.catalog = not is_rank and not written & {"trained_on", "tested_on"}
        columns = self.columns(kids[1])
        source = self.source(kids[3])
        where = None
        clauses: dict[str, tuple[PNode, Any]] = {}
        for k in kids[4:]:
            if k.expr_name == "where":
                where = self.condition(_kids(k)[1])
                continue
            (clause,) = _kids(k)
            kind = clause.expr_name.lower()
            if kind in clauses:
                self.fail(f"{_CLAUSE_WORDS[kind]} is given twice", clause, "keep one of them")
            clauses[kind] = (clause, getattr(self, "clause_" + kind)(clause))
        span = _span(node)
        value = {kind: v for kind, (_, v) in clauses.items()}
        is_vec = [c.value for c in columns] == ["vec"]
        task = "trained_on" in clauses or "tested_on" in clauses
        if distinct is not None and (is_vec or task):
            self.fail(
                "DISTINCT applies to a catalog query",
                distinct,
                "a task-aware query already returns one row per model; remove DISTINCT",
            )
        if is_vec and not is_rank:
            return self.vec_select(node, source, where, clauses)
        if is_rank:
            if "trained_on" not in clauses:  # BY is optional: the default strategy
                present = [clause for clause, _ in clauses.values()]
                anchor = _span(present[0]) if present else (node.start, _end(node))
                self.fail("RANK needs TRAINED ON", anchor, "add TRAINED ON ... to the statement")
            self.forbid(
                clauses,
                ("classified_by",),
                "RANK",
                "RANK orders by its ranker's score",
            )
            if "order_by" in clauses:
                self.rank_order(*clauses["order_by"])
            if value.get("tested_on", (False, ()))[0]:
                self.fail(
                    "RANK scores one task; BENCHMARK applies to SELECT queries",
                    clauses["tested_on"][0],
                )
            return n.Rank(
                columns,
                source,
                value["trained_on"],
                value.get("tested_on", (False, ()))[1],
                value.get("ranked_by", ()),
                where,
                value.get("limit"),
                value.get("other_than"),
                "wait" in clauses,
                value.get("chunk"),
                value.get("budget"),
                span=span,
            )
        if task:
            self.require(clauses, ("trained_on", "tested_on"), node, "a task-aware query")
            self.forbid(clauses, ("ranked_by",), "SELECT", 'BY "ranker" belongs to RANK')
            return self.task_select(columns, source, where, clauses, value, span)
        self.forbid(
            clauses,
            ("classified_by", "chunk", "budget", "wait", "ranked_by"),
            "a catalog query",
            "add TRAINED ON and TESTED ON to rank models on your data",
        )
        return n.Select(
            columns,
            source,
            where,
            value.get("order_by", ()),
            value.get("limit"),
            value.get("other_than"),
            distinct is not None,
            span=span,
        )

    def rank_order(self, node: PNode, keys: tuple[n.OrderKey, ...]) -> None:
        """``ORDER BY err ASC`` in a RANK (upstream SHiFT accepts it): checked, then ignored."""
        wrong = [k for k in keys if k.column.value not in (*METRICS, "score")]
        if len(keys) != 1 or wrong:
            self.fail(
                "RANK orders by its ranker's score; ORDER BY there may only name err, acc "
                "or score (and is ignored)",
                node,
                "remove the ORDER BY clause",
            )
        self.notice(
            f"ORDER BY {_raw(node)[len('ORDER BY') :].strip()} is ignored: RANK orders by "
            "its ranker's score, best first",
            node,
            "remove the ORDER BY clause",
        )

    def task_select(
        self,
        columns: tuple[n.Name, ...],
        source: n.Source,
        where: n.Condition | None,
        clauses: dict[str, tuple[PNode, Any]],
        value: dict[str, Any],
        span: tuple[int, int],
    ) -> n.TaskSelect:
        benchmark, test = value["tested_on"]
        if "order_by" in value:
            order_node = clauses["order_by"][0]
            keys = value["order_by"]
            if len(keys) != 1:
                self.fail("a task-aware query orders by one metric (err or acc)", order_node)
            order = keys[0]
            if benchmark and order.aggregate is None:
                order = n.OrderKey(order.column, order.descending, n.Aggregate.AVG, span=order.span)
            elif not benchmark and order.aggregate is not None:
                # the test sets are pooled into one: one score per model, and any
                # aggregate of a single score is that score
                self.notice(
                    f"{order.aggregate.value}({order.column.value}) without BENCHMARK orders "
                    f"by {order.column.value}: without BENCHMARK the test sets are pooled "
                    "into one, so each model has one score to aggregate",
                    order.span or order_node,
                    "write TESTED ON BENCHMARK [...] to aggregate per-dataset scores",
                )
                order = n.OrderKey(order.column, order.descending, span=order.span)
        else:
            order = n.OrderKey(n.Name("err"), False, n.Aggregate.AVG if benchmark else None)
        classifiers = value.get("classified_by") or (self.method(CLASSIFIERS, "euclidean_nn"),)
        return n.TaskSelect(
            columns,
            source,
            order,
            value["trained_on"],
            test,
            classifiers,
            where,
            benchmark,
            value.get("limit"),
            value.get("other_than"),
            value.get("chunk"),
            value.get("budget"),
            "wait" in clauses,
            span=span,
        )

    def vec_select(
        self,
        node: PNode,
        source: n.Source,
        where: n.Condition | None,
        clauses: dict[str, tuple[PNode, Any]],
    ) -> n.VecSelect:
        self.forbid(
            clauses,
            tuple(k for k in clauses if k != "wait"),
            "SELECT vec",
            'SELECT vec FROM readers WHERE probe = "model" [WAIT]',
        )
        probes = _probe_compares(where)
        if len(probes) > 1:
            self.fail("the probe model is given twice", probes[1].span or _span(node))
        probe, rest = _take_probe(where)
        if probe is None:
            self.fail(
                'SELECT vec needs the probe model: add WHERE probe = "model name"',
                _span(node),
            )
        return n.VecSelect(source, probe, rest, "wait" in clauses, span=_span(node))

    def require(
        self, clauses: dict[str, Any], needed: tuple[str, ...], node: PNode, what: str
    ) -> None:
        for kind in needed:
            if kind not in clauses:
                word = _CLAUSE_WORDS[kind]
                present = [clauses[k][0] for k in needed if k in clauses]
                anchor = _span(present[0]) if present else (node.start, _end(node))
                self.fail(f"{what} needs {word}", anchor, f"add {word} ... to the statement")

    def forbid(self, clauses: dict[str, Any], kinds: tuple[str, ...], what: str, hint: str) -> None:
        for kind in kinds:
            if kind in clauses:
                self.fail(f"{_CLAUSE_WORDS[kind]} does not apply to {what}", clauses[kind][0], hint)

    def columns(self, node: PNode) -> tuple[n.Name, ...]:
        kids = _kids(node)
        if kids[0].expr_name == "STAR":
            return ()
        names = [k for k in kids if k.expr_name == "name"]
        alls = [k for k in names if _raw(k).upper() == "ALL"]
        if alls and len(names) == 1:
            return ()  # upstream SHiFT's SELECT all: every column, as *
        if alls:
            self.fail("ALL means every column; write it alone or list the columns", alls[0])
        out = []
        for k in kids:
            if k.expr_name == "name":
                name = self.name(k)
                if name.value.lower() == "vec":
                    out.append(n.Name("vec", span=name.span))
                else:
                    out.append(self.column_name(name))
        return tuple(out)

    def column_name(self, name: n.Name, catalog: bool | None = None) -> n.Name:
        """The canonical column; ``error`` is the registration error where the column names
        a catalog field (a catalog query's columns and ORDER BY, every WHERE), else ``err``."""
        canonical = canonical_column(name.value, self.catalog if catalog is None else catalog)
        return n.Name(canonical or name.value, span=name.span)

    def source(self, node: PNode) -> n.Source:
        (inner,) = _kids(node)
        if inner.expr_name == "name_list_literal":
            return self.name_list(inner)
        name = self.name(inner)
        table = canonical_table(name.value)
        if table:
            return n.Table(table, span=name.span)
        return n.Variable(name.value, span=name.span)

    def name_list(self, node: PNode) -> n.NameList:
        names = tuple(self.string_value(k) for k in _kids(node) if k.expr_name == "string")
        return n.NameList(names, span=_span(node))

    # ---- clauses

    def clause_order_by(self, node: PNode) -> tuple[n.OrderKey, ...]:
        return tuple(self.order_item(k) for k in _kids(node) if k.expr_name == "order_item")

    def order_item(self, node: PNode) -> n.OrderKey:
        kids = _kids(node)
        (key,) = _kids(kids[0])
        descending = len(kids) > 1 and kids[1].expr_name == "DESC"
        if key.expr_name == "aggregate":
            fn, _, column, _ = _kids(key)
            word = self.name(fn)
            try:
                aggregate = n.Aggregate(word.value.lower())
            except ValueError:
                choices = [a.value for a in n.Aggregate]
                self.fail(
                    f"unknown aggregate {word.value!r}; use one of {', '.join(choices)}",
                    fn,
                    _hint(word.value, choices),
                )
            return n.OrderKey(
                self.column_name(self.name(column)), descending, aggregate, span=_span(node)
            )
        return n.OrderKey(self.column_name(self.name(key)), descending, span=_span(node))

    def clause_trained_on(self, node: PNode) -> tuple[n.DatasetItem, ...]:
        return self.dataset_ref(_kids(node)[2])

    def clause_tested_on(self, node: PNode) -> tuple[bool, tuple[n.DatasetItem, ...]]:
        kids = _kids(node)
        benchmark = kids[2].expr_name == "BENCHMARK"
        return benchmark, self.dataset_ref(kids[-1])

    def clause_classified_by(self, node: PNode) -> tuple[n.Method, ...]:
        target = _kids(node)[2]
        items = [k for k in _kids(target) if k.expr_name == "classifier"]
        methods = [self.classifier(k) for k in items]
        seen: set[n.Method] = set()
        for method, k in zip(methods, items, strict=True):
            if method in seen:
                spec = CLASSIFIERS.get(method.name)
                self.fail(f"classifier {spec.display if spec else method.name} is listed twice", k)
            seen.add(method)
        return tuple(methods)

    def classifier(self, node: PNode) -> n.Method:
        kids = _kids(node)
        word = self.string(kids[0]) if kids[0].expr_name == "string" else self.name(kids[0]).value
        params: list[n.Param] = []
        if len(kids) > 1:
            params = self.params(kids[1])
        elif kids[0].expr_name == "string" and "(" in word:
            word, params = self.method_text(word, kids[0])
        return self.method(CLASSIFIERS, word, params, node, "classifier")

    def clause_ranked_by(self, node: PNode) -> tuple[n.Method | n.Strategy, ...]:
        target = _kids(node)[1]
        items = [_kids(k)[0] for k in _kids(target) if k.expr_name == "ranker_item"]
        methods = [self.ranker(k) for k in items]
        seen: set[n.Method | n.Strategy] = set()
        for method, k in zip(methods, items, strict=True):
            if method in seen:
                what = "strategy" if isinstance(method, n.Strategy) else "ranker"
                label = _raw(k) if isinstance(method, n.Strategy) else method.name
                self.fail(f"{what} {label} is listed twice", k, "keep one of them")
            seen.add(method)
        return tuple(methods)

    def ranker(self, target: PNode) -> n.Method | n.Strategy:
        """One item after BY: a ranker (a name or a ``"name(param=value, ...)"`` string) or
        a strategy (``"kind:a+b"``, a registered strategy's name, or ``default``)."""
        if target.expr_name == "string":
            text = self.string(target)
            strategy = self.strategy(text, target)
            if strategy is not None:
                return strategy
            word, params = self.method_text(text, target)
        else:
            word, params = self.name(target).value, []
            strategy = self.strategy(word, target)
            if strategy is not None:
                return strategy
        return self.method(RANKERS, word, params, target, "ranker")

    def strategy(self, text: str, node: PNode) -> n.Strategy | None:
        """A strategy written after BY, or ``None`` when ``text`` is not one.

        A registered name expands to its components (and keeps the name); ``default`` is
        left for the broker, which knows its ``rank_strategy`` setting.
        """
        span = _span(node)
        if text.strip().lower() == DEFAULT_NAME:
            return n.Strategy("", (), DEFAULT_NAME, span=span)
        name = ""
        spec = find_strategy(text) if find_method(RANKERS, text) is None else None
        if spec is not None:
            name, text = spec.name, spec.text
        split = split_text(text)
        if split is None:
            return None
        kind, parts = split
        components = []
        for part in parts:
            if not part:
                self.fail(
                    f"strategy {_short(text)} has an empty component",
                    node,
                    "write KIND:COMPONENT+COMPONENT, e.g. 'rank:logme+knn'",
                )
            word, params = self.method_text(part, node)
            if find_method(RANKERS, word) is not None:
                components.append(self.method(RANKERS, word, params, node, "ranker"))
            elif find_method(CLASSIFIERS, word) is not None:
                components.append(self.method(CLASSIFIERS, word, params, node, "proxy"))
            else:  # validate() reports it with the closest name
                components.append(n.Method(word, tuple(params), span=span))
        return n.Strategy(kind, tuple(components), name, span=span)

    def method_text(self, text: str, node: PNode) -> tuple[str, list[n.Param]]:
        """Parse ``"name(key=value, ...)"`` written inside a string."""
        tokens = tk.tokenize(text)
        opening = next((i for i, t in enumerate(tokens) if t.text == "("), None)
        word = (text if opening is None else text[: tokens[opening].start]).strip()
        if not _is_method_word(word) or (
            opening is not None and (tokens[-1].text != ")" or tokens[-1].kind is not tk.Kind.PUNCT)
        ):
            self.fail(f"cannot read {_short(text)} as name(param=value, ...)", node)
        groups: list[list[tk.Token]] = [[]]
        for token in tokens[opening + 1 : -1] if opening is not None else []:
            if token.kind is tk.Kind.PUNCT and token.text == ",":
                groups.append([])
            else:
                groups[-1].append(token)
        params = []
        for group in groups:
            if not group:
                continue
            part = text[group[0].start : group[-1].end]
            key, eq, rest = group[0], group[1:2], group[2:]
            if key.kind is not tk.Kind.WORD or [t.text for t in eq] != ["="] or not rest:
                self.fail(f"cannot read {_short(part)} as param=value in {_short(text)}", node)
            value: Any
            if len(rest) == 1 and rest[0].kind is tk.Kind.STRING:
                value = rest[0].value
            else:
                try:
                    value = parse_number(text[rest[0].start : rest[-1].end])
                except ValueError as error:
                    self.fail(f"{error} in {_short(text)}", node)
            params.append(n.Param(key.text, n.Value(value, span=_span(node)), span=_span(node)))
        return word, params

    def method(
        self,
        table: dict[str, MethodSpec],
        word: str,
        params: list[n.Param] | None = None,
        node: PNode | None = None,
        what: str = "",
    ) -> n.Method:
        """Resolve a method spelling, check its parameters and fill in defaults."""
        span = _span(node) if node is not None else None
        spec = find_method(table, word)
        if spec is None:
            # leave the spelling; validate() reports it with the closest match
            return n.Method(word, tuple(params or ()), span=span)
        params = [_unalias(spec.params, p) for p in params or ()]
        given = {p.name: p for p in params}
        for p in params:
            if spec.param(p.name) is None:
                known = [q.name for q in spec.params]
                listing = ", ".join(known) if known else "no parameters"
                self.fail(
                    f"{what} {spec.display} has no parameter {p.name!r} (it takes {listing})",
                    p.span or (0, 0),
                    _hint(p.name, known),
                )
        filled = []
        for ps in spec.params:
            param = given.get(ps.name)
            value = param.value if param is not None else n.Value(ps.default)
            if ps.kind is int and isinstance(value.value, float) and value.value.is_integer():
                value = n.Value(int(value.value), span=value.span)
            elif ps.kind is float and type(value.value) is int:
                value = n.Value(float(value.value), span=value.span)
            filled.append(n.Param(ps.name, value, span=param.span if param else None))
        return n.Method(spec.name, tuple(filled), span=span)

    def clause_limit(self, node: PNode) -> int:
        return self.count(_kids(node)[1], "LIMIT", minimum=0)

    def clause_other_than(self, node: PNode) -> n.Source:
        target = _kids(node)[2]
        if target.expr_name == "name_list_literal":
            return self.name_list(target)
        name = self.name(target)
        if canonical_table(name.value):
            self.fail(
                f"OTHER THAN takes a variable or a list of names, not the table {name.value}",
                target,
            )
        return n.Variable(name.value, span=name.span)

    def clause_chunk(self, node: PNode) -> int | str:
        target = _kids(node)[1]
        return "auto" if target.expr_name == "AUTO" else self.count(target, "CHUNK", minimum=1)

    def clause_budget(self, node: PNode) -> int | str:
        target = _kids(node)[1]
        return "auto" if target.expr_name == "AUTO" else self.count(target, "BUDGET", minimum=1)

    def clause_wait(self, node: PNode) -> bool:
        return True

    def count(self, node: PNode, what: str, minimum: int) -> int:
        value = self.number(node).value
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(f"{what} must be a number", node)
        if value >= _MAX_COUNT:
            self.fail(f"{what} {_raw(node)} is too large (at most {_MAX_COUNT - 1})", node)
        if isinstance(value, float) or value < minimum:
            least = "a positive" if minimum == 1 else "a non-negative"
            self.fail(f"{what} must be {least} whole number, got {_raw(node)}", node)
        return value

    # ---- datasets and models

    def dataset_ref(self, node: PNode) -> tuple[n.DatasetItem, ...]:
        (inner,) = _kids(node)
        items = [k for k in _kids(inner) if k.expr_name == "dataset_item"]
        return tuple(self.dataset_item(k) for k in items)

    def dataset_item(self, node: PNode) -> n.DatasetItem:
        (inner,) = _kids(node)
        if inner.expr_name == "mutation":
            return self.mutation(inner)
        return n.Dataset(self.word(inner), span=_span(inner))

    def mutation(self, node: PNode) -> n.Mutation:
        """``(base CHANGE [..] TO target [..], CHANGE ...)``, clauses merged per target.

        A clause without labels after its target takes the target's rows of the same
        labels (``CHANGE [1, 2] TO "b"`` is ``CHANGE [1, 2] TO "b" [1, 2]``).
        """
        kids = _kids(node)
        merged: dict[str, tuple[list[n.Value], list[n.Value], tuple[int, int]]] = {}
        for clause in (k for k in kids if k.expr_name == "change"):
            parts = _kids(clause)
            source = self.labels(parts[1])
            target = self.word(parts[3])
            to = self.labels(parts[4]) if len(parts) > 4 else source
            got = merged.setdefault(target, ([], [], _span(clause)))
            got[0].extend(source)
            got[1].extend(to)
        changes = [
            n.Change(tuple(a), target, tuple(b), span=span)
            for target, (a, b, span) in merged.items()
        ]
        first = changes[0]
        return n.Mutation(
            self.word(kids[1]),
            first.from_labels,
            first.target,
            first.to_labels,
            tuple(changes[1:]),
            span=_span(node),
        )

    def labels(self, node: PNode) -> tuple[n.Value, ...]:
        return tuple(self.literal(k) for k in _kids(node) if k.expr_name == "literal")

    def model_ref(self, node: PNode) -> n.Source:
        (inner,) = _kids(node)
        if inner.expr_name == "name_list_literal":
            return self.name_list(inner)
        if inner.expr_name == "string":
            return n.NameList((self.string_value(inner),), span=_span(inner))
        name = self.name(inner)
        table = canonical_table(name.value)
        if table:
            return n.Table(table, span=name.span)
        return n.Variable(name.value, span=name.span)

    def finetune_params(self, node: PNode) -> tuple[n.Param, ...]:
        params = [_unalias(tuple(FINETUNE_PARAMS.values()), p) for p in self.params(node)]
        for p in params:
            if p.name not in FINETUNE_PARAMS:
                known = list(FINETUNE_PARAMS)
                self.fail(
                    f"FINETUNE has no option {p.name!r} (options: {', '.join(known)})",
                    p.span or (0, 0),
                    _hint(p.name, known),
                )
        return tuple(sorted(params, key=lambda p: list(FINETUNE_PARAMS).index(p.name)))

    def params(self, node: PNode) -> list[n.Param]:
        out: list[n.Param] = []
        for k in _kids(node):
            if k.expr_name != "param":
                continue
            key, _, value = _kids(k)
            name = self.name(key).value.lower()
            if any(p.name == name for p in out):
                self.fail(f"parameter {name!r} is given twice", k)
            out.append(n.Param(name, self.literal(value), span=_span(k)))
        return out

    # ---- conditions

    def condition(self, node: PNode) -> n.Condition:
        return self.cond(node)

    def cond(self, node: PNode) -> n.Condition:
        kind = node.expr_name
        kids = _kids(node)
        if kind in ("condition", "and_cond"):
            parts = [self.cond(k) for k in kids if k.expr_name in ("and_cond", "not_cond")]
            if len(parts) == 1:
                return parts[0]
            cls = n.Or if kind == "condition" else n.And
            flat: list[n.Condition] = []
            for part in parts:
                flat.extend(part.operands if isinstance(part, cls) else (part,))
            return cls(tuple(flat), span=_span(node))
        if kind == "not_cond":
            if kids[0].expr_name == "NOT":
                return n.Not(self.cond(kids[1]), span=_span(node))
            return self.cond(kids[0])
        if kind == "primary":
            if kids[0].expr_name == "LPAREN":
                inner = self.condition(kids[1])
                return inner
            return self.cond(kids[0])
        if kind == "predicate":
            return self.predicate(kids[0])
        raise _BuildError(Problem(f"unexpected {kind}", _span(node)))

    def predicate(self, node: PNode) -> n.Condition:
        kind = node.expr_name
        kids = _kids(node)
        span = _span(node)
        if kind == "FINETUNED":
            return n.Finetuned(span=span)
        if kind == "flag":  # a boolean column alone: WHERE pretrained is pretrained = TRUE
            column = self.column_name(n.Name(node.text.strip().lower(), span=span))
            return n.Compare(column, n.CmpOp.EQ, n.Value(True, span=span), span=span)
        negated = any(k.expr_name == "NOT" for k in kids)
        if kind == "comparison":
            left, op_node, right = kids
            op = _OPS[op_node.text.strip()]
            lhs, rhs = self.operand(left), self.operand(right)
            if isinstance(lhs, n.Value) and isinstance(rhs, n.Name):
                lhs, rhs, op = rhs, lhs, _FLIPPED[op]
            if isinstance(lhs, n.Value):
                self.fail(
                    "a comparison needs a column name on one side",
                    span,
                    "write column op value, e.g. num_params < 10M",
                )
            if isinstance(rhs, n.Name):
                if canonical_column(lhs.value) is None and canonical_column(rhs.value):
                    lhs, rhs, right = rhs, lhs, left
                if lhs.value.lower() != "probe":
                    quoted = f"'{rhs.value}'"
                    rewrite = f"{lhs.value}{op_node.text.strip()}{quoted}"
                    self.fail(
                        f"compare {lhs.value} with a value, not with the name {rhs.value}",
                        right,
                        f"quote it if it is text: {quoted}; write {rewrite}",
                    )
                rhs = n.Value(rhs.value, span=rhs.span)
            column = self.column_name(lhs, catalog=True)
            return n.Compare(column, op, self.column_value(column, rhs), span=span)
        operand = self.operand(kids[0])
        if isinstance(operand, n.Value):
            self.fail("expected a column name before " + kids[1].text.split()[0].upper(), kids[0])
        column = self.column_name(operand, catalog=True)
        if kind == "between":
            literals = [
                self.column_value(column, self.literal(k)) for k in kids if k.expr_name == "literal"
            ]
            return n.Between(column, literals[0], literals[1], negated, span=span)
        if kind == "like":
            return n.Like(column, self.string_value(kids[-1]), negated, span=span)
        if kind == "is_null":
            return n.IsNull(column, negated, span=span)
        if kind == "in_pred":
            target = kids[-1]
            if target.expr_name == "name":
                return n.In(column, variable=self.name(target), negated=negated, span=span)
            values = tuple(
                self.column_value(
                    column, self.literal(k) if k.expr_name == "literal" else self.string_value(k)
                )
                for k in _kids(target)
                if k.expr_name in ("literal", "string")
            )
            return n.In(column, values=values, negated=negated, span=span)
        raise _BuildError(Problem(f"unexpected {kind}", span))

    def operand(self, node: PNode) -> n.Value | n.Name:
        (inner,) = _kids(node)
        return self.literal(inner) if inner.expr_name == "literal" else self.name(inner)

    def column_value(self, column: n.Name, value: n.Value) -> n.Value:
        if isinstance(value.value, str):
            return n.Value(canonical_value(column.value, value.value), span=value.span)
        return value

    # ---- tokens

    def literal(self, node: PNode) -> n.Value:
        (inner,) = _kids(node)
        kind = inner.expr_name
        if kind == "number":
            return self.number(inner)
        if kind == "string":
            return self.string_value(inner)
        return n.Value({"TRUE": True, "FALSE": False, "NULL": None}[kind], span=_span(inner))

    def number(self, node: PNode) -> n.Value:
        raw = _raw(node)
        try:
            value = parse_number(raw)
        except ValueError as error:
            self.fail(str(error), node, "numbers look like 42, -1.5, 2e-3, 10M, 1.5K or 3B")
        return n.Value(value, span=_span(node))

    def string(self, node: PNode) -> str:
        raw = _raw(node)
        quote = raw[0]
        return raw[1:-1].replace(quote * 2, quote)

    def string_value(self, node: PNode) -> n.Value:
        return n.Value(self.string(node), span=_span(node))

    def name(self, node: PNode) -> n.Name:
        return n.Name(_raw(node), span=_span(node))

    def word(self, node: PNode) -> str:
        """A dataset or model name written as a string or a bare name."""
        return self.string(node) if node.expr_name == "string" else self.name(node).value


def _short(text: str, limit: int = 40) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters for a message."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _is_method_word(word: str) -> bool:
    """A classifier or ranker name as written in a string: ``Euclidean NN``, ``logme``."""
    return (
        bool(word)
        and (word[0].isascii() and (word[0].isalpha() or word[0] == "_"))
        and all(c.isascii() and (c.isalnum() or c in "_ -") for c in word)
    )


def _raw(node: PNode) -> str:
    """The token text without trailing whitespace or comments."""
    return str(node.full_text[node.start : _end(node)])


def _unalias(specs: tuple[ParamSpec, ...], param: n.Param) -> n.Param:
    """The parameter under its canonical name (``lr`` -> ``learning_rate``)."""
    for spec in specs:
        if param.name == spec.name or param.name in spec.aliases:
            return n.Param(spec.name, param.value, span=param.span)
    return param


def _hint(word: str, choices: list[str]) -> str:
    match = closest(word, choices)
    return f"did you mean {match!r}?" if match else ""


def _take_probe(where: n.Condition | None) -> tuple[str | None, n.Condition | None]:
    """Split ``probe = X [AND rest]`` into the probe name and the rest of the condition."""

    def is_probe(c: n.Condition) -> bool:
        return (
            isinstance(c, n.Compare)
            and c.column.value.lower() == "probe"
            and c.op is n.CmpOp.EQ
            and isinstance(c.value.value, str)
        )

    if where is None:
        return None, None
    if is_probe(where):
        return str(cast(n.Compare, where).value.value), None
    if isinstance(where, n.And):
        probes = [c for c in where.operands if is_probe(c)]
        if len(probes) == 1:
            rest = tuple(c for c in where.operands if c is not probes[0])
            remaining = rest[0] if len(rest) == 1 else n.And(rest, span=where.span)
            return str(cast(n.Compare, probes[0]).value.value), remaining
    return None, where


_MAX_COUNT = 2**63


def _probe_compares(where: n.Condition | None) -> list[n.Compare]:
    """Every top-level ``probe = ...`` comparison in a WHERE condition."""
    operands = where.operands if isinstance(where, n.And) else (where,)
    return [
        c
        for c in operands
        if isinstance(c, n.Compare) and c.column.value.lower() == "probe" and c.op is n.CmpOp.EQ
    ]


_OPS = {
    "=": n.CmpOp.EQ, "==": n.CmpOp.EQ, "!=": n.CmpOp.NE, "<>": n.CmpOp.NE,
    "<": n.CmpOp.LT, "<=": n.CmpOp.LE, ">": n.CmpOp.GT, ">=": n.CmpOp.GE,
}  # fmt: skip
_FLIPPED = {
    n.CmpOp.EQ: n.CmpOp.EQ, n.CmpOp.NE: n.CmpOp.NE, n.CmpOp.LT: n.CmpOp.GT,
    n.CmpOp.LE: n.CmpOp.GE, n.CmpOp.GT: n.CmpOp.LT, n.CmpOp.GE: n.CmpOp.LE,
}  # fmt: skip
_CLAUSE_WORDS = {
    "order_by": "ORDER BY", "trained_on": "TRAINED ON", "tested_on": "TESTED ON",
    "classified_by": "CLASSIFIED BY", "ranked_by": "BY \"ranker\"", "limit": "LIMIT",
    "other_than": "OTHER THAN", "chunk": "CHUNK", "budget": "BUDGET", "wait": "WAIT",
}  # fmt: skip
