"""SHiFT-QL numbers: sign, decimals, exponents and the unit suffixes K, M and B."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from shift.ql.tokens import NUMBER_BODY, NUMBER_SUFFIX

#: Longest number literal accepted, in characters (``10**18`` needs 19): far longer ones
#: would only pass through to where Python's integer-string limit rejects them.
MAX_NUMBER_CHARS = 100

_NUMBER = re.compile(f"({NUMBER_BODY})({NUMBER_SUFFIX}?)")
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9}
#: Integral values written with a point or exponent become integers up to this magnitude,
#: where every integer is also an exact float (so ``render`` of a float reads back equal).
_FLOAT_EXACT = 2**53


def parse_number(text: str) -> int | float:
    """Read a number; integral values become ``int`` (``1e3`` -> 1000, ``2.5K`` -> 2500).

    Integer literals stay exact whatever their size; a value written with a point or an
    exponent becomes an ``int`` only while floats still represent every integer (2**53).

    Raises:
        ValueError: with a message naming the text when it is not a valid number.
    """
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(
            f"a number of {len(text):,} characters is too long "
            f"(at most {MAX_NUMBER_CHARS} characters)"
        )
    match = _NUMBER.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a number")
    try:
        value = Decimal(match.group(1)) * _SUFFIX[match.group(2).lower()]
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{text!r} is out of range")
    exact = abs(value) <= _FLOAT_EXACT or not any(c in match.group(1) for c in ".eE")
    if value == value.to_integral_value() and exact:
        return int(value)
    result = float(value)
    if result in (float("inf"), float("-inf")):
        raise ValueError(f"{text!r} is out of range")
    return result


def format_number(value: int | float) -> str:
    """Write a number so that :func:`parse_number` reads back the same value."""
    if isinstance(value, bool):
        raise TypeError("booleans are not numbers")
    if isinstance(value, int):
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} has no SHiFT-QL spelling")
    return repr(value)
