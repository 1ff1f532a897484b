"""How counts are worded in every message and table footer: ``1 row``, ``3 rows``.

One function so that the broker's messages, the client's table footers and the docs say a
count the same way (never ``3 row(s)`` in one place and ``(3 rows)`` in another).
"""

from __future__ import annotations


def count_of(count: int, noun: str, plural: str = "") -> str:
    """``count`` and ``noun`` in the singular or plural: ``1 row``, ``0 rows``, ``2 classes``.

    Args:
        count: How many.
        noun: The singular noun.
        plural: The plural when it is not ``noun + "s"``.
    """
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
