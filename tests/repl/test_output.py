"""Result printing: aligned tables with stable column order, JSON and CSV."""

from __future__ import annotations

import json

from repl.output import cell, render_result, table

RESULT = {
    "tables": [
        {
            "title": "Cosine NN",
            "columns": ["rank", "name", "err", "train_rows"],
            "rows": [[1, "efficientnet-lite0", 0.125, 400], [2, "random-lite0", 0.5, 400]],
        },
        {"title": "Euclidean NN", "columns": ["rank", "name", "err"], "rows": []},
    ],
    "message": "2 models ranked",
}


def test_table_aligns_and_right_aligns_numbers() -> None:
    text = table(["name", "num_params"], [["a", 5], ["longer", 12345], ["c", None]])
    assert text.splitlines() == [
        "name   | num_params",
        "-------+-----------",
        "a      |          5",
        "longer |      12345",
        "c      |       NULL",
        "(3 rows)",
    ]


def test_one_table_per_classifier_in_given_column_order() -> None:
    text = render_result(RESULT, "table")
    assert text.index("Cosine NN") < text.index("Euclidean NN")
    first = text.splitlines()[1]
    assert first.split("|")[0].strip() == "rank" and "train_rows" in first
    assert "(0 rows)" in text and text.endswith("2 models ranked")


def test_json_is_the_result_itself() -> None:
    assert json.loads(render_result(RESULT, "json")) == RESULT


def test_csv_marks_each_table() -> None:
    lines = render_result(RESULT, "csv").splitlines()
    assert lines[:3] == [
        "# Cosine NN",
        "rank,name,err,train_rows",
        "1,efficientnet-lite0,0.125,400",
    ]


def test_cells() -> None:
    assert cell(None) == "NULL"
    assert cell(True) == "true"
    assert cell(0.123456) == "0.1235"
    assert cell(["a", 1]) == "a, 1"
