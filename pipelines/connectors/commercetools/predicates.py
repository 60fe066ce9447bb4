"""Query predicates (docs.commercetools.com/api/predicates/query; reference §3.7): string literals and the few
shapes the connector writes. Strings are double-quoted with `\\` and `"` escaped."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime


def lit(value: str) -> str:
    """A string literal."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def in_list(field: str, values: Iterable[str]) -> str:
    """`field in ("a", "b")`."""
    return f"{field} in ({', '.join(lit(v) for v in values)})"


def ts(dt: datetime) -> str:
    """A DateTime literal in UTC with milliseconds (`"2024-01-01T00:00:00.000Z"`); naive = UTC."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return lit(dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z")
