"""``shift parse`` as a user runs it: real processes, exit codes, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from shift.ql import from_json, parse_script


def shift(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shift", *args],
        capture_output=True,
        text=True,
        input=stdin,
        check=False,
    )


def test_parse_prints_the_canonical_json_tree() -> None:
    text = "SELECT * FROM Models WHERE NumParams < 10M AND Input == 'Vision' LIMIT 1"
    result = shift("parse", text)
    assert result.returncode == 0, result.stderr
    tree = json.loads(result.stdout)
    assert from_json(tree) == parse_script(text)
    where = tree["statements"][0]["where"]
    assert where["operands"][0] == {
        "type": "compare",
        "column": "num_params",
        "op": "<",
        "value": 10_000_000,
    }
    assert where["operands"][1]["value"] == "vision"


def test_parse_render_prints_canonical_text() -> None:
    result = shift("parse", "--render", "select * from models where 1e3 < num_params wait")
    assert result.returncode == 2  # WAIT belongs to task-aware queries
    assert "WAIT does not apply to a catalog query" in result.stderr
    result = shift("parse", "--render", "select * from models where 1e3 < num_params")
    assert result.stdout == "SELECT * FROM models WHERE num_params > 1000;\n"


def test_bad_query_exits_2_with_the_caret_message_on_stderr() -> None:
    result = shift("parse", "SELECT * FROM models LIMT 3")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "<query>:1:22:" in result.stderr
    assert "^^^^" in result.stderr
    assert "did you mean LIMIT?" in result.stderr
    assert "Traceback" not in result.stderr


def test_file_and_stdin(tmp_path: Path) -> None:
    script = tmp_path / "q.shiftql"
    script.write_text("PRINT *;\n-- a comment\nPURGE FEATURES;\n", encoding="utf-8")
    result = shift("parse", "-f", str(script))
    assert result.returncode == 0
    assert [s["type"] for s in json.loads(result.stdout)["statements"]] == ["print", "purge"]
    result = shift("parse", "-f", "-", stdin="PRINT x")
    assert json.loads(result.stdout)["statements"][0] == {"type": "print", "name": "x"}


def test_every_error_of_a_file_is_reported_with_its_name(tmp_path: Path) -> None:
    script = tmp_path / "bad.shiftql"
    script.write_text("SELECT * FROM models LIMIT -1;\nPRINT *;\nSELEC 1;\n", encoding="utf-8")
    result = shift("parse", "-f", str(script))
    assert result.returncode == 2
    assert f"{script}:1:28:" in result.stderr
    assert f"{script}:3:1:" in result.stderr


def test_missing_file_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    result = shift("parse", "-f", str(tmp_path / "nope.shiftql"))
    assert result.returncode == 1
    assert "cannot read" in result.stderr and "nope.shiftql" in result.stderr


def test_unknown_subcommand_suggests_the_closest() -> None:
    result = shift("prase", "x")
    assert result.returncode == 2
    assert "did you mean 'parse'?" in result.stderr
