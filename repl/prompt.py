"""The prompt_toolkit side of the REPL: the prompt session, its keys and completer adapter.

Everything here only translates: completion is :func:`repl.completer.complete`, the Enter
rule is :func:`repl.lexing.is_complete`, the toolbar text comes from the REPL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.styles import Style

from repl.commands import kept_in_history
from repl.completer import complete
from repl.highlight import STYLE, ShiftQLLexer
from repl.lexing import is_complete
from repl.watcher import BrokerWatcher

PROMPT = "shift> "
CONTINUATION = "...> "


class ReplCompleter(Completer):
    """Adapter around the pure :func:`repl.completer.complete` over the watcher's names."""

    def __init__(self, watcher: BrokerWatcher) -> None:
        self.watcher = watcher

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        """Yield the completions for the text before the cursor."""
        found = complete(document.text_before_cursor, self.watcher.names)
        for item in found.items:
            yield Completion(item.text, -len(found.prefix), display_meta=item.kind)


class ReplHistory(FileHistory):
    """The history file, without the commands that leave the REPL (``\\quit``, ``\\q``):
    Up after a restart should bring back work, not the way out."""

    def append_string(self, string: str) -> None:
        """Remember ``string`` unless it leaves the REPL."""
        if kept_in_history(string):
            super().append_string(string)


def enter(event: KeyPressEvent) -> None:
    """Enter: take a highlighted completion; run a finished statement; else a new line."""
    buffer = event.current_buffer
    state = buffer.complete_state
    if state is not None and state.current_completion is not None:
        buffer.apply_completion(state.current_completion)
        return
    if is_complete(buffer.text):
        buffer.validate_and_handle()
    else:
        buffer.insert_text("\n")


def newline(event: KeyPressEvent) -> None:
    """Alt-Enter (Esc Enter): always a new line."""
    event.current_buffer.insert_text("\n")


def continuation(width: int, line_number: int, is_soft_wrap: bool) -> str:
    """The prompt of a statement's second and later lines, aligned with the first."""
    return CONTINUATION.rjust(width)


def build_session(
    history: Path, watcher: BrokerWatcher, toolbar: Callable[[], str]
) -> PromptSession[str]:
    """A prompt session with every REPL feature switched on.

    Args:
        history: The history file (its directory must exist).
        watcher: Source of the completer's names.
        toolbar: Returns the bottom toolbar's text (called on every redraw).
    """
    bindings = KeyBindings()
    bindings.add("enter")(enter)
    bindings.add("escape", "enter")(newline)
    return PromptSession(
        PROMPT,
        multiline=True,
        prompt_continuation=continuation,
        history=ReplHistory(str(history)),
        # Up/Down prefix search would switch off completion while typing in
        # prompt_toolkit; Ctrl-R / Ctrl-S search the history instead.
        enable_history_search=False,
        auto_suggest=AutoSuggestFromHistory(),
        completer=ReplCompleter(watcher),
        complete_while_typing=True,
        lexer=PygmentsLexer(ShiftQLLexer),
        style=Style.from_dict(STYLE),
        bottom_toolbar=toolbar,
        refresh_interval=1.0,
        key_bindings=bindings,
    )
