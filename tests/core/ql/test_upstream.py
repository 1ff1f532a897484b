"""Upstream SHiFT's statement forms: fixture tables, notices, and the parse-rate script.

``tests/fixtures/ql_upstream_valid.txt`` and ``ql_upstream_invalid.txt`` use the formats of
the main fixture tables (see test_fixtures.py); a valid case may also give its canonical
JSON (``;; json:``) and the notices its parse must give (``;; notice:``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shift.errors import QueryError
from shift.ql import dumps, from_json, parse_script, render
from tests.core.ql.test_fixtures import (
    FIXTURES,
    InvalidCase,
    ValidCase,
    load_invalid,
    load_valid,
)
from tests.core.ql.test_fixtures import test_invalid as check_invalid
from tests.core.ql.test_fixtures import test_valid as check_valid

VALID = load_valid(FIXTURES / "ql_upstream_valid.txt")
INVALID = load_invalid(FIXTURES / "ql_upstream_invalid.txt")
ROOT = Path(__file__).resolve().parents[3]


def _id(case: ValidCase | InvalidCase) -> str:
    return f"L{case.line}"


def _notes(case: ValidCase, key: str) -> list[str]:
    return [note[len(key) :].strip() for note in case.notes if note.startswith(key)]


def test_tables_cover_the_forms() -> None:
    assert len(VALID) >= 25
    assert len(INVALID) >= 20
    assert sum(bool(_notes(c, "json:")) for c in VALID) >= 5


@pytest.mark.parametrize("case", VALID, ids=_id)
def test_upstream_valid(case: ValidCase) -> None:
    check_valid(case)
    script = parse_script(case.text)
    for want in _notes(case, "json:"):
        (statement,) = script.statements
        assert json.loads(dumps(statement)) == json.loads(want)
    wanted = _notes(case, "notice:")
    assert len(script.notices) == len(wanted), [d.message for d in script.notices]
    for want, got in zip(wanted, script.notices, strict=True):
        assert want.lower() in got.message.lower(), got.render()
        assert "^" in got.snippet


@pytest.mark.parametrize("case", INVALID, ids=_id)
def test_upstream_invalid(case: InvalidCase) -> None:
    check_invalid(case)


def test_notices_are_not_part_of_the_tree() -> None:
    noticed = parse_script('RANK * FROM models TRAINED ON "a" BY "logme" ORDER BY err ASC')
    plain = parse_script('RANK * FROM models TRAINED ON "a" BY "logme"')
    assert noticed.notices and not plain.notices
    assert noticed == plain
    assert dumps(noticed) == dumps(plain)
    assert "notices" not in json.loads(dumps(noticed))


def test_notices_are_not_accepted_in_json() -> None:
    data = json.loads(dumps(parse_script("PURGE")))
    data["notices"] = []
    with pytest.raises(QueryError, match="unknown key"):
        from_json(data)


def test_a_bad_statement_drops_its_notices_and_keeps_the_others() -> None:
    text = (
        'SELECT * FROM models ORDER BY avg(err) TRAINED ON "a" TESTED ON "b";\n'
        'RANK * FROM models TRAINED ON "a" BY "nope" ORDER BY err'
    )
    with pytest.raises(QueryError) as caught:
        parse_script(text)
    assert [d.line for d in caught.value.diagnostics] == [2]
    script = parse_script(text.splitlines()[0])
    assert [d.line for d in script.notices] == [1]


def test_value_lists_round_trip_and_refuse_nesting_in_json() -> None:
    statement = parse_script(
        'REGISTER DATASET "d" (tf_dataset_name, split, embed_feature_path) '
        'VALUES ("x:1.0.0", "train", ["a", 1, TRUE, NULL])'
    ).statements[0]
    assert from_json(json.loads(dumps(statement))) == statement
    assert parse_script(render(statement)).statements[0] == statement
    data = json.loads(dumps(statement))
    data["fields"][2]["value"] = ["a", ["b"]]
    with pytest.raises(QueryError, match="fields"):
        from_json(data)


def _script(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "check_upstream_parse"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_upstream_parse_counts_and_explains(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.shiftql").write_text(
        "# a comment line is not a statement\n"
        'REGISTER dataset "d" ("vtab_name", "split", "size") VALUES ("SVHN", "val200", 200);\n'
        "\n"
        "select * from image_models where source=TensorFlow;\n",
        encoding="utf-8",
    )
    (tmp_path / "two.shiftql").write_text(
        'rank * from models order by err asc trained on "a" by "leep" wait;\n'
        "select nonsense from;\n",
        encoding="utf-8",
    )
    (tmp_path / "ignored.txt").write_text("select nonsense;\n", encoding="utf-8")
    done = _script([str(tmp_path)])
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "parsed 2 of 4 statements (50.0%), 1 with a notice" in out
    assert "1 bare-word comparison(s) with the rewrite hint, 1 other" in out
    assert "hint: quote it if it is text: 'TensorFlow'; write source='TensorFlow'" in out
    assert "refused two.shiftql:2:" in out
    assert "notice  two.shiftql:1:" in out
    (tmp_path / "two.shiftql").write_text("PURGE;\n", encoding="utf-8")
    done = _script([str(tmp_path), "--quiet"])
    assert done.returncode == 0, done.stdout
    assert done.stdout.splitlines() == [
        "parsed 2 of 3 statements (66.7%), 0 with a notice; refused 1: "
        "1 bare-word comparison(s) with the rewrite hint, 0 other"
    ]


def test_check_upstream_parse_usage() -> None:
    done = _script(["/nonexistent-dir"])
    assert done.returncode == 2
    assert "usage" in done.stderr
