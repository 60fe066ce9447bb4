"""Shared helpers of the commercetools fake: the error type and envelope, time, ids, money, references."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

# Resource path segment -> the typeId of its references and messages (commercetools ReferenceTypeId values).
TYPE_IDS = {
    "inventory": "inventory-entry", "orders": "order", "carts": "cart", "payments": "payment",
    "customers": "customer", "channels": "channel", "stores": "store", "products": "product",
    "tax-categories": "tax-category", "types": "type", "subscriptions": "subscription",
    "product-types": "product-type",
}


class CtError(Exception):
    """An API error: rendered as ``{statusCode, message, errors[{code, message, ...extra}]}``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"statusCode": self.status, "message": self.message,
                                "errors": [{"code": self.code, "message": self.message, **self.extra}]}
        if self.code in ("invalid_token", "insufficient_scope", "invalid_client", "invalid_scope",
                         "unsupported_grant_type"):
            # AuthErrorResponse example: OAuth errors also carry `error` (and `error_description`).
            body["error"] = self.code
            body["error_description"] = self.message
        return body


def invalid_input(message: str) -> CtError:
    return CtError(400, "InvalidInput", message)


def invalid_operation(message: str) -> CtError:
    return CtError(400, "InvalidOperation", message)


def invalid_json(message: str = "Request body does not contain valid JSON.") -> CtError:
    return CtError(400, "InvalidJsonInput", message)


def not_found(resource_id: str) -> CtError:
    return CtError(404, "ResourceNotFound", f"The Resource with ID '{resource_id}' was not found.")


def duplicate(field: str, value: Any) -> CtError:
    return CtError(400, "DuplicateField", f"A duplicate value '{value}' exists for field '{field}'.",
                   field=field, duplicateValue=value)


def concurrent(resource_id: str, expected: Any, actual: int) -> CtError:
    return CtError(409, "ConcurrentModification",
                   f"Object {resource_id} has a different version than expected. Expected: {expected} - "
                   f"Actual: {actual}.", currentVersion=actual)


def new_id() -> str:
    return str(uuid.uuid4())


def iso(ts: datetime) -> str:
    """commercetools' datetime rendering: UTC with milliseconds and ``Z``."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_time(value: str | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def money(cents: int, currency: str) -> dict[str, Any]:
    return {"type": "centPrecision", "currencyCode": currency, "centAmount": int(cents), "fractionDigits": 2}


def money_from_draft(draft: Any) -> dict[str, Any]:
    """A Money/TypedMoneyDraft (``{currencyCode, centAmount}``) as CentPrecisionMoney."""
    if not isinstance(draft, dict) or "currencyCode" not in draft or "centAmount" not in draft:
        raise invalid_input("A money value needs 'currencyCode' and 'centAmount'.")
    return money(int(draft["centAmount"]), str(draft["currencyCode"]))


def cents(amount: float | Decimal) -> int:
    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def net_of(gross_cents: int, rate: float) -> int:
    """Net amount of a tax-included gross amount (HalfEven, the default ``taxRoundingMode``)."""
    return int((Decimal(gross_cents) / (Decimal(1) + Decimal(str(rate)))).quantize(Decimal(1),
                                                                                 rounding=ROUND_HALF_EVEN))


def ref(type_id: str, resource_id: str) -> dict[str, str]:
    return {"typeId": type_id, "id": resource_id}


def client_ref(client_id: str | None) -> dict[str, Any]:
    return {"clientId": client_id or "simulator", "isPlatformClient": False}
