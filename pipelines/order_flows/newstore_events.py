"""NewStore's and Centra's events as the order flows see them: what work each one triggers, and the landed
NewStore evidence of a store return (the return itself, the refund request and the payout).

Triggers (REF §1.2 event names; Centra: the webhook plugin's `order` events and the events queue's `Order`
events, both naming the order by number):
- `return.processed` -> the store return flow for that return; `refund_request.issued` (its `return_id`) and
  `payment_account.amount_refunded` (through its refund request) re-run it so the refund check sees them;
- `fulfillment_request.items_completed` of the pickup service level -> the handover flow for that store order;
- any Centra order event -> the pickup flow for that order (it decides whether the order is a pickup), and the
  ship-from-store flow (it decides whether the order is one); with an ERP, the ERP order flow too
  (`pipelines.order_flows.erp.with_erp_orders`: it decides whether the order is verified);
- `fulfillment_request.items_failed`, and `items_completed` of other service levels, of an order the
  ship-from-store flow injected -> that flow for the online order (`pipelines.order_flows.ship_from_store`).
- `order.created`/`order.opened` of a store order with a delivery service level (not the till's
  `IN_STORE_HANDOVER`, not the pickup level) -> the endless-aisle flow for that order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from pipelines.connectors.newstore.flows import store_refund, store_return, store_sale_order
from pipelines.domain.flows.endless_aisle import is_endless_aisle
from pipelines.domain.flows.model import StoreRefund, StoreReturn
from pipelines.domain.newstore_events import payload_of
from pipelines.order_flows import names
from pipelines.order_flows import ship_from_store as sfs_flow
from pipelines.store import order_flows as work
from pipelines.store.inbox_orders import InboxOrders

RETURN, REFUND_REQUEST, PAYOUT = "return.processed", "refund_request.issued", "payment_account.amount_refunded"
HANDOVER = "fulfillment_request.items_completed"
ORDER_EVENTS = ("order.insert", "order.update", "Order.CREATED", "Order.UPDATED", "Order.COMPLETED")
ORDER_OPENED = ("order.created", "order.opened")  # endless aisle: store orders with a delivery service level
NEWSTORE_EVENTS = (RETURN, REFUND_REQUEST, PAYOUT, HANDOVER, *ORDER_OPENED,
                   sfs_flow.ITEMS_FAILED)  # ship-from-store: a store rejected items


def newstore_triggers(engine: Engine, pickup_service_level: str) -> Callable[..., list[work.Trigger]]:
    def triggers(inbox_id: int, name: str, when: str | None, envelope: dict[str, Any]) -> list[work.Trigger]:
        p = payload_of(envelope)
        published = envelope.get("published_at") or when
        key: str | None = None
        flow = names.STORE_RETURN
        if name == RETURN:
            key = p.get("id")
        elif name == REFUND_REQUEST:
            key = p.get("return_id")
        elif name == PAYOUT and p.get("refund_request_id"):
            key = next((payload_of(e).get("return_id") for e in work.inbox_payloads(engine, [REFUND_REQUEST],
                                                                                  str(p["refund_request_id"]))
                        if payload_of(e).get("id") == p["refund_request_id"]), None)
        elif name == HANDOVER and str(p.get("service_level") or "") == pickup_service_level:
            flow, key = names.PICKUP_HANDOVER, p.get("order_id")
        elif name in ORDER_OPENED and p.get("id") and is_endless_aisle(store_sale_order(p), pickup_service_level):
            flow, key = names.ENDLESS_AISLE, p.get("id")  # a store order for home delivery (endless aisle)
        found = [work.Trigger(flow, str(key), name, inbox_id, published)] if key else []
        return found + sfs_flow.newstore_triggers(engine, pickup_service_level, inbox_id, name, published, envelope)
    return triggers


def centra_triggers(inbox_id: int, name: str, when: str | None, envelope: dict[str, Any]) -> list[work.Trigger]:
    ref = envelope.get("objectReference", envelope.get("id"))
    if name not in ORDER_EVENTS or ref is None:
        return []
    # Each flow decides from the order whether it is its business (a pickup, a delivery allocated to a store).
    return [work.Trigger(flow, str(ref), name, inbox_id, when) for flow in (names.PICKUP_ORDER, names.SHIP_FROM_STORE)]


class NewStoreEvidence:
    """The landed NewStore events a store return flow reads: the return and orders by id (index range scans,
    `InboxOrders`), the refund requests of a return and their payouts by content (they are not keyed by it)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.inbox = InboxOrders(engine)

    def _find(self, names_: list[str], ident: str, field: str) -> list[dict[str, Any]]:
        return [payload_of(e) for e in work.inbox_payloads(self.engine, names_, ident)
                if str(payload_of(e).get(field)) == ident]

    def store_return(self, return_id: str) -> StoreReturn | None:
        found = self.inbox.payloads(RETURN, return_id)
        return store_return(found[0]) if found else None

    def store_refund(self, return_id: str) -> StoreRefund:
        requests = self._find([REFUND_REQUEST], return_id, "return_id")
        payouts = [p for r in requests for p in self._find([PAYOUT], str(r.get("id")), "refund_request_id")]
        return store_refund(requests, payouts)

    def is_store_sale(self, order_id: str) -> bool:
        """A NewStore store order (a sale at the till; its external id is the receipt number, not an online
        order's), as its landed order event says."""
        order = self.inbox.order(order_id)
        return order is not None and str(order.get("channel_type")) == "store"
