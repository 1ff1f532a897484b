"""Settings: one table (name, default, help) that drives the CLI, the REPL and the docs.

Values come, in increasing priority, from the defaults below, the environment
(``SHIFT_<NAME>`` in upper case) and explicit overrides (command-line flags).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shift.errors import SettingsError
from shift.strategies import DEFAULT_STRATEGY


@dataclass(frozen=True)
class Setting:
    """One configurable value.

    Attributes:
        name: snake_case name; the environment variable is ``SHIFT_`` + upper case.
        default: default value; its type is the setting's type.
        help: one line for ``--help`` and the README.
    """

    name: str
    default: Any
    help: str

    @property
    def env_var(self) -> str:
        """The environment variable that overrides the default."""
        return "SHIFT_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("state_dir", "~/.local/state/shift", "Directory holding the SQLite file and features."),
    Setting("http_host", "127.0.0.1", "Address the broker's REST API binds to."),
    Setting("http_port", 8001, "Port of the broker's REST API."),
    Setting("zmq_host", "127.0.0.1", "Address the broker's ZeroMQ ROUTER binds to."),
    Setting("zmq_port", 5555, "Port of the broker's ZeroMQ ROUTER."),
    Setting("token", "", "Bearer token required on every REST request when not empty."),
    Setting("data_roots", "", "Colon-separated directories datasets may be read from."),
    Setting("heartbeat_ms", 1000, "Interval between worker heartbeats, in milliseconds."),
    Setting("liveness", 3, "Heartbeats a worker may miss before it is declared dead."),
    Setting("max_attempts", 3, "Workers a task may kill before it fails for good."),
    Setting("url", "http://127.0.0.1:8001", "Broker URL that clients (query, repl) talk to."),
    Setting("prefetch", 2, "Tasks the broker may keep in flight on one worker."),
    Setting("reconnect_max_ms", 5000, "Longest pause between a worker's reconnect attempts."),
    Setting("shutdown_grace_ms", 10000, "How long a stopping worker waits for its running task."),
    Setting(
        "zmq_auth",
        "auto",
        "CurveZMQ on the worker link: auto, curve or off (off only on loopback).",
    ),
    Setting(
        "worker_keys", "", "Folder with a worker's CurveZMQ keys (from shift keys add-worker)."
    ),
    Setting("prefetch_max", 256, "Most tasks the broker keeps in flight on one worker."),
    Setting(
        "halving",
        "racing",
        "Successive-halving rule: racing (early rounds on a test prefix, kept within a "
        "confidence margin) or plain (every round on the whole test set).",
    ),
    Setting("max_frame_bytes", 16777216, "Largest ZeroMQ frame accepted; larger ones are dropped."),
    Setting(
        "rank_strategy",
        DEFAULT_STRATEGY,
        "Strategy of a RANK without BY (and of BY default): a registered strategy or KIND:A+B.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def _convert(setting: Setting, value: Any, origin: str) -> Any:
    kind = type(setting.default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    if kind is int:
        try:
            return int(str(value).strip())
        except ValueError:
            raise SettingsError(
                f"setting {setting.name} from {origin} must be an integer, got {value!r}"
            ) from None
    return str(value)


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Resolve every setting from defaults, the environment and overrides.

    Args:
        overrides: Explicit values (``None`` values are ignored), e.g. parsed CLI flags.
        environ: The environment to read; ``os.environ`` when omitted.

    Returns:
        A dict with one entry per setting, converted to the setting's type.

    Raises:
        SettingsError: an override names an unknown setting or a value has the wrong type.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        if setting.env_var in environ:
            value = _convert(setting, environ[setting.env_var], setting.env_var)
        values[setting.name] = value
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in _BY_NAME:
            raise SettingsError(f"unknown setting {name!r}; known: {', '.join(sorted(_BY_NAME))}")
        values[name] = _convert(_BY_NAME[name], value, "the command line")
    values["state_dir"] = str(Path(values["state_dir"]).expanduser())
    return values


ZMQ_AUTH_MODES = ("auto", "curve", "off")
"""The values of the ``zmq_auth`` setting."""

HALVING_RULES = ("racing", "plain")
"""The values of the ``halving`` setting (docs/halving.md)."""


def halving_rule(settings: Mapping[str, Any]) -> str:
    """The ``halving`` setting, checked.

    Raises:
        SettingsError: a value other than ``racing`` or ``plain``.
    """
    rule = str(settings.get("halving", "racing")).strip().lower()
    if rule not in HALVING_RULES:
        raise SettingsError(
            f"setting halving must be one of {', '.join(HALVING_RULES)}, got {rule!r}"
        )
    return rule
