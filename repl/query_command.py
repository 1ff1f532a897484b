"""``shift query [--url U] [--format table|json|csv] "TEXT" | -f FILE``.

Parses the whole script first (nothing is sent if any statement is bad), then runs the
statements in order against the broker: ``USE`` switches brokers here in the client; a
task-aware statement without ``WAIT`` is started and reported by id; everything else is
followed until it is final and its result printed. Ctrl-C cancels the running query.

``shift query --id ID`` waits for a query started earlier (without ``WAIT``) and prints its
result. Exit codes: 0 every statement succeeded, 1 a query failed or the broker could not be
reached, 2 a statement did not parse.
"""

from __future__ import annotations

import argparse
import sys

from repl.runner import ScriptRunner

HELP = "Run SHiFT-QL statements against a broker and print results."
"""One line of ``shift --help``."""

FLAGS = ("url", "token")

__all__ = ["ScriptRunner", "configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift query``."""
    from repl.output import FORMATS

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("text", nargs="?", help="SHiFT-QL statements (use quotes)")
    source.add_argument("-f", "--file", help="read the statements from FILE ('-' for stdin)")
    source.add_argument(
        "--id", dest="query_id", help="wait for an earlier query (started without WAIT)"
    )
    parser.add_argument("--url", default=None, help="broker URL (setting `url`)")
    parser.add_argument("--token", default=None, help="bearer token (setting `token`)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")
    parser.add_argument("--session", default="default", help="session holding DECLAREd names")


def run(args: argparse.Namespace) -> int:
    """Run the statements; see the module docstring for exit codes."""
    from repl.client import BrokerClient
    from repl.parse_command import read_source
    from shift.errors import QueryError, ShiftError
    from shift.ql import parse_script
    from shift.settings import load_settings

    if args.query_id:
        return follow_earlier(args)
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
    for notice in script.notices:
        print(f"notice: {notice.render()}", file=sys.stderr)
    client = BrokerClient(settings["url"], settings["token"])
    runner = ScriptRunner(client, args.format, args.session, sys.stdout, sys.stderr)
    return runner.run(script.statements)


def follow_earlier(args: argparse.Namespace) -> int:
    """``shift query --id ID``: wait for a query and print its result like any other."""
    from repl.client import BrokerClient, ClientError
    from shift.errors import ShiftError
    from shift.settings import load_settings

    try:
        settings = load_settings({"url": args.url, "token": args.token})
    except ShiftError as error:
        print(f"shift query: {error}", file=sys.stderr)
        return 2
    client = BrokerClient(settings["url"], settings["token"])
    runner = ScriptRunner(client, args.format, args.session, sys.stdout, sys.stderr)
    try:
        return 0 if runner.wait_for(client.query(args.query_id)) else 1
    except ClientError as error:
        runner.broker_error(error)
        return 1
