"""Network addresses: whether a bind address keeps a service on this machine.

The broker's REST API and ZeroMQ ROUTER bind to loopback by default; binding anything else
exposes them to the network, which needs a token (REST) or keys (ZeroMQ). Both sides ask
:func:`is_loopback` so they agree on what counts as local.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
"""Host names that always mean this machine's loopback interface."""


def is_loopback(host: str) -> bool:
    """True when ``host`` (a name, IPv4 or IPv6 address) only reaches this machine.

    ``127.0.0.0/8`` and ``::1`` are loopback; ``0.0.0.0``, ``::`` and ``*`` (every interface)
    are not, nor is any other name: a name that is not known to be local is treated as
    reachable from the network, so a caller refuses rather than guesses.

    Args:
        host: A bind address as the settings give it (brackets around IPv6 are allowed).
    """
    text = host.strip().strip("[]").lower()
    if text in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def endpoint_host(endpoint: str) -> str | None:
    """The host of a ``tcp://HOST:PORT`` endpoint; ``None`` for ``ipc://`` and ``inproc://``."""
    scheme, _, rest = endpoint.partition("://")
    if scheme != "tcp":
        return None
    host, _, _ = rest.rpartition(":")
    return host
