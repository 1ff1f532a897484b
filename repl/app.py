"""``shift repl [--url U]``: the interactive client, on prompt_toolkit.

A :class:`Repl` reads statements with a prompt (multi-line until ``;``, history in a file,
history search, suggestions from history, context-aware completion, SHiFT-QL colours, a
bottom toolbar with the broker's state), parses them here (a bad one shows the caret and
the session goes on), runs backslash commands from :mod:`repl.commands`, and hands the
statements to :class:`repl.interactive.InteractiveRunner`. prompt_toolkit is imported only
when the REPL starts, so other ``shift`` commands do not pay for it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from repl.interactive import InteractiveRunner
    from repl.watcher import BrokerWatcher

HELP = "The interactive SHiFT-QL client: completion, progress."
"""One line of ``shift --help``."""

HISTORY_FILE = "repl_history"
"""Name of the history file inside the state directory (``--history`` overrides)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``shift repl``."""
    parser.add_argument("--url", default=None, help="broker URL (setting `url`)")
    parser.add_argument("--token", default=None, help="bearer token (setting `token`)")
    parser.add_argument("--session", default="default", help="session holding DECLAREd names")
    parser.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format"
    )
    parser.add_argument(
        "--history",
        default=None,
        help=f"history file (default: STATE_DIR/{HISTORY_FILE}, e.g. "
        f"~/.local/state/shift/{HISTORY_FILE})",
    )


def run(args: argparse.Namespace) -> int:
    """Start the REPL; returns 0 when the user leaves."""
    from shift.settings import load_settings

    settings = load_settings({"url": args.url, "token": args.token})
    history = Path(args.history or Path(settings["state_dir"]) / HISTORY_FILE).expanduser()
    repl = Repl(settings, args.session, history, {"format": args.format}, sys.stdout)
    return repl.loop()


class Repl:
    """One interactive session against a broker.

    Args:
        settings: Resolved shift settings (``url``, ``token``, ...).
        session: The broker session holding ``DECLARE``d variables.
        history: The history file (created with its directory).
        options: Overrides of :data:`repl.commands.OPTIONS` defaults.
        out: The terminal.
    """

    def __init__(
        self,
        settings: dict[str, Any],
        session: str,
        history: Path,
        options: dict[str, Any],
        out: TextIO,
    ) -> None:
        from repl.client import BrokerClient
        from repl.commands import OPTIONS
        from repl.interactive import InteractiveRunner
        from repl.watcher import BrokerWatcher

        self.settings = settings
        self.history = history
        self.out = out
        self.options: dict[str, Any] = {o.name: o.default for o in OPTIONS} | options
        self.done = False
        self.client = BrokerClient(settings["url"], settings["token"])
        self.watcher: BrokerWatcher = BrokerWatcher(settings["url"], settings["token"], session)
        self.runner: InteractiveRunner = InteractiveRunner(
            self.client, self.options, session, out, self.watcher
        )

    # ---- the Shell protocol of repl.commands -------------------------------------------------

    def write(self, text: str) -> None:
        """Print a line for the user."""
        print(text, file=self.out, flush=True)

    def refresh_names(self) -> None:
        """Fetch models, datasets and variables again (in the background)."""
        self.watcher.refresh_names()

    def fetch(self, path: str) -> Any:
        """GET ``path`` on the broker the REPL uses now."""
        return self.client.request("GET", path)

    def settings_rows(self) -> list[list[Any]]:
        """(of, setting, value, help): the REPL's options, how this client reaches the
        broker, and the broker's own settings from ``GET /v1/settings``."""
        from repl.client import ClientError
        from repl.commands import OPTIONS
        from shift.settings import SETTINGS

        rows: list[list[Any]] = [["repl", o.name, self.options[o.name], o.help] for o in OPTIONS]
        rows.append(["repl", "history", str(self.history), "History file (`--history`)."])
        rows.append(["repl", "session", self.runner.session, "Broker session (`--session`)."])
        helps = {s.name: s.help for s in SETTINGS}
        rows.append(["client", "url", self.client.url, helps["url"]])
        rows.append(["client", "token", "(set)" if self.client.token else "", helps["token"]])
        try:
            answer = self.fetch("/v1/settings")
        except ClientError as error:
            return [*rows, ["broker", "(not known)", str(error), "`\\settings` asks the broker."]]
        for setting in (answer or {}).get("settings") or []:
            rows.append(["broker", setting.get("name"), setting.get("value"), setting.get("help")])
        return rows

    # ---- the loop ----------------------------------------------------------------------------

    def loop(self) -> int:
        """Read and run statements until ``\\quit`` or Ctrl-D; returns the exit code."""
        from repl.prompt import build_session

        self.history.parent.mkdir(parents=True, exist_ok=True)
        session = build_session(self.history, self.watcher, self.toolbar)
        self.watcher.start()
        self._greet()
        try:
            while not self.done:
                try:
                    text = session.prompt()
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                self.handle(text)
        finally:
            self.watcher.close()
        return 0

    def handle(self, text: str) -> None:
        """Run one input: a backslash command or SHiFT-QL statements."""
        from repl.commands import execute
        from shift.errors import QueryError, ShiftError
        from shift.ql import parse_script

        if not text.strip():
            return
        try:
            if text.strip().startswith("\\"):
                execute(self, text)
                return
            script = parse_script(text)
            for notice in script.notices:
                self.write(f"notice: {notice.render()}")
            self.runner.run(script.statements)
        except QueryError as error:
            self.write(str(error))
        except ShiftError as error:
            self.write(str(error))
        except KeyboardInterrupt:
            pass  # the runner cancelled the running query and said so

    def _greet(self) -> None:
        status = self.watcher.poll()
        if status.reachable:
            plural = "s" * (status.workers != 1)
            where = f"connected to {status.url} ({status.workers} worker{plural})"
        else:
            where = (
                f"{status.error}\nStatements are retried when sent, and the toolbar shows when "
                "the broker answers; `USE host:port` picks another broker."
            )
        self.write(f"shift repl: {where}\nType \\help for help, \\quit to leave.")

    def toolbar(self) -> str:
        """The bottom toolbar: broker URL, workers connected, queries running, options."""
        status = self.watcher.status
        if status.reachable is None:
            state = "connecting..."
        elif not status.reachable:
            state = "unreachable (retrying)"
        else:
            state = f"workers: {status.workers} | running: {status.running}"
        timing = " | timing" if self.options["timing"] else ""
        return f" {status.url} | {state} | {self.options['format']}{timing} "


__all__ = ["Repl", "configure", "run"]
