"""Meaning checks on a query tree, shared by the parser and the JSON decoder.

:func:`validate` returns every :class:`~shift.ql.diagnostics.Problem` it finds (located by
the node's span when the tree came from text). A tree that passes is canonical: known
columns, tables, classifiers and rankers under their canonical names with every parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from shift.methods import (
    CLASSIFIERS,
    FINETUNE_PARAMS,
    RANKERS,
    MethodSpec,
    classifier_problem,
    find_method,
)
from shift.ql import nodes as n
from shift.ql.diagnostics import Problem
from shift.ql.vocabulary import (
    DATASET_COLUMNS,
    LIST_COLUMNS,
    MEASURED_COLUMNS,
    METRICS,
    MODEL_COLUMNS,
    RANK_COLUMNS,
    REGISTER_COLUMNS,
    REGISTRY_COLUMNS,
    RESULT_COLUMNS,
    STATE_COLUMNS,
    TABLES,
    VALUE_SPELLINGS,
    closest,
    column_hint,
    columns_for,
)
from shift.strategies import DEFAULT_NAME, STRATEGIES
from shift.strategies import KINDS as STRATEGY_KINDS


def validate(statement: n.Statement) -> list[Problem]:
    """Check a statement's meaning; an empty list means it is valid and canonical."""
    return list(_check(statement))


def _hint(word: str, choices: tuple[str, ...] | list[str]) -> str:
    match = closest(word, choices)
    return f"did you mean {match!r}?" if match else ""


def _table_of(source: n.Source) -> str | None:
    return source.name if isinstance(source, n.Table) else None


def _check(node: n.Statement) -> Iterator[Problem]:
    if isinstance(node, n.Select):
        yield from _check_source(node.source)
        table = _table_of(node.source)
        allowed = columns_for(table)
        yield from _check_columns(node.columns, allowed, task=False)
        yield from _check_condition(node.where, allowed)
        for key in node.order_by:
            yield from _check_order_key(key, allowed)
        yield from _check_limit(node.limit, node)
        yield from _check_other_than(node.other_than)
    elif isinstance(node, n.TaskSelect):
        yield from _check_model_pool(node.source)
        yield from _check_columns(node.columns, MODEL_COLUMNS, task=True)
        yield from _check_condition(node.where, MODEL_COLUMNS + STATE_COLUMNS)
        yield from _check_task_order(node)
        yield from _check_datasets(node.train, "TRAINED ON")
        yield from _check_datasets(node.test, "TESTED ON")
        if node.benchmark and len(node.train) not in (1, len(node.test)):
            yield Problem(
                f"BENCHMARK pairs training and test sets, but TRAINED ON lists {len(node.train)} "
                f"and TESTED ON lists {len(node.test)}",
                _list_span(node.test) or node.span,
                "give one training set per test set, or a single training set for all",
            )
        if not node.classifiers:
            yield Problem("CLASSIFIED BY needs at least one classifier", node.span)
        for method in node.classifiers:
            problems = list(_check_method(method, CLASSIFIERS, "classifier"))
            yield from problems
            params = {p.name: p.value.value for p in method.params}
            if not problems and (message := classifier_problem(method.name, params)):
                yield Problem(
                    f"classifier {CLASSIFIERS[method.name].display}: {message}", method.span
                )
        yield from _check_limit(node.limit, node)
        yield from _check_other_than(node.other_than)
        yield from _check_halving(node)
    elif isinstance(node, n.Rank):
        yield from _check_model_pool(node.source)
        for column in node.columns:
            if column.value not in MODEL_COLUMNS + RANK_COLUMNS:
                yield Problem(
                    f"RANK returns model columns and score, not {column.value!r}",
                    column.span,
                    column_hint(column.value, MODEL_COLUMNS + RANK_COLUMNS),
                )
        yield from _check_condition(node.where, MODEL_COLUMNS + STATE_COLUMNS)
        yield from _check_datasets(node.train, "TRAINED ON")
        if node.test:
            yield from _check_datasets(node.test, "TESTED ON")
        for item in node.rankers:
            if isinstance(item, n.Strategy):
                yield from _check_strategy(item, tested=bool(node.test))
            else:
                yield from _check_ranker(item)
        yield from _check_limit(node.limit, node)
        yield from _check_other_than(node.other_than)
        yield from _check_halving(node)
    elif isinstance(node, n.VecSelect):
        if isinstance(node.source, n.Table) and TABLES.get(node.source.name) == "model":
            yield Problem(
                f"SELECT vec compares datasets; FROM {node.source.name} holds models",
                node.source.span,
                "write FROM readers, or a list of dataset names",
            )
        yield from _check_source(node.source)
        if not node.probe.strip():
            yield Problem("the probe model name is empty", node.span)
        yield from _check_condition(node.where, DATASET_COLUMNS + STATE_COLUMNS)
    elif isinstance(node, n.Union):
        if len(node.parts) < 2:
            yield Problem("UNION needs at least two queries", node.span)
        for part in node.parts:
            if not isinstance(part, n.Select | n.TaskSelect | n.Rank):
                yield Problem("UNION combines SELECT and RANK queries only", part.span)
            else:
                yield from _check(part)
    elif isinstance(node, n.Explain):
        yield from _check(node.statement)
    elif isinstance(node, n.Declare):
        if not node.name.isidentifier():
            yield Problem(f"{node.name!r} is not a valid variable name", node.span)
        if node.name.lower() in TABLES:
            yield Problem(f"{node.name!r} is a catalog table; pick another name", node.span)
        yield from _check(node.query)
    elif isinstance(node, n.Print):
        if node.name is not None and not node.name.isidentifier():
            yield Problem(f"{node.name!r} is not a valid variable name", node.span)
    elif isinstance(node, n.Use):
        yield from _check_url(node)
    elif isinstance(node, n.Register):
        if not node.name.strip():
            yield Problem(f"REGISTER {node.kind.value.upper()} needs a non-empty name", node.span)
        if not node.fields:
            yield Problem(
                f"REGISTER {node.kind.value.upper()} needs at least one column", node.span
            )
        seen: set[str] = set()
        allowed = REGISTER_COLUMNS[node.kind.value]
        for field in node.fields:
            if field.name in seen:
                yield Problem(f"column {field.name!r} is given twice", field.span or node.span)
            seen.add(field.name)
            if field.name in MEASURED_COLUMNS[node.kind.value]:
                yield Problem(
                    f"{field.name} is measured when the {node.kind.value} is registered",
                    field.span or node.span,
                    f"leave {field.name} out",
                )
            elif field.name not in allowed:
                yield Problem(
                    f"REGISTER {node.kind.value.upper()} has no column {field.name!r} "
                    f"(columns: {', '.join(allowed)})",
                    field.span or node.span,
                    _hint(field.name, list(allowed)),
                )
            elif isinstance(field.value, n.ValueList) and field.name not in LIST_COLUMNS:
                yield Problem(
                    f"{field.name} takes one value, not a list",
                    field.value.span or field.span or node.span,
                    f"lists are for {', '.join(sorted(LIST_COLUMNS))}",
                )
    elif isinstance(node, n.RegisterModels):
        if node.registry not in REGISTRY_COLUMNS:
            yield Problem(
                f"unknown model registry {node.registry!r} "
                f"(registries: {', '.join(REGISTRY_COLUMNS)})",
                node.span,
                _hint(node.registry, list(REGISTRY_COLUMNS)),
            )
        else:
            yield from _check_condition(node.where, REGISTRY_COLUMNS[node.registry])
        yield from _check_limit(node.limit, node)
    elif isinstance(node, n.Finetune):
        yield from _check_model_pool(node.models)
        yield from _check_datasets(node.datasets, "WITH")
        for param in node.params:
            spec = FINETUNE_PARAMS.get(param.name)
            if spec is None:
                yield Problem(
                    f"FINETUNE has no option {param.name!r} "
                    f"(options: {', '.join(FINETUNE_PARAMS)})",
                    param.span or node.span,
                    _hint(param.name, list(FINETUNE_PARAMS)),
                )
            elif message := spec.check(param.value.value):
                yield Problem(message, param.span or node.span)
    elif isinstance(node, n.Purge):
        pass
    elif isinstance(node, n.Drop):
        if not node.name.strip():
            yield Problem(f"DROP {node.kind.value.upper()} needs a non-empty name", node.span)
    else:  # pragma: no cover - the type union is closed
        yield Problem(f"unsupported statement {type(node).__name__}", None)


def _list_span(items: tuple[n.Node, ...]) -> tuple[int, int] | None:
    spans = [i.span for i in items if i.span is not None]
    return (spans[0][0], spans[-1][1]) if spans else None


def _check_source(source: n.Source) -> Iterator[Problem]:
    if isinstance(source, n.NameList):
        yield from _check_names(source)
    elif isinstance(source, n.Table) and source.name not in TABLES:
        yield Problem(
            f"unknown table {source.name!r}", source.span, _hint(source.name, list(TABLES))
        )
    elif isinstance(source, n.Variable) and not source.name.isidentifier():
        yield Problem(f"{source.name!r} is not a valid variable name", source.span)


def _check_model_pool(source: n.Source) -> Iterator[Problem]:
    if isinstance(source, n.Table) and TABLES.get(source.name) == "dataset":
        yield Problem(
            f"{source.name} holds datasets; the pool must be models",
            source.span,
            "use FROM models, image_models or text_models",
        )
    if isinstance(source, n.Table) and TABLES.get(source.name) == "registry":
        yield Problem(
            f"{source.name} lists what a registry offers; the pool must be registered models",
            source.span,
            "import them first: REGISTER MODELS FROM <registry> WHERE ...",
        )
    yield from _check_source(source)


def _check_names(names: n.NameList) -> Iterator[Problem]:
    if not names.names:
        yield Problem("the list of names is empty", names.span)
    for value in names.names:
        if not isinstance(value.value, str) or not value.value.strip():
            yield Problem(f"expected a non-empty quoted name, got {value.value!r}", value.span)


def _check_columns(
    columns: tuple[n.Name, ...], allowed: tuple[str, ...], task: bool
) -> Iterator[Problem]:
    allowed_all = allowed + RESULT_COLUMNS if task else allowed
    for column in columns:
        if column.value not in allowed_all:
            yield _unknown_column(column, allowed_all, task)


def _unknown_column(column: n.Name, allowed: tuple[str, ...], task: bool) -> Problem:
    if column.value in RESULT_COLUMNS and not task:
        return Problem(
            f"column {column.value!r} is measured by a task-aware query",
            column.span,
            "add TRAINED ON and TESTED ON to measure it on your data",
        )
    hint = column_hint(column.value, allowed)
    metric = "" if hint or task else _hint(column.value, METRICS)
    if metric:
        hint = (
            f"{metric} err and acc are measured by a task-aware query: add TRAINED ON and TESTED ON"
        )
    return Problem(f"unknown column {column.value!r}", column.span, hint)


def _check_condition(cond: n.Condition | None, allowed: tuple[str, ...]) -> Iterator[Problem]:
    if cond is None:
        return
    if isinstance(cond, n.And | n.Or):
        word = "AND" if isinstance(cond, n.And) else "OR"
        if len(cond.operands) < 2:
            yield Problem(f"{word} needs at least two operands", cond.span)
        for operand in cond.operands:
            if isinstance(operand, type(cond)):
                yield Problem(f"nested {word} must be flattened", operand.span)
            yield from _check_condition(operand, allowed)
        return
    if isinstance(cond, n.Not):
        yield from _check_condition(cond.operand, allowed)
        return
    if isinstance(cond, n.Finetuned):
        return
    column = cond.column
    if column.value not in allowed:
        yield _unknown_column(column, allowed, task=False)
        return
    spellings = VALUE_SPELLINGS.get(column.value)
    values: list[n.Value] = []
    if isinstance(cond, n.Compare):
        values = [cond.value]
        if cond.value.value is None:
            word = "IS NOT NULL" if cond.op is n.CmpOp.NE else "IS NULL"
            yield Problem(f"nothing equals NULL; write {column.value} {word}", cond.span)
        elif isinstance(cond.value.value, bool) and cond.op not in (n.CmpOp.EQ, n.CmpOp.NE):
            yield Problem("TRUE and FALSE can only be compared with = or !=", cond.span)
    elif isinstance(cond, n.Between):
        values = [cond.low, cond.high]
        low, high = cond.low.value, cond.high.value
        if any(v is None or isinstance(v, bool) for v in (low, high)):
            yield Problem("BETWEEN bounds must be numbers or strings", cond.span)
        elif type(low) is not type(high) and not all(
            isinstance(v, int | float) for v in (low, high)
        ):
            yield Problem("BETWEEN bounds must both be numbers or both be strings", cond.span)
        elif low > high:  # type: ignore[operator]
            yield Problem(
                f"BETWEEN bounds are reversed ({low!r} > {high!r}), so nothing would match",
                cond.span,
                f"write BETWEEN {high!r} AND {low!r}",
            )
    elif isinstance(cond, n.In):
        if (cond.values is None) == (cond.variable is None):
            yield Problem("IN needs either a list of values or a variable", cond.span)
        values = list(cond.values or ())
        if cond.values is not None and not cond.values:
            yield Problem("IN needs at least one value", cond.span)
        if any(v.value is None for v in values):
            yield Problem("NULL never matches IN; use IS NULL", cond.span)
    elif isinstance(cond, n.Like) and not isinstance(cond.pattern.value, str):
        yield Problem("LIKE needs a quoted pattern, e.g. 'efficientnet%'", cond.span)
    if spellings:
        for value in values:
            if isinstance(value.value, str) and value.value not in spellings.values():
                choices = sorted(set(spellings.values()))
                yield Problem(
                    f"{column.value} is one of {', '.join(repr(c) for c in choices)}, "
                    f"not {value.value!r}",
                    value.span or cond.span,
                    _hint(value.value, choices),
                )


def _check_order_key(key: n.OrderKey, allowed: tuple[str, ...]) -> Iterator[Problem]:
    if key.aggregate is not None:
        yield Problem(
            f"{key.aggregate.value}({key.column.value}) combines benchmark scores",
            key.span,
            "aggregates apply to a task-aware query with TESTED ON BENCHMARK",
        )
    if key.column.value not in allowed:
        yield _unknown_column(key.column, allowed, task=False)


def _check_task_order(node: n.TaskSelect) -> Iterator[Problem]:
    key = node.order
    if key.column.value not in METRICS:
        yield Problem(
            f"a task-aware query orders by err or acc, not {key.column.value!r}",
            key.column.span or key.span,
            _hint(key.column.value, METRICS)
            or "ORDER BY err ASC ranks the models with the lowest proxy error first",
        )
    if node.benchmark and key.aggregate is None:
        yield Problem("a BENCHMARK query needs an aggregate: ORDER BY avg(err) ...", key.span)
    if key.aggregate is not None and not node.benchmark:
        yield Problem(
            f"{key.aggregate.value}({key.column.value}) needs TESTED ON BENCHMARK [...]",
            key.span,
            f"write ORDER BY {key.column.value} ..., or add BENCHMARK after TESTED ON",
        )


def _check_datasets(items: tuple[n.DatasetItem, ...], what: str) -> Iterator[Problem]:
    if not items:
        yield Problem(f"{what} needs at least one dataset", None)
    for item in items:
        names = [item.name] if isinstance(item, n.Dataset) else [item.base, item.target]
        for name in names:
            if not name.strip():
                yield Problem(f"{what}: a dataset name is empty", item.span)
        if isinstance(item, n.Mutation):
            yield from _check_mutation(item, what)


def _check_mutation(item: n.Mutation, what: str) -> Iterator[Problem]:
    targets = [c.target for c in item.changes]
    for change in item.also:
        if not change.target.strip():
            yield Problem(f"{what}: a dataset name is empty", change.span or item.span)
    if len(set(targets)) != len(targets):
        yield Problem("CHANGE clauses of one mutation must name different targets", item.span)
    left: list[n.Value] = []
    for change in item.changes:
        span = change.span or item.span
        if len(change.from_labels) != len(change.to_labels):
            yield Problem(
                f"CHANGE maps {len(change.from_labels)} label(s) to {len(change.to_labels)}",
                span,
                "give the same number of labels on both sides",
            )
        if not change.from_labels:
            yield Problem("CHANGE needs at least one label", span)
        left.extend(change.from_labels)
        for label in (*change.from_labels, *change.to_labels):
            if label.value is None or isinstance(label.value, bool | float):
                yield Problem(
                    f"labels are whole numbers or strings, got {label.value!r}",
                    label.span or span,
                )
    if len(set(_label_keys(tuple(left)))) != len(left):
        yield Problem("CHANGE lists a label twice on the left", item.span)


def _label_keys(labels: tuple[n.Value, ...]) -> list[tuple[str, object]]:
    return [(type(v.value).__name__, v.value) for v in labels]


def _check_method(method: n.Method, table: dict[str, MethodSpec], what: str) -> Iterator[Problem]:
    spec = table.get(method.name)
    if spec is None:
        choices = [s.display for s in table.values()]
        yield Problem(
            f"unknown {what} {method.name!r} (known: {', '.join(choices)})",
            method.span,
            _hint(method.name, choices + list(table)),
        )
        return
    names = [p.name for p in method.params]
    if names != [p.name for p in spec.params]:
        yield Problem(
            f"{what} {spec.display} takes the parameters {[p.name for p in spec.params]}, "
            f"got {names}",
            method.span,
        )
        return
    for param in method.params:
        ps = spec.param(param.name)
        if ps is not None and (message := ps.check(param.value.value)):
            yield Problem(f"{what} {spec.display}: {message}", param.span or method.span)


def _check_ranker(method: n.Method) -> Iterator[Problem]:
    """A plain ranker after BY; an unknown name also hints at strategies and proxies."""
    if method.name in RANKERS:
        yield from _check_method(method, RANKERS, "ranker")
        return
    choices = [s.display for s in RANKERS.values()]
    proxy = find_method(CLASSIFIERS, method.name)
    if proxy is not None:
        hint = (
            f"{proxy.display} is a proxy: combine it with a ranker in a strategy, "
            f"'rank:logme+{proxy.display}' (with TESTED ON), or rank by it alone with "
            "SELECT ... CLASSIFIED BY"
        )
    else:
        hint = _hint(method.name, choices + list(RANKERS) + list(STRATEGIES))
    yield Problem(
        f"unknown ranker {method.name!r} (known: {', '.join(choices)}) and no strategy of "
        f"that name (strategies: {', '.join([*STRATEGIES, DEFAULT_NAME])}, or KIND:A+B)",
        method.span,
        hint,
    )


def _display(method: n.Method) -> str:
    spec = RANKERS.get(method.name) or CLASSIFIERS.get(method.name)
    return spec.display if spec else method.name


def _check_strategy(strategy: n.Strategy, tested: bool) -> Iterator[Problem]:
    """A strategy after BY: its kind, at least two distinct components, each a known
    ranker or proxy with valid parameters, and TESTED ON for proxies."""
    span = strategy.span
    label = repr(
        strategy.name or strategy.kind + ":" + "+".join(map(_display, strategy.components))
    )
    if strategy.name == DEFAULT_NAME:
        if strategy.kind or strategy.components:
            yield Problem(
                "the default strategy is named by the rank_strategy setting; it takes no kind "
                "or components",
                span,
            )
        return
    if strategy.name and strategy.name not in STRATEGIES:
        yield Problem(
            f"unknown strategy {strategy.name!r} (known: {', '.join(STRATEGIES)})",
            span,
            _hint(strategy.name, list(STRATEGIES)),
        )
    if strategy.kind not in STRATEGY_KINDS:
        listed = ", ".join(f"{k} ({what})" for k, what in STRATEGY_KINDS.items())
        yield Problem(
            f"strategy {label}: unknown kind {strategy.kind!r} (kinds: {listed})",
            span,
            _hint(strategy.kind, list(STRATEGY_KINDS)) or "write e.g. 'rank:logme+knn'",
        )
    if len(strategy.components) < 2:
        yield Problem(
            f"strategy {label} has {len(strategy.components)} component(s); a strategy "
            "combines at least two",
            span,
            "add a ranker or proxy after '+' (e.g. 'rank:logme+knn'), or write a single "
            'ranker without KIND: (BY "logme")',
        )
    seen: set[n.Method] = set()
    for component in strategy.components:
        if component in seen:
            yield Problem(
                f"strategy {label} lists {component.name} twice",
                span,
                "remove one of them (with other parameters it is another component)",
            )
        seen.add(component)
        if component.name in RANKERS:
            yield from _check_method(component, RANKERS, "ranker")
        elif component.name in CLASSIFIERS:
            problems = list(_check_method(component, CLASSIFIERS, "proxy"))
            yield from problems
            params = {p.name: p.value.value for p in component.params}
            if not problems and (message := classifier_problem(component.name, params)):
                yield Problem(f"proxy {CLASSIFIERS[component.name].display}: {message}", span)
            if not tested:
                yield Problem(
                    f"strategy {label}: the proxy {CLASSIFIERS[component.name].display} scores "
                    "the test rows, and this RANK has no TESTED ON",
                    span,
                    "add TESTED ON <test set>, or use the ranker knn instead (leave-one-out "
                    "k-NN accuracy on the training rows)",
                )
        else:
            rankers = [s.display for s in RANKERS.values()]
            proxies = [s.display for s in CLASSIFIERS.values()]
            yield Problem(
                f"strategy {label}: unknown component {component.name!r} (rankers: "
                f"{', '.join(rankers)}; proxies: {', '.join(proxies)})",
                span,
                _hint(component.name, rankers + proxies + list(RANKERS) + list(CLASSIFIERS)),
            )


def _check_limit(limit: int | None, node: n.Node) -> Iterator[Problem]:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        yield Problem(f"LIMIT must be a non-negative whole number, got {limit!r}", node.span)


def _check_halving(node: n.TaskSelect | n.Rank) -> Iterator[Problem]:
    """``CHUNK``/``BUDGET`` values; in a RANK, only rankers that can be halved."""
    for what, value in (("CHUNK", node.chunk), ("BUDGET", node.budget)):
        if (
            value is not None
            and value != "auto"
            and (isinstance(value, bool) or not isinstance(value, int) or value < 1)
        ):
            yield Problem(
                f"{what} must be a positive whole number or AUTO, got {value!r}", node.span
            )
    if not isinstance(node, n.Rank) or (node.chunk is None and node.budget is None):
        return
    halvable = [name for name, spec in RANKERS.items() if spec.halvable]
    if not node.rankers or any(isinstance(m, n.Strategy) for m in node.rankers):
        yield Problem(
            "CHUNK/BUDGET halve one ranker at a time, not a strategy (nor the default "
            "strategy of a RANK without BY)",
            node.span,
            f"name the rankers: BY [{', '.join(json.dumps(h) for h in halvable)}] with "
            "CHUNK/BUDGET, "
            "or drop CHUNK and BUDGET to rank by the strategy on every training row",
        )
        return
    for method in node.rankers:
        spec = RANKERS.get(method.name)
        if spec is not None and not spec.halvable:
            yield Problem(
                f"ranker {spec.display} cannot be halved with CHUNK/BUDGET; the rankers "
                f"that can are {', '.join(halvable)} (their score on a prefix of the "
                "training rows estimates their score on all of them)",
                method.span or node.span,
                f"rank BY {halvable[0]} with CHUNK/BUDGET, or drop CHUNK and BUDGET to score "
                "every training row",
            )


def _check_other_than(source: n.Source | None) -> Iterator[Problem]:
    if source is None:
        return
    if isinstance(source, n.Table):
        yield Problem("OTHER THAN takes a variable or a list of names", source.span)
    else:
        yield from _check_source(source)


def _check_url(node: n.Use) -> Iterator[Problem]:
    parts = urlsplit(node.url)
    digits = re.search(r":(\d+)$", parts.netloc)
    if digits and not 0 < int(digits.group(1)) < 65536:
        yield Problem(f"port {digits.group(1)} is out of range (1-65535)", node.span)
        return
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        yield Problem(
            f"{node.url!r} is not a broker address",
            node.span,
            'write USE host:port or USE "http://host:port"',
        )
    elif port is not None and not 0 < port < 65536:
        yield Problem(f"port {port} is out of range (1-65535)", node.span)
