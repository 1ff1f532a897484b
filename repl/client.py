"""The one HTTP client of shift: synchronous calls to a broker's REST API.

``shift query``, the REPL, ``shift zoo`` and the simulator's ``--from-url`` all talk to a
broker through :class:`BrokerClient`, so the bearer token, timeouts, the error shape and
the event stream are handled in one place. Only the standard library (``urllib``): the
client must start fast and work where the broker and aiohttp do not run. Every failure is
a :class:`ClientError` (or a :class:`~shift.errors.QueryError` for a rejected query) that
says what to do next.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shift.errors import Diagnostic, QueryError, ShiftError

#: Query states after which nothing changes.
FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


class ClientError(ShiftError):
    """The broker could not be reached or answered with an error.

    Attributes:
        status: The HTTP status of an error answer (``None`` when there was none).
        body: The decoded error body, if any.
        unreachable: No answer came at all (nothing listening, network down): worth a retry.
    """

    code = "client_error"

    def __init__(
        self, message: str, status: int | None = None, body: Any = None, unreachable: bool = False
    ):
        super().__init__(message)
        self.status = status
        self.body = body
        self.unreachable = unreachable


@dataclass
class BrokerClient:
    """Talks to one broker.

    Attributes:
        url: Base URL, e.g. ``http://127.0.0.1:8001``.
        token: Bearer token, when the broker requires one.
        timeout_s: Timeout of one HTTP request.
    """

    url: str
    token: str = ""
    timeout_s: float = 30.0

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request and return the decoded JSON answer.

        Raises:
            ClientError: unreachable broker, or a non-2xx answer (its message inside).
            QueryError: the broker rejected a query text or tree (with its diagnostics).
        """
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url.rstrip("/") + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise _answer_error(error.code, error.read()) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ClientError(
                f"cannot reach the broker at {self.url}: {reason}; "
                "start one with `shift up` or pass --url",
                unreachable=True,
            ) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ClientError(
                f"{method} {path}: the broker at {self.url} answered something that is not "
                f"JSON: {raw[:120]!r}"
            ) from None

    def submit(self, tree: dict[str, Any], session: str = "default") -> list[dict[str, Any]]:
        """Send a parsed script (canonical JSON) and return the created queries."""
        answer = self.request("POST", "/v1/queries", {"tree": tree, "session": session})
        queries = answer.get("queries") if isinstance(answer, dict) else None
        if not isinstance(queries, list):
            raise ClientError(f"unexpected answer from the broker: {answer!r}")
        return queries

    def query(self, query_id: str) -> dict[str, Any]:
        """The current state of one query."""
        answer = self.request("GET", f"/v1/queries/{query_id}")
        if not isinstance(answer, dict):
            raise ClientError(f"unexpected answer from the broker: {answer!r}")
        return answer

    def cancel(self, query_id: str) -> None:
        """Ask the broker to cancel a query."""
        self.request("POST", f"/v1/queries/{query_id}/cancel", {})

    def events(self, query_id: str) -> Iterator[tuple[str, Any]]:
        """Yield ``(event, data)`` from the query's Server-Sent Events until ``done``.

        ``progress`` events carry ``{"done", "total"}`` (and ``round`` when the broker
        reports one); the last event is ``done`` with the final query.

        Raises:
            ClientError: the broker is unreachable or the stream broke off.
        """
        headers = {"Accept": "text/event-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            f"{self.url.rstrip('/')}/v1/queries/{query_id}/events", headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                event, data = "message", []
                for raw in response:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if line.startswith(":"):
                        continue
                    if line:
                        field, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if field == "event":
                            event = value
                        elif field == "data":
                            data.append(value)
                        continue
                    if data:
                        yield event, json.loads("\n".join(data))
                        if event == "done":
                            return
                    event, data = "message", []
        except urllib.error.HTTPError as error:
            raise _answer_error(error.code, error.read()) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise ClientError(f"lost the event stream of query {query_id}: {reason}") from None
        raise ClientError(f"the event stream of query {query_id} ended before 'done'")

    def follow(self, query_id: str, poll_s: float = 0.2) -> Iterator[dict[str, Any]]:
        """Yield the query's state whenever it changes, until it is final."""
        last: Any = None
        delay = 0.02
        while True:
            state = self.query(query_id)
            marker = (state.get("status"), json.dumps(state.get("progress"), sort_keys=True))
            if marker != last:
                last = marker
                yield state
            if state.get("status") in FINAL_STATES:
                return
            time.sleep(delay)
            delay = min(poll_s, delay * 2)


def _answer_error(status: int, raw: bytes) -> ShiftError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    error = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("diagnostics"):
        return QueryError(
            [
                Diagnostic(
                    d.get("message", ""),
                    int(d.get("line", 0)),
                    int(d.get("column", 0)),
                    d.get("snippet", ""),
                    d.get("hint", ""),
                    d.get("source", "<query>"),
                )
                for d in error["diagnostics"]
            ]
        )
    message = error.get("message") if isinstance(error, dict) else None
    text = message or raw.decode(errors="replace")[:300]
    return ClientError(f"broker answered {status}: {text}", status, body)
