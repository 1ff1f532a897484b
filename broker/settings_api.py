"""``GET /v1/settings``: the settings this broker runs with, so a client can show them.

A client (the REPL's ``\\settings``) knows only its own settings; what the broker was
started with (its state directory, ports, data roots, halving rule) is only on the broker.
The token is never sent back: its value is ``(set)`` or empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from broker.rest_endpoint import Call, Endpoint, endpoint
from broker.rest_models import Answer
from broker.task_api import json_answer
from shift.settings import SETTINGS

SETTINGS_KEY = web.AppKey("settings", dict)
"""The broker's resolved settings (empty when the app was built without them)."""

SECRET = frozenset({"token"})
"""Settings whose value is never answered, only whether it is set."""


class SettingInfo(Answer):
    """One broker setting."""

    name: str
    value: Any
    default: Any
    help: str


class SettingList(Answer):
    """Every setting of the broker."""

    settings: list[SettingInfo]


def setting_rows(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One ``{name, value, default, help}`` per setting; secrets masked, unknown values null."""
    out = []
    for setting in SETTINGS:
        value = values.get(setting.name)
        if setting.name in SECRET:
            value = "(set)" if value else ""
        default = "" if setting.name in SECRET else setting.default
        out.append({"name": setting.name, "value": value, "default": default, "help": setting.help})
    return out


@endpoint(Endpoint("The settings this broker runs with", {200: (SettingList, "Every setting")}))
async def list_settings(request: web.Request, call: Call) -> web.Response:
    """``GET /v1/settings``."""
    values = request.app.get(SETTINGS_KEY, {})
    return json_answer({"settings": setting_rows(values)})


ROUTES = (("GET", "/v1/settings", list_settings),)
"""The route this module adds."""
