"""The REPL's way of running statements: live progress, paging, timing, retries.

:class:`InteractiveRunner` is :class:`repl.runner.ScriptRunner` with what a person at a
terminal needs: queries are followed over their event stream with a progress bar, long
results go through a pager, each statement can be timed, an unreachable broker is retried
a few times before giving up, and names are refreshed after ``REGISTER``/``DROP``/``DECLARE``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from repl.client import BrokerClient, ClientError
from repl.progress import ProgressBar
from repl.runner import ScriptRunner
from repl.watcher import BrokerWatcher
from shift.ql import nodes as n

RETRY_DELAYS_S: tuple[float, ...] = (0.5, 1.0, 2.0)
"""Pauses between attempts to send a statement to an unreachable broker."""

DEFAULT_PAGER = "less -FRSX"
"""Pager used when ``$PAGER`` is not set (``-F``: quit when the text fits)."""


def needs_paging(text: str, rows: int) -> bool:
    """Whether ``text`` is taller than a terminal of ``rows`` lines (keeping the prompt)."""
    return text.count("\n") + 1 > max(rows - 2, 1)


class InteractiveRunner(ScriptRunner):
    """Runs statements for the REPL.

    Args:
        client: The broker client.
        options: The REPL's options (``format``, ``timing``, ``pager``), read on every use.
        session: The broker session.
        out: The terminal.
        watcher: Told about ``USE`` and asked to refresh names.
        sleep: Pause function (a test passes a fake).
        retry_delays_s: Pauses between attempts when the broker is unreachable.
    """

    def __init__(
        self,
        client: BrokerClient,
        options: dict[str, Any],
        session: str,
        out: TextIO,
        watcher: BrokerWatcher,
        sleep: Callable[[float], None] = time.sleep,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
    ) -> None:
        super().__init__(client, options["format"], session, out, out)
        self.options = options
        self.watcher = watcher
        self.sleep = sleep
        self.retry_delays_s = tuple(retry_delays_s)

    def run(self, statements: Any) -> int:
        """Run statements with the current format."""
        self.fmt = self.options["format"]
        return super().run(statements)

    def use(self, url: str) -> None:
        """Switch brokers and say whether the new one answers."""
        self.client.url = url
        self.watcher.use(url)
        status = self.watcher.poll()
        if status.reachable:
            self.say(f"using {url} ({status.workers} worker{'s' * (status.workers != 1)})")
        else:
            self.say(f"using {url}, which does not answer yet: {status.error}")

    def broker_error(self, error: ClientError) -> None:
        """Report a broker error; the REPL goes on."""
        print(str(error), file=self.err)

    def run_one(self, statement: n.Statement) -> bool:
        """Run one statement (retrying an unreachable broker), time it, refresh names."""
        started = time.monotonic()
        try:
            ok = self._with_retries(statement)
        finally:
            if self.options["timing"]:
                self.say(f"Time: {time.monotonic() - started:.3f} s")
        if ok and isinstance(statement, n.Declare):
            self.watcher.add_variable(statement.name)
        if ok and isinstance(statement, n.Declare | n.Register | n.Purge | n.Drop):
            self.watcher.refresh_names()
        return ok

    def _with_retries(self, statement: n.Statement) -> bool:
        for attempt, delay in enumerate((*self.retry_delays_s, None), start=1):
            try:
                return super().run_one(statement)
            except ClientError as error:
                if not error.unreachable or delay is None:
                    raise
                self.say(
                    f"the broker at {self.client.url} does not answer; retrying in {delay:g} s "
                    f"(attempt {attempt + 1} of {len(self.retry_delays_s) + 1}, Ctrl-C stops)"
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def follow(self, query: dict[str, Any]) -> dict[str, Any]:
        """Follow the query's event stream, drawing a progress bar while tasks run."""
        width = shutil.get_terminal_size().columns
        bar = ProgressBar(self.out, width)
        started = time.monotonic()
        try:
            for event, data in self.client.events(query["id"]):
                if event == "done" and isinstance(data, dict):
                    return data
                if event == "progress" and isinstance(data, dict) and data.get("total"):
                    bar.update(data, time.monotonic() - started)
        except ClientError:
            pass  # the stream broke off: poll instead
        finally:
            bar.finish()
        return super().follow(query)

    def show(self, text: str) -> None:
        """Print a result, through the pager when it is taller than the terminal."""
        rows = shutil.get_terminal_size().lines
        if not (self.options["pager"] and self.out.isatty() and needs_paging(text, rows)):
            super().show(text)
            return
        command = shlex.split(os.environ.get("PAGER") or DEFAULT_PAGER)
        try:
            subprocess.run(command, input=text + "\n", text=True, check=False)
        except OSError:
            super().show(text)
