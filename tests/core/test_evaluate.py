"""Catalog query evaluation as a table: query text -> names of the rows it returns."""

from __future__ import annotations

import pytest

from shift.errors import QueryError
from shift.evaluate import like_pattern, select, union
from shift.ql import nodes as n
from shift.ql import parse

ROWS = [
    {"name": "lite0", "modality": "vision", "num_params": 4_700_000, "up_acc": 0.75,
     "finetuned": False, "license": "apache-2.0", "source": "timm"},
    {"name": "lite1", "modality": "vision", "num_params": 5_400_000, "up_acc": 0.77,
     "finetuned": False, "license": None, "source": "timm"},
    {"name": "lite2", "modality": "vision", "num_params": 6_100_000, "up_acc": None,
     "finetuned": True, "license": "apache-2.0", "source": "local"},
    {"name": "minilm-l6", "modality": "text", "num_params": 22_700_000, "up_acc": None,
     "finetuned": False, "license": "apache-2.0", "source": "huggingface"},
    {"name": "random-bert", "modality": "text", "num_params": 11_000_000, "up_acc": 0.0,
     "finetuned": False, "license": "mit", "source": "huggingface"},
]  # fmt: skip
VARIABLES = {"small": ["lite0", "lite1"], "none": []}


CASES = [
    ("SELECT * FROM models", ["lite0", "lite1", "lite2", "minilm-l6", "random-bert"]),
    ("SELECT * FROM Models WHERE NumParams < 10M AND Input == 'Vision'",
     ["lite0", "lite1", "lite2"]),
    ("SELECT * FROM models WHERE num_params BETWEEN 5M AND 11M", ["lite1", "lite2", "random-bert"]),
    ("SELECT * FROM models WHERE num_params NOT BETWEEN 5M AND 11M", ["lite0", "minilm-l6"]),
    ("SELECT * FROM models WHERE up_acc > 0.5", ["lite0", "lite1"]),
    ("SELECT * FROM models WHERE NOT up_acc > 0.5", ["random-bert"]),  # NULL stays unknown
    ("SELECT * FROM models WHERE up_acc IS NULL", ["lite2", "minilm-l6"]),
    ("SELECT * FROM models WHERE up_acc IS NOT NULL AND up_acc < 0.76", ["lite0", "random-bert"]),
    ("SELECT * FROM models WHERE name LIKE 'LITE%'", ["lite0", "lite1", "lite2"]),
    ("SELECT * FROM models WHERE name LIKE 'lite_'", ["lite0", "lite1", "lite2"]),
    ("SELECT * FROM models WHERE name NOT LIKE '%e_'", ["minilm-l6", "random-bert"]),
    ("SELECT * FROM models WHERE name IN ('lite0', 'minilm-l6')", ["lite0", "minilm-l6"]),
    ("SELECT * FROM models WHERE name NOT IN small", ["lite2", "minilm-l6", "random-bert"]),
    ("SELECT * FROM models WHERE name IN none", []),
    ("SELECT * FROM models WHERE FINETUNED", ["lite2"]),
    ("SELECT * FROM models WHERE NOT FINETUNED AND modality = 'text'",
     ["minilm-l6", "random-bert"]),
    ("SELECT * FROM models WHERE license != 'mit'", ["lite0", "lite2", "minilm-l6"]),
    ("SELECT * FROM models WHERE source = 'timm' OR source = 'local' AND finetuned = FALSE",
     ["lite0", "lite1"]),
    ("SELECT * FROM models WHERE (source = 'timm' OR source = 'local') AND finetuned = FALSE",
     ["lite0", "lite1"]),
    ("SELECT * FROM models WHERE 10M > num_params", ["lite0", "lite1", "lite2"]),
    ("SELECT * FROM models ORDER BY up_acc DESC", ["lite1", "lite0", "random-bert", "lite2",
                                                   "minilm-l6"]),
    ("SELECT * FROM models ORDER BY modality ASC, num_params DESC LIMIT 3",
     ["minilm-l6", "random-bert", "lite2"]),
    ("SELECT * FROM models ORDER BY num_params ASC LIMIT 2 OTHER THAN small",
     ["lite2", "random-bert"]),
    ("SELECT * FROM small ORDER BY name DESC", ["lite1", "lite0"]),
    ('SELECT * FROM ["lite2", "lite0"]', ["lite2", "lite0"]),
    ("SELECT * FROM models LIMIT 0", []),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_select(text: str, expected: list[str]) -> None:
    statement = parse(text)
    assert isinstance(statement, n.Select)
    rows = select(statement, ROWS, VARIABLES)
    assert [row["name"] for row in rows] == expected


def test_projection_keeps_the_asked_column_order() -> None:
    statement = parse("SELECT num_params, name FROM models WHERE name = 'lite0'")
    assert isinstance(statement, n.Select)
    assert select(statement, ROWS, VARIABLES) == [{"num_params": 4_700_000, "name": "lite0"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT * FROM models WHERE name NOT IN nope", "unknown variable 'nope'"),
        ("SELECT * FROM nope", "unknown variable 'nope'"),
        ('SELECT * FROM ["lite0", "ghost"]', "unknown name(s) ['ghost']"),
        ("SELECT * FROM models WHERE num_params > 'big'", "cannot compare num_params"),
        ("SELECT * FROM models WHERE name < 3", "cannot compare name"),
    ],
)
def test_errors_name_the_problem(text: str, message: str) -> None:
    statement = parse(text)
    assert isinstance(statement, n.Select)
    with pytest.raises(QueryError) as caught:
        select(statement, ROWS, VARIABLES)
    assert message in str(caught.value)


def test_union_is_distinct_by_name_unless_all() -> None:
    a = [{"name": "x"}, {"name": "y"}]
    b = [{"name": "y"}, {"name": "z"}]
    assert [r["name"] for r in union([a, b], keep_all=False)] == ["x", "y", "z"]
    assert [r["name"] for r in union([a, b], keep_all=True)] == ["x", "y", "y", "z"]


def test_like_escapes_regex_characters() -> None:
    assert like_pattern("a.b%").fullmatch("a.bcd")
    assert not like_pattern("a.b%").fullmatch("axbcd")
