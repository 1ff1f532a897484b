"""Query tree to canonical SHiFT-QL text.

The output is the canonical spelling: upper-case keywords, canonical column and method
names, explicit ASC/DESC, every classifier parameter, double-quoted strings. Parsing the
rendered text gives back an equal tree.
"""

from __future__ import annotations

from functools import singledispatch

from shift.methods import CLASSIFIERS, RANKERS
from shift.ql import nodes as n
from shift.ql.numbers import format_number


def quote(text: str) -> str:
    """A double-quoted SHiFT-QL string (inner quotes doubled)."""
    return '"' + text.replace('"', '""') + '"'


def render_value(value: n.Scalar) -> str:
    """A literal in SHiFT-QL syntax."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return quote(value)
    return format_number(value)


@singledispatch
def render(node: n.Node) -> str:
    """Render any statement, script or clause node as canonical SHiFT-QL."""
    raise TypeError(f"cannot render {type(node).__name__}")


@render.register
def _(node: n.Script) -> str:
    return "".join(render(s) + ";\n" for s in node.statements)


def _columns(columns: tuple[n.Name, ...]) -> str:
    return ", ".join(c.value for c in columns) if columns else "*"


def _source(source: n.Source) -> str:
    if isinstance(source, n.NameList):
        return "[" + ", ".join(render_value(v.value) for v in source.names) + "]"
    return source.name


def _datasets(items: tuple[n.DatasetItem, ...]) -> str:
    parts = [_dataset(i) for i in items]
    return parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"


def _dataset(item: n.DatasetItem) -> str:
    if isinstance(item, n.Dataset):
        return quote(item.name)
    changes = ", ".join(
        f"CHANGE {_labels(c.from_labels)} TO {quote(c.target)} {_labels(c.to_labels)}"
        for c in item.changes
    )
    return f"({quote(item.base)} {changes})"


def _labels(labels: tuple[n.Value, ...]) -> str:
    return "[" + ", ".join(render_value(v.value) for v in labels) + "]"


def _params(params: tuple[n.Param, ...]) -> str:
    return "(" + ", ".join(f"{p.name}={_register_value(p.value)}" for p in params) + ")"


def _order_key(key: n.OrderKey) -> str:
    column = key.column.value
    if key.aggregate is not None:
        column = f"{key.aggregate.value}({column})"
    return f"{column} {'DESC' if key.descending else 'ASC'}"


def _classifier(method: n.Method) -> str:
    spec = CLASSIFIERS.get(method.name)
    display = spec.display if spec else method.name
    if not method.params:
        return quote(display)
    head = display if display.isidentifier() else quote(display)
    return head + _params(method.params)


def _ranker(method: n.Method) -> str:
    spec = RANKERS.get(method.name)
    display = spec.display if spec else method.name
    inner = display + (_string_params(method.params) if method.params else "")
    return quote(inner)


def _strategy(strategy: n.Strategy) -> str:
    """A strategy as a quoted string: its registered name, or ``kind:a+b``."""
    if strategy.name:
        return quote(strategy.name)
    parts = []
    for method in strategy.components:
        spec = RANKERS.get(method.name) or CLASSIFIERS.get(method.name)
        display = spec.display if spec else method.name
        parts.append(display + (_string_params(method.params) if method.params else ""))
    return quote(f"{strategy.kind}:" + "+".join(parts))


def _string_params(params: tuple[n.Param, ...]) -> str:
    """Parameters written inside a quoted ranker string: strings in single quotes."""

    def value(v: n.Value | n.ValueList) -> str:
        if isinstance(v, n.Value) and isinstance(v.value, str):
            return "'" + v.value.replace("'", "''") + "'"
        return _register_value(v)

    return "(" + ", ".join(f"{p.name}={value(p.value)}" for p in params) + ")"


def _head(
    verb: str,
    columns: tuple[n.Name, ...],
    source: n.Source,
    where: n.Condition | None,
    distinct: bool = False,
) -> list[str]:
    verb += " DISTINCT" if distinct else ""
    parts = [f"{verb} {_columns(columns)} FROM {_source(source)}"]
    if where is not None:
        parts.append("WHERE " + render_condition(where))
    return parts


def _tail(limit: int | None, other_than: n.Source | None) -> list[str]:
    parts = []
    if limit is not None:
        parts.append(f"LIMIT {limit}")
    if other_than is not None:
        parts.append(f"OTHER THAN {_source(other_than)}")
    return parts


def _halving(chunk: int | str | None, budget: int | str | None) -> list[str]:
    return [
        f"{word} {'AUTO' if value == 'auto' else value}"
        for word, value in (("CHUNK", chunk), ("BUDGET", budget))
        if value is not None
    ]


@render.register
def _(node: n.Select) -> str:
    parts = _head("SELECT", node.columns, node.source, node.where, node.distinct)
    if node.order_by:
        parts.append("ORDER BY " + ", ".join(_order_key(k) for k in node.order_by))
    parts += _tail(node.limit, node.other_than)
    return " ".join(parts)


@render.register
def _(node: n.TaskSelect) -> str:
    parts = _head("SELECT", node.columns, node.source, node.where)
    parts.append("ORDER BY " + _order_key(node.order))
    parts.append("TRAINED ON " + _datasets(node.train))
    parts.append(
        ("TESTED ON BENCHMARK " if node.benchmark else "TESTED ON ") + _datasets(node.test)
    )
    parts.append("CLASSIFIED BY [" + ", ".join(_classifier(m) for m in node.classifiers) + "]")
    parts += _tail(node.limit, node.other_than)
    parts += _halving(node.chunk, node.budget)
    if node.wait:
        parts.append("WAIT")
    return " ".join(parts)


@render.register
def _(node: n.Rank) -> str:
    parts = _head("RANK", node.columns, node.source, node.where)
    parts.append("TRAINED ON " + _datasets(node.train))
    if node.test:
        parts.append("TESTED ON " + _datasets(node.test))
    rankers = [_strategy(m) if isinstance(m, n.Strategy) else _ranker(m) for m in node.rankers]
    if rankers:  # no BY: the default strategy
        parts.append("BY " + (rankers[0] if len(rankers) == 1 else "[" + ", ".join(rankers) + "]"))
    parts += _tail(node.limit, node.other_than)
    parts += _halving(node.chunk, node.budget)
    if node.wait:
        parts.append("WAIT")
    return " ".join(parts)


@render.register
def _(node: n.VecSelect) -> str:
    where = f"probe = {quote(node.probe)}"
    if node.where is not None:
        rest = node.where
        where += " AND " + (
            f"({render_condition(rest)})" if isinstance(rest, n.Or) else render_condition(rest)
        )
    text = f"SELECT vec FROM {_source(node.source)} WHERE {where}"
    return text + (" WAIT" if node.wait else "")


@render.register
def _(node: n.Union) -> str:
    joiner = " UNION ALL " if node.all else " UNION "
    return joiner.join(render(p) for p in node.parts)


@render.register
def _(node: n.Finetune) -> str:
    text = f"FINETUNE {_source(node.models)} WITH {_datasets(node.datasets)}"
    if node.params:
        text += " " + _params(node.params)
    return text + (" WAIT" if node.wait else "")


@render.register
def _(node: n.Explain) -> str:
    return ("EXPLAIN JSON " if node.json else "EXPLAIN ") + render(node.statement)


@render.register
def _(node: n.Declare) -> str:
    return f"DECLARE {node.name} AS {render(node.query)}"


@render.register
def _(node: n.Print) -> str:
    return f"PRINT {node.name or '*'}"


@render.register
def _(node: n.Use) -> str:
    return f"USE {quote(node.url)}"


@render.register
def _(node: n.Register) -> str:
    columns = ", ".join(f.name for f in node.fields)
    values = ", ".join(_register_value(f.value) for f in node.fields)
    return f"REGISTER {node.kind.value.upper()} {quote(node.name)} ({columns}) VALUES ({values})"


def _register_value(value: n.Value | n.ValueList) -> str:
    if isinstance(value, n.ValueList):
        return "[" + ", ".join(render_value(v) for v in value.value) + "]"
    return render_value(value.value)


@render.register
def _(node: n.RegisterModels) -> str:
    where = f" WHERE {render_condition(node.where)}" if node.where is not None else ""
    limit = f" LIMIT {node.limit}" if node.limit is not None else ""
    return f"REGISTER MODELS FROM {node.registry}{where}{limit}"


@render.register
def _(node: n.Purge) -> str:
    return f"PURGE {node.target.value.upper()}"


@render.register
def _(node: n.Drop) -> str:
    exists = " IF EXISTS" if node.if_exists else ""
    return f"DROP {node.kind.value.upper()}{exists} {quote(node.name)}"


def render_condition(cond: n.Condition) -> str:
    """Render a condition with the fewest parentheses that keep its structure."""
    if isinstance(cond, n.Or):
        return " OR ".join(render_condition(c) for c in cond.operands)
    if isinstance(cond, n.And):
        return " AND ".join(
            f"({render_condition(c)})" if isinstance(c, n.Or) else render_condition(c)
            for c in cond.operands
        )
    if isinstance(cond, n.Not):
        inner = render_condition(cond.operand)
        return f"NOT ({inner})" if isinstance(cond.operand, n.And | n.Or) else f"NOT {inner}"
    if isinstance(cond, n.Finetuned):
        return "FINETUNED"
    column = cond.column.value
    not_ = "NOT " if getattr(cond, "negated", False) else ""
    if isinstance(cond, n.Compare):
        return f"{column} {cond.op.value} {render_value(cond.value.value)}"
    if isinstance(cond, n.Between):
        low, high = render_value(cond.low.value), render_value(cond.high.value)
        return f"{column} {not_}BETWEEN {low} AND {high}"
    if isinstance(cond, n.In):
        if cond.variable is not None:
            return f"{column} {not_}IN {cond.variable.value}"
        values = ", ".join(render_value(v.value) for v in cond.values or ())
        return f"{column} {not_}IN ({values})"
    if isinstance(cond, n.Like):
        return f"{column} {not_}LIKE {render_value(cond.pattern.value)}"
    if isinstance(cond, n.IsNull):
        return f"{column} IS {'NOT ' if cond.negated else ''}NULL"
    raise TypeError(f"cannot render condition {type(cond).__name__}")
