"""``shift repl`` driven in a pseudo-terminal against a real broker with two workers.

Types a multi-line task-aware query with WAIT, sees the progress bar and the ranking (one
table per classifier), types a bad query and sees the caret, completes a dataset name
from the broker, cancels a running query with Ctrl-C and goes on, and leaves with
``\\quit`` (exit code 0). Data is tiny (two image models; digits with 48 train and 24 test
rows; 400/200 MNIST rows for the query that gets cancelled): about a minute on two cores,
most of it the workers loading torch and the models.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from shift import zoo

from .conftest import ROOT, Cluster

pytestmark = pytest.mark.slow

MODELS = ("efficientnet-lite0", "efficientnet-lite0-random")
TIMEOUT_S = 120
PROMPT = "shift>"  # prompt_toolkit draws the trailing space as a cursor move
CONTINUATION = "...>"


def _dataset(name: str, new: str, rows: int) -> dict:
    spec = zoo.dataset(name).to_json()
    return {**spec, "name": new, "params": {**spec["params"], "max_rows": rows}}


@pytest.fixture(scope="module")
def broker(cluster: Cluster) -> Cluster:
    """Two zoo image models and tiny digits sets, registered and measured."""
    bodies = [("/v1/models", zoo.model(name).to_json()) for name in MODELS] + [
        ("/v1/datasets", _dataset("digits-train", "digits-tiny-train", 48)),
        ("/v1/datasets", _dataset("digits-test", "digits-tiny-test", 24)),
        ("/v1/datasets", _dataset("mnist-train", "mnist-some-train", 400)),
        ("/v1/datasets", _dataset("mnist-test", "mnist-some-test", 200)),
    ]
    cluster.register(bodies)
    return cluster


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def repl(broker: Cluster, tmp_path: Path) -> Iterator[pexpect.spawn]:
    env = {
        **os.environ,
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "TERM": "xterm",
        "PAGER": "cat",
        "SHIFT_STATE_DIR": str(tmp_path / "state"),
    }
    child = pexpect.spawn(
        sys.executable,
        ["-m", "shift", "repl", "--url", broker.url, "--history", str(tmp_path / "history")],
        cwd=str(ROOT),
        env=env,
        encoding="utf-8",
        dimensions=(50, 140),
        timeout=TIMEOUT_S,
        # A user's terminal delivers Ctrl-C; a test run started in the background by a
        # shell without job control inherits SIGINT ignored, which the REPL would inherit.
        preexec_fn=_default_sigint,
    )
    child.logfile_read = (tmp_path / "terminal.log").open("w")
    try:
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)


def test_a_session(repl: pexpect.spawn, tmp_path: Path) -> None:
    repl.expect("connected to http://127.0.0.1")
    repl.expect("2 workers")
    repl.expect_exact(PROMPT)

    # A task-aware query over three lines: Enter continues until the ';'.
    repl.send("SELECT name, num_params FROM image_models\r")
    repl.expect_exact(CONTINUATION)
    repl.send('ORDER BY err ASC TRAINED ON "digits-tiny-train" TESTED ON "digits-tiny-test"\r')
    repl.expect_exact(CONTINUATION)
    repl.send('CLASSIFIED BY ["Euclidean NN", "Cosine NN"] WAIT;\r')
    repl.expect(r"\] \d+/\d+ tasks")
    for title in ("Euclidean NN", "Cosine NN"):
        repl.expect_exact(title)
        repl.expect(r"name\s+\| num_params \|\s+err")
        repl.expect_exact("efficientnet-lite0")
        repl.expect_exact("(2 rows)")
    repl.expect_exact(PROMPT)
    # The same query again: every score is known, and the REPL says so.
    repl.send(
        'SELECT name FROM image_models ORDER BY err ASC TRAINED ON "digits-tiny-train" '
        'TESTED ON "digits-tiny-test" CLASSIFIED BY ["Euclidean NN", "Cosine NN"] WAIT;\r'
    )
    repl.expect_exact("(2 rows)")
    repl.expect_exact("answered from cache (0 tasks run")
    repl.expect_exact(PROMPT)

    # A bad statement: the caret snippet, then the session goes on.
    repl.send("SELECT * FROM models WHERE nam = 1;\r")
    repl.expect_exact("unknown column 'nam'")
    repl.expect_exact("^^^")
    repl.expect_exact("did you mean 'name'?")
    repl.expect_exact(PROMPT)
    # Completion offers the broker's dataset names inside the quotes; Ctrl-C clears the line.
    repl.send('SELECT * FROM models TRAINED ON "digits-ti\t')
    repl.expect_exact("digits-tiny-test")
    repl.sendintr()
    repl.expect_exact(PROMPT)
    repl.send("\\timing on\r")
    repl.expect_exact("timing is on")

    # Ctrl-C cancels the running query, not the REPL.
    repl.send(
        'SELECT name FROM image_models TRAINED ON "mnist-some-train" '
        'TESTED ON "mnist-some-test" WAIT;\r'
    )
    repl.expect(r"\] \d+/\d+ tasks")
    repl.sendintr()
    repl.expect(r"cancelled query [0-9a-f]+")
    repl.expect_exact(PROMPT)
    repl.send("SELECT name FROM models ORDER BY name LIMIT 1;\r")
    repl.expect_exact("efficientnet-lite0")
    repl.expect(r"Time: \d+\.\d+ s")

    repl.send("\\quit\r")
    repl.expect(pexpect.EOF)
    repl.close()
    assert repl.exitstatus == 0
    history = (tmp_path / "history").read_text()
    assert "CLASSIFIED BY" in history and "\\timing on" in history
    assert "\\quit" not in history  # leaving is not work to bring back with Up
