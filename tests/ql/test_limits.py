"""Hostile query texts: too long, nested too deep, numbers too long. Each gets a located
QueryError that names the limit, never a RecursionError, MemoryError or ValueError."""

from __future__ import annotations

import time

import pytest

from shift.errors import QueryError
from shift.ql import dumps, parse, parse_script, render
from shift.ql.limits import MAX_DEPTH, MAX_NUMBER_CHARS, MAX_QUERY_CHARS

WHERE = "SELECT * FROM models WHERE "


def _error(text: str) -> QueryError:
    with pytest.raises(QueryError) as caught:
        parse_script(text)
    return caught.value


def test_a_15_mb_text_is_refused_at_once() -> None:
    text = WHERE + "name IN (" + ",".join(["'m'"] * 4_000_000) + ")"
    assert len(text) > 15_000_000
    started = time.perf_counter()
    error = _error(text)
    assert time.perf_counter() - started < 5.0
    (diagnostic,) = error.diagnostics
    assert f"{MAX_QUERY_CHARS:,}" in diagnostic.message
    assert f"{len(text):,} characters" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (1, MAX_QUERY_CHARS + 1)
    assert len(str(error)) < 1000


def test_a_text_at_the_size_limit_is_read() -> None:
    head = WHERE + "name = 'a'"
    text = head + " " * (MAX_QUERY_CHARS - len(head))
    assert len(text) == MAX_QUERY_CHARS
    assert render(parse(text)) == 'SELECT * FROM models WHERE name = "a"'
    with pytest.raises(QueryError, match="the limit is"):
        parse(text + " ")


def test_a_long_line_shows_a_window_around_the_error() -> None:
    text = WHERE + "name = 'a' AND " * 5000 + "nme = 1"
    error = _error(text)
    (diagnostic,) = error.diagnostics
    assert "unknown column 'nme'" in diagnostic.message
    line, caret = diagnostic.snippet.splitlines()
    assert len(line) < 200
    assert line[caret.index("^") :].startswith("nme")


def _nested(depth: int) -> str:
    return WHERE + "(" * depth + "num_params < 1" + ")" * depth


def test_nesting_up_to_the_limit_parses_and_round_trips() -> None:
    tree = parse(_nested(MAX_DEPTH))
    assert parse(render(tree)) == tree
    dumps(tree)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 95, 1000, 100_000])
def test_nesting_past_the_limit_is_located_where_it_is_crossed(depth: int) -> None:
    (diagnostic,) = _error(_nested(depth)).diagnostics
    assert f"more than {MAX_DEPTH} levels" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (1, len(WHERE) + MAX_DEPTH + 1)
    assert "^" in diagnostic.snippet


def test_nesting_is_located_on_its_line() -> None:
    text = "SELECT *\nFROM models\nWHERE " + "(" * 200 + "a = 1" + ")" * 200
    (diagnostic,) = _error(text).diagnostics
    assert (diagnostic.line, diagnostic.column) == (3, len("WHERE ") + MAX_DEPTH + 1)


@pytest.mark.parametrize(
    "text",
    [
        WHERE + "NOT " * (MAX_DEPTH + 1) + "name = 'a'",
        WHERE + "NOT (" * 40 + "name = 'a'" + ")" * 40,
        "(" * (MAX_DEPTH + 1) + "SELECT * FROM models" + ")" * (MAX_DEPTH + 1),
        "SELECT * FROM models TRAINED ON " + "[" * 500,
    ],
    ids=["NOT run", "NOT and parentheses", "query terms", "brackets"],
)
def test_every_kind_of_nesting_counts(text: str) -> None:
    (diagnostic,) = _error(text).diagnostics
    assert f"the limit is {MAX_DEPTH}" in diagnostic.message
    assert diagnostic.line == 1 and diagnostic.column > 1


def test_parentheses_in_strings_and_comments_do_not_count() -> None:
    text = WHERE + "name = '" + "(" * 500 + "' -- " + "(" * 500 + "\n"
    assert render(parse(text)) == WHERE + 'name = "' + "(" * 500 + '"'


def test_a_5000_digit_integer_is_a_query_error() -> None:
    digits = "9" * 5000
    text = WHERE + "num_params < " + digits
    (diagnostic,) = _error(text).diagnostics
    assert "5,000 characters is too long" in diagnostic.message
    assert f"at most {MAX_NUMBER_CHARS}" in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (1, len(WHERE + "num_params < ") + 1)
    assert len(str(_error(text))) < 1000


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM models LIMIT " + "1" * 5000,
        "SELECT * FROM models WHERE num_params < " + "9" * 5000 + "x",
        'RANK * FROM models TRAINED ON a TESTED ON b BY "random(seed=' + "7" * 5000 + ')"',
    ],
    ids=["LIMIT", "malformed", "in a ranker string"],
)
def test_long_numbers_anywhere_are_query_errors(text: str) -> None:
    error = _error(text)
    assert error.diagnostics
    assert len(str(error)) < 1000


def test_the_longest_number_allowed_still_reads() -> None:
    digits = "1" + "0" * (MAX_NUMBER_CHARS - 1)
    tree = parse(WHERE + "num_params < " + digits)
    assert dumps(tree)
    assert str(10 ** (MAX_NUMBER_CHARS - 1)) in render(tree)
