"""Orders area of the NewStore tenant: POS sales of the world, order injection (``fulfill_order``),
the order endpoints (view, cancellation) and item cancellation."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pipelines.estate.model import Location

from .common import CENT, D, SimError, iso, money, parse_time, tax_included
from .fulfilment import FulfilmentMixin
from .records import Order, OrderItem
from .validation import validate_injection
from .views import order_payload, sales_discount, sales_order

_Groups = list[tuple[dict[str, Any], list[OrderItem]]]  # (shipment of the body, its items)


class OrdersMixin(FulfilmentMixin):
    # -- world API (trading generator) ----------------------------------------------------------------

    def record_store_sale(self, node_id: str, items: list[dict[str, Any]], *, at: datetime | None = None,
                          customer_email: str | None = None, external_id: str | None = None,
                          associate_id: str | None = None, payment_method: str = "credit_card",
                          price_method: str = "tax_included") -> dict[str, Any]:
        """A native POS sale: decrements on_hand, emits order.created, order.opened and order.completed.

        ``items``: ``[{sku, quantity, unit_price (list price), discount (per unit amount), tax_rate
        (optional override: a till keyed with the wrong tax code)}]``.
        ``price_method``: ``tax_included`` (prices contain the tax, as at a European till) or
        ``tax_excluded`` (the tax comes on top of the price).
        Returns the ``order.opened`` payload.
        """
        with self._lock:
            at = self._at(at)
            loc = self._node(node_id)
            if external_id is None:
                self._pos_seq += 1
                external_id = f"{node_id}-{self._pos_seq:07d}"
            if external_id in self._by_external:
                raise ValueError(f"order {external_id!r} already exists")
            order_id = self._uuid()
            lines = self._sale_lines(loc, node_id, external_id, items, price_method)
            if not lines:
                raise ValueError("a sale needs at least one item")
            order = Order(
                id=order_id, external_id=external_id, origin="newstore", channel_type="store", channel=loc.id,
                store_id=loc.id, fulfillment_node_id=node_id, currency=loc.currency, price_method=price_method,
                placed_at=at, created_at=at, items=lines, fulfillment_type="in_store_purchase",
                customer_email=customer_email, associate_id=associate_id,
            )
            order.payments = [{"amount": money(order.grand_total), "method": payment_method, "type": "captured",
                               "processed_at": iso(at)}]
            for line in lines:
                self._rec(node_id, line.product_id).on_hand -= 1
            self._orders[order_id] = order
            self._by_external[external_id] = order_id
            self._publish("order.created", order_payload(order, self.estate), at)
            env = self._publish("order.opened", order_payload(order, self.estate), at)
            self._publish_completed(order, at)  # every item was handed over at the till
            return copy.deepcopy(env["payload"])

    def _sale_lines(self, loc: Location, node_id: str, external_id: str, items: list[dict[str, Any]],
                    price_method: str) -> list[OrderItem]:
        """One completed, handed-over item per unit sold."""
        rate = self._rate(loc.country)
        lines: list[OrderItem] = []
        for it in items:
            sku = str(it["sku"])
            self._sku(sku)
            unit, disc = D(it["unit_price"]), D(it.get("discount", 0) or 0)
            line_rate = D(it["tax_rate"]) if it.get("tax_rate") is not None else rate
            for _ in range(int(it.get("quantity", 1))):
                paid = unit - disc
                tax = tax_included(paid, line_rate) if price_method == "tax_included" \
                    else (paid * line_rate).quantize(CENT, ROUND_HALF_UP)
                lines.append(OrderItem(
                    id=self._uuid(), external_item_id=f"{external_id}-{len(lines) + 1}", product_id=sku,
                    list_price=unit, item_discount=disc, order_discount=Decimal(0), price=paid,
                    tax=tax, tax_rate=line_rate, status="complete",
                    service_level="IN_STORE_HANDOVER", fulfillment_node_id=node_id,
                    discounts=[{"level": "item", "type": "fixed", "value": money(disc),
                                "price_adjustment": money(disc)}] if disc else [],
                ))
        return lines

    # -- order injection (REST) -----------------------------------------------------------------------

    def fulfill_order(self, body: Any) -> dict[str, Any]:
        """``POST /v0/d/fulfill_order``: idempotent on ``external_id``."""
        if not isinstance(body, dict):
            raise SimError(400, "invalid_request", "request body must be a JSON object")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
        with self._lock:
            ext = body.get("external_id")
            if isinstance(ext, str) and ext in self._injections:
                known, response = self._injections[ext]
                if known == fingerprint or self.conflict_mode == "first_response":
                    return copy.deepcopy(response)
                raise SimError(409, "same_order_injection_with_different_data",
                               f"An order with external_id {ext!r} was already injected with different data.")
            errors = validate_injection(body, self.estate, self.max_items_per_order)
            if errors:
                head = errors[0].split(": ", 1)[0]
                code = head if head.replace("_", "").isalpha() and head.islower() else "invalid_request"
                raise SimError(400, code, errors[0], errors)
            response = self._create_injected(body)
            self._injections[ext] = (fingerprint, response)
            return copy.deepcopy(response)

    def _create_injected(self, body: dict[str, Any]) -> dict[str, Any]:
        at = self.clock()
        historical = bool(body.get("is_historical") or body.get("is_fulfilled"))
        order_id = self._uuid()
        groups = self._injected_items(body, historical)
        order = _injected_order(body, order_id, at, groups, historical)
        self._orders[order_id] = order
        self._by_external[order.external_id] = order_id
        self._publish("order.created", order_payload(order, self.estate), at)
        self._publish("order.opened", order_payload(order, self.estate), at)
        if not historical:
            self._route_injected(order, body, groups, at)
        return {"id": order_id, "external_id": order.external_id,
                "items": [{"id": i.id, "external_item_id": i.external_item_id, "product_id": i.product_id}
                          for i in order.items]}

    def _injected_items(self, body: dict[str, Any], historical: bool) -> _Groups:
        """The order's items, grouped by the body's shipments, add-ons linked to their parents."""
        groups: _Groups = []
        by_ext: dict[str, OrderItem] = {}
        for shipment in body["shipments"]:
            level = (shipment.get("shipping_option") or {}).get("service_level_identifier") or "TOKEN"
            group = [self._injected_item(raw, level, historical) for raw in shipment["items"]]
            by_ext.update((item.external_item_id, item) for item in group)
            groups.append((shipment, group))
        for shipment, group in groups:
            for raw, item in zip(shipment["items"], group, strict=True):
                parent = raw.get("addon_parent_external_item_id")
                if parent:
                    item.addon_parent_item_id = by_ext[parent].id
        return groups

    def _injected_item(self, raw: dict[str, Any], level: str, historical: bool) -> OrderItem:
        price = raw.get("price") or {}
        tax_lines = price.get("item_tax_lines") or []
        tax = sum((D(t.get("amount", 0)) for t in tax_lines), Decimal(0))
        rate = sum((D(t.get("rate", 0)) for t in tax_lines), Decimal(0))
        idisc = sum((D(d.get("price_adjustment", 0)) for d in price.get("item_discount_info") or []), Decimal(0))
        odisc = sum((D(d.get("price_adjustment", 0))
                     for d in price.get("item_order_discount_info") or []), Decimal(0))
        return OrderItem(
            id=self._uuid(), external_item_id=raw["external_item_id"], product_id=str(raw["product_id"]),
            list_price=D(price.get("item_list_price", price.get("item_price", 0))), item_discount=idisc,
            order_discount=odisc, price=D(price.get("item_price", 0)), tax=tax, tax_rate=rate,
            status="complete" if historical else "pending", service_level=level,
            discounts=[sales_discount(d, "item") for d in price.get("item_discount_info") or []]
            + [sales_discount(d, "order") for d in price.get("item_order_discount_info") or []],
            extended_attributes=list(raw.get("extended_attributes") or []),
        )

    def _route_injected(self, order: Order, body: dict[str, Any], groups: _Groups, at: datetime) -> None:
        """One fulfillment request per shipment: a routing strategy's node, else the pickup store, else
        the routing rules of ``_route``."""
        pickup = _is_pickup(order.items)
        store_loc = self._store_location(body.get("store_id"))
        for shipment, group in groups:
            option = shipment.get("shipping_option") or {}
            strategy = option.get("routing_strategy")
            pinned = strategy.get("fulfillment_node_id") if isinstance(strategy, dict) else None
            if pinned is None and pickup and store_loc is not None:
                pinned = store_loc.newstore_node_id
            self._route(order, group, at, pinned=pinned)

    def _store_location(self, store_id: str | None) -> Location | None:
        if not store_id:
            return None
        return self._stores_by_id.get(store_id) or self.estate.by_node.get(store_id)

    # -- orders (REST) ----------------------------------------------------------------------------------

    def _find_order(self, order_id: str, id_type: str) -> Order:
        if id_type not in ("internal", "external"):
            raise SimError(400, "bad_request", "id_type must be 'internal' or 'external'")
        oid = order_id if id_type == "internal" else self._by_external.get(order_id, "")
        order = self._orders.get(oid)
        if order is None:
            raise SimError(404, "order_not_found", f"Order {order_id!r} ({id_type}) was not found.")
        return order

    def get_order(self, order_id: str, id_type: str = "internal") -> dict[str, Any]:
        """``GET /v0/orders/{id}``: SalesOrderDetailResponse shape."""
        with self._lock:
            order = self._find_order(order_id, id_type)
            return sales_order(order, self.estate)

    def cancellation_status(self, order_id: str, id_type: str) -> dict[str, Any]:
        with self._lock:
            order = self._find_order(order_id, id_type)
            return {"cancelable": self._cancelable(order), "canceled": order.cancelled, "is_safe": True}

    def _cancelable(self, order: Order) -> bool:
        return not order.cancelled and all(i.status in ("pending", "in_fulfillment", "on_hold") for i in order.items)

    def cancel_order(self, order_id: str, id_type: str, reason: str, note: str | None = None) -> None:
        """``POST /v0/orders/{id}/cancel``: cancels every open item, frees allocations, emits order.cancelled."""
        with self._lock:
            order = self._find_order(order_id, id_type)
            if order.cancelled:
                return
            if not self._cancelable(order):
                raise SimError(400, "order_not_cancelable",
                               "The order has items that are already fulfilled and cannot be cancelled.")
            at = self.clock()
            cancelled = []
            for item in order.items:
                if item.fulfillment_node_id:
                    self._rec(item.fulfillment_node_id, item.product_id).allocations.pop(item.id, None)
                item.status = "cancelled"
                cancelled.append({"id": item.id, "product_id": item.product_id,
                                  "fulfillment_location_id": item.fulfillment_node_id})
            self._cancel_dispatched(order.id)
            order.cancelled = True
            self._publish("order.cancelled", {
                "id": order.id, "external_id": order.external_id, "logical_timestamp": self._next_lt(),
                "cancelled_at": iso(at), "reason": reason, "note": note, "items": cancelled,
            }, at)

    def cancel_items(self, order_id: str, item_ids: Iterable[str], *, at: datetime | None = None) -> dict[str, Any]:
        """Cancel items of an order that have not shipped: their allocations are released (on_hand is
        untouched: nothing left the shelf); emits ``order.items_cancelled``. Returns the payload."""
        with self._lock:
            at = self._at(at)
            order = self._orders[order_id]
            wanted = set(item_ids)
            cancelled = []
            for item in order.items:
                if item.id in wanted and item.status not in ("complete", "cancelled", "returned"):
                    item.status = "cancelled"
                    if item.fulfillment_node_id:
                        self._rec(item.fulfillment_node_id, item.product_id).allocations.pop(item.id, None)
                    cancelled.append({"id": item.id, "product_id": item.product_id})
            self._cancel_dispatched(order_id, wanted)
            payload = {"id": order.id, "items": cancelled}
            return copy.deepcopy(self._publish("order.items_cancelled", payload, at)["payload"])


def _is_pickup(items: list[OrderItem]) -> bool:
    return all("PICKUP" in lvl.upper() for lvl in {i.service_level for i in items})


def _injected_order(body: dict[str, Any], order_id: str, at: datetime, groups: _Groups,
                    historical: bool) -> Order:
    """The Order record of a valid injection body (its items already built)."""
    items = [item for _, group in groups for item in group]
    options = [shipment.get("shipping_option") or {} for shipment, _ in groups]
    levels = {i.service_level for i in items}
    fulfillment_type = "in_store_purchase" if historical and body["channel_type"] == "store" else \
        ("in_store_pickup" if _is_pickup(items) else ("traditional" if len(levels) == 1 else "multiple"))
    return Order(
        id=order_id, external_id=body["external_id"], origin="external",
        channel_type=body["channel_type"], channel=body["channel_name"], store_id=body.get("store_id"),
        fulfillment_node_id=None, currency=body["currency"], price_method=body.get("price_method") or "tax_included",
        placed_at=parse_time(body["placed_at"]) if body.get("placed_at") else at, created_at=at, items=items,
        fulfillment_type=fulfillment_type,
        shipping_total=sum((D(o.get("price", 0) or 0) for o in options), Decimal(0)),
        shipping_tax=sum((D(o.get("tax", 0) or 0) for o in options), Decimal(0)),
        customer_email=body.get("customer_email"),
        customer_name=body.get("customer_name"), customer_id=body.get("external_customer_id"),
        associate_id=body.get("associate_id"), shop_locale=body.get("shop_locale"),
        shipping_address=body.get("shipping_address"), billing_address=body.get("billing_address"),
        payments=list(body.get("payments") or []), extended_attributes=list(body.get("extended_attributes") or []),
        is_historical=historical,
    )
