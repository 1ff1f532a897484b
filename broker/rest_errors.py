"""The one error shape of the REST API, and the middleware and runner that produce it.

Every non-2xx answer, whichever layer refuses the request, has one JSON body::

    {"error": {"status": 404, "code": "not_found", "message": "..."}}

(query errors add ``diagnostics``). :func:`error_middleware` turns handler failures into it;
:class:`ApiRunner` does the same for requests aiohttp refuses before any handler runs (an
oversized header or request line, a malformed request), which aiohttp would otherwise answer
in plain text.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from shift.errors import CatalogError, QueryError, SchedulerError, SettingsError, ShiftError
from shift.payloads import PayloadError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(ShiftError):
    """A request the API refuses, with the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


STATUS_OF_ERROR: dict[type[ShiftError], int] = {
    SchedulerError: 400,
    QueryError: 400,
    CatalogError: 400,
    SettingsError: 400,
    PayloadError: 400,
}
"""HTTP status for shift errors raised by handlers (anything else is 500)."""

CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    500: "internal_error",
}
"""Error code of each status when nothing more specific is known."""

INTERNAL_MESSAGE = "internal error; see the broker log"

_KEPT_HEADERS = ("Allow",)
"""Headers of an aiohttp HTTP error that the JSON answer keeps (405 must list ``Allow``)."""


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The one JSON shape of every error answer."""
    return {"error": {"status": status, "code": code, "message": message}}


def error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    """An error answer in the one shape."""
    return web.json_response(error_body(status, code, message), status=status, headers=headers)


def _http_error_message(error: web.HTTPException) -> str:
    if error.status == 413:
        return (
            f"the request body is too large: {error.text}; "
            "send a smaller body (split a batch into several requests)"
        )
    if error.status == 405:
        allowed = error.headers.get("Allow", "")
        return f"method not allowed here; this path accepts {allowed or 'no method'}"
    if error.status == 404:
        return "no such route; GET /v1/openapi.json lists every route"
    return error.reason or CODE_OF_STATUS.get(error.status, "http_error")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into the one error shape."""
    try:
        return await handler(request)
    except ApiError as error:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
        return error_response(error.status, error.code, str(error), **headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = CODE_OF_STATUS.get(error.status, "http_error")
        kept = {k: error.headers[k] for k in _KEPT_HEADERS if k in error.headers}
        return error_response(error.status, code, _http_error_message(error), **kept)
    except ShiftError as error:
        status = next((s for t, s in STATUS_OF_ERROR.items() if isinstance(error, t)), 500)
        body = error_body(status, error.code, str(error))
        if isinstance(error, QueryError):
            body["error"]["diagnostics"] = [d.to_dict() for d in error.diagnostics]
        return web.json_response(body, status=status)
    except Exception:
        log.exception("unhandled error answering %s %s", request.method, request.path)
        return error_response(500, "internal_error", INTERNAL_MESSAGE)


class _JsonErrorProtocol(RequestHandler):
    """aiohttp's connection handler, answering requests it cannot read in the error shape."""

    __slots__ = ()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's hook for a request it could not read: answer in the one error shape."""
        if status >= 500:
            super().handle_error(request, status, exc, message)  # logs the traceback
            text = INTERNAL_MESSAGE
        else:
            # A client's malformed request is its problem, not the broker's: no traceback.
            reason = " ".join((message or "").split())[:200]
            log.debug("refused an unreadable request from %s: %s", request.remote, reason)
            if request.writer.output_size > 0:
                raise ConnectionError("a response was already sent; cannot send the error")
            text = (
                f"the HTTP request could not be read ({reason}); a request line and each "
                "header are limited to 8190 bytes"
            )
        response = error_response(status, CODE_OF_STATUS.get(status, "http_error"), text)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorProtocol(self, loop=self._loop, **self._kwargs)


class ApiRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose own refusals use the one error shape too.

    aiohttp answers a request it cannot parse (a header over 8190 bytes, a bad request
    line) before any middleware runs; this runner's connections answer those in JSON.
    """

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _JsonErrorServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )
