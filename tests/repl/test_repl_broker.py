"""The REPL's backslash commands against a real broker (no workers: nothing is measured).

``\\d`` lists and describes catalog rows from the broker's REST API, ``\\settings`` shows
the broker's own settings (``GET /v1/settings``) apart from the client's, and in a
pseudo-terminal ``\\quit`` leaves without going into the history file.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from repl.app import Repl
from repl.commands import ReplError, execute
from shift import zoo
from shift.settings import load_settings
from tests.search.conftest import ROOT, Cluster


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A broker alone, with one model and one dataset registered (left measuring)."""
    running = Cluster(tmp_path_factory.mktemp("replbroker"))
    try:
        running.start_broker()
        for path, body in (
            ("/v1/models", zoo.model("efficientnet-lite0").to_json()),
            ("/v1/datasets", zoo.dataset("digits-train").to_json()),
        ):
            status, answer = running.call("POST", path, body)
            assert status in (200, 201), answer
        yield running
    finally:
        running.stop()


def _repl(broker: Cluster, tmp_path: Path) -> tuple[Repl, io.StringIO]:
    out = io.StringIO()
    settings = load_settings(
        {"url": broker.url, "state_dir": str(tmp_path / "client-state")}, environ={}
    )
    return Repl(settings, "default", tmp_path / "history", {}, out), out


def test_d_lists_and_describes(broker: Cluster, tmp_path: Path) -> None:
    repl, out = _repl(broker, tmp_path)
    execute(repl, "\\d")
    text = out.getvalue()
    assert text.index("models") < text.index("efficientnet-lite0") < text.index("datasets")
    assert "digits-train" in text and "(1 row)" in text
    for line, present, absent in (
        ("\\d models", "efficientnet-lite0", "digits-train"),
        ("\\d datasets", "digits-train", "efficientnet-lite0"),
    ):
        out.truncate(0)
        out.seek(0)
        execute(repl, line)
        assert present in out.getvalue() and absent not in out.getvalue()
    out.truncate(0)
    out.seek(0)
    execute(repl, '\\d "digits-train"')
    described = out.getvalue()
    assert described.startswith("dataset digits-train")
    assert "| digits" in described or "spec.reader" in described
    with pytest.raises(
        ReplError, match=r"no model or dataset named 'efficientnet-lite9'.*did you mean"
    ):
        execute(repl, "\\d efficientnet-lite9")


def test_settings_are_the_brokers_and_say_whose(broker: Cluster, tmp_path: Path) -> None:
    repl, out = _repl(broker, tmp_path)
    execute(repl, "\\settings")
    lines = out.getvalue().splitlines()
    assert lines[0].split("|")[0].strip() == "of"
    broker_state = str(broker.tmp / "state")
    (state,) = [ln for ln in lines if "| state_dir" in ln]
    assert state.startswith("broker") and broker_state in state
    assert str(tmp_path / "client-state") not in out.getvalue()
    assert any(ln.startswith("client") and broker.url in ln for ln in lines)
    assert any(ln.startswith("repl") and "| format" in ln for ln in lines)
    # the broker never sends its token back
    status, body = broker.call("GET", "/v1/settings")
    assert status == 200 and {"name", "value", "default", "help"} <= set(body["settings"][0])


def test_settings_of_an_unreachable_broker_say_so(tmp_path: Path) -> None:
    out = io.StringIO()
    settings = load_settings({"url": "http://127.0.0.1:9"}, environ={})
    repl = Repl(settings, "default", tmp_path / "history", {}, out)
    repl.client.timeout_s = 2
    execute(repl, "\\settings")
    assert "cannot reach the broker at http://127.0.0.1:9" in out.getvalue()


def test_quit_is_not_kept_in_history(broker: Cluster, tmp_path: Path) -> None:
    env = {**os.environ, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "PAGER": "cat"}
    history = tmp_path / "history"
    child = pexpect.spawn(
        sys.executable,
        ["-m", "shift", "repl", "--url", broker.url, "--history", str(history)],
        cwd=str(ROOT),
        env=env,
        encoding="utf-8",
        dimensions=(50, 140),
        timeout=60,
    )
    child.logfile_read = (tmp_path / "terminal.log").open("w")
    try:
        child.expect_exact("shift>")
        child.send("\\d models\r")
        child.expect_exact("efficientnet-lite0")
        child.expect_exact("shift>")
        child.send("\\q\r")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
    finally:
        if child.isalive():
            child.terminate(force=True)
    kept = history.read_text()
    assert "\\d models" in kept and "\\q" not in kept.replace("\\d models", "")
