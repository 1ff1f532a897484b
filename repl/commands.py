"""The REPL's backslash commands (``\\format``, ``\\timing``, ...) and its options table.

Commands live in a registry filled by the :func:`command` decorator; an unknown command
names the closest one. Each command is a plain function of the :class:`Shell` it acts on
and its argument text, so it can be tested without a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from repl.output import FORMATS, table
from shift.errors import ShiftError
from shift.ql.vocabulary import did_you_mean


class ReplError(ShiftError):
    """A backslash command that cannot run (unknown name, bad argument)."""

    code = "repl_error"


@dataclass(frozen=True)
class Option:
    """One REPL option: name, default and a line of help (``\\settings`` shows them)."""

    name: str
    default: Any
    help: str


OPTIONS: tuple[Option, ...] = (
    Option("format", "table", "How results print: table, json or csv (`\\format`)."),
    Option("timing", False, "Print how long each statement took (`\\timing`)."),
    Option("pager", True, "Page results taller than the terminal with $PAGER (`\\pager`)."),
)
"""The REPL's own options (the broker's settings are in ``shift.settings``)."""


class Shell(Protocol):
    """What a backslash command may use of the REPL."""

    options: dict[str, Any]
    done: bool

    def write(self, text: str) -> None:
        """Print a line for the user."""

    def refresh_names(self) -> None:
        """Fetch models, datasets and variables from the broker again."""

    def settings_rows(self) -> list[list[Any]]:
        """(of, setting, value, help) rows of the settings in effect; ``of`` says whose:
        ``repl`` (its options), ``client`` (how it reaches the broker) or ``broker``."""

    def fetch(self, path: str) -> Any:
        """GET ``path`` on the broker's REST API (raises ``ClientError`` when it fails)."""


@dataclass(frozen=True)
class BackslashCommand:
    """A registered command: ``\\name args``."""

    name: str
    args: str
    help: str
    run: Callable[[Shell, str], None]


COMMANDS: dict[str, BackslashCommand] = {}
ALIASES: dict[str, str] = {}


def command(
    name: str, help: str, args: str = "", aliases: tuple[str, ...] = ()
) -> Callable[[Callable[[Shell, str], None]], Callable[[Shell, str], None]]:
    """Register a function as ``\\name``."""

    def register(run: Callable[[Shell, str], None]) -> Callable[[Shell, str], None]:
        if name in COMMANDS:
            raise ValueError(f"command \\{name} registered twice")
        COMMANDS[name] = BackslashCommand(name, args, help, run)
        for alias in aliases:
            ALIASES[alias] = name
        return run

    return register


def find(name: str) -> BackslashCommand:
    """The command called ``name`` (an alias works too).

    Raises:
        ReplError: no such command; the message lists them and names the closest.
    """
    key = ALIASES.get(name, name)
    if key in COMMANDS:
        return COMMANDS[key]
    hint = did_you_mean(name, COMMANDS)
    known = ", ".join(f"\\{c}" for c in COMMANDS)
    raise ReplError(f"unknown command \\{name}{'; ' + hint if hint else ''} (known: {known})")


def execute(shell: Shell, line: str) -> None:
    """Run one ``\\command args`` line."""
    name, _, rest = line.strip().lstrip("\\").partition(" ")
    find(name.strip()).run(shell, rest.strip())


def kept_in_history(line: str) -> bool:
    """Whether an input line belongs in the history: not a command that leaves the REPL."""
    text = line.strip()
    if not text.startswith("\\"):
        return True
    name = text.lstrip("\\").partition(" ")[0].strip()
    return ALIASES.get(name, name) != "quit"


def _switch(value: str, current: bool, what: str) -> bool:
    if not value:
        return not current
    if value.lower() in ("on", "true", "1", "yes"):
        return True
    if value.lower() in ("off", "false", "0", "no"):
        return False
    raise ReplError(f"\\{what} takes on or off, got {value!r}")


@command("format", "Show or set the output format: table, json or csv.", "[table|json|csv]")
def _format(shell: Shell, rest: str) -> None:
    if rest:
        if rest not in FORMATS:
            hint = did_you_mean(rest, FORMATS)
            raise ReplError(
                f"unknown format {rest!r}; use one of {', '.join(FORMATS)}"
                + (f" ({hint})" if hint else "")
            )
        shell.options["format"] = rest
    shell.write(f"format is {shell.options['format']}")


@command("timing", "Turn printing each statement's time on or off.", "[on|off]")
def _timing(shell: Shell, rest: str) -> None:
    shell.options["timing"] = _switch(rest, shell.options["timing"], "timing")
    shell.write(f"timing is {'on' if shell.options['timing'] else 'off'}")


@command("pager", "Turn paging of long results on or off.", "[on|off]")
def _pager(shell: Shell, rest: str) -> None:
    shell.options["pager"] = _switch(rest, shell.options["pager"], "pager")
    shell.write(f"pager is {'on' if shell.options['pager'] else 'off'}")


@command("refresh", "Fetch model, dataset and variable names from the broker again.")
def _refresh(shell: Shell, rest: str) -> None:
    shell.refresh_names()
    shell.write("refreshing names from the broker")


@command("settings", "Show the REPL's options and the broker's settings, saying whose.")
def _settings(shell: Shell, rest: str) -> None:
    shell.write(table(["of", "setting", "value", "help"], shell.settings_rows()))


MODEL_LIST = ("name", "source", "modality", "num_params", "feature_dim", "status")
"""Columns ``\\d`` and ``\\d models`` list."""

DATASET_LIST = ("name", "reader", "modality", "size", "num_classes", "status")
"""Columns ``\\d`` and ``\\d datasets`` list."""

_LISTS = {"models": ("/v1/models", MODEL_LIST), "datasets": ("/v1/datasets", DATASET_LIST)}


def _listing(shell: Shell, kind: str) -> str:
    path, columns = _LISTS[kind]
    entries = (shell.fetch(path) or {}).get(kind) or []
    rows = [[entry.get(c) for c in columns] for entry in entries]
    return table(list(columns), rows, kind)


@command(
    "d",
    "List models and datasets, or one of them, or describe one by name.",
    "[models|datasets|NAME]",
    aliases=("describe",),
)
def _describe(shell: Shell, rest: str) -> None:
    word = rest.strip()
    if not word:
        shell.write(_listing(shell, "models") + "\n\n" + _listing(shell, "datasets"))
        return
    if word.lower() in _LISTS:
        shell.write(_listing(shell, word.lower()))
        return
    name = word.strip("\"'")
    shell.write(_entry_table(name, _find_entry(shell, name)))


def _find_entry(shell: Shell, name: str) -> tuple[str, dict[str, Any]]:
    """The catalog entry called ``name``: a model first, then a dataset.

    Raises:
        ReplError: neither exists (with the broker's closest name, if any).
    """
    from urllib.parse import quote

    from repl.client import ClientError

    hint = ""
    for kind in ("model", "dataset"):
        try:
            return kind, shell.fetch(f"/v1/{kind}s/{quote(name, safe='')}")
        except ClientError as error:
            if error.status != 404:
                raise
            said = str(error)
            if not hint and "did you mean" in said:
                hint = said[said.index("did you mean") :].rstrip(")")
    raise ReplError(
        f"no model or dataset named {name!r}{'; ' + hint if hint else ''} (\\d lists them)"
    )


def _entry_table(name: str, found: tuple[str, dict[str, Any]]) -> str:
    """One entry as (column, value) rows: the catalog row, status, error, then its spec."""
    kind, entry = found
    spec = entry.get("spec") if isinstance(entry.get("spec"), dict) else {}
    rows = [[key, value] for key, value in entry.items() if key != "spec"]
    rows += [[f"spec.{key}", _flat(value)] for key, value in (spec or {}).items()]
    return table(["column", "value"], rows, f"{kind} {name}")


def _flat(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


@command("help", "Show the commands and keys.", aliases=("h", "?"))
def _help(shell: Shell, rest: str) -> None:
    rows = [[f"\\{c.name} {c.args}".rstrip(), c.help] for c in COMMANDS.values()]
    shell.write(HELP_TEXT + "\n\n" + table(["command", "does"], rows).rsplit("\n", 1)[0])


@command("quit", "Leave the REPL (Ctrl-D does too).", aliases=("q", "exit"))
def _quit(shell: Shell, rest: str) -> None:
    shell.done = True


HELP_TEXT = """\
Type SHiFT-QL statements; a statement ends with ';' and may span lines (Enter on a line
that does not end one starts a new line; Alt-Enter always does). Tab completes, Up/Down
walk the history and Ctrl-R searches it, Right accepts the grey suggestion, Ctrl-C
cancels the running query (at the prompt it clears the line), Ctrl-D leaves.
See docs/repl.md."""
