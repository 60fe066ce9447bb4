"""Bounds on values read from platform payloads (pure).

A payload is data from outside: a quantity of `1e999`, a logical timestamp of 2**70 or a SKU of 200
characters would otherwise reach a database column or Centra's GraphQL `Int` and fail there, at the
same row on every run, stopping everything landed after it. Each decoder checks what it reads here;
a value outside the bounds raises `OutOfBounds` (a `ValueError`), which the caller turns into an
`undecodable_event` exception record for that one event while the rest flows on.

The bounds are the columns' and the platforms' own: 32-bit signed quantities (GraphQL `Int`),
63-bit logical timestamps (a signed BIGINT), SKUs up to 128 characters and node / location ids up
to 64 (the widths in `sql/migrations`).
"""

from __future__ import annotations

import math
from typing import Any

INT32_MAX = 2**31 - 1
INT63_MAX = 2**63 - 1
MAX_SKU_CHARS = 128
MAX_ID_CHARS = 64
MAX_MONEY = 1e12  # larger than any till or web-shop amount; a guard against `1e999`, not a business limit


class OutOfBounds(ValueError):
    """A payload value that cannot be stored or sent as it is."""


def check_int(value: Any, field: str, *, lo: int = -INT32_MAX - 1, hi: int = INT32_MAX) -> int:
    """An integer in [lo, hi]; integral floats (`2.0`) are accepted, booleans, fractions and infinities not."""
    if isinstance(value, bool) or value is None:
        raise OutOfBounds(f"{field} must be an integer, got {value!r}")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise OutOfBounds(f"{field} must be an integer, got {value!r}")
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise OutOfBounds(f"{field} must be an integer, got {value[:40]!r}") from None
    elif not isinstance(value, int):
        raise OutOfBounds(f"{field} must be an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise OutOfBounds(f"{field} {value} is outside [{lo}, {hi}]")
    return value


def check_logical_timestamp(value: Any) -> int | None:
    """NewStore's `logical_timestamp` (absent on some events): a non-negative 63-bit integer."""
    if value is None:
        return None
    return check_int(value, "logical_timestamp", lo=0, hi=INT63_MAX)


def _check_text(value: Any, field: str, limit: int) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        raise OutOfBounds(f"{field} must be a string, got {type(value).__name__}")
    text = str(value)
    if not text or len(text) > limit:
        raise OutOfBounds(f"{field} must be 1 to {limit} characters, got {len(text)}")
    if "\x00" in text:
        raise OutOfBounds(f"{field} contains a NUL character")
    return text


def check_sku(value: Any) -> str:
    return _check_text(value, "sku", MAX_SKU_CHARS)


def check_id(value: Any, field: str) -> str:
    """A node, location, order or item identifier."""
    return _check_text(value, field, MAX_ID_CHARS)


def check_money(value: float, field: str) -> float:
    if not math.isfinite(value) or abs(value) > MAX_MONEY:
        raise OutOfBounds(f"{field} {value!r} is not a usable amount")
    return value
