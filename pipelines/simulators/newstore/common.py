"""Shared pieces of the NewStore fake: the error the app renders, the event sink, time and money helpers."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from .eventstream import DeliveryTarget

ADJUSTMENT_EVENT = "inventory_transaction.items_adjusted"
"""Event name used for stock adjustments. ASSUMPTION: NewStore does not document the adjustment event
name; we use the ``inventory_transaction.`` family with an ``items_adjusted`` suffix."""

CENT = Decimal("0.01")
ZERO_DECIMAL_CURRENCIES = {"JPY", "KRW", "CLP", "ISK", "VND", "XAF", "XOF", "PYG", "UGX", "RWF"}


class SimError(Exception):
    """A request the fake rejects; the app renders it as a Problem JSON response."""

    def __init__(self, status: int, error_code: str, message: str, messages: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.messages = messages or []


class EventSink(Protocol):
    def enqueue(self, event: dict[str, Any], target: DeliveryTarget) -> None: ...


def iso(dt: datetime) -> str:
    """RFC 3339 UTC with milliseconds and ``Z``."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def opt_time(value: Any) -> datetime | None:
    """An optional date-time from a request body; a bad one is a 400."""
    if not value:
        return None
    try:
        return parse_time(str(value))
    except ValueError:
        raise SimError(400, "bad_request", f"invalid date-time {value!r}") from None


def D(value: Any) -> Decimal:
    return Decimal(str(value))


def money(value: Decimal | float | int) -> float:
    return float(D(value).quantize(CENT, ROUND_HALF_UP))


def tax_included(gross: Decimal, rate: Decimal) -> Decimal:
    """Tax contained in a tax-inclusive amount."""
    if rate <= 0:
        return Decimal(0)
    return (gross * rate / (1 + rate)).quantize(CENT, ROUND_HALF_UP)
