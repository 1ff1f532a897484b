"""The plan of a RANK: its output tables (rankers and strategies), the distinct methods they
need, and every task's payload (nothing runs here).

A RANK's ``BY`` lists rankers and strategies (:mod:`shift.strategies`); no ``BY``, or
``BY "default"``, is the strategy the ``rank_strategy`` setting names. Each distinct
method is scored once per model, however many outputs use it: a ranker as one content-
hashed ``rank`` task on the training rows (the same task a plain ``RANK ... BY`` creates), a
proxy as the ``classify`` evaluations a ``SELECT ... CLASSIFIED BY`` on the same data
creates (:func:`shift.planner.plan`), so every cached result is reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.context import Context
from broker.search_statements import Resolved, resolve
from shift.errors import CatalogError, Diagnostic, QueryError, SettingsError
from shift.methods import CLASSIFIERS, RANKERS
from shift.payloads import EmbedPayload, RankPayload, blocks_for
from shift.planner import (
    ClassifyTask,
    DatasetEntry,
    Pair,
    embed_payload,
    plan,
    train_items,
    train_prefix,
)
from shift.ql import nodes as n
from shift.ql import parse
from shift.specs import ModelSpec
from shift.strategies import DEFAULT_NAME, KINDS, find_strategy

Output = n.Method | n.Strategy
"""One output table: a plain ranker or a resolved strategy (never ``default``)."""


def default_strategy(text: str) -> n.Strategy:
    """The strategy the ``rank_strategy`` setting names (a registered name or ``KIND:A+B``).

    Raises:
        SettingsError: the value is not a valid strategy; the message says why.
    """
    quoted = '"' + text.replace('"', '""') + '"'
    try:
        found = parse(f'RANK * FROM models TRAINED ON "x" TESTED ON "x" BY {quoted}')
    except QueryError as error:
        reason = error.first.message
        hint = f" ({error.first.hint})" if error.first.hint else ""
        raise SettingsError(
            f"setting rank_strategy {text!r} is not a strategy: {reason}{hint}; name a "
            "registered strategy (docs/rankers.md) or write KIND:A+B"
        ) from None
    strategy = found.rankers[0] if isinstance(found, n.Rank) and found.rankers else None
    if not isinstance(strategy, n.Strategy) or strategy.name == DEFAULT_NAME:
        raise SettingsError(
            f"setting rank_strategy {text!r} is not a strategy; name a registered strategy "
            "(docs/rankers.md) or write KIND:A+B, e.g. 'rank:logme+knn'"
        )
    return strategy


def outputs(statement: n.Rank, setting: str) -> tuple[Output, ...]:
    """The statement's output tables in order, ``default`` resolved through ``setting``.

    Raises:
        SettingsError: the setting names no valid strategy.
        QueryError: the default strategy has a proxy and the statement no ``TESTED ON``.
    """
    written = statement.rankers or (n.Strategy("", (), DEFAULT_NAME),)
    out: list[Output] = []
    for item in written:
        if isinstance(item, n.Strategy) and item.name == DEFAULT_NAME:
            item = default_strategy(setting)
            proxies = [c for c in item.components if c.name in CLASSIFIERS]
            spec = find_strategy(item.name) if item.name else None
            if proxies and not statement.test and spec is not None and spec.without_test:
                item = default_strategy(spec.without_test)
            elif proxies and not statement.test:
                shown = ", ".join(CLASSIFIERS[c.name].display for c in proxies)
                raise QueryError(
                    Diagnostic(
                        f"the default strategy ({label(item)}, the rank_strategy setting) "
                        f"has the proxy {shown}, which scores the test rows, and this RANK "
                        "has no TESTED ON",
                        0,
                        0,
                        hint="add TESTED ON <test set>, or name a strategy of rankers only "
                        '(BY "logme_knn")',
                        source="<query>",
                    )
                )
        out.append(item)
    return tuple(out)


def display(method: n.Method) -> str:
    """A method's display name (``Cosine NN``, ``logme``)."""
    spec = RANKERS.get(method.name) or CLASSIFIERS.get(method.name)
    return spec.display if spec else method.name


def label(output: Output) -> str:
    """How an output reads in titles and messages: ``logme``, ``rank:logme+knn``,
    ``logme_knn = rank:logme+knn``."""
    if isinstance(output, n.Method):
        return display(output)
    inline = f"{output.kind}:" + "+".join(display(c) for c in output.components)
    return f"{output.name} = {inline}" if output.name else inline


def methods_of(items: tuple[Output, ...]) -> tuple[n.Method, ...]:
    """Every distinct method the outputs read, in first-use order."""
    found: list[n.Method] = []
    for item in items:
        for method in item.components if isinstance(item, n.Strategy) else (item,):
            if method not in found:
                found.append(method)
    return tuple(found)


def params_of(method: n.Method) -> dict[str, Any]:
    """A method's parameters as a dict."""
    return {p.name: p.value.value for p in method.params}


@dataclass(frozen=True)
class RankPlan:
    """A RANK's outputs, the methods they read and every task's payload.

    Attributes:
        found: Candidate models and dataset entries.
        outputs: The output tables, in order.
        methods: The distinct methods the outputs read.
        embeds: Per model, the feature blocks its tasks read (test blocks only with proxies).
        payloads: ``rank`` payloads by (model, ranker method).
        classifies: Per (model, proxy method), its classify evaluations (one per test set).
        proxy_select: The ``SELECT ... CLASSIFIED BY`` the proxies' evaluations equal (its
            scores pool the test sets), or ``None`` without proxies.
        notes: What the user should know.
    """

    found: Resolved
    outputs: tuple[Output, ...]
    methods: tuple[n.Method, ...]
    embeds: dict[str, tuple[EmbedPayload, ...]]
    payloads: dict[tuple[str, n.Method], RankPayload]
    classifies: dict[tuple[str, n.Method], tuple[ClassifyTask, ...]]
    proxy_select: n.TaskSelect | None
    notes: tuple[str, ...]

    @property
    def rankers(self) -> tuple[n.Method, ...]:
        """The ranker methods."""
        return tuple(m for m in self.methods if m.name in RANKERS)

    @property
    def proxies(self) -> tuple[n.Method, ...]:
        """The proxy methods."""
        return tuple(m for m in self.methods if m.name in CLASSIFIERS)


def _train_pair(statement: n.Rank) -> Pair:
    items = tuple(i if isinstance(i, n.Mutation) else i.name for i in statement.train)
    return Pair(items, "")


def _train_embeds(
    model: ModelSpec, pair: Pair, entries: dict[str, DatasetEntry]
) -> list[EmbedPayload]:
    names: list[str] = []
    for item in pair.train:
        names += [item] if isinstance(item, str) else [item.base, item.target]
    out = []
    for name in dict.fromkeys(names):
        entry = entries[name]
        out += [embed_payload(model, entry, b) for b in blocks_for(entry.rows)]
    return out


def _proxy_select(statement: n.Rank, proxies: tuple[n.Method, ...]) -> n.TaskSelect:
    return n.TaskSelect(
        (),
        statement.source,
        n.OrderKey(n.Name("err")),
        statement.train,
        statement.test,
        proxies,
        statement.where,
        other_than=statement.other_than,
    )


async def plan_rank(statement: n.Rank, ctx: Context) -> RankPlan:
    """Resolve the statement and build every task's payload (nothing runs).

    Raises:
        CatalogError: an unknown name, a dataset that cannot be read, mixed modalities,
            or a ranker that needs a source head on a model without one.
        QueryError: the default strategy needs TESTED ON.
        SettingsError: the ``rank_strategy`` setting names no valid strategy.
    """
    items = outputs(statement, ctx.rank_strategy)
    methods = methods_of(items)
    found = await resolve(statement, ctx)
    _check_heads(methods, ctx, found)
    pair = _train_pair(statement)
    train = train_items(pair, found.entries)
    rows = train_prefix(pair, found.entries)
    embeds = {m.name: _train_embeds(m, pair, found.entries) for m in found.models}
    payloads = {
        (m.name, method): RankPayload(m, train, rows, method.name, params_of(method))
        for m in found.models
        for method in methods
        if method.name in RANKERS
    }
    proxies = tuple(m for m in methods if m.name in CLASSIFIERS)
    classifies: dict[tuple[str, n.Method], tuple[ClassifyTask, ...]] = {}
    select = None
    if proxies:
        select = _proxy_select(statement, proxies)
        planned = plan(select, found.models, found.entries)
        for payload in planned.embed_payloads:
            listed = embeds[payload.model.name]
            if payload not in listed:
                listed.append(payload)
        for method in proxies:
            for model in found.models:
                classifies[(model.name, method)] = tuple(
                    c
                    for c in planned.classifies
                    if c.model == model.name
                    and c.classifier == method.name
                    and c.payload.params == params_of(method)
                )
    notes = list(found.notes)
    if statement.test and not proxies:
        notes.append("rankers score the training rows; TESTED ON is not used by RANK")
    return RankPlan(
        found,
        items,
        methods,
        {name: tuple(e) for name, e in embeds.items()},
        payloads,
        classifies,
        select,
        tuple(notes),
    )


def _check_heads(methods: tuple[n.Method, ...], ctx: Context, found: Resolved) -> None:
    """Rankers that read the source head's predictions need models that keep one.

    Raises:
        CatalogError: such a ranker and models without a source head (named, with the fix).
    """
    needing = [m.name for m in methods if "logits" in getattr(RANKERS.get(m.name), "needs", ())]
    if not needing:
        return
    headless = [
        m.name
        for m in found.models
        if not (ctx.catalog.get("model", m.name).measured or {}).get("source_classes")
    ]
    if headless:
        names = ", ".join(repr(h) for h in headless)
        raise CatalogError(
            f"{' and '.join(needing)} read the source classifier's predictions, and "
            f"{names} keep no source head (random-init controls, truncations, headless "
            "checkpoints); rank them with a ranker that reads features (logme, sfda, hscore, "
            "transrate, knn) or leave them out with WHERE name NOT IN (...)"
        )


def describe(output: Output) -> dict[str, Any]:
    """An output for EXPLAIN JSON: a ranker's name, or a strategy's kind and components."""
    if isinstance(output, n.Method):
        return {"ranker": output.name, "params": params_of(output)}
    return {
        "strategy": output.name or label(output),
        "kind": output.kind,
        "combines": KINDS[output.kind],
        "components": [
            {
                "method": c.name,
                "params": params_of(c),
                "reads": "test rows (classify)" if c.name in CLASSIFIERS else "training rows",
            }
            for c in output.components
        ],
    }
