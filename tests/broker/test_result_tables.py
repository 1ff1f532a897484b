"""Result tables of task-aware and RANK queries: ``*`` columns, ties, row-count wording.

Runs the real statement handlers and evaluator over a real SQLite file, with the in-memory
task runner of :mod:`tests.broker.test_statement_handlers` scoring each model from a table
of errors.
"""

from __future__ import annotations

import pytest

from broker.context import Context, Session
from broker.evaluator import Evaluator
from broker.handlers import execute
from shift.ql import parse
from shift.ql.vocabulary import MODEL_COLUMNS
from tests.broker import test_statement_handlers as base
from tests.broker.test_statement_handlers import FakeCatalog, FakeTasks, memory, tasks

__all__ = ["memory", "tasks"]

PARAMS = {"good": 9_000_000, "fair": 5_000_000, "poor": 1_000_000}


class SizedCatalog(FakeCatalog):
    """The three models with different parameter counts."""

    def __init__(self) -> None:
        super().__init__()
        for name, entry in self._entries["model"].items():
            entry.measured = {**entry.measured, "num_params": PARAMS[name]}


@pytest.fixture
def ctx(tasks: FakeTasks, memory) -> Context:
    async def persist(name: str, names: list[str]) -> None:
        return None

    evaluator = Evaluator(tasks, memory)
    return Context(SizedCatalog(), Session({}, persist), tasks, evaluator, memory)  # type: ignore[arg-type]


SEARCH = (
    'SELECT * FROM models ORDER BY err ASC TRAINED ON "train" TESTED ON "test" '
    'CLASSIFIED BY ["Cosine NN"]'
)


def _column(table, name: str) -> list:
    index = table.columns.index(name)
    return [row[index] for row in table.rows]


async def test_star_in_a_search_adds_the_catalog_columns_after_the_scores(ctx):
    (table,) = (await execute(parse(SEARCH), ctx)).tables
    assert table.columns[:6] == ("name", "err", "acc", "train_rows", "test_rows", "tied")
    assert set(MODEL_COLUMNS) <= set(table.columns)
    assert len(table.columns) == len(set(table.columns))
    assert _column(table, "num_params") == [9_000_000, 5_000_000, 1_000_000]
    assert _column(table, "source") == ["timm"] * 3


async def test_star_in_halving_and_rank_adds_the_catalog_columns(ctx):
    (table,) = (await execute(parse(SEARCH + " CHUNK 128 BUDGET AUTO"), ctx)).tables
    assert "eliminated_in" in table.columns and "num_params" in table.columns
    ranked = await execute(parse('RANK * FROM models TRAINED ON "train" BY "logme"'), ctx)
    (table,) = ranked.tables
    assert table.columns[:6] == (
        "name",
        "score",
        "ci_low",
        "ci_high",
        "train_rows",
        "tied_with_first",
    )
    assert _column(table, "num_params") == [9_000_000, 5_000_000, 1_000_000]
    named = await execute(parse('RANK name, gflops FROM models TRAINED ON "train" BY "logme"'), ctx)
    assert named.tables[0].columns[:2] == ("name", "gflops")
    assert "num_params" not in named.tables[0].columns


async def test_models_tied_at_err_zero_go_by_the_tie_rule_and_are_marked(ctx, monkeypatch):
    for name in base.ERRORS:
        monkeypatch.setitem(base.ERRORS, name, 0.0)
    (table,) = (await execute(parse(SEARCH), ctx)).tables
    # equal err on equal rows: fewer parameters first, not the name ("fair" < "good" < "poor")
    assert _column(table, "name") == ["poor", "fair", "good"]
    assert _column(table, "tied") == [True, True, True]
    limited = await execute(parse(SEARCH + " LIMIT 1"), ctx)
    assert limited.names == ("poor",)


async def test_an_untied_ranking_says_so(ctx):
    (table,) = (await execute(parse(SEARCH), ctx)).tables
    assert _column(table, "name") == ["good", "fair", "poor"]
    assert _column(table, "tied") == [False, False, False]


async def test_a_catalog_query_words_its_row_count_like_the_table(ctx):
    assert (await execute(parse("SELECT name FROM models"), ctx)).message == "3 rows"
    one = await execute(parse("SELECT name FROM models WHERE name = 'good'"), ctx)
    assert one.message == "1 row"
    union = await execute(parse("SELECT name FROM models UNION SELECT name FROM models"), ctx)
    assert union.message == "3 rows"
