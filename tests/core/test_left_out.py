"""The one-line note for rows a statement left out: a count per reason and a catalog query
that lists them, which parses and reads the same pool."""

from __future__ import annotations

import pytest

from shift.left_out import left_out_note
from shift.ql import nodes as n
from shift.ql import parse

MANY = [f"m{i}" for i in range(40)]


def _pool(text: str) -> n.TaskSelect:
    statement = parse(text)
    assert isinstance(statement, n.TaskSelect)
    return statement


def _note(statement: n.TaskSelect, failed, other, data) -> str | None:
    return left_out_note(
        "model", statement.source, statement.where, statement.other_than, failed, other, data
    )


def test_nothing_left_out_says_nothing() -> None:
    statement = _pool("SELECT name FROM models TRAINED ON a TESTED ON b")
    assert _note(statement, [], {}, "vision") is None
    assert _note(statement, [], {"text": []}, "vision") is None


def test_one_line_with_a_count_per_reason_however_many_models() -> None:
    statement = _pool("SELECT name FROM models TRAINED ON a TESTED ON b")
    note = _note(statement, MANY[:3], {"vision": MANY[3:], "audio": ["x"]}, "text")
    assert note == (
        "left out 41 model(s): 3 failed to load, 1 audio (text data), 37 vision (text data); "
        'list them: SELECT name, modality, status, error FROM models WHERE status = "failed" '
        'OR modality != "text"'
    )
    assert "\n" not in note and not any(name in note for name in MANY)


def test_the_listing_query_keeps_the_pool_where_and_other_than() -> None:
    statement = _pool(
        "SELECT name FROM image_models WHERE num_params < 10M AND license = 'mit' "
        "TRAINED ON a TESTED ON b OTHER THAN done"
    )
    note = _note(statement, ["bad"], {}, "vision")
    assert note is not None
    listing = note.split("list them: ", 1)[1]
    assert listing == (
        "SELECT name, modality, status, error FROM image_models WHERE num_params < 10000000 AND "
        'license = "mit" AND status = "failed" OTHER THAN done'
    )
    tree = parse(listing)
    assert isinstance(tree, n.Select) and tree.other_than == n.Variable("done")


@pytest.mark.parametrize(
    "pool",
    [
        'SELECT name FROM ["a", "b"] WHERE up_acc > 0.5 OR gflops < 1 TRAINED ON a TESTED ON b',
        "SELECT name FROM mine TRAINED ON a TESTED ON b",
    ],
)
def test_the_listing_query_parses_for_every_source(pool: str) -> None:
    note = _note(_pool(pool), ["a"], {"text": ["b"]}, "vision")
    assert note is not None
    listing = parse(note.split("list them: ", 1)[1])
    assert isinstance(listing, n.Select)
    assert [c.value for c in listing.columns] == ["name", "modality", "status", "error"]


def test_datasets_that_could_not_be_read() -> None:
    statement = parse('SELECT vec FROM readers WHERE probe = "m" AND size > 10')
    assert isinstance(statement, n.VecSelect)
    note = left_out_note("dataset", statement.source, statement.where, None, ["x", "y"], {}, None)
    assert note == (
        "left out 2 dataset(s): 2 could not be read; list them: SELECT name, modality, status, "
        'error FROM readers WHERE size > 10 AND status = "failed"'
    )
