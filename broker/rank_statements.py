"""``RANK cols FROM pool [WHERE ...] TRAINED ON d [TESTED ON d] [BY rankers and strategies]``.

The candidates and datasets resolve as for a task-aware SELECT (unknown names fail with the
closest match, mixed modalities before any task); :mod:`broker.rank_plan` builds the tasks.
Every (model, ranker) is one content-hashed ``rank`` task on the model's stored feature
blocks of the training rows, and every (model, proxy) of a strategy the ``classify``
evaluations a SELECT on the same data runs, all through the evaluator: a RANK after a
SELECT on the same data embeds nothing, a repeated RANK creates no task, and a strategy
after a RANK with the same rankers creates only the missing tasks.

One table per ranker, best first by score (higher is better), with the bootstrap interval
of every score; ``tied_with_first`` marks the models whose interval overlaps the first's;
ties are broken by a narrower interval, then more rows, then the name
(:func:`shift.confidence.rank_with_confidence`). One table per strategy, best first by the
combined score, with each component's score and position
(:func:`shift.strategies.rank_strategy`: :data:`~shift.strategies.TIED_RULE`,
:data:`~shift.strategies.TIE_RULE`). No ``BY``: the default strategy (the ``rank_strategy``
setting).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import astuple
from typing import Any

from broker import rank_halving
from broker.context import Context
from broker.evaluator import dataset_sizes
from broker.explain import PLAN_COLUMNS, explains, task_seconds
from broker.rank_plan import RankPlan, describe, display, label, plan_rank
from broker.results import Result, Table
from broker.statements import handles
from shift.confidence import Scored, binomial_interval, rank_with_confidence
from shift.methods import CLASSIFIERS, RANKERS
from shift.payloads import RankResult
from shift.planner import score_of
from shift.ql import nodes as n
from shift.ql.vocabulary import MODEL_COLUMNS
from shift.strategies import KINDS, TIE_RULE, TIED_RULE, rank_strategy
from shift.wording import count_of

RANK_RESULT_COLUMNS = ("name", "score", "ci_low", "ci_high", "train_rows", "tied_with_first")
"""Columns of a ranker's table (after any catalog columns the statement selects)."""

STRATEGY_RESULT_COLUMNS = ("name", "score", "tied_with_first")
"""The first columns of a strategy's table; each component's score and ``_rank`` follow."""


def _columns(statement: n.Rank) -> list[str]:
    """The score columns; ``*`` adds every catalog column of the model after them."""
    asked = [c.value for c in statement.columns]
    if not asked:
        return [*RANK_RESULT_COLUMNS, *(c for c in MODEL_COLUMNS if c not in RANK_RESULT_COLUMNS)]
    return asked + [c for c in RANK_RESULT_COLUMNS if c not in asked]


def _ranker_scored(model: str, result: RankResult) -> Scored:
    low = result.score if result.ci_low is None else result.ci_low
    high = result.score if result.ci_high is None else result.ci_high
    return Scored(model, result.score, low, high, max(result.train_rows, 1))


def _proxy_scored(model: str, figures: Mapping[str, Any]) -> Scored:
    """A proxy's accuracy on the test rows with the Wilson interval of its error, flipped."""
    rows = max(int(figures["test_rows"]), 1)
    err = min(max(float(figures["err"]), 0.0), 1.0)
    interval = binomial_interval(err, rows)
    return Scored(model, 1.0 - err, 1.0 - interval.high, 1.0 - interval.low, rows)


def _catalog_rows(ctx: Context) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in ctx.catalog.rows("model")}


def _ranker_table(
    statement: n.Rank, ctx: Context, method: n.Method, scored: Mapping[str, Scored]
) -> Table:
    title = f"{display(method)} (score: higher is better)"
    ranked = rank_with_confidence(list(scored.values()))
    catalog_rows = _catalog_rows(ctx)
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


def component_columns(strategy: n.Strategy) -> list[str]:
    """A strategy's per-component columns: ``<method>`` (its score) and ``<method>_rank``
    (its position in that component's ranking); a method used twice with other parameters
    gets its position in the strategy appended (``knn_1``, ``knn_2``)."""
    names = [c.name for c in strategy.components]
    out = []
    for index, name in enumerate(names, 1):
        column = name if names.count(name) == 1 else f"{name}_{index}"
        out += [column, f"{column}_rank"]
    return out


def _strategy_table(
    statement: n.Rank,
    ctx: Context,
    strategy: n.Strategy,
    scores: Mapping[n.Method, Mapping[str, Scored]],
) -> Table:
    ranked = rank_strategy(strategy.kind, [scores[c] for c in strategy.components])
    columns = component_columns(strategy)
    catalog_rows = _catalog_rows(ctx)
    rows = []
    for r in ranked:
        row: dict[str, Any] = {
            **catalog_rows.get(r.name, {}),
            "name": r.name,
            "score": r.score,
            "tied_with_first": r.tied_with_first,
        }
        for index, (c, position) in enumerate(zip(r.components, r.positions, strict=True)):
            row[columns[2 * index]] = c.score
            row[columns[2 * index + 1]] = position
        rows.append(row)
    if statement.limit is not None:
        rows = rows[: statement.limit]
    first = list(STRATEGY_RESULT_COLUMNS) + columns
    asked = [c.value for c in statement.columns]
    if asked:
        shown = asked + [c for c in first if c not in asked]
    else:
        shown = first + [c for c in MODEL_COLUMNS if c not in first]
    title = f"{label(strategy)} ({KINDS[strategy.kind]}; higher is better)"
    return Table.of(title, shown, rows)


async def _scores(planned: RankPlan, ctx: Context) -> dict[n.Method, dict[str, Scored]]:
    """Every distinct method's score of every model, through the evaluator."""
    models = planned.found.models
    sizes = dataset_sizes(planned.found.entries)

    async def ranker(model: str, method: n.Method) -> Scored:
        payload = planned.payloads[(model, method)]
        return _ranker_scored(model, await ctx.evaluator.rank(payload, planned.embeds[model]))

    async def proxy(model: str, method: n.Method) -> Scored:
        await ctx.evaluator.embed(planned.embeds[model])
        tasks = planned.classifies[(model, method)]
        results = await asyncio.gather(*(ctx.evaluator.classify(t.payload, sizes) for t in tasks))
        if planned.proxy_select is None:  # pragma: no cover - proxies imply a select
            raise RuntimeError("proxy without its select")
        return _proxy_scored(model, score_of(planned.proxy_select, results))

    jobs = [
        (method, m.name, (proxy if method.name in CLASSIFIERS else ranker)(m.name, method))
        for method in planned.methods
        for m in models
    ]
    found = await asyncio.gather(*(job for _, _, job in jobs))
    out: dict[n.Method, dict[str, Scored]] = {method: {} for method in planned.methods}
    for (method, model, _), scored in zip(jobs, found, strict=True):
        out[method][model] = scored
    return out


def is_halving(statement: n.Rank) -> bool:
    """True when the RANK halves over training prefixes (``CHUNK`` or ``BUDGET``)."""
    return statement.chunk is not None or statement.budget is not None


def _halving_table(
    statement: n.Rank, ctx: Context, method: n.Method, outcome: rank_halving.RankOutcome
) -> Table:
    """A halving RANK's table: the finalists ranked as the exhaustive RANK ranks them
    (their scores are its scores), then each round's eliminated models, later rounds
    first, by score; ``eliminated_in`` names the round."""
    finalists = {
        r.name: _ranker_scored(r.name, r.result) for r in outcome.rows if r.eliminated_in is None
    }
    unlimited = n.Rank(statement.columns, statement.source, statement.train, (), statement.rankers)
    table = _ranker_table(unlimited, ctx, method, finalists)
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
    methods = [m for m in statement.rankers if isinstance(m, n.Method)]
    tables = tuple(
        _halving_table(statement, ctx, m, o) for m, o in zip(methods, outcomes, strict=True)
    )
    index = tables[0].columns.index("name")
    names = tuple(str(row[index]) for row in tables[0].rows)
    schedule = outcomes[0].machine.schedule
    message = (
        f"{count_of(len(planned.found.models), 'model')} ranked by "
        f"{', '.join(label(o) for o in planned.outputs)} with successive halving: "
        f"{count_of(len(schedule.rounds), 'round')}, CHUNK {schedule.chunk_rows}, "
        f"BUDGET {schedule.budget_pulls}; finalists scored on {schedule.final_rows} "
        "training rows"
    )
    return Result(tables, "; ".join([message, *planned.notes]), names)


@handles(n.Rank)
async def run_rank(statement: n.Rank, ctx: Context) -> Result:
    """RANK: one table per ranker and per strategy, best first; with CHUNK/BUDGET one
    halving machine per ranker."""
    if is_halving(statement):
        return await run_rank_halving(statement, ctx)
    planned = await plan_rank(statement, ctx)
    scores = await _scores(planned, ctx)
    tables = []
    for output in planned.outputs:
        if isinstance(output, n.Strategy):
            tables.append(_strategy_table(statement, ctx, output, scores))
        else:
            tables.append(_ranker_table(statement, ctx, output, scores[output]))
    names: tuple[str, ...] = ()
    if tables:
        index = tables[0].columns.index("name")
        names = tuple(str(row[index]) for row in tables[0].rows)
    where = "the training rows" + (" and the test rows" if planned.proxies else "")
    message = (
        f"{count_of(len(planned.found.models), 'model')} ranked by "
        f"{', '.join(label(o) for o in planned.outputs)} on {where}"
    )
    if any(isinstance(o, n.Strategy) for o in planned.outputs):
        message += f"; strategies: {TIED_RULE}"
    return Result(tuple(tables), "; ".join([message, *planned.notes]), names)


def _model_specs(planned: RankPlan, model: str) -> list[Any]:
    specs = [e.task() for e in planned.embeds[model]]
    for method in planned.methods:
        if method.name in RANKERS:
            specs.append(planned.payloads[(model, method)].task())
        else:
            specs += [t.spec for t in planned.classifies[(model, method)]]
    return specs


@explains(n.Rank)
async def explain_rank(statement: n.Rank, ctx: Context) -> tuple[dict[str, Any], list[Table]]:
    """RANK's tasks per model (embeds, one rank task per ranker, the proxies' classify
    evaluations), what each output combines, and the estimated cost; with CHUNK/BUDGET, the
    halving rounds per ranker instead."""
    if is_halving(statement):
        return await _explain_rank_halving(statement, ctx)
    planned = await plan_rank(statement, ctx)
    timings = await ctx.tasks.timings()
    models = []
    total: float | None = 0.0
    known_all = tasks_all = 0
    train_rows = sum(
        e.rows for e in planned.found.entries.values() if e.spec.name in _names(statement.train)
    )
    test_rows = (
        sum(e.rows for e in planned.found.entries.values() if e.spec.name in _names(statement.test))
        if planned.proxies
        else 0
    )
    for model in planned.found.models:
        specs = _model_specs(planned, model.name)
        known = sum(1 for s in specs if ctx.tasks.state(s.task_id) == "succeeded")
        cost: float | None = 0.0
        for spec in specs:
            if ctx.tasks.state(spec.task_id) == "succeeded":
                continue
            seconds = task_seconds(timings, spec.kind, model.key)
            cost = None if cost is None or seconds is None else cost + seconds
        total = None if total is None or cost is None else total + cost
        known_all += known
        tasks_all += len(specs)
        models.append(
            {
                "model": model.name,
                "tasks": len(specs),
                "known": known,
                "to_run": len(specs) - known,
                "train_rows": train_rows,
                "test_rows": test_rows,
                "estimated_s": cost,
            }
        )
    strategies = [o for o in planned.outputs if isinstance(o, n.Strategy)]
    notes = list(planned.notes)
    for strategy in strategies:
        notes.append(
            f"strategy {label(strategy)}: {KINDS[strategy.kind]} of "
            f"{', '.join(display(c) for c in strategy.components)}"
        )
    if strategies:
        notes += [f"tied_with_first: {TIED_RULE}", f"order: {TIE_RULE}"]
    body = {
        "statement": "rank",
        "rankers": [label(o) for o in planned.outputs],
        "outputs": [describe(o) for o in planned.outputs],
        "models": models,
        "tasks": tasks_all,
        "known": known_all,
        "to_run": tasks_all - known_all,
        "estimated_s": total,
        "notes": notes,
    }
    if total is None:
        body["notes"].append("cost unknown for tasks of a kind or model never run before")
    return body, [Table.of("plan", PLAN_COLUMNS, models)]


def _names(items: Sequence[n.DatasetItem]) -> set[str]:
    out: set[str] = set()
    for item in items:
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
        "rankers": [label(o) for o in planned.outputs],
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
