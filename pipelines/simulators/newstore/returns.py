"""Returns area of the NewStore tenant: in-store returns of the world, the returns endpoints and the
events a return leaves (``return.processed``, ``refund_request.issued``, ``payment_account.amount_refunded``)."""

from __future__ import annotations

import copy
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipelines.estate.model import Location

from .common import D, SimError, iso, money, opt_time, tax_included
from .core import StateCore
from .records import Order


class ReturnsMixin(StateCore):
    # -- world API (trading generator) ----------------------------------------------------------------

    def record_return(self, node_id: str, items: list[dict[str, Any]], *, at: datetime | None = None,
                      order_id: str | None = None, original_external_order_ref: str | None = None,
                      restock: bool = True, currency: str | None = None, return_reason: str | None = None,
                      customer_email: str | None = None) -> dict[str, Any]:
        """An in-store return: emits return.processed, refund_request.issued, payment_account.amount_refunded.

        ``items``: ``[{sku, quantity, refund_amount (tax incl., per line), tax_rate (optional override),
        item_condition (optional: sellable restocks, anything else does not; default by ``restock``)}]``. A return of an online (Centra)
        order passes ``original_external_order_ref``; it is published as ``external_order_id`` and
        ``order_id`` stays null (blind return) unless a NewStore order with that id / external id exists.
        Restocked items (``item_condition`` "sellable") increase on_hand. Returns the return.processed payload.
        """
        with self._lock:
            at = self._at(at)
            loc = self._node(node_id)
            order = self._orders.get(order_id) if order_id else None
            if order_id and order is None:
                order = self._orders.get(self._by_external.get(order_id, ""))
            if order is None and original_external_order_ref:
                order = self._orders.get(self._by_external.get(original_external_order_ref, ""))
            lines = []
            for it in items:
                sku = str(it["sku"])
                self._sku(sku)
                qty = int(it.get("quantity", 1))
                refund = D(it["refund_amount"])
                rate = self._rate(loc.country)
                if it.get("tax_rate") is not None:  # a till keyed with the wrong tax code (fault injection)
                    rate = D(it["tax_rate"])
                elif order is not None:
                    for oi in order.items:
                        if oi.product_id == sku and oi.status == "complete":
                            rate = oi.tax_rate
                            break
                    self._mark_returned(order, sku, qty)
                lines.append({"sku": sku, "quantity": qty, "refund": refund, "rate": rate,
                              "order_item_id": None, "item_condition": it.get("item_condition")})
            ext = original_external_order_ref or (order.external_id if order else None)
            return self._process_return(
                loc, lines, at=at, order=order, external_order_id=ext, restock=restock,
                currency=currency or (order.currency if order else loc.currency), return_fee=Decimal(0),
                return_reason=return_reason, customer_email=customer_email or (order.customer_email if order else None),
            )["event"]

    def _mark_returned(self, order: Order, sku: str, qty: int) -> None:
        for item in order.items:
            if qty <= 0:
                break
            if item.product_id == sku and item.status == "complete":
                item.status = "returned"
                qty -= 1

    # -- returns (REST) ---------------------------------------------------------------------------------

    def create_return(self, order_id: str, body: Any) -> dict[str, Any]:
        """``POST /v0/d/orders/{order_id}/returns``: refunds computed from the order (lowest amount first)."""
        if not isinstance(body, dict) or not isinstance(body.get("items"), list) or not body["items"]:
            raise SimError(400, "bad_request", "'items' is a required non-empty array")
        if not isinstance(body.get("returned_from"), str) or not body["returned_from"]:
            raise SimError(400, "bad_request", "'returned_from' (fulfillment node id) is required")
        with self._lock:
            order = self._order_by_any_id(order_id)
            if order is None:
                raise SimError(404, "order_not_found", f"Order {order_id!r} was not found.")
            loc = self.estate.by_node.get(body["returned_from"])
            if loc is None:
                raise SimError(400, "invalid_fulfillment_node", f"Unknown node {body['returned_from']!r}.")
            at = opt_time(body.get("returned_at")) or self.clock()
            lines, used = [], set()
            for raw in body["items"]:
                pid = str(raw.get("product_id") or "")
                candidates = [i for i in order.items if i.product_id == pid and i.status == "complete"
                              and i.id not in used]
                if not candidates:
                    raise SimError(400, "no_returnable_item", f"No returnable item for product {pid!r}.")
                item = min(candidates, key=order.gross)
                used.add(item.id)
                lines.append({"sku": pid, "quantity": 1, "refund": order.gross(item), "rate": item.tax_rate,
                              "order_item_id": item.id, "condition_code": raw.get("condition_code"),
                              "return_reason": raw.get("reason"),
                              "item_condition": raw.get("item_condition", "sellable")})
            for line in lines:
                next(i for i in order.items if i.id == line["order_item_id"]).status = "returned"
            result = self._process_return(loc, lines, at=at, order=order, external_order_id=order.external_id,
                                          restock=True, currency=order.currency,
                                          return_fee=D(body.get("return_fee", 0) or 0), return_reason=None,
                                          customer_email=order.customer_email)
            return result["record"]

    def list_returns(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            order = self._order_by_any_id(order_id)
            if order is None:
                raise SimError(404, "order_not_found", f"Order {order_id!r} was not found.")
            return {"returns": copy.deepcopy(self._returns.get(order.id, []))}

    def get_return(self, order_id: str, return_id: str) -> dict[str, Any]:
        for r in self.list_returns(order_id)["returns"]:
            if r["id"] == return_id:
                return r
        raise SimError(404, "return_not_found", f"Return {return_id!r} was not found.")

    # -- processing -------------------------------------------------------------------------------------

    def _process_return(self, loc: Location, lines: list[dict[str, Any]], *, at: datetime, order: Order | None,
                        external_order_id: str | None, restock: bool, currency: str, return_fee: Decimal,
                        return_reason: str | None, customer_email: str | None) -> dict[str, Any]:
        """Restock what is sellable, emit the return's three events; returns the return.processed payload
        (``event``) and the record served by the returns endpoints (``record``)."""
        node = loc.newstore_node_id
        return_id = self._uuid()
        items_evt, total, total_tax = self._returned_items(node, lines, restock, return_reason)
        adjusted = max(Decimal(0), total - return_fee)
        payload = {
            "id": return_id,
            "order_id": order.id if order else None,
            "external_order_id": external_order_id,
            "returned_at": iso(at),
            "logical_timestamp": self._next_lt(),
            "return_location_id": node,
            "currency": currency,
            "total_refund_amount": money(total),
            "total_refund_amount_adjusted": money(adjusted),
            "total_refund_excl_tax": money(total - total_tax),
            "total_refund_tax": money(total_tax),
            "return_fee": money(return_fee),
            "customer_id": order.customer_id if order else None,
            "customer_email": customer_email,
            "associate_id": None,
            "associate_email": None,
            "items": items_evt,
        }
        env = self._publish("return.processed", payload, at)
        method = (order.payments[0].get("method") if order and order.payments else None) or "credit_card"
        self._publish_refund(payload, adjusted, method, return_reason, at)
        record = {
            "id": return_id, "order_id": payload["order_id"], "returned_from": node, "returned_at": iso(at),
            "status": "processed", "currency": currency, "return_fee": money(return_fee),
            "total_refund_amount": money(adjusted), "total_refund_tax": money(total_tax),
            "total_refund_excl_tax": money(total - total_tax),
            "items": [{**row, "item_id": line.get("order_item_id")} for row, line in zip(items_evt, lines, strict=True)],
        }
        if order is not None:
            self._returns.setdefault(order.id, []).append(record)
        return {"event": copy.deepcopy(env["payload"]), "record": copy.deepcopy(record)}

    def _returned_items(self, node: str, lines: list[dict[str, Any]], restock: bool,
                        return_reason: str | None) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        """The ``items`` of return.processed (restocking the sellable ones), the refund total and its tax."""
        rows = []
        total = total_tax = Decimal(0)
        for line in lines:
            refund = line["refund"]
            rtax = tax_included(refund, line["rate"])
            total += refund
            total_tax += rtax
            condition = line.get("item_condition") or ("sellable" if restock else "damaged")
            if condition == "sellable":
                self._rec(node, line["sku"]).on_hand += line["quantity"]
            rows.append({
                "id": self._uuid(), "product_id": line["sku"], "quantity": line["quantity"],
                "refund_amount": money(refund), "refund_excl_tax": money(refund - rtax), "refund_tax": money(rtax),
                "item_condition": condition, "condition_code": line.get("condition_code"),
                "return_reason": line.get("return_reason") or return_reason, "return_code": None,
                "external_identifiers": self._ids(line["sku"]),
            })
        return rows, total, total_tax

    def _publish_refund(self, processed: dict[str, Any], amount: Decimal, method: str, return_reason: str | None,
                        at: datetime) -> None:
        """refund_request.issued and payment_account.amount_refunded of a processed return."""
        currency, refund_id = processed["currency"], self._uuid()
        self._publish("refund_request.issued", {
            "id": refund_id, "order_id": processed["order_id"], "return_id": processed["id"],
            "external_order_id": processed["external_order_id"], "payment_account_id": self._uuid(),
            "amount": money(amount), "currency": currency, "requested_at": iso(at), "return_reason": return_reason,
            "reason_code": None, "associate_id": None, "note": None, "logical_timestamp": self._next_lt(),
        }, at)
        instrument = self._uuid()
        self._publish("payment_account.amount_refunded", {
            "id": self._uuid(), "order_id": processed["order_id"], "refund_request_id": refund_id,
            "logical_timestamp": self._next_lt(),
            "transactions": [{"id": self._uuid(), "instrument_id": instrument, "amount": money(amount),
                              "currency": currency, "correlation_id": refund_id}],
            "instruments": [{"id": instrument, "payment_method": method, "payment_wallet": None,
                             "payment_provider": "cash" if method == "cash" else "adyen"}],
        }, at)
