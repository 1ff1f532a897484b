"""Running parsed statements against a broker: shared by ``shift query`` and ``shift repl``.

:class:`ScriptRunner` submits statements one by one, follows each until it is final and
prints its result. ``USE`` switches brokers here in the client. A task-aware statement
without ``WAIT`` is started and reported by id (after a short look, so that a statement the
broker refuses at once still fails the run); ``shift query --id ID`` waits for it later.
While a query runs and stderr is a terminal, a progress line shows tasks done and the time
spent (nothing is written on a pipe). A query whose every task had already run says it was
answered from the cache. Ctrl-C while a query runs cancels it on the
broker and re-raises ``KeyboardInterrupt`` (``shift query`` stops; the REPL goes on).
The REPL subclasses it to follow queries over the event stream with a progress bar, page
long results and time statements.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from repl.client import FINAL_STATES, BrokerClient, ClientError
from repl.output import render_result
from repl.progress import stage_text
from shift.errors import QueryError
from shift.ql import nodes as n
from shift.ql import to_json
from shift.wording import count_of


class ScriptRunner:
    """Runs parsed statements one by one and prints what each returns.

    Args:
        client: The broker client (its ``url`` changes on ``USE``).
        fmt: Output format, ``table``, ``json`` or ``csv``.
        session: The broker session holding ``DECLARE``d variables.
        out: Where results go.
        err: Where errors go (and status lines for ``json``/``csv``).
    """

    LOOK_S = 1.0
    """How long a statement without WAIT is watched for an immediate failure."""

    def __init__(
        self,
        client: BrokerClient,
        fmt: str,
        session: str,
        out: TextIO,
        err: TextIO,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.fmt = fmt
        self.session = session
        self.out = out
        self.err = err
        self.clock = clock

    def run(self, statements: Iterable[n.Statement]) -> int:
        """Run every statement; return the exit code (0 ok, 1 a query failed).

        Raises:
            KeyboardInterrupt: Ctrl-C, after the running query was cancelled.
        """
        status = 0
        for statement in statements:
            if isinstance(statement, n.Use):
                self.use(statement.url)
                continue
            try:
                if not self.run_one(statement):
                    status = 1
            except QueryError as error:
                print(str(error), file=self.err)
                status = 1
            except ClientError as error:
                self.broker_error(error)
                return 1
        return status

    def use(self, url: str) -> None:
        """Switch to the broker at ``url`` (the ``USE`` statement)."""
        self.client.url = url
        self.say(f"using {url}")

    def broker_error(self, error: ClientError) -> None:
        """Report an unreachable broker or a refused request."""
        print(f"shift query: {error}", file=self.err)

    def run_one(self, statement: n.Statement) -> bool:
        """Submit one statement, follow it when it should be waited for; True if it worked."""
        (query,) = self.client.submit(to_json(statement), self.session)
        if getattr(statement, "wait", True) is False:
            return self.start(query)
        return self.wait_for(query)

    def wait_for(self, query: dict[str, Any]) -> bool:
        """Follow a query until it is final and report it; True if it succeeded."""
        try:
            final = self.follow(query)
        except KeyboardInterrupt:
            self.cancel(query["id"])
            raise
        return self.report(final)

    def start(self, query: dict[str, Any]) -> bool:
        """A statement without WAIT: watch it briefly, then leave it running."""
        state, delay = query, 0.02
        until = self.clock() + self.LOOK_S
        while state.get("status") not in FINAL_STATES and self.clock() < until:
            time.sleep(delay)
            delay = min(0.2, delay * 2)
            state = self.client.query(query["id"])
        if state.get("status") in FINAL_STATES:
            return self.report(state)
        self.say(
            f"query {query['id']} {state.get('status')}; add WAIT to wait for its result, "
            f"or `shift query --id {query['id']}` to wait for it later"
        )
        return True

    def follow(self, query: dict[str, Any]) -> dict[str, Any]:
        """Wait until ``query`` is final and return its final state (polling).

        When stderr is a terminal a progress line shows tasks done, the search's stage
        (halving round, arms, rows) and the time spent; elsewhere only a new stage is a
        status line on stderr.
        """
        final = query
        started = self.clock()
        live = _is_terminal(self.err)
        shown, stage_shown = False, ""
        try:
            for state in self.client.follow(query["id"]):
                final = state
                progress = state.get("progress")
                progress = progress if isinstance(progress, dict) else {}
                stage = stage_text(progress.get("stage"))
                if live and progress.get("total"):
                    line = progress_line(progress, self.clock() - started)
                    line = f"{stage} - {line}" if stage else line
                    print(f"\r{line}\x1b[K", end="", file=self.err, flush=True)
                    shown = True
                elif not live and stage and stage != stage_shown:
                    print(stage, file=self.err)
                stage_shown = stage or stage_shown
        finally:
            if shown:
                print("\r\x1b[K", end="", file=self.err, flush=True)
        return final

    def cancel(self, query_id: str) -> None:
        """Cancel a query on the broker (it may have finished meanwhile)."""
        try:
            self.client.cancel(query_id)
        except ClientError as error:
            if error.status != 409:
                print(f"could not cancel query {query_id}: {error}", file=self.err)
                return
        print(f"cancelled query {query_id}", file=self.err)

    def report(self, query: dict[str, Any]) -> bool:
        """Print a final query: its result, or its error on stderr."""
        if query.get("status") == "succeeded":
            text = render_result(query.get("result"), self.fmt)
            if text:
                self.show(text)
            cache = cache_line(query.get("progress") or {}, str(query.get("kind") or ""))
            if cache:
                self.say(cache)
            return True
        error = query.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        print(f"query {query.get('id')} {query.get('status')}: {message}", file=self.err)
        if isinstance(error, dict):
            for diagnostic in error.get("diagnostics") or []:
                if diagnostic.get("snippet"):
                    print(diagnostic["snippet"], file=self.err)
                if diagnostic.get("hint"):
                    print(f"  hint: {diagnostic['hint']}", file=self.err)
            if error.get("hint"):
                print(f"  hint: {error['hint']}", file=self.err)
        return False

    def show(self, text: str) -> None:
        """Print a rendered result."""
        print(text, file=self.out)

    def say(self, message: str) -> None:
        """A status line (not part of the results): stderr for json/csv, stdout for tables."""
        print(message, file=self.out if self.fmt == "table" else self.err)


def progress_line(progress: dict[str, Any], elapsed_s: float) -> str:
    """``12/40 tasks (8 from cache) - 8.2 s``: a running query's progress."""
    done, total = int(progress.get("done", 0)), int(progress.get("total", 0))
    cached = int(progress.get("cached", 0))
    extra = f" ({cached} from cache)" if cached else ""
    return f"{done}/{total} tasks{extra} - {elapsed_s:.1f} s"


SCORING_KINDS = frozenset({"task_select", "rank", "vec_select"})
"""Query kinds that always need scores: one with no task at all was answered from stored
results (a repeated search), and says so."""


def cache_line(progress: dict[str, Any], kind: str = "") -> str:
    """What a finished query says about its tasks: all from the cache, or how many ran."""
    total, cached = int(progress.get("total", 0)), int(progress.get("cached", 0))
    if not total:
        return "answered from cache (0 tasks run)" if kind in SCORING_KINDS else ""
    if cached >= total:
        return f"answered from cache (0 tasks run, {total} found done)"
    return f"ran {count_of(total - cached, 'task')}, {cached} found done"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
