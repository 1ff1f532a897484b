"""Running parsed statements against a broker: shared by ``shift query`` and ``shift repl``.

:class:`ScriptRunner` submits statements one by one, follows each until it is final and
prints its result. ``USE`` switches brokers here in the client. A task-aware statement
without ``WAIT`` is started and reported by id. Ctrl-C while a query runs cancels it on the
broker and re-raises ``KeyboardInterrupt`` (``shift query`` stops; the REPL goes on).
The REPL subclasses it to follow queries over the event stream with a progress bar, page
long results and time statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TextIO

from repl.client import BrokerClient, ClientError
from repl.output import render_result
from repl.progress import stage_text
from shift.errors import QueryError
from shift.ql import nodes as n
from shift.ql import to_json


class ScriptRunner:
    """Runs parsed statements one by one and prints what each returns.

    Args:
        client: The broker client (its ``url`` changes on ``USE``).
        fmt: Output format, ``table``, ``json`` or ``csv``.
        session: The broker session holding ``DECLARE``d variables.
        out: Where results go.
        err: Where errors go (and status lines for ``json``/``csv``).
    """

    def __init__(
        self, client: BrokerClient, fmt: str, session: str, out: TextIO, err: TextIO
    ) -> None:
        self.client = client
        self.fmt = fmt
        self.session = session
        self.out = out
        self.err = err

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
            self.say(f"query {query['id']} {query['status']}; add WAIT to wait for its result")
            return query.get("status") != "failed"
        try:
            final = self.follow(query)
        except KeyboardInterrupt:
            self.cancel(query["id"])
            raise
        return self.report(final)

    def follow(self, query: dict[str, Any]) -> dict[str, Any]:
        """Wait until ``query`` is final and return its final state (polling); a search's
        new stage (halving round, arms, rows) is a status line on stderr."""
        final = query
        shown = ""
        for state in self.client.follow(query["id"]):
            final = state
            progress = state.get("progress")
            stage = stage_text(progress.get("stage")) if isinstance(progress, dict) else ""
            if stage and stage != shown:
                shown = stage
                print(stage, file=self.err)
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
