"""``shift parse "TEXT" | -f FILE``: print the query tree as JSON (or canonical text).

Exit codes: 0 parsed, 2 the text is not valid SHiFT-QL (caret message on stderr),
1 the file could not be read.
"""

from __future__ import annotations

import argparse
import json
import sys

from shift.errors import QueryError

HELP = "Parse SHiFT-QL and print the query tree as JSON."
"""One line of ``shift --help``."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift parse``."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("text", nargs="?", help="SHiFT-QL statements (use quotes)")
    source.add_argument("-f", "--file", help="read the statements from FILE ('-' for stdin)")
    parser.add_argument(
        "--render",
        action="store_true",
        help="print the canonical SHiFT-QL spelling instead of the JSON tree",
    )


def read_source(args: argparse.Namespace) -> tuple[str, str]:
    """Return (text, name) from the positional text or ``--file``."""
    if args.file is None:
        return args.text, "<query>"
    if args.file == "-":
        return sys.stdin.read(), "<stdin>"
    with open(args.file, encoding="utf-8") as handle:
        return handle.read(), args.file


def run(args: argparse.Namespace) -> int:
    """Parse and print; see the module docstring for exit codes."""
    from shift.ql import parse_script, render, to_json

    try:
        text, name = read_source(args)
    except (OSError, UnicodeDecodeError) as error:
        print(f"shift parse: cannot read {args.file}: {error}", file=sys.stderr)
        return 1
    try:
        script = parse_script(text, source=name)
    except QueryError as error:
        print(str(error), file=sys.stderr)
        return 2
    for notice in script.notices:
        print(f"notice: {notice.render()}", file=sys.stderr)
    if args.render:
        sys.stdout.write(render(script))
    else:
        print(json.dumps(to_json(script), indent=2))
    return 0
