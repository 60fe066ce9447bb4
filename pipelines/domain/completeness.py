"""Completeness of the landed NewStore event stream: transactions known to exist whose own event is missing.

NewStore delivers at least once but never again after an event was acknowledged or lost on the way, so
a dropped delivery is a sale or a return that silently never lands. Each transaction publishes several
events, though (a till sale: `order.created`, `order.opened`, `order.completed`; a return:
`return.processed`, `refund_request.issued`, `payment_account.amount_refunded`), and a drop takes one
of them. Where a sibling landed and the event that carries the transaction (`order.opened`,
`return.processed`) did not, the transaction is known to exist: it is fetched by id from NewStore's API
(`GET /v0/orders/{id}`, `GET /v0/d/orders/{order_id}/returns/{id}`) and landed as that event, marked as
recovered, through the same path as a streamed one.

Pure functions: `evidence_of` reads what one landed event says exists; `recovered_sale` and
`recovered_return` turn an API answer into the payload of the event it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.domain.bounds import check_id

ORDER, RETURN = "order", "return"
#: The event that carries each kind of transaction (what recovery lands).
CARRIER = {ORDER: "order.opened", RETURN: "return.processed"}
#: Sibling events that prove an order exists: its own lifecycle (not a return or refund of it, which
#: can follow an order placed long before the stream began).
ORDER_SIBLINGS = ("order.created", "order.completed", "order.cancelled", "order.items_cancelled",
                  "fulfillment_request.assigned", "fulfillment_request.items_completed",
                  "fulfillment_request.items_failed")
#: Sibling events that prove a return exists (`refund_request.issued` names its return).
RETURN_SIBLINGS = ("refund_request.issued",)
EVIDENCE_EVENTS = (*ORDER_SIBLINGS, *RETURN_SIBLINGS)


@dataclass(frozen=True)
class Evidence:
    """What one landed sibling event says: a transaction of `kind` with `transaction_id` exists."""

    kind: str  # ORDER | RETURN
    transaction_id: str
    order_id: str | None  # a return's order (needed to fetch it); an order's own id
    node: str | None  # where it happened, when the sibling says
    amount: float | None  # the money the sibling names (an order's grand total, a refund's amount)
    currency: str | None


def evidence_of(name: str, payload: dict[str, Any]) -> Evidence | None:
    """The transaction a sibling event proves, or None (not a sibling, or no usable id)."""
    try:
        if name in RETURN_SIBLINGS:
            if not payload.get("return_id"):
                return None  # a refund without a return (an appeasement): nothing to recover
            return Evidence(RETURN, check_id(payload["return_id"], "return_id"),
                            check_id(payload["order_id"], "order_id") if payload.get("order_id") else None,
                            None, _amount(payload.get("amount")), _text(payload.get("currency")))
        if name in ORDER_SIBLINGS:
            ident = payload.get("order_id") if name.startswith("fulfillment_request.") else payload.get("id")
            if not ident:
                return None
            order_id = check_id(ident, "order id")
            node = payload.get("fulfillment_location_id") or payload.get("channel")
            return Evidence(ORDER, order_id, order_id, _text(node), _amount(payload.get("grand_total")),
                            _text(payload.get("currency")))
    except ValueError:
        return None
    return None


def recovered_sale(order: dict[str, Any]) -> dict[str, Any]:
    """An `order.opened` payload from NewStore's sales order (`GET /v0/orders/{id}`, SalesOrderDetailResponse).

    The fields the event and the order share are copied; an item's `list_price` is rebuilt from the
    order's documented price parts (net + discount, + tax where prices include it), so decoding the
    recovered event gives the same net, discount and tax as the streamed one. Items are one unit each
    in both. The store is `channel` (where a store order's store travels in the event)."""
    tax_included = str(order.get("tax_method") or "vat_included") != "vat_excluded"
    items = []
    for item in order.get("items") or []:
        price = item.get("price") or {}
        net, discount, tax = (float(price.get(k) or 0) for k in ("net", "discount", "tax"))
        items.append({
            "id": item["id"], "product_id": item.get("product_id"), "quantity": 1, "status": item.get("status"),
            "list_price": round(net + discount + (tax if tax_included else 0.0), 2),
            "item_discounts": round(discount, 2), "order_discounts": 0.0, "tax": round(tax, 2),
            "external_identifiers": {"sku": item.get("product_id")},
            "shipping_service_level": item.get("shipping_method") or item.get("fulfillment_group_type"),
        })
    totals = order.get("totals") or {}
    return {
        "id": order["id"], "external_id": order.get("origin_id"), "created_at": order.get("placed_at"),
        "placed_at": order.get("placed_at"), "channel_type": order.get("channel_type"),
        "channel": order.get("store_id"), "currency": order.get("currency"),
        "price_method": "tax_included" if tax_included else "tax_excluded",
        "grand_total": totals.get("total"), "tax_total": totals.get("tax"),
        "extended_attributes": order.get("extended_attributes") or [], "items": items,
    }


def recovered_return(record: dict[str, Any], order_id: str, external_order_id: str | None) -> dict[str, Any]:
    """A `return.processed` payload from NewStore's return (`GET /v0/d/orders/{order_id}/returns/{id}`).

    `external_order_id`: the online order a return of a web order refers to (its sales order's
    `origin_id`), as the streamed event carries it."""
    items = [{k: i.get(k) for k in ("id", "product_id", "quantity", "refund_amount", "refund_excl_tax", "refund_tax",
                                     "item_condition", "condition_code", "return_reason", "return_code",
                                     "external_identifiers")} for i in record.get("items") or []]
    return {
        "id": record["id"], "order_id": order_id, "external_order_id": external_order_id,
        "returned_at": record.get("returned_at"), "return_location_id": record.get("returned_from"),
        "currency": record.get("currency"), "total_refund_amount": record.get("total_refund_amount"),
        "total_refund_excl_tax": record.get("total_refund_excl_tax"),
        "total_refund_tax": record.get("total_refund_tax"), "return_fee": record.get("return_fee"),
        "items": items,
    }


def _amount(value: Any) -> float | None:
    try:
        return None if value is None else round(float(value), 2)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)
