"""``RANK cols FROM pool [WHERE ...] TRAINED ON d [TESTED ON d] BY "ranker(params)"``.

The candidates and datasets resolve as for a task-aware SELECT (unknown names fail with the
closest match, mixed modalities before any task). Every (model, ranker) is one content-
hashed ``rank`` task on the model's stored feature blocks of the training rows, run through
the evaluator: a RANK after a SELECT on the same data embeds nothing, and a repeated RANK
creates no task. Rankers score the training rows only; ``TESTED ON``, when given, is read
for its modality and noted as unused.

One table per ranker, best first by score (higher is better), with the bootstrap interval
of every score; ``tied_with_first`` marks the models whose interval overlaps the first's
(the measurement cannot tell them apart); ties are broken by a narrower interval, then more
rows, then the name (:func:`shift.confidence.rank_with_confidence`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from broker.context import Context
from broker.explain import PLAN_COLUMNS, explains
from broker.results import Result, Table
from broker.search_statements import Resolved, resolve
from broker.statements import handles
from shift.confidence import Scored, rank_with_confidence
from shift.errors import CatalogError
from shift.methods import RANKERS
from shift.payloads import EmbedPayload, RankPayload, RankResult, blocks_for
from shift.planner import DatasetEntry, Pair, embed_payload, train_items, train_prefix
from shift.ql import nodes as n
from shift.ql.vocabulary import MODEL_COLUMNS
from shift.specs import ModelSpec
from shift.wording import count_of

RANK_RESULT_COLUMNS = ("name", "score", "ci_low", "ci_high", "train_rows", "tied_with_first")
"""Columns of a RANK table (after any catalog columns the statement selects)."""


@dataclass(frozen=True)
class RankPlan:
    """A RANK's candidates, the embeds each needs and one payload per (model, ranker)."""

    found: Resolved
    rankers: tuple[tuple[str, dict[str, Any]], ...]
    embeds: dict[str, tuple[EmbedPayload, ...]]
    payloads: dict[tuple[str, str], RankPayload]
    notes: tuple[str, ...]


def _train_pair(statement: n.Rank) -> Pair:
    items = tuple(i if isinstance(i, n.Mutation) else i.name for i in statement.train)
    return Pair(items, "")


def _embeds(
    model: ModelSpec, pair: Pair, entries: dict[str, DatasetEntry]
) -> tuple[EmbedPayload, ...]:
    names: list[str] = []
    for item in pair.train:
        names += [item] if isinstance(item, str) else [item.base, item.target]
    out = []
    for name in dict.fromkeys(names):
        entry = entries[name]
        out += [embed_payload(model, entry, b) for b in blocks_for(entry.rows)]
    return tuple(out)


def _rankers(statement: n.Rank) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((m.name, {p.name: p.value.value for p in m.params}) for m in statement.rankers)


async def plan_rank(statement: n.Rank, ctx: Context) -> RankPlan:
    """Resolve the statement and build every task's payload (nothing runs).

    Raises:
        CatalogError: an unknown name, a dataset that cannot be read, mixed modalities.
    """
    found = await resolve(statement, ctx)
    _check_heads(statement, ctx, found)
    pair = _train_pair(statement)
    items = train_items(pair, found.entries)
    rows = train_prefix(pair, found.entries)
    rankers = _rankers(statement)
    embeds = {m.name: _embeds(m, pair, found.entries) for m in found.models}
    payloads = {
        (m.name, name): RankPayload(m, items, rows, name, params)
        for m in found.models
        for name, params in rankers
    }
    notes = list(found.notes)
    if statement.test:
        notes.append("rankers score the training rows; TESTED ON is not used by RANK")
    return RankPlan(found, rankers, embeds, payloads, tuple(notes))


def _check_heads(statement: n.Rank, ctx: Context, found: Resolved) -> None:
    """Rankers that read the source head's predictions need models that keep one.

    Raises:
        CatalogError: such a ranker and models without a source head (named, with the fix).
    """
    needing = [
        m.name for m in statement.rankers if "logits" in getattr(RANKERS.get(m.name), "needs", ())
    ]
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


def _columns(statement: n.Rank) -> list[str]:
    """The score columns; ``*`` adds every catalog column of the model after them."""
    asked = [c.value for c in statement.columns]
    if not asked:
        return [*RANK_RESULT_COLUMNS, *(c for c in MODEL_COLUMNS if c not in RANK_RESULT_COLUMNS)]
    return asked + [c for c in RANK_RESULT_COLUMNS if c not in asked]


def _table(
    statement: n.Rank, ctx: Context, name: str, scored: Sequence[tuple[str, RankResult]]
) -> Table:
    spec = RANKERS.get(name)
    title = f"{spec.display if spec else name} (score: higher is better)"
    ranked = rank_with_confidence(
        [
            Scored(
                model,
                r.score,
                r.score if r.ci_low is None else r.ci_low,
                r.score if r.ci_high is None else r.ci_high,
                max(r.train_rows, 1),
            )
            for model, r in scored
        ]
    )
    catalog_rows = {r["name"]: r for r in ctx.catalog.rows("model")}
    rows = [
        {
            **catalog_rows.get(r.name, {}),
            "name": r.name,
            "score": r.score,
            "ci_low": r.low,
            "ci_high": r.high,
            "train_rows": r.rows,
            "tied_with_first": r.tied_with_first,
        }
        for r in ranked
    ]
    if statement.limit is not None:
        rows = rows[: statement.limit]
    return Table.of(title, _columns(statement), rows)


@handles(n.Rank)
async def run_rank(statement: n.Rank, ctx: Context) -> Result:
    """RANK: score every candidate with every ranker; one table per ranker, best first."""
    planned = await plan_rank(statement, ctx)

    async def score(model: ModelSpec, name: str) -> tuple[str, RankResult]:
        payload = planned.payloads[(model.name, name)]
        return model.name, await ctx.evaluator.rank(payload, planned.embeds[model.name])

    tables = []
    names: tuple[str, ...] = ()
    for name, _ in planned.rankers:
        scored = await asyncio.gather(*(score(m, name) for m in planned.found.models))
        table = _table(statement, ctx, name, scored)
        tables.append(table)
        if not names:
            index = table.columns.index("name")
            names = tuple(str(row[index]) for row in table.rows)
    message = (
        f"{count_of(len(planned.found.models), 'model')} ranked by "
        f"{', '.join(name for name, _ in planned.rankers)} on the training rows"
    )
    return Result(tuple(tables), "; ".join([message, *planned.notes]), names)


@explains(n.Rank)
async def explain_rank(statement: n.Rank, ctx: Context) -> tuple[dict[str, Any], list[Table]]:
    """RANK's tasks per model (embeds of the training blocks, one rank task per ranker)."""
    planned = await plan_rank(statement, ctx)
    timings = await ctx.tasks.timings()
    models = []
    total: float | None = 0.0
    known_all = tasks_all = 0
    for model in planned.found.models:
        specs = [e.task() for e in planned.embeds[model.name]] + [
            planned.payloads[(model.name, name)].task() for name, _ in planned.rankers
        ]
        known = sum(1 for s in specs if ctx.tasks.state(s.task_id) == "succeeded")
        cost: float | None = 0.0
        for spec in specs:
            if ctx.tasks.state(spec.task_id) == "succeeded":
                continue
            seconds = timings.get((spec.kind, model.key), timings.get((spec.kind, "")))
            cost = None if cost is None or seconds is None else cost + seconds
        total = None if total is None or cost is None else total + cost
        known_all += known
        tasks_all += len(specs)
        rows = sum(
            e.rows for e in planned.found.entries.values() if e.spec.name in _names(statement)
        )
        models.append(
            {
                "model": model.name,
                "tasks": len(specs),
                "known": known,
                "to_run": len(specs) - known,
                "train_rows": rows,
                "test_rows": 0,
                "estimated_s": cost,
            }
        )
    body = {
        "statement": "rank",
        "rankers": [name for name, _ in planned.rankers],
        "models": models,
        "tasks": tasks_all,
        "known": known_all,
        "to_run": tasks_all - known_all,
        "estimated_s": total,
        "notes": list(planned.notes),
    }
    if total is None:
        body["notes"].append("cost unknown for tasks of a kind or model never run before")
    return body, [Table.of("plan", PLAN_COLUMNS, models)]


def _names(statement: n.Rank) -> set[str]:
    out: set[str] = set()
    for item in statement.train:
        out |= {item.base, item.target} if isinstance(item, n.Mutation) else {item.name}
    return out
