"""What the REPL knows about its broker, kept fresh by background threads.

A :class:`BrokerWatcher` polls ``/v1/health`` and ``/v1/queries`` for the toolbar (workers
connected, queries running) and fetches the names the completer offers: ``/v1/models``,
``/v1/datasets`` and the session's variables (``PRINT *``, the broker's way of listing
them). Readers get immutable snapshots, so the prompt never waits on the network.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

from repl.client import FINAL_STATES, BrokerClient, ClientError
from repl.completer import Names


@dataclass(frozen=True)
class Status:
    """The broker as last seen.

    Attributes:
        url: The broker's URL.
        reachable: Whether the last poll got an answer (``None`` before the first).
        workers: Workers connected.
        running: Queries queued or running (all sessions, among the latest 100).
        error: Why the last poll failed.
    """

    url: str
    reachable: bool | None = None
    workers: int = 0
    running: int = 0
    error: str = ""


class BrokerWatcher:
    """Polls one broker in a daemon thread; :meth:`close` stops it.

    Args:
        url: The broker's URL (changed by :meth:`use`).
        token: Bearer token, when the broker requires one.
        session: The session whose variables to list.
        poll_s: Seconds between status polls.
    """

    def __init__(self, url: str, token: str, session: str, poll_s: float = 2.0) -> None:
        self.token = token
        self.session = session
        self.poll_s = poll_s
        self._status = Status(url)
        self._names = Names()
        self._lock = threading.Lock()
        self._names_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def status(self) -> Status:
        """The latest status snapshot."""
        return self._status

    @property
    def names(self) -> Names:
        """The latest names snapshot (what the completer offers)."""
        return self._names

    def _client(self, timeout_s: float = 5.0) -> BrokerClient:
        return BrokerClient(self._status.url, self.token, timeout_s)

    def start(self) -> None:
        """Start polling and fetch the names once."""
        self._thread = threading.Thread(target=self._run, name="shift-repl-watch", daemon=True)
        self._thread.start()
        self.refresh_names()

    def close(self) -> None:
        """Stop polling (idempotent)."""
        self._stop.set()
        self._wake.set()

    def use(self, url: str) -> None:
        """Watch another broker from now on."""
        with self._lock:
            self._status = Status(url)
            self._names = Names()
        self._wake.set()
        self.refresh_names()

    def poll(self) -> Status:
        """Ask the broker for its health and running queries now; return the new status."""
        url = self._status.url
        client = self._client(2.0)
        try:
            health = client.request("GET", "/v1/health")
            recent = client.request("GET", "/v1/queries?limit=100")
        except ClientError as error:
            status = Status(url, False, error=str(error))
        else:
            queries = recent.get("queries", []) if isinstance(recent, dict) else []
            running = sum(1 for q in queries if q.get("status") not in FINAL_STATES)
            workers = health.get("workers", 0) if isinstance(health, dict) else 0
            status = Status(url, True, int(workers), running)
        with self._lock:
            if self._status.url == url:
                self._status = status
        return status

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def refresh_names(self) -> None:
        """Fetch the names again in a background thread (one fetch at a time)."""
        threading.Thread(target=self.fetch_names, name="shift-repl-names", daemon=True).start()

    def fetch_names(self) -> Names:
        """Fetch models, datasets and variables now (blocking); keep and return them."""
        with self._names_lock:
            url = self._status.url
            client = self._client()
            try:
                models = _names_of(client.request("GET", "/v1/models"), "models")
                datasets = _names_of(client.request("GET", "/v1/datasets"), "datasets")
                variables = self._variables(client)
            except ClientError:
                return self._names
            names = Names(models, datasets, variables)
            with self._lock:
                if self._status.url == url:
                    self._names = names
            return names

    def add_variable(self, name: str) -> None:
        """Offer a just-declared variable at once (before the next fetch)."""
        with self._lock:
            if name not in self._names.variables:
                variables = tuple(sorted((*self._names.variables, name)))
                self._names = replace(self._names, variables=variables)

    def _variables(self, client: BrokerClient) -> tuple[str, ...]:
        answer = client.request("POST", "/v1/queries", {"text": "PRINT *", "session": self.session})
        (query,) = answer["queries"]
        for state in client.follow(query["id"], poll_s=0.1):
            query = state
        tables = (query.get("result") or {}).get("tables") or []
        if not tables or "variable" not in tables[0].get("columns", []):
            return ()
        column = tables[0]["columns"].index("variable")
        return tuple(sorted(str(row[column]) for row in tables[0].get("rows", [])))


def _names_of(answer: Any, key: str) -> tuple[str, ...]:
    entries = answer.get(key, []) if isinstance(answer, dict) else []
    return tuple(sorted(str(e["name"]) for e in entries if isinstance(e, dict) and "name" in e))
