"""``shift parse`` and the command registry as a user runs them: real processes, exit codes,
stdout and stderr, and what an install with stale command metadata says."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from shift.cli import COMMAND_GROUP, discover
from shift.ql import from_json, parse_script

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (
    "demo", "parse", "query", "repl", "up", "broker", "worker", "zoo", "simulate", "keys",
    "sources", "models",
)  # fmt: skip
"""The subcommands users, tests and the README name (the README command table)."""


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


def _pyproject_commands() -> dict[str, str]:
    with open(ROOT / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)["project"]["entry-points"][COMMAND_GROUP]


def test_the_installed_commands_are_the_ones_pyproject_declares() -> None:
    installed = {name: c.target for name, c in discover().items()}
    assert installed == _pyproject_commands(), (
        "the installed entry points differ from pyproject.toml: run scripts/setup"
    )
    assert set(installed) == set(COMMANDS)


def test_help_lists_every_command_with_its_module_help() -> None:
    result = shift("--help")
    assert result.returncode == 0, result.stderr
    for name, target in _pyproject_commands().items():
        help_line = importlib.import_module(target).HELP
        assert re.search(rf"^\s+{name}\s+{re.escape(help_line[:40])}", result.stdout, re.M), name
    simulate = shift("simulate", "--help")
    assert [a for a in ("replay", "run", "sweep", "scale") if a not in simulate.stdout] == []


def test_a_mistyped_action_suggests_the_closest_too() -> None:
    result = shift("simulate", "rpelay")
    assert result.returncode == 2
    assert "did you mean 'replay'?" in result.stderr


def _fake_install(where: Path, name: str, entry_points: str) -> None:
    info = where / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(entry_points)


def _shift_with(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m shift`` with ``site`` ahead of everything on the path (its metadata wins).

    It runs in ``site`` too: ``-m`` puts the working directory first on the path.
    """
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", str(ROOT))])
    return subprocess.run(
        [sys.executable, "-m", "shift", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=site,
        env={**os.environ, "PYTHONPATH": path},
    )


@pytest.mark.parametrize(
    ("entry_points", "message"),
    [
        ("[console_scripts]\nshift = shift.cli:main\n", "no command is installed in"),
        (
            "[shift.commands]\nparse = repl.parse_command\nquery = repl.gone_command\n",
            "command 'query' names 'repl.gone_command', which cannot be loaded",
        ),
        (
            "[shift.commands]\nparse = shift.errors\n",
            "command 'parse': 'shift.errors' lacks HELP, configure, run",
        ),
    ],
    ids=["no-commands", "module-gone", "not-a-command"],
)
def test_a_stale_install_says_what_is_wrong_and_how_to_fix_it(
    tmp_path: Path, entry_points: str, message: str
) -> None:
    _fake_install(tmp_path, "shift-search", entry_points)
    result = _shift_with(tmp_path, "parse", "PRINT x")
    assert result.returncode == 2
    assert result.stderr.startswith("shift: ") and message in result.stderr, result.stderr
    assert "lacks" in message or "run scripts/setup" in result.stderr
    assert "Traceback" not in result.stderr


def test_two_distributions_claiming_one_command_are_refused(tmp_path: Path) -> None:
    _fake_install(tmp_path, "shift-plugin", "[shift.commands]\nparse = repl.query_command\n")
    result = _shift_with(tmp_path, "parse", "PRINT x")
    assert result.returncode == 2
    assert "command 'parse' is registered twice" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_every_setting_has_a_flag_on_a_command_that_uses_it() -> None:
    """The settings table drives the flags: each setting is a flag of at least one command."""
    from broker.broker_command import BROKER_FLAGS
    from broker.up import UP_FLAGS
    from repl.query_command import FLAGS as QUERY_FLAGS
    from shift.settings import SETTINGS
    from workers.worker_command import WORKER_FLAGS

    flagged = {name for _, name, _ in (*BROKER_FLAGS, *UP_FLAGS, *WORKER_FLAGS)}
    flagged |= set(QUERY_FLAGS)
    missing = [s.name for s in SETTINGS if s.name not in flagged]
    assert not missing, f"settings without a flag: {missing}"
    for flag, name, kind in (*BROKER_FLAGS, *UP_FLAGS, *WORKER_FLAGS):
        assert flag == "--" + name.replace("_", "-")
        assert kind is type(next(s.default for s in SETTINGS if s.name == name))


def test_shift_up_takes_data_roots() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shift", "up", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "--data-roots" in out.stdout


def test_parse_prints_notices_on_stderr_and_the_tree_on_stdout() -> None:
    """A clause shift accepts but ignores is said on stderr, located; stdout stays the tree."""
    result = shift("parse", 'RANK * FROM m TRAINED ON "a" BY "logme" ORDER BY err ASC')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statements"][0]["type"] == "rank"
    assert result.stderr.startswith("notice: <query>:1:41: ORDER BY err ASC is ignored")
    assert "hint: remove the ORDER BY clause" in result.stderr
