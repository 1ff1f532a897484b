"""Evaluating catalog queries over rows: conditions, ordering, limits, set operations.

Pure functions over plain dicts (one dict per model or dataset row), so the broker, the
simulator and tests share one meaning of every condition. SQL semantics throughout:
comparisons with NULL are unknown and a WHERE keeps only rows whose condition is true;
``LIKE`` is case-insensitive with ``%`` and ``_``; ``ORDER BY`` puts NULLs last.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from shift.errors import QueryError
from shift.ql import nodes as n

Row = Mapping[str, Any]
#: The names bound by DECLARE: variable name -> model (or dataset) names.
Variables = Mapping[str, Sequence[str]]


def _error(message: str, hint: str = "") -> QueryError:
    from shift.errors import Diagnostic

    return QueryError(Diagnostic(message, 0, 0, "", hint, "<evaluation>"))


def variable_names(name: str, variables: Variables) -> Sequence[str]:
    """The names bound to ``name``, or a QueryError listing the declared variables."""
    if name in variables:
        return variables[name]
    declared = ", ".join(sorted(variables)) or "none"
    raise _error(
        f"unknown variable {name!r} (declared: {declared})",
        "bind it first with DECLARE name AS SELECT ...",
    )


def _comparable(column: str, left: Any, right: Any) -> tuple[Any, Any]:
    numbers = (int, float)
    if isinstance(left, bool) or isinstance(right, bool):
        if isinstance(left, bool) and isinstance(right, bool):
            return left, right
    elif (isinstance(left, numbers) and isinstance(right, numbers)) or (
        isinstance(left, str) and isinstance(right, str)
    ):
        return left, right
    raise _error(
        f"cannot compare {column} ({type(left).__name__} {left!r}) "
        f"with {type(right).__name__} {right!r}",
        f"compare {column} with a value of the same kind",
    )


_COMPARE: dict[n.CmpOp, Callable[[Any, Any], bool]] = {
    n.CmpOp.EQ: lambda a, b: a == b,
    n.CmpOp.NE: lambda a, b: a != b,
    n.CmpOp.LT: lambda a, b: a < b,
    n.CmpOp.LE: lambda a, b: a <= b,
    n.CmpOp.GT: lambda a, b: a > b,
    n.CmpOp.GE: lambda a, b: a >= b,
}


@cache
def like_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a SQL LIKE pattern (``%`` any run, ``_`` one character), case-insensitive."""
    parts = ("." if ch == "_" else ".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def truth(cond: n.Condition, row: Row, variables: Variables) -> bool | None:
    """Three-valued truth of ``cond`` for ``row``: True, False or None (unknown)."""
    if isinstance(cond, n.And):
        values = [truth(c, row, variables) for c in cond.operands]
        if False in values:
            return False
        return None if None in values else True
    if isinstance(cond, n.Or):
        values = [truth(c, row, variables) for c in cond.operands]
        if True in values:
            return True
        return None if None in values else False
    if isinstance(cond, n.Not):
        value = truth(cond.operand, row, variables)
        return None if value is None else not value
    if isinstance(cond, n.Finetuned):
        return bool(row.get("finetuned"))
    column = cond.column.value
    if column not in row:
        raise _error(f"rows have no column {column!r}")
    value = row[column]
    if isinstance(cond, n.IsNull):
        return (value is not None) if cond.negated else (value is None)
    if value is None:
        return None
    result: bool | None
    if isinstance(cond, n.Compare):
        left, right = _comparable(column, value, cond.value.value)
        result = _COMPARE[cond.op](left, right)
    elif isinstance(cond, n.Between):
        low = _comparable(column, value, cond.low.value)[1]
        high = _comparable(column, value, cond.high.value)[1]
        result = low <= value <= high
        result = not result if cond.negated else result
    elif isinstance(cond, n.Like):
        pattern = like_pattern(str(cond.pattern.value))
        result = pattern.fullmatch(str(value)) is not None
        result = not result if cond.negated else result
    elif isinstance(cond, n.In):
        if cond.variable is not None:
            members: list[Any] = list(variable_names(cond.variable.value, variables))
        else:
            members = [v.value for v in cond.values or ()]
        found = any(m is not None and _comparable(column, value, m)[0] == m for m in members)
        result = not found if cond.negated else found
    else:  # pragma: no cover - the Condition union is closed
        raise _error(f"unsupported condition {type(cond).__name__}")
    return result


Predicate = Callable[[Row], "bool | None"]
"""A condition compiled for many rows: the :func:`truth` of each row."""

_KIND_OF_TYPE: dict[type, str] = {bool: "bool", int: "number", float: "number", str: "str"}
"""Which values :func:`_comparable` accepts together (exact types; others take its path)."""


def predicate(cond: n.Condition, variables: Variables) -> Predicate:
    """Compile ``cond`` once for a scan: the returned function gives exactly
    :func:`truth` for every row (the same values, and the same errors on the same rows),
    without dispatching on the condition's node type per row."""
    if isinstance(cond, n.And | n.Or):
        parts = [predicate(c, variables) for c in cond.operands]
        decisive = isinstance(cond, n.Or)

        def combined(row: Row) -> bool | None:
            values = [part(row) for part in parts]  # every operand, as truth() does
            if decisive in values:
                return decisive
            return None if None in values else not decisive

        return combined
    if isinstance(cond, n.Not):
        inner = predicate(cond.operand, variables)

        def negated(row: Row) -> bool | None:
            value = inner(row)
            return None if value is None else not value

        return negated
    if isinstance(cond, n.Compare):
        return _compare_predicate(cond)
    return lambda row: truth(cond, row, variables)


def _compare_predicate(cond: n.Compare) -> Predicate:
    column, right, compare = cond.column.value, cond.value.value, _COMPARE[cond.op]
    right_kind = _KIND_OF_TYPE.get(type(right))

    def compared(row: Row) -> bool | None:
        if column not in row:
            raise _error(f"rows have no column {column!r}")
        value = row[column]
        if value is None:
            return None
        if right_kind is not None and _KIND_OF_TYPE.get(type(value)) == right_kind:
            return compare(value, right)
        left, other = _comparable(column, value, right)
        return compare(left, other)

    return compared


def where(rows: Iterable[Row], cond: n.Condition | None, variables: Variables) -> list[Row]:
    """The rows for which ``cond`` is true (all rows when there is no condition)."""
    if cond is None:
        return list(rows)
    test = predicate(cond, variables)
    return [row for row in rows if test(row) is True]


def order(rows: Sequence[Row], keys: Sequence[n.OrderKey]) -> list[Row]:
    """Sort by several keys (stable, NULLs last in either direction)."""
    out = list(rows)
    for key in reversed(keys):
        column = key.column.value
        present = [r for r in out if r.get(column) is not None]
        missing = [r for r in out if r.get(column) is None]
        try:
            present.sort(key=lambda r: r[column], reverse=key.descending)
        except TypeError:
            raise _error(f"cannot order by {column}: its values are of mixed kinds") from None
        out = present + missing
    return out


def exclude(rows: Iterable[Row], names: Iterable[str]) -> list[Row]:
    """``OTHER THAN``: drop the rows whose name is in ``names``."""
    banned = set(names)
    return [row for row in rows if row.get("name") not in banned]


def source_names(source: n.Source, variables: Variables) -> list[str] | None:
    """Names a variable or list stands for; ``None`` for a whole table."""
    if isinstance(source, n.Variable):
        return list(variable_names(source.name, variables))
    if isinstance(source, n.NameList):
        return [str(v.value) for v in source.names]
    return None


def project(rows: Iterable[Row], columns: Sequence[n.Name]) -> list[dict[str, Any]]:
    """Keep the selected columns, in the order asked (all columns for ``*``)."""
    if not columns:
        return [dict(row) for row in rows]
    names = [c.value for c in columns]
    return [{name: row.get(name) for name in names} for row in rows]


def select(statement: n.Select, table: Sequence[Row], variables: Variables) -> list[dict[str, Any]]:
    """Run a catalog ``SELECT`` over the rows of its table.

    Args:
        statement: The query.
        table: Every row of the table the query reads (for a variable or a name list,
            the rows of the catalog they are looked up in).
        variables: The names bound by DECLARE.

    Raises:
        QueryError: an unknown variable or name, or values that cannot be compared.
    """
    rows: list[Row] = list(table)
    names = source_names(statement.source, variables)
    if names is not None:
        by_name = {row.get("name"): row for row in rows}
        unknown = [name for name in names if name not in by_name]
        if unknown:
            raise _error(f"unknown name(s) {unknown} in FROM", "see SELECT name FROM models")
        rows = [by_name[name] for name in dict.fromkeys(names)]
    rows = where(rows, statement.where, variables)
    if statement.other_than is not None:
        excluded = source_names(statement.other_than, variables) or []
        rows = exclude(rows, excluded)
    rows = order(rows, statement.order_by)
    if statement.limit is not None and not statement.distinct:
        rows = rows[: statement.limit]  # the same rows, without copying the ones cut off
    picked = project(rows, statement.columns)
    if statement.distinct:  # the first of each repeated row, in order
        first: dict[str, dict[str, Any]] = {}
        for row in picked:
            first.setdefault(repr(sorted(row.items())), row)
        picked = list(first.values())
    if statement.limit is not None:
        picked = picked[: statement.limit]
    return picked


def union(parts: Sequence[Sequence[Row]], keep_all: bool) -> list[Row]:
    """``UNION [ALL]`` of result rows: distinct by model name unless ``keep_all``."""
    out: list[Row] = []
    seen: set[Any] = set()
    for rows in parts:
        for row in rows:
            key = row.get("name", id(row))
            if keep_all or key not in seen:
                out.append(row)
                seen.add(key)
    return out
