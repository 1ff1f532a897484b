"""Command-line flags that override settings: one flag per setting, help from the table."""

from __future__ import annotations

import argparse
from typing import Any

from shift.settings import SETTINGS

Flag = tuple[str, str, type]
"""``(flag, setting name, type)``, e.g. ``("--http-port", "http_port", int)``."""


def setting_flags(*names: str) -> tuple[Flag, ...]:
    """The flags of settings, named and typed from the settings table: ``state_dir`` is
    ``--state-dir`` taking a ``str``.

    Raises:
        KeyError: a name that is not a setting (a programming error, caught by the tests).
    """
    table = {s.name: s for s in SETTINGS}
    return tuple(("--" + name.replace("_", "-"), name, type(table[name].default)) for name in names)


def add_setting_flags(parser: argparse.ArgumentParser, flags: tuple[Flag, ...]) -> None:
    """Add one flag per setting, with the setting's help, default and variable in ``--help``."""
    helps = {s.name: f"{s.help} (default {s.default!r}; env {s.env_var})" for s in SETTINGS}
    for flag, name, kind in flags:
        parser.add_argument(flag, dest=name, type=kind, default=None, help=helps.get(name))


def setting_overrides(args: argparse.Namespace, flags: tuple[Flag, ...]) -> dict[str, Any]:
    """The settings given on the command line (``None`` where a flag was not given)."""
    return {name: getattr(args, name) for _, name, _ in flags}
