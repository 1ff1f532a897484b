"""``shift query [--url U] [--format table|json|csv] "TEXT" | -f FILE``.

Parses the whole script first (nothing is sent if any statement is bad), then runs the
statements in order against the broker: ``USE`` switches brokers here in the client; a
task-aware statement without ``WAIT`` is started and reported by id; everything else is
followed until it is final and its result printed. Ctrl-C cancels the running query.

Exit codes: 0 every statement succeeded, 1 a query failed or the broker could not be
reached, 2 a statement did not parse.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

FLAGS = ("url", "token")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift query``."""
    from repl.output import FORMATS

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("text", nargs="?", help="SHiFT-QL statements (use quotes)")
    source.add_argument("-f", "--file", help="read the statements from FILE ('-' for stdin)")
    parser.add_argument("--url", default=None, help="broker URL (setting `url`)")
    parser.add_argument("--token", default=None, help="bearer token (setting `token`)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument("--session", default="default", help="session holding DECLAREd names")


def run(args: argparse.Namespace) -> int:
    """Run the statements; see the module docstring for exit codes."""
    from repl.client import BrokerClient
    from shift.commands.parse import read_source
    from shift.errors import QueryError, ShiftError
    from shift.ql import parse_script
    from shift.settings import load_settings

    try:
        settings = load_settings({"url": args.url, "token": args.token})
        text, name = read_source(args)
    except (OSError, UnicodeDecodeError) as error:
        print(f"shift query: cannot read {args.file}: {error}", file=sys.stderr)
        return 1
    except ShiftError as error:
        print(f"shift query: {error}", file=sys.stderr)
        return 2
    try:
        script = parse_script(text, source=name)
    except QueryError as error:
        print(str(error), file=sys.stderr)
        return 2
    client = BrokerClient(settings["url"], settings["token"])
    runner = ScriptRunner(client, args.format, args.session, sys.stdout, sys.stderr)
    return runner.run(script.statements)


class ScriptRunner:
    """Runs parsed statements one by one and prints what each returns."""

    def __init__(self, client: Any, fmt: str, session: str, out: TextIO, err: TextIO) -> None:
        self.client = client
        self.fmt = fmt
        self.session = session
        self.out = out
        self.err = err

    def run(self, statements: Any) -> int:
        """Run every statement; return the exit code."""
        from repl.client import ClientError
        from shift.errors import QueryError
        from shift.ql import nodes as n

        status = 0
        for statement in statements:
            if isinstance(statement, n.Use):
                self.client.url = statement.url
                self.say(f"using {statement.url}")
                continue
            try:
                if not self.run_one(statement):
                    status = 1
            except QueryError as error:
                print(str(error), file=self.err)
                status = 1
            except ClientError as error:
                print(f"shift query: {error}", file=self.err)
                return 1
        return status

    def run_one(self, statement: Any) -> bool:
        """Submit one statement, follow it when it should be waited for; True if it worked."""
        from shift.ql import to_json

        (query,) = self.client.submit(to_json(statement), self.session)
        if getattr(statement, "wait", True) is False:
            self.say(f"query {query['id']} {query['status']}; add WAIT to wait for its result")
            return query.get("status") != "failed"
        final = query
        try:
            for state in self.client.follow(query["id"]):
                final = state
        except KeyboardInterrupt:
            self.client.cancel(query["id"])
            print(f"cancelled query {query['id']}", file=self.err)
            raise
        return self.report(final)

    def report(self, query: dict[str, Any]) -> bool:
        """Print a final query: its result, or its error on stderr."""
        from repl.output import render_result

        if query.get("status") == "succeeded":
            text = render_result(query.get("result"), self.fmt)
            if text:
                print(text, file=self.out)
            return True
        error = query.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        print(f"query {query.get('id')} {query.get('status')}: {message}", file=self.err)
        if isinstance(error, dict):
            for diagnostic in error.get("diagnostics") or []:
                if diagnostic.get("hint"):
                    print(f"  hint: {diagnostic['hint']}", file=self.err)
            if error.get("hint"):
                print(f"  hint: {error['hint']}", file=self.err)
        return False

    def say(self, message: str) -> None:
        """A status line (not part of the results): stderr for json/csv, stdout for tables."""
        print(message, file=self.out if self.fmt == "table" else self.err)
