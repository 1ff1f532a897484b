"""A compiled WHERE (``evaluate.predicate``) answers exactly as ``evaluate.truth``.

The compiled form is what a catalog scan uses; ``truth`` is the definition. Every pair of
condition and row below must give the same value, or the same error.
"""

from __future__ import annotations

from typing import Any

import pytest

from shift import evaluate
from shift.errors import QueryError
from shift.ql import parse

ROWS: list[dict[str, Any]] = [
    {"name": "a", "num_params": 5_000_000, "modality": "vision", "finetuned": False, "up_acc": 0.7},
    {"name": "b", "num_params": None, "modality": "text", "finetuned": True, "up_acc": None},
    {
        "name": "c",
        "num_params": 25_000_000,
        "modality": "vision",
        "finetuned": False,
        "up_acc": 0.8,
    },
    {"name": "d", "num_params": 7.5e6, "modality": "text", "finetuned": False, "up_acc": 1},
    {"name": "e", "num_params": True, "modality": "vision", "finetuned": False, "up_acc": "x"},
]

CONDITIONS = [
    "num_params < 10M",
    "num_params >= 5M AND num_params <= 7.5M",
    "num_params > 1M OR modality = 'text'",
    "NOT num_params > 6M",
    "NOT (num_params > 6M AND modality == 'vision')",
    "num_params != 5M OR up_acc > 0.75",
    "modality = 'vision' AND up_acc > 0.5",
    "num_params IS NULL OR FINETUNED",
    "num_params BETWEEN 1M AND 10M",
    "name LIKE '_'",
    "name IN ('a', 'c', 'z')",
    "modality <> 'text' AND NOT FINETUNED",
    "up_acc = 'x'",
    "license = 'mit'",
    "name > 1",
]


def _outcome(run: Any) -> Any:
    try:
        return run()
    except QueryError as error:
        return ("error", str(error))


@pytest.mark.parametrize("text", CONDITIONS)
def test_the_compiled_condition_is_truth_on_every_row(text: str) -> None:
    cond = parse(f"SELECT * FROM models WHERE {text}").where
    assert cond is not None
    compiled = evaluate.predicate(cond, {})
    for row in ROWS:
        expected = _outcome(lambda row=row: evaluate.truth(cond, row, {}))
        assert _outcome(lambda row=row: compiled(row)) == expected, (text, row)


def test_where_keeps_the_true_rows_and_raises_what_truth_raises() -> None:
    cond = parse("SELECT * FROM models WHERE num_params < 10M").where
    assert cond is not None
    # "e" has a boolean num_params: comparing it with a number is refused, as truth does
    with pytest.raises(QueryError, match="cannot compare num_params"):
        evaluate.where(ROWS, cond, {})
    kept = evaluate.where(ROWS[:4], cond, {})
    assert [r["name"] for r in kept] == ["a", "d"]
