"""The REST API: an aiohttp app factory over a running :class:`Broker`.

Every non-2xx answer has one shape, produced by :func:`broker.rest_errors.error_middleware`::

    {"error": {"status": 404, "code": "not_found", "message": "..."}}

With a configured token every request (health and metrics included) needs
``Authorization: Bearer <token>``; the API refuses to listen beyond loopback without one.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from broker import search_api
from broker.openapi import openapi_document
from broker.rest_errors import ApiError, ApiRunner, Handler, error_middleware
from broker.rest_input import MAX_BODY_BYTES
from broker.rest_routes import ROUTES
from broker.service import Broker
from broker.settings_api import SETTINGS_KEY
from broker.task_api import BROKER_KEY, OPENAPI_KEY
from shift.errors import SettingsError
from shift.netaddr import is_loopback

log = logging.getLogger(__name__)

TOKEN_KEY = web.AppKey("token", str)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Require ``Authorization: Bearer <token>`` when a token is configured."""
    token = request.app[TOKEN_KEY]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "missing or wrong bearer token; send 'Authorization: Bearer <token>' "
                "with the broker's token setting",
            )
    return await handler(request)


def check_bind(host: str, token: str) -> str | None:
    """Whether the REST API may listen on ``host``; a warning to log when it is not loopback.

    Anyone who can reach a non-loopback address can run queries, register models and read
    results, so such a bind needs a token.

    Raises:
        SettingsError: ``host`` is not loopback and no token is configured.
    """
    if is_loopback(host):
        return None
    if not token:
        raise SettingsError(
            f"refusing to serve REST on {host!r} without a token: anyone who can reach it "
            "could run queries; set the token setting (--token or SHIFT_TOKEN), or bind "
            "127.0.0.1"
        )
    return (
        f"REST API listens on non-loopback address {host!r}; every request needs the token, "
        "but traffic is plain HTTP (put TLS in front of it on an untrusted network)"
    )


def create_app(
    broker: Broker,
    *,
    token: str = "",
    search: search_api.Search | None = None,
    settings: Mapping[str, Any] | None = None,
) -> web.Application:
    """Build the REST app over a started broker; serve it with :class:`ApiRunner`.

    Args:
        broker: The broker service (owns the store).
        token: Bearer token required on every request; empty for none.
        search: Catalog and query service for the search routes (they answer 404 without).
        settings: The resolved settings the broker runs with (``GET /v1/settings``).
    """
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=MAX_BODY_BYTES
    )
    app[BROKER_KEY] = broker
    app[TOKEN_KEY] = token
    app[OPENAPI_KEY] = openapi_document(secured=bool(token))
    app[SETTINGS_KEY] = dict(settings or {})
    if search is not None:
        app[search_api.SEARCH_KEY] = search
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    return app


__all__ = ["ROUTES", "ApiRunner", "check_bind", "create_app", "openapi_document"]
