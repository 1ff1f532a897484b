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
from dataclasses import astuple, dataclass
from typing import Any

from broker import rank_halving
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


def is_halving(statement: n.Rank) -> bool:
    """True when the RANK halves over training prefixes (``CHUNK`` or ``BUDGET``)."""
    return statement.chunk is not None or statement.budget is not None


def _halving_table(statement: n.Rank, ctx: Context, outcome: rank_halving.RankOutcome) -> Table:
    """A halving RANK's table: the finalists ranked as the exhaustive RANK ranks them
    (their scores are its scores), then each round's eliminated models, later rounds
    first, by score; ``eliminated_in`` names the round."""
    finalists = [(r.name, r.result) for r in outcome.rows if r.eliminated_in is None]
    table = _table(
        n.Rank(statement.columns, statement.source, statement.train, (), statement.rankers),
        ctx,
        outcome.search.ranker,
        finalists,
    )
    catalog_rows = {r["name"]: r for r in ctx.catalog.rows("model")}
    rows = [
        {**dict(zip(table.columns, row, strict=True)), "eliminated_in": None} for row in table.rows
    ]
    for line in outcome.rows:
        if line.eliminated_in is None:
            continue
        r = line.result
        rows.append(
            {
                **catalog_rows.get(line.name, {}),
                "name": line.name,
                "score": r.score,
                "ci_low": r.score if r.ci_low is None else r.ci_low,
                "ci_high": r.score if r.ci_high is None else r.ci_high,
                "train_rows": r.train_rows,
                "tied_with_first": False,
                "eliminated_in": line.eliminated_in,
            }
        )
    if statement.limit is not None:
        rows = rows[: statement.limit]
    return Table.of(table.title, [*table.columns, "eliminated_in"], rows)


async def run_rank_halving(statement: n.Rank, ctx: Context) -> Result:
    """RANK with CHUNK/BUDGET: one plain-halving machine per ranker (docs/halving.md)."""
    planned = await plan_rank(statement, ctx)
    searches = rank_halving.searches(statement, planned.found.models, planned.found.entries)
    outcomes = await asyncio.gather(*(rank_halving.run_rank_halving(s, ctx) for s in searches))
    tables = tuple(_halving_table(statement, ctx, o) for o in outcomes)
    index = tables[0].columns.index("name")
    names = tuple(str(row[index]) for row in tables[0].rows)
    schedule = outcomes[0].machine.schedule
    message = (
        f"{count_of(len(planned.found.models), 'model')} ranked by "
        f"{', '.join(name for name, _ in planned.rankers)} with successive halving: "
        f"{count_of(len(schedule.rounds), 'round')}, CHUNK {schedule.chunk_rows}, "
        f"BUDGET {schedule.budget_pulls}; finalists scored on {schedule.final_rows} "
        "training rows"
    )
    return Result(tables, "; ".join([message, *planned.notes]), names)


@handles(n.Rank)
async def run_rank(statement: n.Rank, ctx: Context) -> Result:
    """RANK: score every candidate with every ranker; one table per ranker, best first."""
    if is_halving(statement):
        return await run_rank_halving(statement, ctx)
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
    """RANK's tasks per model (embeds of the training blocks, one rank task per ranker);
    with CHUNK/BUDGET, the halving rounds per ranker instead."""
    if is_halving(statement):
        return await _explain_rank_halving(statement, ctx)
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


RANK_ROUND_COLUMNS = (
    "round",
    "arms",
    "train_rows",
    "advancing",
    "embeds",
    "ranks",
    "known",
    "to_run",
    "estimated_s",
)
"""Columns of a halving RANK's schedule table."""


async def _explain_rank_halving(
    statement: n.Rank, ctx: Context
) -> tuple[dict[str, Any], list[Table]]:
    """A halving RANK: per ranker, the rounds (training rows, tasks known and to run,
    estimated cost) and, after a run, every model's score per round."""
    planned = await plan_rank(statement, ctx)
    timings = await ctx.tasks.timings()
    body_searches: list[dict[str, Any]] = []
    tables: list[Table] = []
    totals = {"tasks": 0, "known": 0, "to_run": 0}
    estimate: float | None = 0.0
    for search in rank_halving.searches(statement, planned.found.models, planned.found.entries):
        machine = await rank_halving.stored_machine(search, ctx)
        schedule = search.config().schedule()
        rounds = [
            dict(zip(RANK_ROUND_COLUMNS, astuple(r), strict=True))
            for r in rank_halving.round_plan(search, machine, ctx.tasks.state, timings)
        ]
        for r in rounds:
            totals["tasks"] += r["known"] + r["to_run"]
            totals["known"] += r["known"]
            totals["to_run"] += r["to_run"]
            step = r["estimated_s"]
            estimate = None if estimate is None or step is None else estimate + step
        scores = [
            {"model": s.arm, "round": s.round, "train_rows": s.train_rows, "score": -s.loss}
            for s in (machine.scores() if machine is not None else [])
        ]
        body_searches.append(
            {
                "ranker": search.ranker,
                "schedule": {**schedule.to_dict(), "rounds": rounds},
                "scores": scores,
            }
        )
        tables.append(Table.of(f"schedule ({search.ranker})", RANK_ROUND_COLUMNS, rounds))
        if scores:
            tables.append(Table.of(f"scores ({search.ranker})", list(scores[0]), scores))
    body: dict[str, Any] = {
        "statement": "rank (successive halving)",
        "rankers": [name for name, _ in planned.rankers],
        **totals,
        "estimated_s": estimate,
        "halving": body_searches,
        "notes": [
            *planned.notes,
            "halving: plain halving on training prefixes (no test set to race on); rounds "
            "whose models are not known yet count the planned number of models",
        ],
    }
    if estimate is None:
        body["notes"].append("cost unknown for tasks of a kind or model never run before")
    return body, tables
