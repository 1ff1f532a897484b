"""Backslash commands, the progress line, paging and retries, without a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest

from repl.client import BrokerClient
from repl.commands import COMMANDS, OPTIONS, ReplError, execute
from repl.interactive import InteractiveRunner, needs_paging
from repl.progress import progress_line
from repl.watcher import BrokerWatcher
from shift.ql import parse

ROOT = Path(__file__).resolve().parents[2]


class FakeShell:
    """The part of the REPL a command sees."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {o.name: o.default for o in OPTIONS}
        self.done = False
        self.lines: list[str] = []
        self.refreshed = 0

    def write(self, text: str) -> None:
        self.lines.append(text)

    def refresh_names(self) -> None:
        self.refreshed += 1

    def settings_rows(self) -> list[list[Any]]:
        return [["repl", "format", self.options["format"], "How results print."]]

    def fetch(self, path: str) -> Any:
        raise AssertionError(f"no broker here: GET {path}")


@pytest.mark.parametrize(
    ("line", "option", "value", "said"),
    [
        ("\\format json", "format", "json", "format is json"),
        ("\\format", "format", "table", "format is table"),
        ("\\timing", "timing", True, "timing is on"),
        ("\\timing off", "timing", False, "timing is off"),
        ("\\pager off", "pager", False, "pager is off"),
        ("  \\timing   on ", "timing", True, "timing is on"),
    ],
)
def test_commands_set_options(line: str, option: str, value: Any, said: str) -> None:
    shell = FakeShell()
    execute(shell, line)
    assert shell.options[option] == value
    assert shell.lines == [said]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("\\formt json", "unknown command \\formt; did you mean 'format'?"),
        ("\\format xml", "unknown format 'xml'; use one of table, json, csv"),
        ("\\timing maybe", "\\timing takes on or off, got 'maybe'"),
    ],
)
def test_bad_commands_say_what_to_do(line: str, message: str) -> None:
    with pytest.raises(ReplError, match=re.escape(message)):
        execute(FakeShell(), line)


def test_quit_help_refresh_settings() -> None:
    shell = FakeShell()
    for line in ("\\help", "\\refresh", "\\settings", "\\q"):
        execute(shell, line)
    assert "\\format [table|json|csv]" in shell.lines[0] and "Ctrl-C" in shell.lines[0]
    assert shell.refreshed == 1 and "How results print." in shell.lines[2]
    assert shell.done


def test_docs_list_every_command_and_option() -> None:
    doc = (ROOT / "docs" / "repl.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"`\\{name}" in doc, name
    for option in OPTIONS:
        assert f"| `{option.name}` |" in doc, option.name


@pytest.mark.parametrize(
    ("args", "line"),
    [
        ((0, 0, 60, 0.0), "[........................................] planning  0.0 s"),
        ((3, 4, 60, 1.25), "[##############################..........] 3/4 tasks  1.2 s"),
        (
            (3, 4, 80, 2.0, 2),
            "[##############################..........] 3/4 tasks, round 2  2.0 s",
        ),
        ((9, 4, 30, 0.0), "[###########] 4/4 tasks  0.0 s"),
        ((1, 4, 12, 0.0), "1/4 tasks  0"),
    ],
)
def test_progress_line(args: tuple[Any, ...], line: str) -> None:
    assert progress_line(*args) == line
    assert len(line) <= args[2]


def test_paging_only_when_taller_than_the_terminal() -> None:
    assert not needs_paging("a\nb", 24)
    assert needs_paging("\n".join(["x"] * 30), 24)


def test_unreachable_broker_is_retried_then_reported() -> None:
    out = io.StringIO()
    pauses: list[float] = []
    client = BrokerClient("http://127.0.0.1:9", timeout_s=1)
    runner = InteractiveRunner(
        client,
        {o.name: o.default for o in OPTIONS},
        "default",
        out,
        BrokerWatcher(client.url, "", "default"),
        sleep=pauses.append,
        retry_delays_s=(0.1, 0.2),
    )
    assert runner.run([parse("SELECT * FROM models")]) == 1
    assert pauses == [0.1, 0.2]
    text = out.getvalue()
    assert "does not answer; retrying in 0.1 s (attempt 2 of 3" in text
    assert "cannot reach the broker at http://127.0.0.1:9" in text
