"""Content hashing: the identity of a unit of work is a hash of its canonical spec.

Two specs that mean the same thing (same keys in any order, ``1`` vs ``1.0`` aside) get the
same identity, so identical work, finished or in flight, is never done twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from shift.errors import SchedulerError

HASH_HEX_CHARS = 32
"""Length of a task identity (hex characters of a SHA-256 digest; 128 bits)."""


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SchedulerError(f"{path} is {value!r}; task specs must hold finite numbers")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SchedulerError(f"{path} has a non-string key {key!r}")
            _check(item, f"{path}.{key}")
        return
    raise SchedulerError(
        f"{path} has type {type(value).__name__}; task specs hold only JSON values"
    )


def _plain(value: Any) -> bool:
    """True when ``value`` holds only builtin JSON types (exactly), finite floats and string
    keys: what :func:`_check` accepts, found without its per-node isinstance chain and paths
    (hashing every task of a large plan spent most of its time there). Anything else, a
    subclass such as a ``StrEnum`` included, takes :func:`_check`, which accepts it or names
    the bad value's path."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is float:
            if item - item != 0.0:  # inf or nan
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str:
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        else:
            return False
    return True


def canonical_bytes(value: Any) -> bytes:
    """Serialise a JSON-like value canonically (sorted keys, no whitespace, UTF-8).

    Raises:
        SchedulerError: the value holds something other than JSON values.
    """
    if not _plain(value):
        _check(value, "spec")
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def content_hash(value: Any) -> str:
    """Return the hex identity of a JSON-like value (see :data:`HASH_HEX_CHARS`).

    Raises:
        SchedulerError: the value holds something other than JSON values.
    """
    return hashlib.sha256(canonical_bytes(value)).hexdigest()[:HASH_HEX_CHARS]
