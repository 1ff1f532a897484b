"""A misspelled metric (``ORDER BY eror``) gets a ``did you mean`` hint in every query form."""

from __future__ import annotations

import pytest

from shift.errors import QueryError
from shift.ql import parse

CASES = [
    # statement, message part, hint part
    (
        'SELECT name FROM models ORDER BY eror ASC TRAINED ON "a" TESTED ON "b"',
        "orders by err or acc, not 'eror'",
        "did you mean 'err'?",
    ),
    (
        'SELECT name FROM models ORDER BY accc DESC TRAINED ON "a" TESTED ON "b"',
        "orders by err or acc, not 'accc'",
        "did you mean 'acc'?",
    ),
    (
        'SELECT name FROM models ORDER BY gflops TRAINED ON "a" TESTED ON "b"',
        "orders by err or acc, not 'gflops'",
        "ORDER BY err ASC ranks the models",
    ),
    # in a catalog query `error` is the registration error column, the closest name
    ("SELECT name FROM models ORDER BY eror", "unknown column 'eror'", "did you mean 'error'?"),
    ("SELECT name FROM models ORDER BY nmae", "unknown column 'nmae'", "did you mean 'name'?"),
]


@pytest.mark.parametrize(("text", "message", "hint"), CASES, ids=[c[0] for c in CASES])
def test_misspelled_metric_gets_a_hint(text: str, message: str, hint: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse(text)
    (diagnostic,) = raised.value.diagnostics
    assert message in diagnostic.message
    assert hint in diagnostic.hint
