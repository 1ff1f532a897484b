"""``shift models browse|import REGISTRY [--where COND] [--order-by KEYS] [--limit N]``.

A shorthand for the registry statements, run like ``shift query`` runs them:
``shift models browse timm --where "name LIKE 'convnext%' AND pretrained"`` is
``SELECT ... FROM timm_registry WHERE ...`` and ``shift models import timm --where ...`` is
``REGISTER MODELS FROM timm WHERE ...``. The statement is printed on stderr, then sent to
the broker; exit codes are those of ``shift query``.

Registered as the ``models`` entry point in ``pyproject.toml`` (``models =
"repl.models_command"``); until the installed metadata has it, call :func:`run` with the
parser :func:`configure` fills.
"""

from __future__ import annotations

import argparse
import sys

HELP = "Browse the timm or Hugging Face registry, or import a family of models from it."
"""One line of ``shift --help``."""

DEFAULT_COLUMNS = "name, pretrained, input_size, license, num_params, feature_dim"
"""What ``shift models browse`` shows when ``--columns`` is not given."""


def statement_text(
    action: str,
    registry: str,
    where: str | None = None,
    order_by: str | None = None,
    limit: int | None = None,
    columns: str | None = None,
) -> str:
    """The SHiFT-QL statement of a ``shift models`` command line (parsed by the caller)."""
    table = {"hf": "huggingface"}.get(registry.lower(), registry.lower())
    where_part = f" WHERE {where}" if where else ""
    limit_part = f" LIMIT {limit}" if limit is not None else ""
    if action == "import":
        return f"REGISTER MODELS FROM {table}{where_part}{limit_part}"
    order_part = f" ORDER BY {order_by}" if order_by else ""
    shown = columns or DEFAULT_COLUMNS
    if table == "huggingface" and not columns:
        shown = "name, library, pipeline_tag, license, downloads, num_params"
    return f"SELECT {shown} FROM {table}_registry{where_part}{order_part}{limit_part}"


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift models``."""
    from repl.output import FORMATS

    parser.add_argument("action", choices=("browse", "import"), help="list, or register")
    parser.add_argument("registry", help="timm or huggingface (hf)")
    parser.add_argument("--where", default=None, help="a SHiFT-QL condition over the rows")
    parser.add_argument("--order-by", default=None, help="browse: ORDER BY keys")
    parser.add_argument("--limit", type=int, default=None, help="most rows")
    parser.add_argument("--columns", default=None, help="browse: columns, comma-separated")
    parser.add_argument("--url", default=None, help="broker URL (setting `url`)")
    parser.add_argument("--token", default=None, help="bearer token (setting `token`)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    """Build the statement, show it on stderr, run it (exit codes of ``shift query``)."""
    from repl.client import BrokerClient
    from repl.runner import ScriptRunner
    from shift.errors import QueryError, ShiftError
    from shift.ql import parse_script
    from shift.settings import load_settings

    text = statement_text(
        args.action, args.registry, args.where, args.order_by, args.limit, args.columns
    )
    print(text, file=sys.stderr)
    try:
        settings = load_settings({"url": args.url, "token": args.token})
        script = parse_script(text, source="<shift models>")
    except QueryError as error:
        print(str(error), file=sys.stderr)
        return 2
    except ShiftError as error:
        print(f"shift models: {error}", file=sys.stderr)
        return 2
    client = BrokerClient(settings["url"], settings["token"])
    runner = ScriptRunner(client, args.format, "default", sys.stdout, sys.stderr)
    return runner.run(script.statements)
