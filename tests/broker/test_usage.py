"""Which catalog rows a running statement reads (what DROP refuses to remove): pure."""

from __future__ import annotations

import pytest

from broker.usage import names_used
from shift.ql import parse

ROWS = {
    "model": [
        {"name": "vit", "modality": "vision", "num_params": 80_000_000},
        {"name": "effnet", "modality": "vision", "num_params": 5_000_000},
        {"name": "bert", "modality": "text", "num_params": 100_000_000},
    ],
    "dataset": [
        {"name": "photos", "modality": "vision", "size": 100},
        {"name": "reviews", "modality": "text", "size": 100},
        {"name": "digits", "modality": "vision", "size": 100},
    ],
}
VARIABLES = {"small": ["effnet"]}


@pytest.mark.parametrize(
    ("text", "models", "datasets"),
    [
        ("SELECT name FROM models TRAINED ON photos TESTED ON digits", {"vit", "effnet", "bert"},
         {"photos", "digits"}),
        ("SELECT name FROM image_models TRAINED ON photos TESTED ON digits", {"vit", "effnet"},
         {"photos", "digits"}),
        ("SELECT name FROM models WHERE num_params < 10M TRAINED ON photos TESTED ON photos",
         {"effnet"}, {"photos"}),
        ("SELECT name FROM image_models TRAINED ON photos TESTED ON photos OTHER THAN small",
         {"vit"}, {"photos"}),
        ("SELECT name FROM small TRAINED ON [photos, digits] TESTED ON photos", {"effnet"},
         {"photos", "digits"}),
        ('SELECT name FROM models TRAINED ON ("photos" CHANGE [1] TO "digits" [2]) TESTED ON '
         "photos", {"vit", "effnet", "bert"}, {"photos", "digits"}),
        ('RANK name FROM ["vit"] TRAINED ON photos BY "logme"', {"vit"}, {"photos"}),
        ('SELECT vec FROM readers WHERE probe = "vit" AND size > 10', {"vit"},
         {"photos", "reviews", "digits"}),
        ("SELECT vec FROM readers WHERE probe = small", {"effnet"},
         {"photos", "reviews", "digits"}),
        ('FINETUNE ["bert"] WITH reviews', {"bert"}, {"reviews"}),
        ('FINETUNE ["vit"] WITH photos (epochs=1, test="digits")', {"vit"}, {"photos", "digits"}),
        ("EXPLAIN SELECT name FROM text_models TRAINED ON reviews TESTED ON reviews", {"bert"},
         {"reviews"}),
        ("DECLARE best AS SELECT name FROM small TRAINED ON photos TESTED ON photos", {"effnet"},
         {"photos"}),
        ("SELECT name FROM text_models TRAINED ON reviews TESTED ON reviews UNION "
         "SELECT name FROM small TRAINED ON photos TESTED ON photos", {"bert", "effnet"},
         {"reviews", "photos"}),
        # statements that finish at once read no row for long
        ("SELECT * FROM models", set(), set()),
        ('REGISTER MODEL "vit" (source) VALUES ("timm")', set(), set()),
        ("DROP MODEL vit", set(), set()),
        ("PURGE ALL", set(), set()),
    ],
)  # fmt: skip
def test_names_used(text: str, models: set[str], datasets: set[str]) -> None:
    statement = parse(text)
    assert names_used(statement, "model", ROWS, VARIABLES) == models
    assert names_used(statement, "dataset", ROWS, VARIABLES) == datasets


def test_a_statement_that_will_fail_on_a_name_still_holds_what_it_names() -> None:
    statement = parse('SELECT name FROM ["vit", "gone"] TRAINED ON photos TESTED ON photos')
    assert names_used(statement, "model", ROWS, VARIABLES) == {"vit", "gone"}
    unknown = parse("SELECT name FROM nowhere TRAINED ON photos TESTED ON photos")
    assert names_used(unknown, "model", ROWS, VARIABLES) == set()
