"""Result printing: aligned tables with stable column order, JSON and CSV."""

from __future__ import annotations

import csv
import io
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
    assert lines == [
        "# table: Cosine NN",
        "rank,name,err,train_rows",
        "1,efficientnet-lite0,0.125,400",
        "2,random-lite0,0.5,400",
        "",
        "# table: Euclidean NN",
        "rank,name,err",
    ]


def _csv_tables(text: str) -> dict[str, list[list[str]]]:
    """Split multi-table CSV the documented way: a blank line, then a ``# table:`` line."""
    out: dict[str, list[list[str]]] = {}
    for block in text.split("\n\n"):
        marker, _, body = block.partition("\n")
        assert marker.startswith("# table: "), block
        out[marker.removeprefix("# table: ")] = list(csv.reader(io.StringIO(body)))
    return out


def test_csv_tables_split_unambiguously_and_one_table_is_plain_csv() -> None:
    hostile = {
        "tables": [
            {"title": "a\nb", "columns": ["name", "n"], "rows": [["# not a marker", 1]]},
            {"title": "second", "columns": ["name"], "rows": [["#"], ["x,y"]]},
        ],
        "message": "",
    }
    tables = _csv_tables(render_result(hostile, "csv"))
    assert tables == {
        "a b": [["name", "n"], ["# not a marker", "1"]],
        "second": [["name"], ["#"], ["x,y"]],
    }
    single = {"tables": [hostile["tables"][1]], "message": ""}
    assert render_result(single, "csv").splitlines()[0] == "name"


def test_booleans_and_nulls_print_alike_in_table_and_csv() -> None:
    result = {
        "tables": [
            {
                "title": "results",
                "columns": ["name", "finetuned", "up_acc", "tags", "err"],
                "rows": [["a", False, None, ["x", "y"], 0.123456789], ["b", True, "", [], 0.5]],
            }
        ],
        "message": "2 rows",
    }
    rows = list(csv.reader(io.StringIO(render_result(result, "csv"))))
    assert rows[1] == ["a", "false", "", "x, y", "0.123456789"]
    assert rows[2] == ["b", "true", "", "", "0.5"]
    text = render_result(result, "table")
    assert "| false" in text and "| true" in text and "NULL" in text
    assert "False" not in render_result(result, "csv") + text


def test_a_row_count_is_worded_once() -> None:
    result = {"tables": [{"title": "", "columns": ["name"], "rows": [["a"], ["b"]]}]}
    text = render_result({**result, "message": "2 rows"}, "table")
    assert text.count("2 rows") == 1 and text.endswith("(2 rows)")
    assert "row(s)" not in text
    one = render_result({"tables": [{"title": "", "columns": ["n"], "rows": [[1]]}]}, "table")
    assert one.endswith("(1 row)")


def test_cells() -> None:
    assert cell(None) == "NULL"
    assert cell(True) == "true"
    assert cell(0.123456) == "0.1235"
    assert cell(["a", 1]) == "a, 1"
